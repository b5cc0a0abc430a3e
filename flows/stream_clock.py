"""Stream time: how far the input has got, for timers that must not outrun a backlog.

Live, events carry times close to the wall clock and stream time follows the wall
clock. Catching up on a backlog (a restart after downtime, a topic read from the
beginning), wall-clock timers would fire for moments the input has not reached yet,
and a customer's later events would land *behind* rules already evaluated. So timers
run on stream time: the newest event time this process has seen, plus the wall-clock
time elapsed since it was seen (so time still passes when the input is quiet), never
ahead of the wall clock. One clock per process, shared by every key's logic.
"""

from __future__ import annotations

from flows.clock import Clock

__all__ = ["StreamClock"]


class StreamClock:
    """>>> wall = [1_000]
    >>> c = StreamClock(lambda: wall[0])
    >>> c.now() is None
    True
    >>> c.observe(400); wall[0] = 1_100
    >>> c.now()
    500
    """

    def __init__(self, wall: Clock) -> None:
        self._wall = wall
        self._newest: int | None = None
        self._seen_at = 0

    def observe(self, event_time: int) -> None:
        if self._newest is None or event_time > self._newest:
            self._newest = event_time
            self._seen_at = self._wall()

    def now(self) -> int | None:
        """Stream time in ms, or ``None`` before the first event."""
        if self._newest is None:
            return None
        wall = self._wall()
        return min(wall, self._newest + max(0, wall - self._seen_at))

    @property
    def newest(self) -> int | None:
        """The newest event time seen, exactly (a replay ends there, deterministically)."""
        return self._newest

    def wall(self) -> int:
        return self._wall()
