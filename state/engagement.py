"""Engagement: email events, sessions (page and product views are counted per type).

- ``email``: action -> lifetime count of ``email_event``s (``delivered``, ``opened``,
  ``clicked``, ``bounced``, ``unsubscribed``, ``other``; an unknown action counts as
  ``other``). ``last_open`` / ``last_click``: the newest event time of each.
- ``sessions``: how many **distinct ``session_id``s** appeared on ``page_viewed`` and
  ``product_viewed`` events. Ids are remembered (as 8-byte digests, with the newest time
  they were seen) for ``session_memory_ms`` of event time behind the customer's newest
  event and at most ``max_sessions`` of them; a session id that comes back after it was
  forgotten counts again, and an event older than the memory cannot be checked, so it
  opens no session. Events without a session id open none. The count does not depend on
  arrival order for sessions whose events span less than ``session_memory_ms`` minus the
  allowed lateness (an inactivity rule would need every view time; ids keep it bounded).

Email ``delivered``, ``bounced`` and ``other`` are things done *to* the customer, not by
them: they do not make a customer active (see :data:`PASSIVE_EMAIL_ACTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from state.config import ProfileConfig
from state.dedupe import id_digest

__all__ = [
    "EMAIL_ACTIONS",
    "PASSIVE_EMAIL_ACTIONS",
    "Engagement",
    "email_action",
    "fold_email",
    "fold_session",
    "merge",
]

EMAIL_ACTIONS: Final = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "other")
PASSIVE_EMAIL_ACTIONS: Final = frozenset({"delivered", "bounced", "other"})


@dataclass(slots=True)
class Engagement:
    """Lifetime email counts and session tracking of one customer."""

    email: dict[str, int] = field(default_factory=dict)
    last_open: int | None = None
    last_click: int | None = None
    sessions: int = 0
    recent_sessions: dict[int, int] = field(default_factory=dict)
    """Session id digest -> newest event time seen with it."""

    def prune(self, before: int) -> None:
        """Forget session ids last seen strictly before ``before``."""
        for d in [d for d, t in self.recent_sessions.items() if t < before]:
            del self.recent_sessions[d]

    def view(self) -> dict[str, Any]:
        return {
            "email": {a: self.email.get(a, 0) for a in EMAIL_ACTIONS},
            "last_email_open_at": self.last_open,
            "last_email_click_at": self.last_click,
            "sessions": self.sessions,
        }

    def dump(self) -> tuple[Any, ...]:
        return (
            tuple(self.email.get(a, 0) for a in EMAIL_ACTIONS),
            self.last_open,
            self.last_click,
            self.sessions,
            tuple(x for d, t in self.recent_sessions.items() for x in (d, t)),
        )

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Engagement:
        counts, last_open, last_click, sessions, recent = snap
        return cls(
            {a: n for a, n in zip(EMAIL_ACTIONS, counts, strict=True) if n},
            last_open,
            last_click,
            sessions,
            dict(zip(recent[::2], recent[1::2], strict=True)),
        )


def email_action(payload: dict[str, Any]) -> str:
    """The payload's action, or ``other`` for one this code does not know.

    >>> email_action({"action": "opened"}), email_action({"action": "forwarded"})
    ('opened', 'other')
    """
    action = payload.get("action")
    return action if action in EMAIL_ACTIONS else "other"


def fold_email(e: Engagement, action: str, t: int) -> None:
    """Count one email event of ``action`` (from :func:`email_action`) at ``t``."""
    e.email[action] = e.email.get(action, 0) + 1
    if action == "opened":
        e.last_open = t if e.last_open is None else max(e.last_open, t)
    elif action == "clicked":
        e.last_click = t if e.last_click is None else max(e.last_click, t)


def fold_session(
    e: Engagement, session_id: str, t: int, watermark: int, cfg: ProfileConfig
) -> None:
    """Count ``session_id`` if it was not seen within the session memory.

    ``watermark`` is the customer's newest event time, including ``t``.

    >>> e, cfg = Engagement(), ProfileConfig()
    >>> for t in (0, 5, 3):
    ...     fold_session(e, "s1", t, 5, cfg)
    >>> fold_session(e, "s2", 4, 5, cfg)
    >>> e.sessions, len(e.recent_sessions)
    (2, 2)
    """
    horizon = watermark - cfg.session_memory_ms
    if t < horizon:
        return
    digest = id_digest(session_id)
    last = e.recent_sessions.get(digest)
    if last is None or last < horizon:  # new, or remembered but already expired
        e.sessions += 1
        e.recent_sessions[digest] = t
    elif t > last:
        e.recent_sessions[digest] = t
    if len(e.recent_sessions) > cfg.max_sessions:
        e.prune(horizon)
        while len(e.recent_sessions) > cfg.max_sessions:
            oldest = min(e.recent_sessions, key=lambda d: (e.recent_sessions[d], d))
            del e.recent_sessions[oldest]


def merge(e: Engagement, other: Engagement, watermark: int, cfg: ProfileConfig) -> None:
    """Add another key's engagement (disjoint events) to ``e``; ``watermark`` is the newest
    event time of both.

    Email counts add up, the last open and click are the later. **Sessions** add up,
    except that a session id both sides still remember, last seen within
    ``session_memory_ms`` of each other, was one session of one customer and is counted
    once. That is exact when each session's events lie within the session memory and both
    sides still remember the ids they share. A session whose id one side has already
    forgotten (its newest event more than ``session_memory_ms`` past the session), or
    whose events on one side bridge two sessions of the other, counts once per side:
    the ids alone cannot tell. So the merged count is at least one customer's, and at
    most the sum of both.

    >>> a, b, cfg = Engagement(), Engagement(), ProfileConfig()
    >>> fold_session(a, "s1", 0, 0, cfg); fold_session(b, "s1", 5, 5, cfg)
    >>> fold_session(b, "s2", 6, 6, cfg); merge(a, b, 6, cfg); a.sessions
    2
    """
    for action, n in other.email.items():
        e.email[action] = e.email.get(action, 0) + n
    e.last_open = _later(e.last_open, other.last_open)
    e.last_click = _later(e.last_click, other.last_click)
    e.sessions += other.sessions
    for digest, t in other.recent_sessions.items():
        mine = e.recent_sessions.get(digest)
        if mine is None:
            e.recent_sessions[digest] = t
            continue
        if abs(mine - t) <= cfg.session_memory_ms:
            e.sessions -= 1  # one session, counted on both sides
        e.recent_sessions[digest] = max(mine, t)
    if len(e.recent_sessions) > cfg.max_sessions:
        e.prune(watermark - cfg.session_memory_ms)
        for digest in sorted(e.recent_sessions, key=lambda d: (e.recent_sessions[d], d))[
            : max(len(e.recent_sessions) - cfg.max_sessions, 0)
        ]:
            del e.recent_sessions[digest]


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)
