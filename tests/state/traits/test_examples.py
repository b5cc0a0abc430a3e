"""The README's worked examples of traits and the generic triggers, as written there."""

from __future__ import annotations

from typing import Any

import orjson

from state import CustomerState, Event, ProfileConfig, advance, apply, view
from state.outputs import TagChange, Trigger
from state.rules.model import DEFAULT_RULES, parse_rules
from tests.conftest import T0, H

EXAMPLES = """
[traits.views_per_category_24h]      # views per category in the trailing 24 h (exact)
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[traits.spend_180d]                  # revenue in 180 UTC days
kind = "sum"
event = "order_completed"
value = "revenue"
window = "180d"
granularity = "day"

[traits.email_engaged_7d]            # email opens and clicks in 7 UTC days
kind = "count"
event = "email_event"
where = "action == 'opened' or action == 'clicked'"
window = "7d"
granularity = "day"

[traits.favourite_category]          # the category viewed most in 30 UTC days
kind = "most_frequent"
event = "product_viewed"
value = "product.category"
window = "30d"
granularity = "day"

[traits.last_checkout]               # when they last started a checkout
kind = "last_time"
event = "checkout_started"

[traits.webinar_topics]              # the topics of the webinars they attended
kind = "unique_list"
event = "custom:webinar_attended"
value = "properties.topic"
where = "properties.minutes >= 10"
limits = { values = 20 }

[traits.spend_per_category_90d]      # each order line: its price, by its category
kind = "sum"
event = "order_completed"
each = "items"
value = "product.price"
by = "product.category"
window = "90d"
granularity = "day"
limits = { keys = 16 }               # categories kept: 16 x 90 day buckets

[tags.shoe_lover]
when = "views_per_category_24h.shoes >= 3 or favourite_category == 'shoes'"

[tags.checkout_stalled]
when = "since(last_checkout) >= 2h and since(last_order_at) > 2h"

[segments.pricing_curious]
when = "'pricing' in webinar_topics and max(views_per_category_24h) >= 2"

[triggers.same_category_3x]          # the seed's category interest, as a generic trigger
type = "trait_crossed"
trait = "views_per_category_24h"
threshold = 3
cooldown = "72h"

[triggers.big_order]
type = "event"
event = "order_completed"
where = "revenue >= 200"
cooldown = "24h"
"""
RULES = parse_rules(DEFAULT_RULES.read_text() + EXAMPLES, "rules.toml")
CFG = ProfileConfig(rules=RULES)
_n = iter(range(10**6))


def ev(kind: str, t: int, **payload: Any) -> Event:
    return Event(f"e{next(_n)}", kind, t, t, "c-1", payload=payload)


def viewed(t: int, category: str) -> Event:
    return ev("product_viewed", t, product={"product_id": f"{category}-{t}", "category": category})


def test_the_worked_examples() -> None:
    st = CustomerState("c-1")
    out: list[Any] = []
    for i, cat in enumerate(["shoes", "hats", "shoes", "shoes"]):
        out += apply(st, viewed(T0 + i * H, cat), CFG)
    shoe = {"product_id": "s", "category": "shoes", "price": 120.0}
    hat = {"product_id": "h", "category": "hats", "price": 30.0}
    items = [{"product": shoe, "quantity": 1}, {"product": hat, "quantity": 1}]
    out += apply(st, ev("order_completed", T0 + 5 * H, order_id="o1", items=items, revenue=250.0,
                        currency="EUR"), CFG)  # fmt: skip
    for action in ("delivered", "opened", "clicked"):
        out += apply(st, ev("email_event", T0 + 6 * H, action=action), CFG)
    out += apply(st, ev("checkout_started", T0 + 7 * H), CFG)
    props = {"topic": orjson.dumps("pricing").decode(), "minutes": "45"}
    out += apply(st, ev("custom", T0 + 8 * H, name="webinar_attended", properties=props), CFG)
    assert view(st, CFG)["traits"] == {
        "views_per_category_24h": {"hats": 1, "shoes": 3},
        "spend_180d": 250.0,
        "email_engaged_7d": 2,
        "favourite_category": "shoes",
        "last_checkout": T0 + 7 * H,
        "webinar_topics": ["pricing"],
        "spend_per_category_90d": {"hats": 30.0, "shoes": 120.0},
    }
    assert "shoe_lover" in st.derived.tags
    assert "pricing_curious" in st.derived.segments
    fired = [(o.rule, o.category) for o in out if isinstance(o, Trigger)]
    assert ("same_category_3x", "shoes") in fired
    assert ("big_order", None) in fired
    # Two hours after the checkout with no order since: a timer adds checkout_stalled.
    later = advance(st, CFG, T0 + 9 * H)
    assert [(o.tag, o.added, o.event_time) for o in later
            if isinstance(o, TagChange) and o.tag == "checkout_stalled"] == [
        ("checkout_stalled", True, T0 + 9 * H)
    ]  # fmt: skip
