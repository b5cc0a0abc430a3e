"""Event-time windows: the one place that decides what "N in 24 hours" means.

A window of width ``W`` *ending at* an event at time ``t`` is the closed interval
``[t - W, t]``: the event itself counts, and so does one exactly ``W`` earlier; one
``W + 1 ms`` earlier does not.

:class:`RecentTimes` keeps the exact timestamps of one counter (say, views of one
category) for as long as they can still fall into a window, and never more than
``cap`` of them, so memory per counter is bounded whatever the event rate. Counts
saturate at ``cap``: rules compare against thresholds far below it.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field

__all__ = ["RecentTimes", "window_start"]


def window_start(end: int, width: int) -> int:
    """First instant (inclusive) of the window of ``width`` ms ending at ``end`` (inclusive).

    >>> window_start(86_400_000, 86_400_000)
    0
    """
    return end - width


@dataclass(slots=True)
class RecentTimes:
    """Sorted event times of one windowed counter, bounded by age and by ``cap``.

    >>> w = RecentTimes()
    >>> for t in (0, 3_600_000, 82_800_000):
    ...     w.add(t, cap=8)
    >>> w.count_in(end=82_800_000, width=86_400_000)
    3
    """

    times: list[int] = field(default_factory=list)

    def add(self, t: int, cap: int) -> None:
        """Insert ``t`` in order; beyond ``cap`` entries the oldest is forgotten."""
        insort(self.times, t)
        if len(self.times) > cap:
            del self.times[0]

    def count_in(self, end: int, width: int, after: int | None = None) -> int:
        """How many times lie in ``[end - width, end]`` and, if given, strictly after ``after``."""
        lo = window_start(end, width)
        if after is not None and after >= lo:
            lo = after + 1
        return bisect_left(self.times, end + 1) - bisect_left(self.times, lo)

    def prune(self, before: int) -> None:
        """Forget every time strictly before ``before`` (it can no longer be in a window)."""
        i = bisect_left(self.times, before)
        if i:
            del self.times[:i]

    def __len__(self) -> int:
        return len(self.times)
