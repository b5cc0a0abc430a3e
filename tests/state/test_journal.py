"""The journal's rebuild is the state after the last recorded operation, exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from state.alias import apply_routed
from state.config import ProfileConfig
from state.events import HOUR_MS, Event
from state.journal import Journal
from state.profile import CustomerState, advance, compact_idle
from state.snapshot import to_snapshot
from tests.conftest import T0

CFG = ProfileConfig()


def _event(i: int, kind: int, dt: int) -> Event:
    t = T0 + dt
    if kind == 0:
        return Event(
            f"e{i}",
            "product_viewed",
            t,
            t,
            customer_id="c",
            payload={"product": {"product_id": f"p{i % 3}", "category": f"k{i % 2}"}},
        )
    if kind == 1:
        return Event(f"e{i}", "page_viewed", t, t, customer_id="c", payload={"path": "/"})
    return Event(
        f"e{i % 4}",
        "order_completed",
        t,
        t,
        customer_id="c",
        payload={"order_id": f"o{i}", "revenue": 10.5, "items": [], "currency": "EUR"},
    )


ops = st.lists(
    st.one_of(
        st.tuples(st.just("ev"), st.integers(0, 2), st.integers(0, 48 * HOUR_MS)),
        st.tuples(st.just("adv"), st.just(0), st.integers(0, 72 * HOUR_MS)),
    ),
    max_size=40,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(1, 8))
def test_rebuild_equals_the_state_after_the_last_operation(plan, every) -> None:
    live = CustomerState("c")
    journal = Journal("c", every=every)
    for i, (kind, sub, dt) in enumerate(plan):
        if kind == "ev":
            ev = _event(i, sub, dt)
            apply_routed(live, ev, CFG)
            journal.applied(ev)
        else:
            advance(live, CFG, T0 + dt)
            compact_idle(live, T0 + dt, CFG)
            journal.advanced(T0 + dt)
        journal.maybe_checkpoint(live)
    assert to_snapshot(journal.rebuild(CFG)) == to_snapshot(live)
