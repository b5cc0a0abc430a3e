"""The ``profiles`` operator: Bytewax's keyed state around the pure logic in ``state/``.

One :class:`_ProfileLogic` per key (customer id, or ``anon:`` + anonymous id). Each
activation gets the batch of that key's events Bytewax has queued; it folds them with
:func:`state.apply` and, if anything changed, appends one :class:`ProfileChanged`. That
coalesces a burst into one ``cdp.profiles`` snapshot per key per batch.

Recovery: ``snapshot()`` returns the plain, versioned tuple of ``state.snapshot``; the
builder turns the resume state back into the logic.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import operator
from bytewax.operators import KeyedStream, StatefulBatchLogic

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

Snapshot = tuple[Any, ...]


class _ProfileLogic(StatefulBatchLogic[Event, Output, Snapshot]):
    def __init__(self, cfg: ProfileConfig, resume: Snapshot | None) -> None:
        self._cfg = cfg
        # Bytewax's builder is not told the key; a fresh state takes it from the first event.
        self._st: CustomerState | None = None if resume is None else from_snapshot(resume)

    def on_batch(self, values: list[Event]) -> tuple[list[Output], bool]:
        st = self._st
        if st is None:
            st = self._st = CustomerState(values[0].key)
        before = st.revision
        out: list[Output] = []
        for ev in values:
            out.extend(apply(st, ev, self._cfg))
        if st.revision != before:
            out.append(ProfileChanged(st.key, view(st, self._cfg), st.watermark))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Snapshot:
        assert self._st is not None  # on_batch ran before any snapshot of a new key
        return to_snapshot(self._st)


@operator
def profiles(step_id: str, up: KeyedStream[Event], cfg: ProfileConfig) -> KeyedStream[Output]:
    """Apply each key's events to its profile; emit triggers, tag changes, rejections and
    coalesced profile changes."""
    return op.stateful_batch("state", up, lambda resume: _ProfileLogic(cfg, resume))
