"""Stream time: how far the input has got, for timers that must not outrun a backlog.

Live, stream time is the wall clock: timers (an abandoned cart after an hour) fire on
time. Catching up on a backlog (a restart after downtime, a replay), wall-clock timers
would fire for moments the input has not reached yet, and a customer's later events would
land *behind* rules already evaluated. So stream time is a watermark with idleness, the
way Flink's ``WatermarkStrategy.withIdleness`` computes one:

- a source partition that is **behind** (messages queued after the last one read) has
  the newest event time read from it;
- a partition that is **caught up** (the last one read was the newest it had, or it is
  empty) follows the wall clock, whatever its newest event time: one quiet partition,
  or one old-timestamped event as a partition's newest (an SDK's offline batch, a late
  webhook), never holds back the rest;
- stream time is the earliest time of the partitions that are behind, never ahead of the
  wall clock; the wall clock if none is.

A customer's events all come from one partition, in order, so when stream time passes a
moment, every event of theirs queued before it has been read: a backlog never fires a
timer ahead of the events queued before its moment.

Where "behind" comes from: the Kafka source (:mod:`flows.kafka_io`) compares each batch's
last offset with the partition's high watermark and says so on the batch's last message
(a header, so the news travels with the events to whichever process owns the customer),
and reports partitions it reads into :data:`PROGRESS` (so an empty partition, or one whose
first batch has not arrived yet, is known too). A partition with no report at all (a
testing source) counts as behind: its time is its newest event's. One clock per process,
shared by every key's logic.
"""

from __future__ import annotations

from collections.abc import Hashable

from flows.clock import Clock

__all__ = ["PROGRESS", "SourceProgress", "StreamClock"]


class SourceProgress:
    """What this process's source partitions last said: caught up or behind.

    >>> p = SourceProgress()
    >>> p.report(("t", 0), caught_up=False); p.behind()
    {('t', 0)}
    >>> p.report(("t", 0), caught_up=True); p.behind()
    set()
    """

    def __init__(self) -> None:
        self._caught_up: dict[Hashable, bool] = {}

    def report(self, part: Hashable, *, caught_up: bool) -> None:
        self._caught_up[part] = caught_up

    def caught_up(self, part: Hashable) -> bool | None:
        return self._caught_up.get(part)

    def behind(self) -> set[Hashable]:
        return {p for p, up in self._caught_up.items() if not up}

    def forget(self, part: Hashable) -> None:
        """The partition's reader closed (the end of a bounded run)."""
        self._caught_up.pop(part, None)

    def clear(self) -> None:
        self._caught_up.clear()


PROGRESS = SourceProgress()
"""The process's source partitions (written by :mod:`flows.kafka_io`)."""


class StreamClock:
    """>>> wall = [1_000]
    >>> c = StreamClock(lambda: wall[0], SourceProgress())
    >>> c.now() is None
    True
    >>> c.observe(400, "p0"); c.observe(900, "p1"); wall[0] = 1_100
    >>> c.now()  # no news from either: p0 holds stream time at its newest event
    400
    >>> c.observe(450, "p0", caught_up=True)  # p0 is caught up: it follows the wall clock
    >>> c.now()
    900
    >>> c.observe(950, "p1", caught_up=True); c.now()
    1100
    """

    def __init__(
        self, wall: Clock, progress: SourceProgress | None = None, *, idleness: bool = True
    ) -> None:
        """``idleness=False`` (a replay): every partition holds stream time at its newest
        event, caught up or not, so a backfill's moments end at its history's end."""
        self._wall = wall
        self._progress = PROGRESS if progress is None else progress
        self._idleness = idleness
        self._newest: dict[Hashable, int] = {}
        self._caught_up: dict[Hashable, bool] = {}  # from the events' own news

    def observe(
        self, event_time: int, part: Hashable = None, caught_up: bool | None = None
    ) -> None:
        newest = self._newest.get(part)
        if newest is None or event_time > newest:
            self._newest[part] = event_time
        if caught_up is not None:
            self._caught_up[part] = caught_up

    def now(self) -> int | None:
        """Stream time in ms, or ``None`` before the first event (or while a partition this
        process reads is behind and has not delivered one yet)."""
        wall = self._wall()
        held = wall
        for part, newest in self._newest.items():
            # This process's own source knows best (it also hears of empty polls); a
            # partition read by another process is known by its events' news.
            up = self._progress.caught_up(part) if self._idleness else False
            if up is None:
                up = self._caught_up.get(part)
            if not up and newest < held:
                held = newest
        for part in self._progress.behind():
            if part not in self._newest and part not in self._caught_up:
                return None  # behind, and nothing of it read yet: no moment is safe
        if not self._newest:
            return None
        return held

    def lag(self) -> int:
        """How far stream time trails the wall clock, in ms (0 when caught up)."""
        now = self.now()
        return 0 if now is None else max(0, self._wall() - now)

    @property
    def newest(self) -> int | None:
        """The newest event time seen from any partition (a replay ends there)."""
        return max(self._newest.values(), default=None)

    def wall(self) -> int:
        return self._wall()
