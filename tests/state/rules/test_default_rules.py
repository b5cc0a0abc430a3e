"""Every rule of the shipped default, at and just past its threshold, through the profile.

Time-driven moves (abandoned cart, lapsing, decaying counters) are driven both by
``advance`` (a live timer) and by a later event (replay): the outputs must agree.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from state import CustomerState, Event, ProfileConfig, TagChange, Trigger, advance, apply
from state.events import DAY_MS, HOUR_MS, MINUTE_MS

T0 = 1_790_000_000_000 // DAY_MS * DAY_MS  # a midnight UTC, so day windows are easy to read
CFG = ProfileConfig()
_ids = itertools.count()


def event(kind: str, t: int, **payload: Any) -> Event:
    return Event(f"e{next(_ids)}", kind, t, t, customer_id="c-1", payload=payload)


def order(t: int, revenue: float = 50.0) -> Event:
    item = {"product": {"product_id": "p", "price": revenue}, "quantity": 1}
    return event("order_completed", t, order_id=f"o{t}", items=[item], revenue=revenue)


def cart_add(t: int, price: float = 20.0) -> Event:
    return event("cart_item_added", t, item={"product": {"product_id": "p", "price": price},
                                             "quantity": 2})  # fmt: skip


def email(t: int, action: str = "opened") -> Event:
    return event("email_event", t, action=action)


def run(events: list[Event], until: int | None = None) -> tuple[CustomerState, list[Any]]:
    st = CustomerState("c-1")
    out = [o for ev in events for o in apply(st, ev, CFG)]
    if until is not None:
        out += advance(st, CFG, until)
    return st, out


def changes(out: list[Any], tag: str) -> list[tuple[bool, int]]:
    return [(o.added, o.event_time) for o in out if isinstance(o, TagChange) and o.tag == tag]


def triggers(out: list[Any], rule: str) -> list[Trigger]:
    return [o for o in out if isinstance(o, Trigger) and o.rule == rule]


# frequent_buyer: orders_90d >= 3 ------------------------------------------------------


def test_frequent_buyer_at_the_third_order_in_90_days() -> None:
    st, out = run([order(T0), order(T0 + DAY_MS), order(T0 + 89 * DAY_MS)])
    assert changes(out, "frequent_buyer") == [(True, T0 + 89 * DAY_MS)]
    assert "frequent_buyer" in st.derived.tags


def test_not_frequent_when_the_first_order_is_a_day_too_old() -> None:
    _, out = run([order(T0), order(T0 + DAY_MS), order(T0 + 90 * DAY_MS)])
    assert changes(out, "frequent_buyer") == []


def test_frequent_buyer_ends_on_a_timer_when_an_order_leaves_the_window() -> None:
    events = [order(T0), order(T0 + DAY_MS), order(T0 + 2 * DAY_MS)]
    _, live = run(events, until=T0 + 95 * DAY_MS)
    # The first order's day leaves the 90-day window at the start of day 90.
    assert changes(live, "frequent_buyer") == [(True, T0 + 2 * DAY_MS), (False, T0 + 90 * DAY_MS)]


# abandoned_cart: cart_items > 0 and since(cart_updated_at) >= 60m -----------------------


def test_abandoned_cart_fires_after_60_minutes_of_silence_on_a_timer() -> None:
    _, early = run([cart_add(T0)], until=T0 + 60 * MINUTE_MS - 1)
    assert changes(early, "abandoned_cart") == []
    _, live = run([cart_add(T0, price=20.0)], until=T0 + 60 * MINUTE_MS)
    assert changes(live, "abandoned_cart") == [(True, T0 + 60 * MINUTE_MS)]
    [trig] = triggers(live, "abandoned_cart")
    assert trig.event_time == T0 + 60 * MINUTE_MS
    assert trig.amount == 40.0
    assert [(i["product"]["product_id"], i["quantity"]) for i in trig.items] == [("p", 2)]


def test_abandoned_cart_in_replay_equals_live() -> None:
    events = [cart_add(T0)]
    later = email(T0 + 3 * HOUR_MS, "clicked")
    _, live = run(events, until=T0 + 3 * HOUR_MS)
    _, replay = run([*events, later])
    live_cart = [o for o in live if getattr(o, "tag", None) == "abandoned_cart"
                 or getattr(o, "rule", None) == "abandoned_cart"]  # fmt: skip
    replay_cart = [o for o in replay if getattr(o, "tag", None) == "abandoned_cart"
                   or getattr(o, "rule", None) == "abandoned_cart"]  # fmt: skip
    assert live_cart == replay_cart
    assert len(live_cart) == 2  # the tag change and the trigger, same ids


def test_an_order_within_60_minutes_means_no_abandoned_cart() -> None:
    _, out = run([cart_add(T0), order(T0 + 59 * MINUTE_MS)], until=T0 + 5 * HOUR_MS)
    assert changes(out, "abandoned_cart") == []
    assert triggers(out, "abandoned_cart") == []


def test_abandoned_cart_trigger_cooldown_is_24_hours() -> None:
    events = [cart_add(T0), cart_add(T0 + 2 * HOUR_MS), cart_add(T0 + 25 * HOUR_MS)]
    _, out = run(events, until=T0 + 30 * HOUR_MS)
    assert changes(out, "abandoned_cart") == [
        (True, T0 + HOUR_MS), (False, T0 + 2 * HOUR_MS),
        (True, T0 + 3 * HOUR_MS), (False, T0 + 25 * HOUR_MS),
        (True, T0 + 26 * HOUR_MS),
    ]  # fmt: skip
    assert [t.event_time for t in triggers(out, "abandoned_cart")] == [
        T0 + HOUR_MS,  # the second is within 24 h of it
        T0 + 26 * HOUR_MS,
    ]


# high_engagement: email_engagements_7d >= 5 or active_days_7d >= 3 -----------------------


@pytest.mark.parametrize(("opens", "tagged"), [(4, False), (5, True)])
def test_high_engagement_by_email(opens: int, tagged: bool) -> None:
    _, out = run([email(T0 + k * MINUTE_MS) for k in range(opens)])
    assert bool(changes(out, "high_engagement")) is tagged


def test_high_engagement_by_active_days_and_its_decay() -> None:
    visits = [event("page_viewed", T0 + d * DAY_MS) for d in (0, 1, 2)]
    _, out = run(visits, until=T0 + 20 * DAY_MS)
    # Day 0 leaves the 7-day window at the start of day 7.
    assert changes(out, "high_engagement") == [(True, T0 + 2 * DAY_MS), (False, T0 + 7 * DAY_MS)]


# high_value: revenue_180d >= 500 ---------------------------------------------------------


@pytest.mark.parametrize(("amounts", "tagged"), [((250, 249.99), False), ((250, 250), True)])
def test_high_value(amounts: tuple[float, ...], tagged: bool) -> None:
    _, out = run([order(T0 + k * HOUR_MS, a) for k, a in enumerate(amounts)])
    assert bool(changes(out, "high_value")) is tagged


# lifecycle -------------------------------------------------------------------------------


def test_lifecycle_new_active_lapsed_churned_with_win_back() -> None:
    signup = event("identify", T0, signup_date=_iso(T0), email="x@example.com")
    st, out = run([signup], until=T0 + 200 * DAY_MS)
    stages = [
        (o.tag, o.added, o.event_time)
        for o in out
        if isinstance(o, TagChange) and o.tag.startswith("lifecycle:") and o.added
    ]
    assert stages == [
        ("lifecycle:new", True, T0),
        ("lifecycle:active", True, T0 + 30 * DAY_MS),  # signed up 30 days ago: not new
        ("lifecycle:lapsed", True, T0 + 30 * DAY_MS + 1),  # ...and 30 days without activity
        ("lifecycle:churned", True, T0 + 90 * DAY_MS + 1),
    ]
    [win_back] = triggers(out, "win_back")
    assert win_back.event_time == T0 + 30 * DAY_MS + 1
    assert win_back.attributes == {"from": "active", "to": "lapsed"}
    assert win_back.profile["email"] == "x@example.com"
    assert st.derived.lifecycle == "churned"


def test_exactly_one_stage_at_a_time() -> None:
    _, out = run([order(T0)], until=T0 + 100 * DAY_MS)
    held: set[str] = set()
    for o in out:
        if isinstance(o, TagChange) and o.tag.startswith("lifecycle:"):
            if o.added:
                held.add(o.tag)
            else:
                held.discard(o.tag)
            assert len(held) <= 1 or not o.added
    assert held == {"lifecycle:churned"}


# preference tags and segments -----------------------------------------------------------


def test_interest_tags_and_segment_entry_and_exit() -> None:
    prefs = event("preference_updated", T0, preferences={"interests": "premium, outdoor"})
    events = [prefs, order(T0 + HOUR_MS, 300), order(T0 + 2 * HOUR_MS, 200)]
    st, out = run(events, until=T0 + 40 * DAY_MS)
    assert changes(out, "interest:premium") == [(True, T0)]
    assert changes(out, "interest:outdoor") == [(True, T0)]
    # high_value at the second order; out of the segment 30 days after the last order.
    assert changes(out, "segment:recent_high_value_premium") == [
        (True, T0 + 2 * HOUR_MS),
        (False, T0 + 2 * HOUR_MS + 30 * DAY_MS + 1),
    ]
    [entered] = triggers(out, "segment_entered")
    assert entered.attributes == {"segment": "recent_high_value_premium"}
    assert entered.event_time == T0 + 2 * HOUR_MS
    assert st.derived.segments == ()


# consent ---------------------------------------------------------------------------------


def test_an_unsubscribed_customer_gets_tag_changes_but_no_triggers() -> None:
    optout = event("email_event", T0, action="unsubscribed")
    _, out = run([optout, cart_add(T0 + 1)], until=T0 + 5 * HOUR_MS)
    assert changes(out, "abandoned_cart") == [(True, T0 + 1 + HOUR_MS)]
    assert [o for o in out if isinstance(o, Trigger)] == []


def test_anonymous_visitors_get_no_outputs() -> None:
    st = CustomerState("anon:a-1")
    ev = Event("a1", "cart_item_added", T0, T0, anonymous_id="a-1",
               payload={"item": {"product": {"product_id": "p", "price": 1.0}}})  # fmt: skip
    out = apply(st, ev, CFG) + advance(st, CFG, T0 + 2 * HOUR_MS)
    assert out == []
    assert "abandoned_cart" in st.derived.tags


def _iso(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t / 1000, UTC).date().isoformat()
