"""The ``stitch`` operator: identity stitching between decode and the profiles.

Events carrying a usable anonymous id pass through a router keyed by that id
(:mod:`state.identity`); it decides whose profile each event belongs to and, when an
identify links the visitor to a customer, hands the visitor's buffered events to the
customer with their original ids. Everything else goes straight on.

Across worker processes this is a re-keying: the router's state lives with the worker
that owns the anonymous id; what it emits is keyed again, by customer, before the
profile step, so each customer's state still lives on exactly one worker. The buffered
events travel with the dataflow's normal exchange, and the customer's profile dedupes
by event id, so a replay of the same history stitches the same way and a repeated
identify merges nothing twice.

Failure boundary: an exception while routing one event restores the anonymous id's state
as it was before it (the state is small: its dump is the undo) and dead-letters the event
(``processing_error``, :mod:`flows.failures`); the worker goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream, operator
from bytewax.operators import StatefulBatchLogic

from flows.clock import Clock
from flows.failures import record_failure
from flows.profile_step import observe
from flows.stream_clock import StreamClock
from state.events import Event
from state.identity import IdentityConfig, IdentityLink, IdentityState, expired, is_junk, route
from state.outputs import Rejected

__all__ = ["StitchOut", "stitch"]


@dataclass(frozen=True)
class StitchOut:
    """``events``: to apply, each keyed by its own ``key``; ``links``: the audit records;
    ``errs``: events the router failed on, as dead letters to be."""

    events: Stream[Event]
    links: Stream[IdentityLink]
    errs: Stream[Rejected]


_Routed = Event | IdentityLink | Rejected


class _Router(StatefulBatchLogic[Event, _Routed, tuple[Any, ...]]):
    def __init__(self, cfg: IdentityConfig, stream: StreamClock, resume: tuple[Any, ...] | None):
        self._cfg = cfg
        self._stream = stream
        self._st = IdentityState() if resume is None else IdentityState.load(resume)

    def on_batch(self, values: list[Event]) -> tuple[list[_Routed], bool]:
        out: list[_Routed] = []
        for ev in values:
            origin = ev.origin
            observe(self._stream, ev)
            undo = self._st.dump()
            try:
                events, links = route(self._st, ev, self._cfg)
            except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
                self._st = IdentityState.load(undo)
                out.append(
                    Rejected(
                        "processing_error",
                        record_failure("identity", exc),
                        ev.event_id,
                        ev.event_time,
                        applied=False,
                        origin=origin,
                        error_type=type(exc).__name__,
                    )
                )
                continue
            out += events
            out += links
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list[_Routed], bool]:
        """Stream time passed the visitor's time to live: forget them."""
        now = self._stream.now()
        gone = now is not None and expired(self._st, now, self._cfg)
        return [], gone

    def notify_at(self) -> datetime | None:
        now = self._stream.now()
        if self._st.newest is None or now is None:
            return None
        ahead = self._st.newest + self._cfg.ttl_ms + 1 - now
        return datetime.now(UTC) + timedelta(milliseconds=ahead)

    def snapshot(self) -> tuple[Any, ...]:
        return self._st.dump()


@operator
def stitch(step_id: str, up: Stream[Event], cfg: IdentityConfig, clock: Clock) -> StitchOut:
    """Route events through identity stitching."""
    usable = op.branch("has_anonymous_id", up, lambda ev: not is_junk(ev.anonymous_id, cfg.junk))
    keyed = op.key_on("by_anonymous_id", usable.trues, lambda ev: ev.anonymous_id or "")
    stream = StreamClock(clock)
    routed = op.stateful_batch("router", keyed, lambda resume: _Router(cfg, stream, resume))
    values = op.map("unkey", routed, lambda kv: kv[1])
    split = op.branch("split", values, lambda x: isinstance(x, Event))
    others = op.branch("split_links", split.falses, lambda x: isinstance(x, IdentityLink))
    events = op.merge("events", usable.falses, split.trues)
    return StitchOut(events, others.trues, others.falses)  # type: ignore[arg-type]
