"""Stream time with idleness: caught-up partitions follow the wall clock, partitions that
are behind hold it at their newest event, and timers are re-armed as it moves."""

from __future__ import annotations

from datetime import timedelta

import flows.profile_step as step
from flows.dead_letters import Origin
from flows.stream_clock import SourceProgress, StreamClock
from state import Event, ProfileConfig, Trigger
from tests.conftest import T0, H

MIN = 60_000


class Clock:
    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def test_an_old_event_on_a_caught_up_partition_does_not_hold_back_stream_time() -> None:
    wall, progress = Clock(T0), SourceProgress()
    c = StreamClock(wall, progress)
    progress.report("p0", caught_up=True)
    progress.report("p1", caught_up=True)
    c.observe(T0 - 50 * MIN, "p0")  # an SDK's offline batch: newest of its partition
    c.observe(T0 - 1_000, "p1")
    assert c.now() == T0
    wall.t += 10 * MIN
    assert c.now() == T0 + 10 * MIN


def test_a_partition_behind_holds_stream_time_at_its_newest_event() -> None:
    wall, progress = Clock(T0), SourceProgress()
    c = StreamClock(wall, progress)
    progress.report("p0", caught_up=False)
    progress.report("p1", caught_up=True)
    c.observe(T0 - 3 * H, "p0")
    c.observe(T0, "p1")
    assert c.now() == T0 - 3 * H
    assert c.lag() == 3 * H
    wall.t += H  # time passing does not move a backlog: only its events do
    assert c.now() == T0 - 3 * H
    c.observe(T0 - 2 * H, "p0")
    assert c.now() == T0 - 2 * H
    progress.report("p0", caught_up=True)
    assert c.now() == wall.t


def test_a_partition_behind_with_nothing_read_yet_holds_every_timer() -> None:
    """A restart after downtime: no moment is safe before the backlog's first batch."""
    wall, progress = Clock(T0), SourceProgress()
    c = StreamClock(wall, progress)
    progress.report("p0", caught_up=False)
    progress.report("p1", caught_up=True)
    c.observe(T0, "p1")
    assert c.now() is None
    c.observe(T0 - H, "p0")
    assert c.now() == T0 - H


def test_news_carried_by_events_counts_for_partitions_another_process_reads() -> None:
    wall, progress = Clock(T0), SourceProgress()  # this process reads no partition
    c = StreamClock(wall, progress)
    c.observe(T0 - H, "p7", caught_up=False)
    assert c.now() == T0 - H
    c.observe(T0 - H + 5, "p7", caught_up=True)
    assert c.now() == T0
    c.observe(T0 - 30 * MIN, "p8")  # no news at all (a testing source): behind
    assert c.now() == T0 - 30 * MIN


def _cart(t: int) -> Event:
    item = {"product": {"product_id": "p1", "price": 5.0, "currency": "EUR"}, "quantity": 1}
    origin = Origin("t", 1, 0, b"c", b"")  # read from partition 1, which is caught up
    return Event("c1", "cart_item_added", t, t, customer_id="c", payload={"item": item},
                 origin=origin)  # fmt: skip


def test_a_timer_armed_while_stream_time_lags_is_re_armed_when_it_catches_up(wall) -> None:
    """The cart is added 59 minutes ago while a partition is an hour behind: the timer is
    armed for the wall-clock moment (in a minute), not an hour later, and it fires once
    stream time is there."""
    system, (clock, progress) = wall, (Clock(T0), SourceProgress())
    stream = StreamClock(clock, progress)
    progress.report(("t", 0), caught_up=False)
    progress.report(("t", 1), caught_up=True)
    stream.observe(T0 - H, ("t", 0))
    lg = step._ProfileLogic(ProfileConfig(), stream, 0, 0, False, True, 0, None)
    lg.on_batch([_cart(T0 - 59 * MIN)])
    due = lg.notify_at()
    assert due is not None
    assert due == system.now + timedelta(minutes=1)
    clock.t += MIN  # a minute on: the deadline has come in wall time, not in stream time
    system.now += timedelta(minutes=1)
    out, _ = lg.on_notify()
    assert not [o for o in out if isinstance(o, Trigger)]
    again = lg.notify_at()
    assert again is not None
    assert again - system.now == timedelta(seconds=30)  # a quarter of the lag, at most 30 s
    progress.report(("t", 0), caught_up=True)  # the backlog is read
    system.now += timedelta(seconds=30)
    clock.t += 30_000
    out, _ = lg.on_notify()
    assert [o.rule for o in out if isinstance(o, Trigger)] == ["abandoned_cart"]
