"""The generic triggers: trait_crossed (per key for a grouped trait) and event (with a
where), with cooldowns, consent, deterministic ids, and late events that fire nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from state import CustomerState, Event, ProfileConfig, advance, apply
from state.outputs import Trigger
from state.rules.model import DEFAULT_RULES, RulesError, parse_rules
from tests.conftest import T0, H

RULES = parse_rules(DEFAULT_RULES.read_text() + """
[traits.views_24h]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[traits.spend]
kind = "sum"
event = "order_completed"
value = "revenue"

[triggers.same_category_3x]
type = "trait_crossed"
trait = "views_24h"
threshold = 3
cooldown = "72h"

[triggers.big_spender]
type = "trait_crossed"
trait = "spend"
threshold = 500

[triggers.big_order]
type = "event"
event = "order_completed"
where = "revenue >= 200"
cooldown = "1h"
""")  # fmt: skip
CFG = ProfileConfig(rules=RULES)
GENERIC = {"same_category_3x", "big_spender", "big_order"}


def view_(t: int, category: str, cid: str | None = "c-1", n: int = 0) -> Event:
    product = {"product_id": f"{category}-{n}", "category": category}
    anon = None if cid else "a1"
    return Event(f"v{t}-{category}-{n}", "product_viewed", t, t, cid, anon,
                 payload={"product": product})  # fmt: skip


def order(t: int, revenue: float) -> Event:
    return Event(f"o{t}", "order_completed", t, t, "c-1",
                 payload={"order_id": f"o{t}", "items": [], "revenue": revenue,
                          "currency": "EUR"})  # fmt: skip


def generic(out: list[Any]) -> list[Trigger]:
    return [o for o in out if isinstance(o, Trigger) and o.rule in GENERIC]


def test_trait_crossed_fires_once_per_key_with_the_key_and_products() -> None:
    st = CustomerState("c-1")
    fired: list[Trigger] = []
    for i in range(4):
        fired += generic(apply(st, view_(T0 + i * H, "shoes", n=i), CFG))
    fired += generic(apply(st, view_(T0 + 5 * H, "hats"), CFG))
    assert [(t.rule, t.category, t.event_time) for t in fired] == [
        ("same_category_3x", "shoes", T0 + 2 * H)
    ]
    trig = fired[0]
    assert trig.attributes == {"trait": "views_24h", "value": "3", "threshold": "3",
                               "key": "shoes"}  # fmt: skip
    assert set(trig.product_ids) == {"shoes-0", "shoes-1", "shoes-2"}
    # Same history, same id; a replay (fresh state) gives it again.
    again = CustomerState("c-1")
    ids = [t.trigger_id for i in range(3)
           for t in generic(apply(again, view_(T0 + i * H, "shoes", n=i), CFG))]  # fmt: skip
    assert ids == [trig.trigger_id]


def test_trait_crossed_respects_the_cooldown_across_keys() -> None:
    st = CustomerState("c-1")
    out: list[Trigger] = []
    for i in range(3):
        out += generic(apply(st, view_(T0 + i * H, "shoes", n=i), CFG))
        out += generic(apply(st, view_(T0 + i * H + 1, "bags", n=i), CFG))
    assert [t.category for t in out] == ["shoes"]  # bags crossed within the 72 h cooldown


def test_a_lifetime_sum_crossing() -> None:
    st = CustomerState("c-1")
    assert generic(apply(st, order(T0, 150.0), CFG)) == []
    assert generic(apply(st, order(T0 + H, 150.0), CFG)) == []
    out = generic(apply(st, order(T0 + 2 * H, 250.0), CFG))
    assert [t.rule for t in out] == ["big_spender", "big_order"]
    assert out[0].attributes == {"trait": "spend", "value": "550.0", "threshold": "500"}
    assert out[0].category is None
    assert out[1].amount == 250.0
    assert out[1].currency == "EUR"
    assert out[1].attributes == {"event": "order_completed"}


def test_event_trigger_where_and_cooldown() -> None:
    st = CustomerState("c-1")
    assert generic(apply(st, order(T0, 199.99), CFG)) == []
    first = generic(apply(st, order(T0 + 60_000, 200.0), CFG))
    assert [t.rule for t in first] == ["big_order"]
    within = generic(apply(st, order(T0 + 120_000, 300.0), CFG))
    assert [t.rule for t in within] == ["big_spender"]  # big_order: within its 1 h
    later = generic(apply(st, order(T0 + H + 60_000, 300.0), CFG))
    assert [t.rule for t in later if t.rule == "big_order"] == ["big_order"]
    assert first[0].trigger_id != later[-1].trigger_id


def test_no_generic_trigger_without_consent_anonymously_or_late() -> None:
    anon = CustomerState("anon:a1")
    for i in range(3):
        assert generic(apply(anon, view_(T0 + i, "shoes", cid=None, n=i), CFG)) == []
    st = CustomerState("c-1")
    apply(st, Event("u", "email_event", T0, T0, "c-1", payload={"action": "unsubscribed"}), CFG)
    for i in range(3):
        assert generic(apply(st, view_(T0 + i + 1, "shoes", n=i), CFG)) == []
    assert generic(apply(st, order(T0 + 10, 900.0), CFG)) == []
    late = CustomerState("c-1")
    apply(late, order(T0 + 10 * H, 10.0), CFG)
    assert generic(apply(late, replace(order(T0, 900.0), event_id="late"), CFG)) == []


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ("type = 'trait_crossed'\ntrait = 'nope'\nthreshold = 1",
         "r.toml: triggers.x.trait: no trait named 'nope' (traits: last_topic)"),
        ("type = 'trait_crossed'\ntrait = 'last_topic'\nthreshold = 1",
         "r.toml: triggers.x.trait: 'last_topic' is a last trait; a threshold needs a number"),
        ("type = 'event'\nevent = 'order_completd'",
         "r.toml: triggers.x.event: unknown event type 'order_completd'"),
        ("type = 'event'\nevent = 'order_completed'\nwhere = 'orders > 1'",
         "r.toml: triggers.x.where: unknown name 'orders'"),
        ("type = 'event'\nevent = 'custom:demo'\nwhere = 'since(name) > 1h'",
         "r.toml: triggers.x.where: may not read the clock"),
    ],
)  # fmt: skip
def test_generic_trigger_errors_name_the_field(trigger: str, message: str) -> None:
    text = ("version = 1\n[traits.last_topic]\nkind = 'last'\nevent = 'custom'\n"
            f"value = 'properties.topic'\n[triggers.x]\n{trigger}\n")  # fmt: skip
    with pytest.raises(RulesError) as info:
        parse_rules(text, "r.toml")
    assert any(line.startswith(message) for line in str(info.value).splitlines()), info.value


def test_triggers_carry_the_traits_they_name() -> None:
    rules = parse_rules(DEFAULT_RULES.read_text().replace(
        'tag = "abandoned_cart"\n', 'tag = "abandoned_cart"\ntraits = ["favourite"]\n'
    ).replace('window = "24h"\ncooldown = "72h"\n',
              'window = "24h"\ncooldown = "72h"\ntraits = ["favourite", "spend"]\n') + """
