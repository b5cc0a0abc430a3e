"""Event-time sanity: refuse times that would corrupt windows rather than guess.

The check compares the event's own time with ``received_at`` (when the edge got it),
not with this process's clock, so a replay of last year's history passes exactly as it
did live.
"""

from __future__ import annotations

from dataclasses import dataclass

from state.events import DAY_MS, Event
from state.identity import is_junk

__all__ = ["EventLimits", "check_event"]


@dataclass(frozen=True, slots=True)
class EventLimits:
    """``max_future_ms``: how far ``event_time`` may lie after ``received_at`` (clock skew
    the edge could not correct); ``max_age_ms``: how far before it."""

    max_future_ms: int = DAY_MS
    max_age_ms: int = 400 * DAY_MS
    junk_ids: frozenset[str] = frozenset()
    """Placeholder anonymous ids beyond the built-in ones (see :mod:`state.identity`)."""


def check_event(ev: Event, limits: EventLimits) -> tuple[str, str] | None:
    """``None`` if ``ev`` may be applied, else ``(reason, message)`` for a dead letter.

    >>> check_event(Event("e1", "custom", 0, 0, customer_id="c1"), EventLimits()) is None
    True
    """
    if not ev.event_id:
        return "missing_event_id", "event_id is empty"
    if not ev.customer_id and not ev.anonymous_id:
        return "missing_identity", "neither customer_id nor anonymous_id is set"
    if not ev.customer_id and is_junk(ev.anonymous_id, limits.junk_ids):
        return "missing_identity", "no customer_id, and anonymous_id is a placeholder"
    ahead = ev.event_time - ev.received_at
    if ahead > limits.max_future_ms:
        return (
            "event_time_in_future",
            f"event_time is {ahead} ms after received_at (limit {limits.max_future_ms} ms)",
        )
    behind = -ahead
    if behind > limits.max_age_ms:
        return (
            "event_time_too_old",
            f"event_time is {behind} ms before received_at (limit {limits.max_age_ms} ms)",
        )
    return None
