"""The built-in facts' declarations (state.facts) checked against the fold itself: an event
never changes a fact its type does not declare, so the evaluation plan derived from them
(state.evaluation_plan) may reuse every other fact's value."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from state import CustomerState, Event, ProfileConfig, apply
from state.evaluation_plan import KEPT, TIMEZONE_FACTS, TOUCHES, WINDOWED, describe
from state.facts import DECLARED, FOLDED_TYPES, Facts
from state.rules import facts as documented
from tests.state.test_profile import T0, _histories, _memo_payload

CFG = ProfileConfig()


def _event(i: int, dt: int, kind: str, pick: int, amount: int, flag: bool | None,
           then: str | None) -> Event:  # fmt: skip
    t = T0 + dt
    context = {"timezone": f"Europe/Z{pick % 2}"} if then == "timezone" else None
    return Event(f"e{i}", kind, t, t, customer_id="c-1", context=context,
                 payload=_memo_payload(kind, i, t, pick, amount, flag))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_histories, st.data())
def test_an_event_changes_no_fact_its_type_does_not_declare(history, data) -> None:
    state = CustomerState("c-1")
    for i, step in enumerate(history):
        ev = _event(i, *step)
        before = copy.deepcopy(state)
        apply(state, ev, CFG)
        if ev.event_type not in TOUCHES:
            continue  # a type apply does not know: taken to change everything
        at = max(state.watermark, state.clock)
        may_change = TOUCHES[ev.event_type] | (TIMEZONE_FACTS if ev.context else frozenset())
        old, new = Facts(before, CFG, at), Facts(state, CFG, at)
        for name in sorted(KEPT - may_change):
            assert old[name] == new[name], (ev.event_type, name)


def test_every_documented_fact_is_declared_and_every_type_folded_is_an_avro_symbol() -> None:
    import json
    from pathlib import Path

    assert set(documented.FACTS) - {"tags", "segments", "lifecycle"} <= set(DECLARED)
    symbols = json.loads((Path("avro") / "cdp.EventType.avsc").read_text())["symbols"]
    assert list(FOLDED_TYPES) == symbols
    windowed = {"orders_90d", "revenue_180d", "active_days_7d", "active_days_30d",
                "email_engagements_7d"}  # fmt: skip
    assert windowed == WINDOWED


def test_the_plan_names_what_each_event_type_can_change() -> None:
    plan = {line.split(":", 1)[0]: line for line in describe(CFG.rules)}
    # A product view moves activity (lifecycle, the engagement tag) and the category
    # trigger, never the cart or the purchase tags.
    assert "triggers.category_interest" in plan["product_viewed"]
    assert "tags.high_engagement" in plan["product_viewed"]
    assert "tags.abandoned_cart" not in plan["product_viewed"]
    assert "tags.frequent_buyer" not in plan["product_viewed"]
    assert "tags.frequent_buyer" in plan["order_completed"]
    assert "triggers.abandoned_cart" in plan["cart_item_added"]
    assert "triggers.category_interest" not in plan["cart_item_added"]
    assert "lifecycle.new" in plan["identify"]
