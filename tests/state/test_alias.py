"""Customer aliases in the pure logic: the alias moves A's state to B through a handover
event, later events of A are forwarded, and nothing merges twice."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from state import CustomerState, Erased, Event, ProfileConfig, Trigger, view
from state.alias import HANDOVER_SOURCE, alias_of, apply_routed, route_key
from state.outputs import CustomerMerge, Output, Resend
from state.profile import advance
from state.snapshot import to_snapshot
from tests.conftest import T0, H

CFG = ProfileConfig()


def view_ev(eid: str, t: int, customer: str, category: str = "shoes") -> Event:
    payload = {"product": {"product_id": f"p-{eid}", "category": category}}
    return Event(eid, "product_viewed", t, t, customer_id=customer, payload=payload)


def alias(eid: str, t: int, previous: str, customer: str, name: str = "alias") -> Event:
    props = {"previousId": json.dumps(previous)}
    return Event(eid, "custom", t, t, customer_id=customer,
                 payload={"name": name, "properties": props})  # fmt: skip


def resent(out: list[Output]) -> list[Event]:
    return [o.event for o in out if isinstance(o, Resend)]


def feed(states: dict[str, CustomerState], events: list[Event]) -> list[Output]:
    """Route each event as the dataflow does, and loop resent events back, like the
    events topic does."""
    out: list[Output] = []
    queue = list(events)
    while queue:
        ev = queue.pop(0)
        key = route_key(ev)
        st = states.setdefault(key, CustomerState(key))
        produced = apply_routed(st, ev, CFG)
        out += produced
        queue[:0] = resent(produced)
    return out


def test_alias_is_read_from_previous_id_and_junk_is_ignored() -> None:
    assert alias_of(alias("x", T0, "A", "B")) == ("A", "B")
    assert alias_of(alias("x", T0, "A", "B", name="merge")) == ("A", "B")
    assert alias_of(alias("x", T0, "undefined", "B")) is None
    assert alias_of(alias("x", T0, "B", "B")) is None  # itself
    assert route_key(alias("x", T0, "A", "B")) == "A"
    assert route_key(view_ev("v", T0, "B")) == "B"


def test_views_before_and_after_the_alias_fire_category_interest_for_the_survivor() -> None:
    states: dict[str, CustomerState] = {}
    out = feed(states, [view_ev("a1", T0, "A"), view_ev("a2", T0 + H, "A")])
    assert not [o for o in out if isinstance(o, Trigger)]
    out = feed(states, [alias("m1", T0 + 2 * H, "A", "B"), view_ev("b1", T0 + 3 * H, "B")])
    fired = [o for o in out if isinstance(o, Trigger)]
    assert [(t.rule, t.customer_id, t.category) for t in fired] == [
        ("category_interest", "B", "shoes")
    ]
    merges = [o for o in out if isinstance(o, CustomerMerge)]
    assert [(m.previous_id, m.customer_id, m.outcome, m.merged_events) for m in merges] == [
        ("A", "B", "merged", 2)
    ]
    assert Erased("A", T0 + 2 * H) in out  # A's own profile is removed downstream
    assert states["A"].merged_into == "B"
    assert states["A"].revision == 0
    b = view(states["B"], CFG)
    assert b["event_counts"] == {"product_viewed": 3}
    assert b["first_seen"] == T0


def test_later_events_of_the_merged_id_are_forwarded_and_counted_once() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), alias("m1", T0 + H, "A", "B")])
    out = feed(states, [view_ev("a2", T0 + 2 * H, "A")])
    assert [e.customer_id for e in resent(out)] == ["B"]
    assert states["B"].event_counts == {"product_viewed": 2}
    # The same events delivered again, to either id, change nothing.
    again = feed(states, [view_ev("a1", T0, "A"), view_ev("a2", T0 + 2 * H, "A"),
                          view_ev("a2", T0 + 2 * H, "B")])  # fmt: skip
    assert not [o for o in again if not isinstance(o, Resend)]
    assert states["B"].event_counts == {"product_viewed": 2}


def test_a_repeated_alias_and_a_repeated_handover_merge_nothing_twice() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), view_ev("b1", T0, "B")])
    first = feed(states, [alias("m1", T0 + H, "A", "B")])
    handover = resent(first)[0]
    assert handover.source == HANDOVER_SOURCE
    assert handover.customer_id == "B"
    revision = states["B"].revision
    assert feed(states, [alias("m2", T0 + 2 * H, "A", "B")]) == []  # the same alias again
    assert apply_routed(states["B"], handover, CFG) == []  # redelivered handover
    assert states["B"].revision == revision
    assert states["B"].event_counts == {"product_viewed": 2}


def test_first_merge_wins_a_second_target_is_a_conflict() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), alias("m1", T0 + H, "A", "B")])
    out = feed(states, [alias("m2", T0 + 2 * H, "A", "C")])
    assert [(m.outcome, m.merged_into) for m in out if isinstance(m, CustomerMerge)] == [
        ("conflict", "B")
    ]
    assert "C" not in states
    assert states["B"].event_counts == {"product_viewed": 1}


def test_chains_move_the_merged_state_on() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), alias("m1", T0 + H, "A", "B"),
                  view_ev("b1", T0 + H, "B"), alias("m2", T0 + 2 * H, "B", "C"),
                  view_ev("a2", T0 + 3 * H, "A")])  # fmt: skip
    assert states["C"].event_counts == {"product_viewed": 3}
    assert states["B"].merged_into == "C"
    assert states["A"].merged_into == "B"


def test_a_handover_written_by_anyone_but_the_dataflow_merges_nothing() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), alias("m1", T0 + H, "A", "B")])
    forged = replace(view_ev("x", T0, "B"), event_type="custom", source="web",
                     payload={"name": "merge_state", "properties": {}})  # fmt: skip
    before = states["B"].event_counts.copy()
    feed(states, [forged])
    assert states["B"].event_counts == {**before, "custom": 1}  # an ordinary custom event


def test_a_corrupt_handover_is_refused_with_a_reason() -> None:
    bad: dict[str, Any] = {"name": "merge_state", "properties": {"state": '"[1, 2'}}
    ev = Event("h1", "custom", T0, T0, customer_id="B", source=HANDOVER_SOURCE, payload=bad)
    out = apply_routed(CustomerState("B"), ev, CFG)
    assert [o.reason for o in out] == ["merge_refused"]  # type: ignore[union-attr]


def test_replay_mode_writes_nothing_back() -> None:
    st = CustomerState("A")
    apply_routed(st, view_ev("a1", T0, "A"), CFG)
    out = apply_routed(st, alias("m1", T0 + H, "A", "B"), CFG, resend=False)
    assert not resent(out)
    assert st.merged_into == "B"
    assert apply_routed(st, view_ev("a2", T0 + 2 * H, "A"), CFG, resend=False) == []


def erase(eid: str, t: int, customer: str) -> Event:
    return Event(eid, "custom", t, t, customer_id=customer, source="cdpflow forget",
                 payload={"name": "erase", "properties": {}})  # fmt: skip


def test_an_id_erased_before_it_joined_brings_none_of_its_old_events() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), erase("x", T0 + H, "A"), view_ev("b1", T0, "B"),
                  alias("m1", T0 + 2 * H, "A", "B")])  # fmt: skip
    out = feed(states, [view_ev("a1", T0, "A")])  # redelivered from before the erasure
    assert out == []
    assert states["B"].event_counts == {"product_viewed": 1}
    feed(states, [view_ev("a2", T0 + 3 * H, "A")])  # after it: forwarded as usual
    assert states["B"].event_counts == {"product_viewed": 2}


def test_erasing_a_merged_away_id_erases_the_customer_it_joined() -> None:
    states: dict[str, CustomerState] = {}
    feed(states, [view_ev("a1", T0, "A"), alias("m1", T0 + H, "A", "B")])
    out = feed(states, [erase("x", T0 + 2 * H, "A")])
    assert Erased("B", T0 + 2 * H) in out
    assert states["B"].erased_at == T0 + 2 * H
    assert states["B"].revision == 0


def test_what_the_previous_id_owes_before_the_alias_does_not_depend_on_its_timer() -> None:
    """An abandoned cart of A falls due before A's alias. Whether A's timer fired first
    (a live run) or the alias arrived first (a fast replay), the same abandoned-cart
    trigger is emitted for A, and B receives the same state."""
    item = {"product": {"product_id": "p1", "price": 20.0}, "quantity": 1}
    before = [
        Event("i1", "identify", T0, T0, customer_id="A", payload={"email": "a@x.example"}),
        Event(
            "c1",
            "cart_item_added",
            T0 + 60_000,
            T0 + 60_000,
            customer_id="A",
            payload={"item": item},
        ),
    ]
    join = alias("m1", T0 + 3 * H, "A", "B")

    def run(timer_fired: bool) -> tuple[list[Output], dict[str, CustomerState]]:
        states: dict[str, CustomerState] = {}
        out = feed(states, before)
        if timer_fired:
            out += advance(states["A"], CFG, T0 + 2 * H)  # what the timer does at 2 h
        return out + feed(states, [join]), states

    fired_first, live = run(timer_fired=True)
    alias_first, fast = run(timer_fired=False)
    assert [(t.rule, t.customer_id) for t in alias_first if isinstance(t, Trigger)] == [
        ("abandoned_cart", "A")
    ]
    assert sorted(map(repr, alias_first)) == sorted(map(repr, fired_first))
    assert to_snapshot(fast["B"]) == to_snapshot(live["B"])
