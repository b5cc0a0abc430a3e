"""Customer aliases on the real broker: a live dataflow hands the previous customer's state
to the survivor through the events topic, forwards its later events, and a replay of that
history reaches the same profiles and triggers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from cdpflow.settings import Settings
from tests.conftest import H
from tests.integration.conftest import (
    fresh_outputs,
    read_topic,
    run_cdpflow,
    settings_env,
)

pytestmark = pytest.mark.timeout(300)
VIEW = {"product": {"product_id": "sku-1", "category": "shoes"}}


def _event(i: int, t: int, customer: str, kind: str = "product_viewed",
           payload: dict | None = None) -> dict:  # fmt: skip
    return {"event_id": f"al-{i}", "type": kind, "customer_id": customer, "timestamp": t,
            "source": "web", "payload": VIEW if payload is None else payload}  # fmt: skip


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while not check():
        assert proc.poll() is None, f"the dataflow exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _profile(settings: Settings, customer: str) -> dict | None:
    latest = None
    for name, record, msg in read_topic(settings, settings.topics.profiles):
        if msg.key() == customer.encode():
            latest = None if name == "tombstone" else orjson.loads(record["profile_json"])
    return latest


def _interest(settings: Settings) -> list[tuple[str, str]]:
    return [(r["customer_id"], r["trigger_id"])
            for n, r, _ in read_topic(settings, settings.topics.triggers)
            if n == "cdp.Trigger" and r["rule"] == "category_interest"]  # fmt: skip


def test_alias_merges_forwards_and_replays_the_same(
    kafka_admin, kafka_settings, produce_events, tmp_path
) -> None:
    s = kafka_settings
    # Recent event times, as live input has: a live run's stream time follows the wall
    # clock, and customers idle past the idle TTL by it (weeks-old T0) would be compacted
    # between the test's batches, their windows with them.
    T0 = int(time.time() * 1000) - 6 * H
    alias = {"name": "alias", "properties": {"previousId": '"guest-7"'}}
    env = settings_env(s, CDPFLOW_PROFILE_FLUSH_MS="100")
    log = tmp_path / "dataflow.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "run", "--no-recovery"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        # Two views as guest-7, then the alias: guest-7 is gina from now on.
        produce_events(s, [_event(1, T0, "guest-7"), _event(2, T0 + H, "guest-7"),
                           _event(3, T0 + 2 * H, "gina", "custom", alias)])  # fmt: skip
        merged = lambda: (_profile(s, "gina") or {}).get("event_counts") == {"product_viewed": 2}  # noqa: E731
        _wait("the handover to reach gina", merged, proc, log)
        # One view as gina and one more under the old id (forwarded): the third view in 24 h.
        produce_events(s, [_event(4, T0 + 3 * H, "gina"), _event(5, T0 + 4 * H, "guest-7")])
        counted = lambda: (_profile(s, "gina") or {}).get("event_counts") == {"product_viewed": 4}  # noqa: E731
        _wait("gina's four views", counted, proc, log)
        _wait("gina's trigger", lambda: bool(_interest(s)), proc, log)
    finally:
        proc.terminate()
        proc.wait(30)

    live = _interest(s)
    assert [c for c, _ in live] == ["gina"]  # once: the forwarded view is the same moment's
    merges = [(r["previous_id"], r["customer_id"], r["outcome"], r["merged_events"])
              for n, r, _ in read_topic(s, s.topics.identities)
              if n == "cdp.CustomerMerge"]  # fmt: skip
    assert merges == [("guest-7", "gina", "merged", 2)]
    assert _profile(s, "guest-7") is None  # its profile was removed (tombstone)
    events = [r for _, r, _ in read_topic(s, s.topics.events)]
    assert [(r["customer_id"], r["source"]) for r in events if r["source"] == "cdpflow merge"] == [
        ("gina", "cdpflow merge")
    ]

    # A replay of the history (handover and forwarded event included) merges the same way
    # and writes nothing back to the events topic.
    shadow = fresh_outputs(kafka_admin, s)
    run_cdpflow(["replay", "--triggers", "all", "--recovery-dir", str(tmp_path / "r")],
                settings_env(shadow))  # fmt: skip
    assert _interest(shadow) == live
    assert _profile(shadow, "gina")["event_counts"] == _profile(s, "gina")["event_counts"]  # type: ignore[index]
    assert len(read_topic(s, s.topics.events)) == len(events)
