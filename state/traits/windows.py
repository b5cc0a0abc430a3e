"""A trait's windows: lifetime, exact, or UTC-day buckets, over a kind's accumulators.

Each window is a stateless strategy over a plain *cell* (what one trait keeps for one
group key), with the boundary rules of :mod:`state.windows`:

- :class:`Lifetime` (no ``window``): the cell is the kind's accumulator.
- :class:`Exact` (``window = "24h"``): the window ending at ``t`` is the closed interval
  ``[t - W, t]``. The cell is the sorted list of ``(time, value)`` entries, at most
  ``limits.values`` of them: beyond, the smallest ``(time, value)`` goes, as
  :class:`state.windows.RecentTimes` forgets its oldest time. So a trait over an exact
  window **saturates**: it sees the newest ``limits.values`` events of its key, whatever
  their order (the kept entries are the largest of the multiset), and a count reads at
  most ``limits.values``. Keep thresholds well below it.
- :class:`Days` (``window = "30d"``, ``granularity = "day"``): the ``D``-day window ending
  at ``t`` holds the UTC days ``day(t) - D + 1 .. day(t)``; the cell maps a day to the
  kind's accumulator of that day, at most ``D`` days. An event whose day lies before the
  window ending at the customer's newest event can count in no window read from then
  on, and is not kept.

A window is read at a moment ``at`` no earlier than the customer's newest event
(:func:`state.profile.as_of`); :meth:`Window.next_change` is the first moment after
``at`` at which the value can change with no new event (``None``: never), the deadline
the rules engine waits for.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from heapq import merge as merge_sorted
from typing import Any

from state.events import DAY_MS
from state.traits.kinds import Kind
from state.windows import day_of, day_window

__all__ = ["Days", "Exact", "Lifetime", "Window"]


class Window:
    """How a trait's cell folds, merges, reads and expires."""

    windowed = True

    def init(self, kind: Kind) -> Any:
        raise NotImplementedError

    def fold(self, kind: Kind, cell: Any, value: Any, t: int, now: int, cap: int) -> Any:
        """``cell`` with ``value`` at ``t`` folded in; ``now``: the newest event time."""
        raise NotImplementedError

    def merge(self, kind: Kind, a: Any, b: Any, now: int, cap: int) -> Any:
        raise NotImplementedError

    def read(self, kind: Kind, cell: Any, at: int, cap: int) -> Any:
        """The accumulator of the window ending at ``at``; ``None`` if it holds nothing."""
        raise NotImplementedError

    def next_change(self, cell: Any, at: int) -> int | None:
        return None

    def expire(self, cell: Any, at: int) -> Any:
        """``cell`` without what no window ending at ``at`` or later can count."""
        return cell

    def is_empty(self, cell: Any) -> bool:
        return False

    def dump(self, kind: Kind, cell: Any) -> Any:
        raise NotImplementedError

    def load(self, kind: Kind, raw: Any) -> Any:
        raise NotImplementedError


class Lifetime(Window):
    windowed = False

    def init(self, kind: Kind) -> Any:
        return kind.init()

    def fold(self, kind: Kind, cell: Any, value: Any, t: int, now: int, cap: int) -> Any:
        return kind.fold(cell, value, t, cap)

    def merge(self, kind: Kind, a: Any, b: Any, now: int, cap: int) -> Any:
        return kind.merge(a, b, cap)

    def read(self, kind: Kind, cell: Any, at: int, cap: int) -> Any:
        return cell

    def dump(self, kind: Kind, cell: Any) -> Any:
        return kind.dump(cell)

    def load(self, kind: Kind, raw: Any) -> Any:
        return kind.load(raw)


@dataclass(frozen=True, slots=True)
class Exact(Window):
    """The closed interval ``[at - width, at]``, over at most ``cap`` newest entries."""

    width: int

    def init(self, kind: Kind) -> list[tuple[int, Any]]:
        return []

    def fold(self, kind: Kind, cell: Any, value: Any, t: int, now: int, cap: int) -> Any:
        insort(cell, (t, value))
        if len(cell) > cap:
            del cell[0]
        return cell

    def merge(self, kind: Kind, a: Any, b: Any, now: int, cap: int) -> Any:
        return list(merge_sorted(a, b))[-cap:]

    def read(self, kind: Kind, cell: Any, at: int, cap: int) -> Any:
        lo = bisect_left(cell, (at - self.width,))
        hi = bisect_left(cell, (at + 1,))
        if lo >= hi:
            return None
        acc = kind.init()
        for t, value in cell[lo:hi]:
            acc = kind.fold(acc, value, t, cap)
        return acc

    def next_change(self, cell: Any, at: int) -> int | None:
        # The oldest entry inside leaves the window the millisecond after t + width.
        i = bisect_left(cell, (at - self.width,))
        return cell[i][0] + self.width + 1 if i < len(cell) else None

    def expire(self, cell: Any, at: int) -> Any:
        i = bisect_left(cell, (at - self.width,))
        if i:
            del cell[:i]
        return cell

    def is_empty(self, cell: Any) -> bool:
        return not cell

    def dump(self, kind: Kind, cell: Any) -> Any:
        return tuple(x for entry in cell for x in entry)

    def load(self, kind: Kind, raw: Any) -> Any:
        return [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]


@dataclass(frozen=True, slots=True)
class Days(Window):
    """The UTC days ``day(at) - days + 1 .. day(at)``, one accumulator a day."""

    days: int

    def init(self, kind: Kind) -> dict[int, Any]:
        return {}

    def fold(self, kind: Kind, cell: Any, value: Any, t: int, now: int, cap: int) -> Any:
        first = day_window(now, self.days)[0]
        day = day_of(t)
        if day < first:
            return cell
        acc = cell.get(day)
        cell[day] = kind.fold(kind.init() if acc is None else acc, value, t, cap)
        if len(cell) > self.days:
            self.expire(cell, now)
        return cell

    def merge(self, kind: Kind, a: Any, b: Any, now: int, cap: int) -> Any:
        out = dict(a)
        for day, acc in b.items():
            mine = out.get(day)
            out[day] = kind.merge(kind.init() if mine is None else mine, acc, cap)
        return self.expire(out, now)

    def read(self, kind: Kind, cell: Any, at: int, cap: int) -> Any:
        first, last = day_window(at, self.days)
        acc = None
        for day, bucket in cell.items():
            if first <= day <= last:
                acc = bucket if acc is None else kind.merge(acc, bucket, cap)
        return acc

    def next_change(self, cell: Any, at: int) -> int | None:
        first = day_window(at, self.days)[0]
        inside = [d for d in cell if d >= first]
        return (min(inside) + self.days) * DAY_MS if inside else None

    def expire(self, cell: Any, at: int) -> Any:
        first = day_window(at, self.days)[0]
        for day in [d for d in cell if d < first]:
            del cell[day]
        return cell

    def is_empty(self, cell: Any) -> bool:
        return not cell

    def dump(self, kind: Kind, cell: Any) -> Any:
        return tuple(x for d in sorted(cell) for x in (d, kind.dump(cell[d])))

    def load(self, kind: Kind, raw: Any) -> Any:
        return {raw[i]: kind.load(raw[i + 1]) for i in range(0, len(raw), 2)}
