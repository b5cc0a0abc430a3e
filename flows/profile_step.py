"""The ``profiles`` operator: Bytewax's keyed state around the pure logic in ``state/``.

One :class:`_ProfileLogic` per key (customer id, or ``anon:`` + anonymous id). Each
activation gets the batch of that key's events Bytewax has queued and folds them with
:func:`state.alias.apply_routed` (:func:`state.apply` with customer aliases in force);
triggers, tag changes and rejections go out at once. ``resend=False`` (replay) keeps a
merge's records for the events topic back: the history already holds them.

Profile snapshots for ``cdp.profiles`` are coalesced: the first change after a snapshot
arms a **wall-clock** timer of ``flush_ms``; when it fires, one ``ProfileChanged`` carries
the profile as it is then, however many events arrived meanwhile. The end of a bounded
input (``on_eof``) flushes at once. ``flush_ms=0`` emits after every batch. While
snapshots take more than a tenth of the process's time, the delay stretches (up to ten
times ``flush_ms``, :mod:`flows.snapshot_load`); a worker keeping up with its input keeps
``flush_ms``.

Rules move with no new event too: an abandoned cart after 60 minutes of silence, a
lapsed customer, a counter that decays below a threshold. The logic asks the state for
the next such moment (``state.next_deadline``) and arms a timer for when **stream time**
(:mod:`flows.stream_clock`: the wall clock, live; the input's progress, in a backlog)
has passed it by ``timer_grace_ms``; then ``state.advance`` evaluates the rules *at* each
moment that has passed, so the ids are the same as if a later event had reached them
(which is what happens when one arrives first). The same timer compacts customers idle
past ``idle_ttl_ms`` of stream time (``state.compact_idle``). At the end of a bounded
input (``on_eof``) every moment up to the wall clock happens.

Memory: a customer with no event for ``freeze_idle_ms`` of **wall-clock** time (and no
profile snapshot owed) is frozen back into its plain snapshot tuple, as a restored customer
is: a live state with its rules cache takes about 11 KB, a frozen one about 4 KB, and most
customers of a shop are idle at any moment. The next event or due timer thaws it.

Recovery: ``snapshot()`` returns ``(state snapshot, pending)``: the plain, versioned
tuple of ``state.snapshot`` and whether a profile snapshot was still owed, which a
restarted worker then emits straight away.

Failure boundary: an exception while folding one event, running a customer's timer or
building their profile view never stops the worker. The customer's state goes back to
what it was before the failed operation (:class:`state.journal.Journal`: the last
snapshot and the operations since, applied again), the event becomes a
``processing_error`` dead letter (:mod:`flows.failures`), and the batch goes on. A timer
that failed is not retried until the customer's next event (it would fail again at the
same moment, for ever).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import operator
from bytewax.operators import KeyedStream, StatefulBatchLogic

from flows.clock import Clock
from flows.dead_letters import Origin
from flows.failures import record_failure
from flows.snapshot_load import LOAD, SnapshotLoad
from flows.stream_clock import StreamClock
from state import (
    CustomerState,
    Erased,
    Event,
    Output,
    ProfileChanged,
    ProfileConfig,
    advance,
    compact_idle,
    from_snapshot,
    next_deadline,
    to_snapshot,
    view,
)
from state.alias import apply_routed, route_key
from state.events import NO_TIME
from state.journal import Journal
from state.outputs import Rejected
from state.profile import as_of
from state.snapshot import peek

_MAX_AHEAD_MS = 100 * 365 * 86_400_000  # a timer further away than this is not armed
_LAG_TOLERANCE_MS = 1_000  # stream time this close to the wall clock counts as caught up
_RECHECK_MIN_MS, _RECHECK_MAX_MS = 1_000, 30_000

__all__ = ["profiles"]


def observe(stream: StreamClock, ev: Event) -> None:
    """Tell stream time of ``ev``: its time, its source partition and that partition's news
    (events built in tests have no origin: one partition, ``None``)."""
    origin = ev.origin
    if origin is None:
        stream.observe(ev.event_time)
    else:
        stream.observe(ev.event_time, (origin.topic, origin.partition), origin.caught_up)


def _system_utc() -> datetime:
    return datetime.now(UTC)


Snapshot = tuple[tuple[Any, ...], bool]


class _ProfileLogic(StatefulBatchLogic[Event, Output, Snapshot]):
    def __init__(
        self,
        cfg: ProfileConfig,
        stream: StreamClock,
        flush_ms: int,
        grace_ms: int,
        end_at_stream_time: bool,
        resend: bool,
        freeze_idle_ms: int,
        resume: Snapshot | None,
        load: SnapshotLoad = LOAD,
    ) -> None:
        self._end_at_stream_time = end_at_stream_time
        self._resend = resend
        self._cfg = cfg
        self._stream = stream
        self._clock = stream.wall
        self._grace = grace_ms
        self._flush = timedelta(milliseconds=flush_ms)
        self._load = load
        self._freeze_idle = timedelta(milliseconds=freeze_idle_ms) if freeze_idle_ms else None
        self._touched: datetime | None = None  # wall time of the last event batch
        self._st: CustomerState | None = None
        # A restored customer stays a snapshot until an event or a due timer needs the
        # state: a restart with a million customers in state then costs little more than
        # Bytewax's own loading.
        self._frozen: tuple[Any, ...] | None = None
        self._pending = False
        self._flush_at: datetime | None = None
        self._journal: Journal | None = None
        self._timers_failed = False  # a timer failed: none until the next event
        if resume is not None:
            state, self._pending = resume
            self._journal = Journal(state[1], state, resend=resend)
            if peek(state) is None:
                self._st = from_snapshot(state)
                self._touched = self._now()
            else:
                self._frozen = state
            if self._pending:
                self._flush_at = self._now()  # owed before the restart: send it now

    def _state(self) -> CustomerState | None:
        if self._frozen is not None:
            self._st, self._frozen = from_snapshot(self._frozen), None
            self._touched = self._now()  # idle again from now: it may freeze again
        return self._st

    def _wall(self, ms: int) -> datetime | None:
        """Bytewax fires timers on the system clock: the system time at which stream time
        (plus the grace) reaches ``ms``; ``None`` for a moment too far away to arm.

        While stream time trails the wall clock (a backlog, or a partition behind that has
        not delivered yet) it may catch up at any moment, so the timer is armed for the
        earliest wall time the moment could come, and a moment already past in wall time is
        looked at again after a quarter of the lag (1 to 30 s) instead of once the whole
        lag later: a timer is re-armed as stream time moves."""
        target = ms + self._grace
        wall_now = self._clock()
        stream_now = self._stream.now()
        if stream_now is not None and stream_now >= wall_now - _LAG_TOLERANCE_MS:
            ahead = target - stream_now
        elif target > wall_now:
            ahead = target - wall_now
        else:
            lag = _RECHECK_MIN_MS if stream_now is None else wall_now - stream_now
            ahead = min(max(lag // 4, _RECHECK_MIN_MS), _RECHECK_MAX_MS)
        if ahead > _MAX_AHEAD_MS:
            return None
        return _system_utc() + timedelta(milliseconds=ahead)

    def _now(self) -> datetime:
        return _system_utc()

    def on_batch(self, values: list[Event]) -> tuple[list[Output], bool]:
        st = self._state()
        if st is None or self._journal is None:
            # Bytewax's builder is not told the key; a new state takes it from its first event.
            key = route_key(values[0])
            st = self._st = CustomerState(key)
            self._journal = Journal(key, resend=self._resend)
        journal = self._journal
        before = st.revision
        self._touched = self._now()
        self._timers_failed = False
        out: list[Output] = []
        for ev in values:
            observe(self._stream, ev)
            try:
                done = apply_routed(st, ev, self._cfg, resend=self._resend)
            except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
                out.append(self._failed("profile", exc, ev.event_id, ev.event_time, ev.origin))
                st = self._rollback()
                continue
            journal.applied(ev)
            out.extend(done)
        self._checkpoint_if_due(st)
        if any(isinstance(o, Erased) for o in out):
            # The tombstone is the last word on the old profile: no snapshot of it may follow.
            self._pending, self._flush_at = False, None
            before = 0
        if st.revision != before:
            if not self._flush:
                out.extend(self._profile(st))
            else:
                self._mark_changed()
        return out, StatefulBatchLogic.RETAIN

    def _failed(
        self, stage: str, exc: Exception, event_id: str, event_time: int, origin: Any
    ) -> Rejected:
        if not isinstance(origin, Origin):  # a timer's failure: key the letter by customer
            key = self._journal.key if self._journal is not None else ""
            origin = Origin(None, None, None, key.encode(), None)
        return Rejected(
            "processing_error",
            record_failure(stage, exc),
            event_id,
            event_time,
            applied=False,
            origin=origin,
            error_type=type(exc).__name__,
        )

    def _rollback(self) -> CustomerState:
        """The state before the failed operation (see :class:`state.journal.Journal`)."""
        if self._journal is None:  # pragma: no cover - on_batch creates it first
            raise RuntimeError("rollback without a journal")
        try:
            self._st = self._journal.rebuild(self._cfg)
        except Exception as exc:  # noqa: BLE001 - cannot happen if the fold is deterministic
            record_failure("rollback", exc)
            self._st = self._journal.rebuild(self._cfg, replay=False)
        return self._st

    def _checkpoint_if_due(self, st: CustomerState) -> None:
        if self._journal is not None:
            try:
                self._journal.maybe_checkpoint(st)
            except Exception as exc:  # noqa: BLE001 - a snapshot bug must not stop the worker
                record_failure("checkpoint", exc)

    def _mark_changed(self) -> None:
        if not self._pending:
            self._pending = True
            self._flush_at = self._now() + self._flush * self._load.stretch()

    def on_notify(self) -> tuple[list[Output], bool]:
        """A rules deadline or the idle TTL passed in stream time, or the snapshot delay in
        wall-clock time."""
        stream_now = self._stream.now()
        out = [] if stream_now is None else self._catch_up(stream_now - self._grace)
        if self._flush_at is not None and self._flush_at <= self._now():
            out += self._drain()
        self._freeze_if_idle()
        return out, StatefulBatchLogic.RETAIN

    def _freeze_at(self) -> datetime | None:
        """Wall time at which a live, idle customer goes back to its snapshot."""
        if self._freeze_idle is None or self._st is None or self._touched is None:
            return None
        return self._touched + self._freeze_idle

    def _freeze_if_idle(self) -> None:
        at = self._freeze_at()
        if at is not None and at <= self._now() and not self._pending and self._st is not None:
            self._frozen, self._st, self._touched = to_snapshot(self._st), None, None
            if self._journal is not None:
                self._journal.checkpoint(self._frozen)

    def on_eof(self) -> tuple[list[Output], bool]:
        """End of a bounded input: the moments up to now (a replay: up to the newest event
        time) happen, and the snapshot goes out."""
        end = self._stream.newest if self._end_at_stream_time else self._clock()
        out = [] if end is None else self._catch_up(end)
        return out + self._drain(), StatefulBatchLogic.RETAIN

    def _catch_up(self, now: int) -> list[Output]:
        if self._frozen is not None:
            p = peek(self._frozen)
            idle = p is not None and now - p.watermark > self._cfg.idle_ttl_ms >= 0
            if p is not None and not idle and (p.next_deadline is None or p.next_deadline > now):
                return []  # nothing due: leave it frozen
        if self._timers_failed:
            return []
        st = self._state()
        if st is None:
            return []
        before = st.revision, st.derived.tags, st.derived.lifecycle, st.derived.segments
        try:
            out = advance(st, self._cfg, now)
            compacted = compact_idle(st, now, self._cfg)
        except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
            self._timers_failed = True
            failure = self._failed("timer", exc, "", now, None)
            self._rollback()
            return [failure]
        if self._journal is not None:
            self._journal.advanced(now)
            self._checkpoint_if_due(st)
        after = st.revision, st.derived.tags, st.derived.lifecycle, st.derived.segments
        if compacted or before != after:
            self._mark_changed()
        return out

    def notify_at(self) -> datetime | None:
        soonest = self._flush_at
        if (freeze := self._freeze_at()) is not None and (soonest is None or freeze < soonest):
            soonest = freeze
        p = peek(self._frozen) if self._frozen is not None else None
        if p is not None:
            watermark, at, due = p.watermark, p.as_of, p.next_deadline
        elif (st := self._st) is not None:
            watermark, at, due = st.watermark, as_of(st), next_deadline(st, self._cfg)
        else:
            return soonest
        if NO_TIME < watermark >= at:  # has events, not compacted as idle since the last
            idle = watermark + self._cfg.idle_ttl_ms + 1
            due = idle if due is None or idle < due else due
        if due is not None and not self._timers_failed:
            wall = self._wall(due)  # the earlier stream-time moment is the earlier wall time
            if wall is not None and (soonest is None or wall < soonest):
                soonest = wall
        return soonest

    def snapshot(self) -> Snapshot:
        if self._frozen is not None:
            return self._frozen, self._pending  # unchanged since it was restored
        if self._st is None:  # pragma: no cover - Bytewax snapshots only keys that saw items
            raise RuntimeError("snapshot of a profile that never received an event")
        snap = to_snapshot(self._st)
        if self._journal is not None:
            self._journal.checkpoint(snap)  # taken anyway: the journal starts again from it
        return snap, self._pending

    def _drain(self) -> list[Output]:
        self._flush_at = None
        if not self._pending:
            return []
        st = self._state()
        if st is None:
            return []
        self._pending = False
        return self._profile(st)

    def _profile(self, st: CustomerState) -> list[Output]:
        start = perf_counter()
        try:
            return [ProfileChanged(st.key, view(st, self._cfg), st.watermark, as_of(st))]
        except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
            return [self._failed("profile_view", exc, "", st.watermark, None)]
        finally:
            self._load.spent(perf_counter() - start)


@operator
def profiles(
    step_id: str,
    up: KeyedStream[Event],
    cfg: ProfileConfig,
    clock: Clock,
    flush_ms: int,
    grace_ms: int,
    end_at_stream_time: bool = False,
    resend: bool = True,
    freeze_idle_ms: int = 0,
) -> KeyedStream[Output]:
    """Apply each key's events to its profile; emit triggers, tag changes and rejections
    at once, and coalesced profile snapshots at most every ``flush_ms`` per key."""
    # One per process: every key's logic shares it. A replay's moments end at its history's
    # end: no partition follows the wall clock there.
    stream = StreamClock(clock, idleness=not end_at_stream_time)
    return op.stateful_batch(
        "state",
        up,
        lambda resume: _ProfileLogic(
            cfg, stream, flush_ms, grace_ms, end_at_stream_time, resend, freeze_idle_ms, resume
        ),
    )