[traits.favourite]
kind = "most_frequent"
event = "product_viewed"
value = "product.category"

[traits.spend]
kind = "sum"
event = "order_completed"
value = "revenue"

[triggers.big_order]
type = "event"
event = "order_completed"
where = "revenue >= 200"
traits = ["favourite"]
""")  # fmt: skip
    cfg = ProfileConfig(rules=rules)
    st = CustomerState("c-1")
    out: list[Any] = []
    for i in range(3):
        out += apply(st, view_(T0 + i * H, "shoes", n=i), cfg)
    out += apply(st, order(T0 + 4 * H, 300.0), cfg)
    item = {"product": {"product_id": "p", "price": 5.0}, "quantity": 1}
    cart = Event("c", "cart_item_added", T0 + 5 * H, T0 + 5 * H, "c-1", payload={"item": item})
    out += apply(st, cart, cfg)
    out += advance(st, cfg, T0 + 7 * H)
    by_rule = {o.rule: o.attributes for o in out if isinstance(o, Trigger)}
    assert by_rule["category_interest"] == {"views": "3", "trait.favourite": '"shoes"',
                                            "trait.spend": "0.0"}  # fmt: skip
    assert by_rule["big_order"] == {"event": "order_completed", "trait.favourite": '"shoes"'}
    assert by_rule["abandoned_cart"] == {"tag": "abandoned_cart", "trait.favourite": '"shoes"'}
    tag = 'tag = "abandoned_cart"\n'
    text = DEFAULT_RULES.read_text().replace(tag, tag + 'traits = ["nope"]\n')
    with pytest.raises(RulesError, match=r"triggers.abandoned_cart.traits: no trait named 'nope'"):
        parse_rules(text)
