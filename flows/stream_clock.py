"""Stream time: how far the input has got, for timers that must not outrun a backlog.

Live, events carry times close to the wall clock and stream time follows the wall clock.
Catching up on a backlog (a restart after downtime, a replay), wall-clock timers would
fire for moments the input has not reached yet, and a customer's later events would land
*behind* rules already evaluated. So timers run on stream time, tracked per source
partition, the way stream processors compute a watermark:

- each partition's time is the newest event time seen from it, plus the wall-clock time
  elapsed since (so time still passes when a partition is quiet);
- stream time is the *slowest* partition's time, never ahead of the wall clock.

A customer's events all come from one partition, in order, so when stream time passes a
moment, every event of theirs before it has been seen — however unevenly the partitions
are read. One clock per process, shared by every key's logic.
"""

from __future__ import annotations

from collections.abc import Hashable

from flows.clock import Clock

__all__ = ["StreamClock"]


class StreamClock:
    """>>> wall = [1_000]
    >>> c = StreamClock(lambda: wall[0])
    >>> c.now() is None
    True
    >>> c.observe(400, "p0"); c.observe(900, "p1"); wall[0] = 1_100
    >>> c.now()  # p0 is behind: 400 + 100 ms elapsed
    500
    """

    def __init__(self, wall: Clock) -> None:
        self._wall = wall
        self._parts: dict[Hashable, tuple[int, int]] = {}  # part -> (newest, seen at)

    def observe(self, event_time: int, part: Hashable = None) -> None:
        newest = self._parts.get(part)
        if newest is None or event_time > newest[0]:
            self._parts[part] = (event_time, self._wall())

    def now(self) -> int | None:
        """Stream time in ms, or ``None`` before the first event."""
        if not self._parts:
            return None
        wall = self._wall()
        slowest = min(t + max(0, wall - seen) for t, seen in self._parts.values())
        return min(wall, slowest)

    @property
    def newest(self) -> int | None:
        """The newest event time seen from any partition (a replay ends there)."""
        return max((t for t, _ in self._parts.values()), default=None)

    def wall(self) -> int:
        return self._wall()
