import pytest

from state import Event
from state.validation import EventLimits, check_event
from tests.conftest import T0, H

LIMITS = EventLimits(max_future_ms=H, max_age_ms=10 * H)


def ev(t: int = T0, received: int = T0, customer: str | None = "c", anon: str | None = None,
       eid: str = "e") -> Event:  # fmt: skip
    return Event(eid, "custom", t, received, customer_id=customer, anonymous_id=anon)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ev(), None),
        (ev(customer=None, anon="a"), None),
        (ev(t=T0 + H, received=T0), None),
        (ev(t=T0 + H + 1, received=T0), "event_time_in_future"),
        (ev(t=T0 - 10 * H, received=T0), None),
        (ev(t=T0 - 10 * H - 1, received=T0), "event_time_too_old"),
        (ev(customer=None), "missing_identity"),
        (ev(eid=""), "missing_event_id"),
    ],
)
def test_event_time_and_identity_rules(event: Event, reason: str | None) -> None:
    problem = check_event(event, LIMITS)
    assert (problem[0] if problem else None) == reason
