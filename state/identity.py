"""Identity stitching: anonymous visitors become known customers.

The router keeps one small state per *anonymous id*:

- while the visitor is unknown, their events go on under ``anon:<id>`` (their own
  profile: views, cart, windows) and are also kept in a bounded buffer;
- the first event that carries both that anonymous id and a customer id (an identify or a
  login) **links** them: the buffered events are handed to the customer, re-keyed but with
  their original ids, so the customer's profile applies them as if the customer had done
  them (idempotent: an id already applied is skipped), and every later event of that
  anonymous id goes to the customer;
- a second customer presenting an anonymous id already linked (a shared device) does not
  take it over: the link stays with the first customer, the new customer's own events
  are theirs alone, and a ``conflict`` record says so;
- placeholder ids ("", "null", "undefined", "anonymous", "0", "-1", all zeros, and any
  configured) never link anything: they are treated as no anonymous id at all.

Every link and conflict is an :class:`IdentityLink` output, an audit trail with a
deterministic id. A visitor who never identifies is forgotten ``ttl_ms`` after their last
event (stream time); their anonymous profile expires with the idle rules of profiles.

Erasure: when a customer is erased, their profile sends an erasure of each anonymous id
they used (:func:`state.profile.erase`). The router then drops the link and the buffer, and
passes the erasure on to the visitor's anonymous profile; the id is marked erased and
**never links again** (a later identify with it goes to its customer without taking the
id's history along). The mark is kept past the idle time to live: it is small, and
forgetting it would let the cookie bring the customer back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from state.events import DAY_MS, Event
from state.outputs import stable_id
from state.profile import is_erasure

__all__ = [
    "DEFAULT_JUNK",
    "IdentityConfig",
    "IdentityLink",
    "IdentityState",
    "expired",
    "is_junk",
    "route",
]

DEFAULT_JUNK = frozenset({"", "null", "undefined", "anonymous", "none", "nil", "nan", "0", "-1"})
_ZEROS = re.compile(r"^[0\-]+$")


def is_junk(value: str | None, extra: frozenset[str] = frozenset()) -> bool:
    """A placeholder, not an identity.

    >>> [is_junk(v) for v in ("", " Null ", "00000000-0000-0000-0000-000000000000", "a-1")]
    [True, True, True, False]
    """
    if value is None:
        return True
    v = value.strip().lower()
    return v in DEFAULT_JUNK or v in extra or bool(_ZEROS.match(v))


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """``junk``: further placeholder ids; ``max_buffer``: events kept per unknown visitor
    (the oldest go first); ``ttl_ms``: an unknown visitor idle this long is forgotten."""

    junk: frozenset[str] = frozenset()
    max_buffer: int = 200
    ttl_ms: int = 30 * DAY_MS


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """Audit record of a link decision (``cdp.IdentityLink``)."""

    link_id: str
    anonymous_id: str
    customer_id: str
    outcome: str  # "linked" | "conflict"
    linked_to: str
    merged_events: int
    event_time: int


@dataclass(slots=True)
class IdentityState:
    """One anonymous id: whom it is linked to, and what it did while unknown."""

    linked_to: str | None = None
    linked_at: int | None = None
    buffer: list[Event] = field(default_factory=list)
    newest: int | None = None
    erased_at: int | None = None

    def dump(self) -> tuple[Any, ...]:
        buffer = tuple(self.buffer)
        return (2, self.linked_to, self.linked_at, buffer, self.newest, self.erased_at)

    @classmethod
    def load(cls, snap: tuple[Any, ...]) -> IdentityState:
        _, linked_to, linked_at, buffer, newest, *rest = snap  # version 1 had no erasure
        return cls(linked_to, linked_at, list(buffer), newest, rest[0] if rest else None)


def route(
    st: IdentityState, ev: Event, cfg: IdentityConfig
) -> tuple[list[Event], list[IdentityLink]]:
    """Where ``ev`` (which carries this state's anonymous id) goes, and any audit record.

    Returns the events to apply downstream, each keyed by its own ``key``: the customer's
    or ``anon:<id>``.
    """
    anon = ev.anonymous_id or ""
    st.newest = ev.event_time if st.newest is None else max(st.newest, ev.event_time)
    if not ev.customer_id and is_erasure(ev):
        st.linked_to = st.linked_at = None
        st.buffer.clear()
        st.erased_at = max(ev.event_time, st.erased_at or ev.event_time)
        return [ev], []  # on to the visitor's anonymous profile, to erase it too
    if st.erased_at is not None:
        return [ev], []  # an erased id never links again, nor is it buffered for a link
    if ev.customer_id:
        if st.linked_to is None:
            st.linked_to, st.linked_at = ev.customer_id, ev.event_time
            moved = [replace(e, customer_id=ev.customer_id) for e in st.buffer]
            st.buffer.clear()
            link = _link(anon, ev, "linked", ev.customer_id, len(moved))
            return [*moved, ev], [link]
        if st.linked_to == ev.customer_id:
            return [ev], []  # a repeated identify merges nothing twice
        # Shared device: the first customer keeps the anonymous id.
        return [ev], [_link(anon, ev, "conflict", st.linked_to, 0)]
    if st.linked_to is not None:
        return [replace(ev, customer_id=st.linked_to)], []
    st.buffer.append(ev)
    if len(st.buffer) > cfg.max_buffer:
        del st.buffer[0]
    return [ev], []


def expired(st: IdentityState, now_ms: int, cfg: IdentityConfig) -> bool:
    """An anonymous id idle past the TTL: forget it (link included); never an erased one."""
    return st.erased_at is None and st.newest is not None and now_ms - st.newest > cfg.ttl_ms


def _link(anon: str, ev: Event, outcome: str, linked_to: str, merged: int) -> IdentityLink:
    customer = ev.customer_id or ""
    return IdentityLink(
        link_id=stable_id("identity", anon, customer, outcome, ev.event_id),
        anonymous_id=anon,
        customer_id=customer,
        outcome=outcome,
        linked_to=linked_to,
        merged_events=merged,
        event_time=ev.event_time,
    )
