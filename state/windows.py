"""Event-time windows: the one place that decides what "N in 24 hours" means.

Two kinds of window, each with its boundary rule in one pure function here:

- **Exact** (:func:`window_start`, :class:`RecentTimes`): a window of width ``W``
  *ending at* time ``t`` is the closed interval ``[t - W, t]``: the event itself
  counts, and so does one exactly ``W`` earlier; one ``W + 1 ms`` earlier does not.
  Used for the 24-hour view counters (category, product).
- **Day buckets** (:func:`day_window`, :class:`DayBuckets`): granularity one UTC day.
  A window of ``D`` days ending at ``t`` counts the buckets of the days
  ``day(t) - D + 1 .. day(t)`` (both inclusive), where ``day(t) = t // 86_400_000``
  (days since 1970-01-01 UTC). "Orders in 90 days" at noon on day ``n`` therefore
  counts the whole of day ``n - 89`` and nothing of day ``n - 90``. Used for active
  days (7 and 30 days), orders (90) and revenue (180).

Memory is bounded whatever the event rate: :class:`RecentTimes` keeps at most ``cap``
timestamps (counts saturate at ``cap``; rules compare against thresholds far below
it), :class:`DayBuckets` at most ``D`` buckets for a ``D``-day window.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from heapq import merge as merge_sorted
from operator import countOf

from state.events import DAY_MS

__all__ = ["DayBuckets", "RecentTimes", "day_of", "day_window", "window_start"]


def window_start(end: int, width: int) -> int:
    """First instant (inclusive) of the exact window of ``width`` ms ending at ``end``
    (inclusive).

    >>> window_start(86_400_000, 86_400_000)
    0
    """
    return end - width


def day_of(t: int) -> int:
    """The UTC day index of ``t`` (whole days since 1970-01-01T00:00Z).

    >>> day_of(0), day_of(86_399_999), day_of(86_400_000), day_of(-1)
    (0, 0, 1, -1)
    """
    return t // DAY_MS


def day_window(end: int, days: int) -> tuple[int, int]:
    """First and last day index (both inclusive) of the ``days``-day window ending at ``end``.

    >>> day_window(10 * 86_400_000 + 5, 7)
    (4, 10)
    """
    last = day_of(end)
    return last - days + 1, last


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

    def merge(self, other: RecentTimes, cap: int) -> None:
        """Add every time of ``other`` (a disjoint set of events), keeping the newest ``cap``.

        The same times as if each had been :meth:`add`-ed here: each side kept its newest
        ``cap``, so the newest ``cap`` of both are among them.

        >>> w = RecentTimes([1, 5]); w.merge(RecentTimes([3, 5, 7]), cap=4); w.times
        [3, 5, 5, 7]
        """
        self.times = list(merge_sorted(self.times, other.times))[-cap:]

    def __len__(self) -> int:
        return len(self.times)


@dataclass(slots=True)
class DayBuckets:
    """UTC day index -> an integer amount (a count, or money in units), for day windows.

    Serves windows of at most ``days`` days ending at or after the customer's newest
    event, so at most ``days`` buckets are ever needed: :meth:`add` keeps no more.

    >>> b = DayBuckets()
    >>> b.add(0, 1, days=2, now=0)
    >>> b.add(86_400_000, 2, days=2, now=86_400_000)
    >>> b.total(end=86_400_000, days=2), b.total(end=2 * 86_400_000, days=2)
    (3, 2)
    """

    buckets: dict[int, int] = field(default_factory=dict)

    def add(self, t: int, amount: int, days: int, now: int) -> None:
        """Add ``amount`` to ``t``'s day, unless that day is outside every ``days``-day
        window ending at or after ``now``; then keep at most ``days`` buckets."""
        first, _ = day_window(now, days)
        day = day_of(t)
        if day < first:
            return
        self.buckets[day] = self.buckets.get(day, 0) + amount
        if len(self.buckets) > days:
            self.prune(first)

    def total(self, end: int, days: int) -> int:
        """The sum of the buckets in the ``days``-day window ending at ``end``."""
        first, last = day_window(end, days)
        b = self.buckets
        if not b:
            return 0
        if first <= min(b) and max(b) <= last:  # the common case: all inside, summed in C
            return sum(b.values())
        return sum(v for d, v in b.items() if first <= d <= last)

    def days_with_any(self, end: int, days: int) -> int:
        """How many days of the window ending at ``end`` have a non-zero bucket."""
        first, last = day_window(end, days)
        b = self.buckets
        if not b:
            return 0
        if first <= min(b) and max(b) <= last:  # the common case: all inside, counted in C
            return len(b) - countOf(b.values(), 0)
        return sum(1 for d, v in b.items() if first <= d <= last and v)

    def prune(self, first_day: int) -> None:
        """Forget the buckets of days before ``first_day``."""
        for d in [d for d in self.buckets if d < first_day]:
            del self.buckets[d]

    def merge(self, other: DayBuckets, days: int, now: int) -> None:
        """Add ``other``'s amounts day by day, keeping what a ``days``-day window ending at
        or after ``now`` (the newest event time of both) can count, as :meth:`add` does.

        >>> b = DayBuckets({0: 1, 5: 2}); b.merge(DayBuckets({5: 3, 6: 1}), 2, 6 * 86_400_000)
        >>> b.buckets
        {5: 5, 6: 1}
        """
        for d, amount in other.buckets.items():
            self.buckets[d] = self.buckets.get(d, 0) + amount
        self.prune(day_window(now, days)[0])

    def dump(self) -> tuple[int, ...]:
        """Flat ``(day, amount, day, amount, ...)``, days ascending: compact to pickle."""
        return tuple(x for d in sorted(self.buckets) for x in (d, self.buckets[d]))

    @classmethod
    def load(cls, flat: tuple[int, ...] | list[int]) -> DayBuckets:
        return cls(dict(zip(flat[::2], flat[1::2], strict=True)))

    def __len__(self) -> int:
        return len(self.buckets)
