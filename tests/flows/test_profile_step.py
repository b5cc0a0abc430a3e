"""The profile step's logic on its own: an idle customer is frozen back into its snapshot
and thawed by the next event, with nothing changed (wall time injected)."""

from __future__ import annotations

from datetime import timedelta

import flows.profile_step as step
from flows.stream_clock import StreamClock
from state import Event, ProfileConfig, Trigger, from_snapshot
from tests.conftest import T0, H
from tests.flows.conftest import Wall

CFG = ProfileConfig()
FREEZE_MS = 60_000


def view(eid: str, t: int) -> Event:
    return Event(eid, "product_viewed", t, t, customer_id="c-1",
                 payload={"product": {"product_id": "p", "category": "shoes"}})  # fmt: skip


def logic(freeze_ms: int = FREEZE_MS) -> step._ProfileLogic:
    stream = StreamClock(lambda: T0 + 30 * H)
    return step._ProfileLogic(CFG, stream, 1000, 0, False, True, freeze_ms, None)


def test_an_idle_customer_freezes_after_its_profile_is_sent_and_thaws_unchanged(
    wall: Wall,
) -> None:
    frozen, live = logic(), logic(freeze_ms=0)
    for lg in (frozen, live):
        lg.on_batch([view("e1", T0), view("e2", T0 + H)])
    due = frozen.notify_at()
    assert due is not None
    assert due <= wall.now + timedelta(seconds=1)
    wall.now += timedelta(seconds=1)
    frozen.on_notify()
    assert frozen._st is not None  # profile sent, but not idle long enough yet
    assert frozen.notify_at() == wall.now - timedelta(seconds=1) + timedelta(milliseconds=FREEZE_MS)
    wall.now += timedelta(milliseconds=FREEZE_MS)
    frozen.on_notify()
    assert frozen._st is None
    assert frozen._frozen is not None
    assert from_snapshot(frozen.snapshot()[0]) == from_snapshot(live.snapshot()[0])

    out_frozen, _ = frozen.on_batch([view("e3", T0 + 2 * H)])
    out_live, _ = live.on_batch([view("e3", T0 + 2 * H)])
    assert out_frozen == out_live
    assert [o.rule for o in out_frozen if isinstance(o, Trigger)] == ["category_interest"]
    assert frozen.snapshot() == live.snapshot()


def test_a_customer_is_not_frozen_while_a_profile_is_owed_or_when_disabled(wall: Wall) -> None:
    owed = logic(freeze_ms=1)
    owed.on_batch([view("e1", T0)])
    wall.now += timedelta(milliseconds=500)  # idle past freeze, but the flush (1 s) is owed
    owed.on_notify()
    assert owed._st is not None
    never = logic(freeze_ms=0)
    never.on_batch([view("e1", T0)])
    wall.now += timedelta(days=1)
    never.on_notify()
    assert never._st is not None
    assert never.notify_at() is None or never.notify_at() > wall.now
