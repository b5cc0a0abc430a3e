"""Customer aliases: one customer id joins another (Segment's ``alias``, or a ``merge``).

An alias event is a ``custom`` event named ``alias`` or ``merge`` whose ``customer_id``
is the surviving customer B and whose ``properties.previousId`` (or ``previous_id``) is
the customer A that joins it. It is routed to **A's key** (:func:`route_key`), and there:

1. A's whole state leaves in a **handover**: a ``custom`` event ``merge_state`` for B,
   carrying A's snapshot as portable JSON (:func:`state.snapshot.to_portable`), with a
   deterministic id (``stable_id("merge", A, B, alias event id)``). It is written back to
   the events topic (:class:`~state.outputs.Resend`) and B's profile folds it in
   (:func:`state.merge.merge_into`: one customer who did everything, no event counted
   twice), then evaluates the rules afresh.
2. A becomes a redirect (``merged_into = B``): its profile is removed downstream (a
   tombstone, like an erasure), and every later event for A is forwarded to B with its own
   id (a ``Resend`` of the event with ``customer_id`` B), so B applies it once.
3. A :class:`~state.outputs.CustomerMerge` record (``merged``) goes to ``cdp.identities``.

Rules, safe by default:

- An alias is idempotent: the same alias again, or another alias of A to B, changes
  nothing. Merging is also idempotent at B: a handover id already applied is skipped.
- **First merge wins**: A already joined B cannot join C as well; a ``conflict`` record
  says so and nothing moves (to re-home a customer, erase and re-identify).
- Junk ids (see :func:`state.identity.is_junk`) and an alias of a customer to itself
  are ignored: the event goes on as an ordinary custom event of B.
- Chains work: if B later joins C, B's state (with A's in it) moves to C, and events
  forwarded to B are forwarded again to C.
- Erasure: an id erased before it joined keeps its erasure time, and its events from
  before then are dropped, not forwarded. Erasing an id that has joined another erases
  the customer it joined (the erasure is forwarded like any event): they are one person.
- Only the dataflow may write a handover: one whose ``source`` is not
  :data:`HANDOVER_SOURCE` is an ordinary custom event and merges nothing (the collector
  cannot produce that source). Kafka ACLs should keep everyone else off the events topic.

Replay: the handovers and forwarded events a live run wrote are in the events topic, so a
replay of that history (``resend=False`` in the dataflow) merges exactly as the live run
did, from the same records, and writes nothing back.
"""

from __future__ import annotations

import json
from dataclasses import replace

from state.config import ProfileConfig
from state.events import NO_TIME, Event
from state.exceptions import StateError
from state.identity import is_junk
from state.merge import merge_into
from state.outputs import CustomerMerge, Erased, Output, Rejected, Resend, stable_id
from state.profile import CustomerState, advance, apply, as_of, is_erasure, reevaluate
from state.snapshot import from_portable, from_snapshot, to_portable, to_snapshot

__all__ = [
    "ALIAS_EVENTS",
    "HANDOVER_EVENT",
    "HANDOVER_SOURCE",
    "alias_of",
    "apply_routed",
    "route_key",
]

ALIAS_EVENTS = frozenset({"alias", "merge"})
HANDOVER_EVENT = "merge_state"
HANDOVER_SOURCE = "cdpflow merge"


def alias_of(ev: Event, junk: frozenset[str] = frozenset()) -> tuple[str, str] | None:
    """``(previous, customer)`` if ``ev`` is a usable alias event, else ``None``.

    >>> e = Event("e1", "custom", 5, 5, customer_id="B",
    ...           payload={"name": "alias", "properties": {"previousId": '"A"'}})
    >>> alias_of(e)
    ('A', 'B')
    >>> alias_of(replace(e, payload={"name": "alias", "properties": {"previousId": '"null"'}}))
    """
    if ev.event_type != "custom" or not ev.customer_id:
        return None
    if ev.payload.get("name") not in ALIAS_EVENTS:
        return None
    props = ev.payload.get("properties") or {}
    raw = props.get("previousId", props.get("previous_id"))
    previous = _json_text(raw)
    if previous is None or is_junk(previous, junk) or is_junk(ev.customer_id, junk):
        return None
    if previous == ev.customer_id:
        return None
    return previous, ev.customer_id


def route_key(ev: Event) -> str:
    """The key whose state an event goes to: an alias goes to the customer that joins."""
    alias = alias_of(ev)
    return ev.key if alias is None else alias[0]


