"""Declaring traits that no rule reads changes nothing else: the same outputs (tag
changes, triggers, dead letters but for the traits they name), the same profile beside
``"traits"``, the same snapshot beside its last field, before and after timers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from state import CustomerState, Event, ProfileConfig, advance, apply, view
from state.outputs import Rejected
from state.rules.model import DEFAULT_RULES, parse_rules
from state.snapshot import to_snapshot
from tests.conftest import T0, H
from tests.state.test_profile import _KINDS, _payload

DECLARED = """
[traits.views]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[traits.spend]
kind = "sum"
event = "order_completed"
value = "revenue"
window = "30d"
granularity = "day"

[traits.kinds_seen]
kind = "unique_list"
event = ["identify", "page_viewed", "order_completed", "email_event", "custom"]
value = "session_id"

[traits.last_seen]
kind = "last_time"
event = ["product_viewed", "page_viewed", "cart_item_added", "checkout_started"]
"""
PLAIN = ProfileConfig()
WITH = ProfileConfig(rules=parse_rules(DEFAULT_RULES.read_text() + DECLARED))

_rows = st.lists(
    st.tuples(st.sampled_from(_KINDS), st.integers(-2 * H, 30 * H), st.integers(0, 9),
              st.integers(1, 40_000), st.sampled_from([True, False, None])),
    min_size=1, max_size=30,
)  # fmt: skip


def _strip(outputs: list[Any]) -> list[Any]:
    """Dead letters without the trait names they add."""
    out = []
    for o in outputs:
        if isinstance(o, Rejected):
            error = ", ".join(p for p in o.error.split(", ") if not p.startswith("trait "))
            out.append((o.reason, error, o.event_id, o.event_time))
        else:
            out.append(o)
    return out


@settings(max_examples=50, deadline=None)
@given(_rows)
def test_unread_traits_change_no_other_output(rows: list[Any]) -> None:
    plain, with_traits = CustomerState("c-1"), CustomerState("c-1")
    t = T0
    for i, (kind, dt, pick, amount, flag) in enumerate(rows):
        t += dt
        ev = Event(f"e{i}", kind, t, t, "c-1", payload=_payload(kind, i, t, pick, amount, flag))
        assert _strip(apply(plain, ev, PLAIN)) == _strip(apply(with_traits, ev, WITH))
    end = t + 100 * 24 * H
    assert advance(plain, PLAIN, end) == advance(with_traits, WITH, end)
    shown = view(with_traits, WITH)
    assert set(shown.pop("traits")) == {"views", "spend", "kinds_seen", "last_seen"}
    assert shown == view(plain, PLAIN)
    a, b = to_snapshot(with_traits), to_snapshot(plain)
    assert a[:-2] + a[-1:] == b[:-2] + b[-1:]  # every field but the traits
