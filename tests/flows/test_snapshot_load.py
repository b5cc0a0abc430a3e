"""Snapshot coalescing that adapts to load: the delay stays ``flush_ms`` while snapshots
take less than the budget, stretches (bounded) beyond it, and comes back when load falls;
the profile step arms its snapshot timer by it and the encoder reports what it spends."""

from __future__ import annotations

from datetime import timedelta

import orjson

import flows.profile_step as step
from cdpflow.codec import default_codec
from cdpflow.settings import Topics
from flows.encode import Encoder
from flows.snapshot_load import SnapshotLoad
from flows.stream_clock import StreamClock
from state import STATE_VERSION, Event, ProfileChanged, ProfileConfig
from tests.conftest import T0, H
from tests.flows.conftest import Wall


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_stretch_follows_the_share_of_time_spent_within_bounds() -> None:
    t = Seconds()
    load = SnapshotLoad(budget=0.1, max_stretch=10, clock=t)
    load.spent(0.05)
    t.now = 1.0
    assert load.stretch() == 1.0  # 5 % of a second: under budget, the configured delay
    load.spent(0.4)
    t.now = 2.0
    assert load.stretch() == 2.0  # 40 %: the square root of four times the budget
    load.spent(0.9)
    t.now = 2.5
    assert load.stretch() == 2.0  # half a second: not a whole window yet, unchanged
    t.now = 3.0
    assert load.stretch() == 6.0  # 90 % of the last second: 2 x sqrt(9)
    for second in range(4, 8):
        load.spent(1.0)
        t.now = second
        load.stretch()
    assert load.stretch() == 10.0  # saturated: capped
    t.now = 9.0
    assert load.stretch() == 1.0  # two idle seconds: back to the configured delay


def product_view(eid: str, t: int) -> Event:
    return Event(eid, "product_viewed", t, t, customer_id="c-1",
                 payload={"product": {"product_id": "p", "category": "shoes"}})  # fmt: skip


def test_the_profile_step_arms_its_snapshot_timer_at_the_stretched_delay(wall: Wall) -> None:
    seconds = Seconds()
    load = SnapshotLoad(budget=0.1, max_stretch=10, clock=seconds)
    stream = StreamClock(lambda: T0 + 30 * H)
    lg = step._ProfileLogic(ProfileConfig(), stream, 1000, 0, False, True, 0, None, load)
    lg.on_batch([product_view("e1", T0)])
    assert lg._flush_at == wall.now + timedelta(seconds=1)  # idle process: flush_ms
    wall.now += timedelta(seconds=1)
    out, _ = lg.on_notify()
    assert [type(o) for o in out] == [ProfileChanged]
    load.spent(0.4)  # the rest of the process was busy with snapshots
    seconds.now = 1.0
    lg.on_batch([product_view("e2", T0 + 1)])
    # Twice the delay (and a hair more: the view just built was timed too).
    assert lg._flush_at is not None
    assert timedelta(seconds=2) <= lg._flush_at - wall.now < timedelta(seconds=2.1)
    wall.now += timedelta(seconds=1)
    out, _ = lg.on_notify()
    assert out == []  # not due yet: coalescing for longer
    wall.now += timedelta(seconds=1.1)
    out, _ = lg.on_notify()
    assert [o.view["revision"] for o in out if isinstance(o, ProfileChanged)] == [2]


class Recorder(SnapshotLoad):
    def __init__(self) -> None:
        super().__init__()
        self.reports: list[float] = []

    def spent(self, seconds: float) -> None:
        self.reports.append(seconds)


def test_the_encoder_writes_the_records_bytes_and_reports_its_time() -> None:
    codec = default_codec()
    load = Recorder()
    enc = Encoder(codec, Topics(), lambda: T0 + 5, load=load)
    attributes = {"email": "a@example.com", "first_name": "Å"}
    view = {"customer_id": "c-1", "revision": 3, "attributes": attributes,
            "lifecycle": "active", "tags": ("vip",), "segments": []}  # fmt: skip
    msg = enc.output(("c-1", ProfileChanged("c-1", view, T0, T0 + 2)))
    record = {"customer_id": "c-1", "state_version": STATE_VERSION, "email": "a@example.com",
              "first_name": "Å", "last_name": None, "lifecycle": "active", "tags": ["vip"],
              "segments": [], "profile_json": orjson.dumps(view).decode(), "event_time": T0,
              "emitted_at": T0 + 5, "revision": 3, "as_of": T0 + 2}  # fmt: skip
    assert msg.value == codec.encode("cdp.ProfileSnapshot", record)
    assert msg.headers == [("cdp.schema", b"cdp.ProfileSnapshot")]
    assert len(load.reports) == 1
    assert load.reports[0] >= 0