def is_handover(ev: Event) -> bool:
    return (
        ev.event_type == "custom"
        and ev.source == HANDOVER_SOURCE
        and ev.payload.get("name") == HANDOVER_EVENT
    )


def apply_routed(
    st: CustomerState, ev: Event, cfg: ProfileConfig, *, resend: bool = True
) -> list[Output]:
    """Apply ``ev`` to ``st`` with aliases in force: redirect, alias, handover, or an
    ordinary event (:func:`state.profile.apply`). ``resend=False`` (a replay) leaves out
    the records that would go back to the events topic: the live run already wrote them."""
    if st.merged_into is not None:
        return _redirected(st, ev, resend)
    alias = alias_of(ev)
    if alias is not None and alias[0] == st.key:
        return _join(st, ev, alias[1], cfg, resend)
    if is_handover(ev):
        return _fold(st, ev, cfg)
    out = apply(st, ev, cfg)
    if not resend and is_erasure(ev):  # a replay: the devices' erasures are in the history
        out = [o for o in out if not isinstance(o, Resend)]
    return out


def _redirected(st: CustomerState, ev: Event, resend: bool) -> list[Output]:
    target = st.merged_into or ""
    if st.erased_at is not None and ev.event_time <= st.erased_at and not is_erasure(ev):
        return []  # erased before it joined: its old events stay gone, here and there
    alias = alias_of(ev)
    if alias is not None and alias[0] == st.key:
        if alias[1] == target:
            return []  # the same alias again
        return [_record(st.key, alias[1], "conflict", target, 0, ev)]
    if not resend:
        return []
    return [Resend(replace(ev, customer_id=target, anonymous_id=None, origin=None))]


def _join(
    st: CustomerState, ev: Event, target: str, cfg: ProfileConfig, resend: bool
) -> list[Output]:
    previous = st.key
    out: list[Output] = []
    if st.erased_at is None and st.watermark != NO_TIME and ev.event_time > as_of(st):
        # The previous id's moments before the alias happen first, as a timer would have
        # made them happen live (as in apply): what it owes (an abandoned cart, say) and
        # the state handed over do not depend on whether its timer fired before the alias.
        out += advance(st, cfg, ev.event_time - 1)
    moved = st.revision
    if moved and resend:
        handover = Event(
            event_id=stable_id("merge", previous, target, ev.event_id),
            event_type="custom",
            event_time=ev.event_time,
            received_at=ev.received_at,
            customer_id=target,
            source=HANDOVER_SOURCE,
            payload={
                "name": HANDOVER_EVENT,
                "properties": {
                    "previous_id": json.dumps(previous),
                    "state": json.dumps(to_portable(to_snapshot(st))),
                },
            },
        )
        out.append(Resend(handover))
    had_profile = moved > 0
    erased_at = st.erased_at
    fresh = CustomerState(previous)
    for name in CustomerState.__slots__:
        setattr(st, name, getattr(fresh, name))
    st.merged_into, st.erased_at = target, erased_at
    if had_profile:
        out.append(Erased(previous, ev.event_time))  # its profile now lives with the target
    out.append(_record(previous, target, "merged", target, moved, ev))
    return out


def _fold(st: CustomerState, ev: Event, cfg: ProfileConfig) -> list[Output]:
    if ev.event_id in st.seen:
        return []  # this handover was merged already
    try:
        other = from_snapshot(from_portable(_json_text(ev.payload["properties"]["state"]) or ""))
        merge_into(st, other, cfg)
    except (KeyError, TypeError, ValueError, StateError) as exc:
        return [
            Rejected(
                "merge_refused",
                f"customer state handover not merged: {type(exc).__name__}: {exc}",
                ev.event_id,
                ev.event_time,
                applied=False,
                origin=ev.origin,
            )
        ]
    st.seen.add(ev.event_id, ev.event_time, cfg.max_seen_ids)
    return reevaluate(st, cfg, "merge")


def _record(
    previous: str, customer: str, outcome: str, merged_into: str, moved: int, ev: Event
) -> CustomerMerge:
    return CustomerMerge(
        merge_id=stable_id("customer-merge", previous, customer, outcome, ev.event_id),
        previous_id=previous,
        customer_id=customer,
        outcome=outcome,
        merged_into=merged_into,
        merged_events=moved,
        event_time=ev.event_time,
    )


def _json_text(raw: object) -> str | None:
    """A property value: JSON-encoded (``cdp.CustomEvent``), so ``'"A"'`` is ``A``."""
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw  # a producer that did not JSON-encode: take the text as it is
    return value if isinstance(value, str) else None
