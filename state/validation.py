"""Event-time sanity: refuse times that would corrupt windows rather than guess.

The check compares the event's own time with ``received_at`` (when the edge got it),
not with this process's clock, so a replay of last year's history passes exactly as it
did live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from state.bounds import MAX_AMOUNT, amount_problem, time_problem
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
    max_field_bytes: int = 8 * 1024
    """Longest string (UTF-8 bytes) any field of an event may hold: ids, names, traits,
    properties. Bounded fields and bounded counts keep every profile bounded in bytes."""


def check_event(ev: Event, limits: EventLimits) -> tuple[str, str] | None:
    """``None`` if ``ev`` may be applied, else ``(reason, message)`` for a dead letter.

    >>> check_event(Event("e1", "custom", 0, 0, customer_id="c1"), EventLimits()) is None
    True
    """
    if not ev.event_id:
        return "missing_event_id", "event_id is empty"
    for name, t in (("event_time", ev.event_time), ("received_at", ev.received_at)):
        if time_problem(t) is not None:
            return "invalid_time", f"{name}: out of range (1970 to 2199)"
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
    cap = limits.max_field_bytes
    for name, value in (
        ("event_id", ev.event_id),
        ("customer_id", ev.customer_id),
        ("anonymous_id", ev.anonymous_id),
        ("source", ev.source),
    ):
        if value is not None and _too_long(value, cap):
            return "field_too_large", f"{name}: longer than {cap} bytes"
    for part, record in (("payload", ev.payload), ("context", ev.context)):
        if _bad(record, cap):  # cheap; the path is worked out only for the dead letter
            return _value_problem(record, part, cap)
    return None


def _too_long(text: str, cap: int) -> bool:
    # A character takes at most 4 bytes: most strings are judged without encoding them.
    return len(text) * 4 > cap and len(text.encode("utf-8", "surrogatepass")) > cap


def _bad(value: Any, cap: int) -> bool:
    """Whether a decoded record holds a string over ``cap`` bytes or an unusable amount
    (a loop, not recursion: this runs for every event)."""
    quarter = cap // 4
    todo = [value]
    while todo:
        v = todo.pop()
        t = type(v)
        if t is str:
            if len(v) > quarter and _too_long(v, cap):
                return True
        elif t is dict:
            for k, item in v.items():
                if type(k) is str and len(k) > quarter and _too_long(k, cap):
                    return True
                if item is not None:
                    todo.append(item)
        elif t is float:
            if not -MAX_AMOUNT <= v <= MAX_AMOUNT:  # NaN fails every comparison
                return True
        elif t is list or t is tuple:
            todo.extend(v)
    return False


def _value_problem(value: Any, path: str, cap: int) -> tuple[str, str] | None:
    """The first problem :func:`_bad` finds, with the path of its field."""
    if isinstance(value, str):
        return (
            ("field_too_large", f"{path}: longer than {cap} bytes")
            if _too_long(value, cap)
            else None
        )
    if isinstance(value, float):
        wrong = amount_problem(value)
        return None if wrong is None else ("invalid_field", f"{path}: {wrong}")
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and _too_long(k, cap):
                return "field_too_large", f"{path}: a key longer than {cap} bytes"
            if (problem := _value_problem(v, f"{path}.{str(k)[:64]}", cap)) is not None:
                return problem
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if (problem := _value_problem(v, f"{path}[{i}]", cap)) is not None:
                return problem
    return None
