"""What profile snapshots cost this process, and how far their coalescing delay stretches.

A profile snapshot (the view, then its ``cdp.ProfileSnapshot`` encoding) costs about as
much as folding an event, and under a Zipf load most customers' coalescing window holds a
single event: with a fixed delay, snapshots would take a fixed share of every event's
cost however busy the worker is. So the delay adapts (:class:`SnapshotLoad`): the profile
step (:mod:`flows.profile_step`) and the encoder (:mod:`flows.encode`) report the time
they spend on snapshots; once a second (monotonic clock) that time's share of the wall
time is compared with a budget (default 10 %), and the delay's stretch, from 1 (the
configured ``flush_ms``) to ``max_stretch`` (default 10), moves by the square root of
share / budget. A worker keeping up with its input (1,000 events/s here spends about 2 %
on snapshots) keeps the configured delay, so ``cdp.profiles`` stays as fresh as it was;
a saturated one (a backlog, a replay) coalesces more customers' events per snapshot, and
snapshots take about the budget instead of a growing share (more longer-lived customers'
events fall into one window; a customer seen once still costs one snapshot).

One per process (:data:`LOAD`), like the stream clock: every key's logic and the encoder
share it.

>>> t = [0.0]
>>> load = SnapshotLoad(budget=0.1, max_stretch=10, clock=lambda: t[0])
>>> load.spent(0.4); t[0] = 1.0; load.stretch()  # 40 % of the last second: twice as long
2.0
>>> load.spent(0.0); t[0] = 2.0; load.stretch()  # idle: back to the configured delay
1.0
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LOAD", "SnapshotLoad"]

_WINDOW_S = 1.0


class SnapshotLoad:
    """The share of wall time spent on snapshots, and the delay's stretch it asks for."""

    __slots__ = ("_busy", "_clock", "_max", "_started", "_stretch", "budget")

    def __init__(
        self,
        budget: float = 0.1,
        max_stretch: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.budget = budget
        self._max = max_stretch
        self._clock = clock
        self._started = clock()
        self._busy = 0.0
        self._stretch = 1.0

    def spent(self, seconds: float) -> None:
        """``seconds`` (of ``time.perf_counter``) of this process's time went on snapshots."""
        self._busy += seconds

    def stretch(self) -> float:
        """The factor (1 to ``max_stretch``) to apply to the configured delay now."""
        now = self._clock()
        elapsed = now - self._started
        if elapsed >= _WINDOW_S:
            share = self._busy / elapsed
            s = self._stretch * (share / self.budget) ** 0.5
            self._stretch = 1.0 if s < 1.0 else min(s, self._max)
            self._started, self._busy = now, 0.0
        return self._stretch


LOAD = SnapshotLoad()
"""This process's snapshot load (written by the profile step and the encoder)."""
