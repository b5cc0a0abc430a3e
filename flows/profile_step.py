"""The ``profiles`` operator: Bytewax's keyed state around the pure logic in ``state/``.

One :class:`_ProfileLogic` per key (customer id, or ``anon:`` + anonymous id). Each
activation gets the batch of that key's events Bytewax has queued and folds them with
:func:`state.apply`; triggers, tag changes and rejections go out at once.

Profile snapshots for ``cdp.profiles`` are coalesced: the first change after a snapshot
arms a **wall-clock** timer of ``flush_ms``; when it fires, one ``ProfileChanged`` carries
the profile as it is then, however many events arrived meanwhile. The end of a bounded
input (``on_eof``) flushes at once. ``flush_ms=0`` emits after every batch.

Rules move with no new event too: an abandoned cart after 60 minutes of silence, a
lapsed customer, a counter that decays below a threshold. The logic asks the state for
the next such moment (``state.next_deadline``) and arms a **wall-clock** timer for it;
when it fires, ``state.advance`` evaluates the rules *at* each moment that has passed, so
the ids are the same as if the moments had been reached by a later event (in replay,
they are: the next event advances the state first). The same timer compacts customers
idle past ``idle_ttl_ms`` (``state.compact_idle``).

Recovery: ``snapshot()`` returns ``(state snapshot, pending)``: the plain, versioned
tuple of ``state.snapshot`` and whether a profile snapshot was still owed, which a
restarted worker then emits straight away.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import operator
from bytewax.operators import KeyedStream, StatefulBatchLogic

from flows.clock import Clock
from state import (
    CustomerState,
    Event,
    Output,
    ProfileChanged,
    ProfileConfig,
    advance,
    apply,
    compact_idle,
    from_snapshot,
    next_deadline,
    to_snapshot,
    view,
)
from state.profile import as_of

__all__ = ["profiles"]


def _system_utc() -> datetime:
    return datetime.now(UTC)


Snapshot = tuple[tuple[Any, ...], bool]


class _ProfileLogic(StatefulBatchLogic[Event, Output, Snapshot]):
    def __init__(
        self, cfg: ProfileConfig, clock: Clock, flush_ms: int, resume: Snapshot | None
    ) -> None:
        self._cfg = cfg
        self._clock = clock
        self._flush = timedelta(milliseconds=flush_ms)
        self._st: CustomerState | None = None
        self._pending = False
        self._flush_at: datetime | None = None
        if resume is not None:
            state, self._pending = resume
            self._st = from_snapshot(state)
            if self._pending:
                self._flush_at = self._now()  # owed before the restart: send it now

    def _wall(self, ms: int) -> datetime:
        """Bytewax fires timers on the system clock: map a moment of our (injectable) clock
        to the system time that lies as far ahead."""
        return _system_utc() + timedelta(milliseconds=ms - self._clock())

    def _now(self) -> datetime:
        return _system_utc()

    def on_batch(self, values: list[Event]) -> tuple[list[Output], bool]:
        st = self._st
        if st is None:
            # Bytewax's builder is not told the key; a new state takes it from its first event.
            st = self._st = CustomerState(values[0].key)
        before = st.revision
        out: list[Output] = []
        for ev in values:
            out.extend(apply(st, ev, self._cfg))
        if st.revision != before:
            if not self._flush:
                out.append(self._profile(st))
            else:
                self._mark_changed()
        return out, StatefulBatchLogic.RETAIN

    def _mark_changed(self) -> None:
        if not self._pending:
            self._pending = True
            self._flush_at = self._now() + self._flush

    def on_notify(self) -> tuple[list[Output], bool]:
        """Wall-clock timer: a rules deadline, the idle TTL, or the snapshot delay passed."""
        st = self._st
        out: list[Output] = []
        if st is not None:
            now = self._clock()
            out += advance(st, self._cfg, now)
            if compact_idle(st, now, self._cfg):
                self._mark_changed()
        if self._flush_at is not None and self._flush_at <= self._now():
            out += self._drain()
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Output], bool]:
        return self._drain(), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        times = [] if self._flush_at is None else [self._flush_at]
        st = self._st
        if st is not None:
            deadline = next_deadline(st, self._cfg)
            if deadline is not None:
                times.append(self._wall(deadline))
            if st.watermark >= as_of(st):  # not compacted as idle since its last event
                times.append(self._wall(st.watermark + self._cfg.idle_ttl_ms + 1))
        return min(times) if times else None

    def snapshot(self) -> Snapshot:
        if self._st is None:  # pragma: no cover - Bytewax snapshots only keys that saw items
            raise RuntimeError("snapshot of a profile that never received an event")
        return to_snapshot(self._st), self._pending

    def _drain(self) -> list[Output]:
        self._flush_at = None
        if not self._pending or self._st is None:
            return []
        self._pending = False
        return [self._profile(self._st)]

    def _profile(self, st: CustomerState) -> ProfileChanged:
        return ProfileChanged(st.key, view(st, self._cfg), st.watermark)


@operator
def profiles(
    step_id: str,
    up: KeyedStream[Event],
    cfg: ProfileConfig,
    clock: Clock,
    flush_ms: int,
) -> KeyedStream[Output]:
    """Apply each key's events to its profile; emit triggers, tag changes and rejections
    at once, and coalesced profile snapshots at most every ``flush_ms`` per key."""
    return op.stateful_batch(
        "state", up, lambda resume: _ProfileLogic(cfg, clock, flush_ms, resume)
    )
