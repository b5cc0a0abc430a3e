"""The ``profiles`` operator: Bytewax's keyed state around the pure logic in ``state/``.

One :class:`_ProfileLogic` per key (customer id, or ``anon:`` + anonymous id). Each
activation gets the batch of that key's events Bytewax has queued and folds them with
:func:`state.apply`; triggers, tag changes and rejections go out at once.

Profile snapshots for ``cdp.profiles`` are coalesced: the first change after a snapshot
arms a **wall-clock** timer of ``flush_ms``; when it fires, one ``ProfileChanged`` carries
the profile as it is then, however many events arrived meanwhile. The end of a bounded
input (``on_eof``) flushes at once. ``flush_ms=0`` emits after every batch.

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
    apply,
    from_snapshot,
    to_snapshot,
    view,
)

__all__ = ["profiles"]

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

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock() / 1000, UTC)

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
            elif not self._pending:
                self._pending = True
                self._flush_at = self._now() + self._flush
        return out, StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[list[Output], bool]:
        """Wall-clock timer: the coalescing delay has passed."""
        return self._drain(), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Output], bool]:
        return self._drain(), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self._flush_at

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
