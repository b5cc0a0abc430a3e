"""Exactly-once state, at-least-once output: SIGKILL and restart, and 1 vs 2 processes.

Each test compares the final profile of every customer (the last ``cdp.profiles`` record
per key) and the set of trigger ids with those of a clean, uninterrupted run over the
same ``cdp.events`` topic.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from tests.integration.conftest import (
    final_outputs,
    fresh_outputs,
    produce_messages,
    read_topic,
    run_cdpflow,
    settings_env,
)

EVENTS = 4_000
CUSTOMERS = 150
FAST_EPOCHS = {"CDPFLOW_SNAPSHOT_INTERVAL_S": "0.3", "CDPFLOW_PROFILE_FLUSH_MS": "200"}


def _clean_run(kafka_admin, settings: Settings, tmp_path: Path, *args: str):
    clean = fresh_outputs(kafka_admin, settings)
    run_cdpflow(["run", "--until-end", "--recovery-dir", str(tmp_path / f"clean-{uuid.uuid4()}"),
                 *args], settings_env(clean, **FAST_EPOCHS))  # fmt: skip
    return final_outputs(clean)


def test_sigkill_mid_stream_then_restart_equals_a_clean_run(kafka_admin, kafka_settings, tmp_path):
    # Recent event times, as a live stream has: live, a caught-up partition's stream time is
    # the wall clock, so events weeks old trickling in would find their customers compacted
    # as idle between two of their events (the wall clock says they are), which a bulk run
    # over the same history never does: the runs would differ by timing, not by the crash.
    t0 = int(time.time() * 1000) - EVENTS * 200 - 120_000
    msgs = encoded_events(default_codec(), EVENTS, CUSTOMERS, seed=11, t0=t0)
    recovery = tmp_path / "recovery"
    env = settings_env(kafka_settings, **FAST_EPOCHS)
    produce_messages(kafka_settings, msgs[:1000])
    producer = threading.Thread(target=produce_messages, args=(kafka_settings, msgs[1000:], 400.0))
    producer.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "run", "--recovery-dir", str(recovery)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        # Kill once some epochs are committed and outputs are out, while input still flows.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if len(read_topic(kafka_settings, kafka_settings.topics.profiles)) > 20:
                break
        time.sleep(1.0)
        assert producer.is_alive(), "the stream ended before the kill: not mid-stream"
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        producer.join(60)
    crashed_profiles_before_restart = len(
        read_topic(kafka_settings, kafka_settings.topics.profiles)
    )
    run_cdpflow(["run", "--until-end", "--recovery-dir", str(recovery)], env)

    profiles, triggers = final_outputs(kafka_settings)
    clean_profiles, clean_triggers = _clean_run(kafka_admin, kafka_settings, tmp_path)
    assert crashed_profiles_before_restart > 0
    assert set(clean_profiles) == {m.key for m in msgs}
    assert profiles == clean_profiles
    # At-least-once output with identical ids: nothing lost, repeats only as duplicates.
    assert set(triggers) == set(clean_triggers)
    assert len(clean_triggers) == len(set(clean_triggers)) > 0


def test_two_processes_equal_one(kafka_admin, kafka_settings, tmp_path) -> None:
    msgs = encoded_events(default_codec(), 2_000, 120, seed=5)
    produce_messages(kafka_settings, msgs)
    one = _clean_run(kafka_admin, kafka_settings, tmp_path)
    two = _clean_run(kafka_admin, kafka_settings, tmp_path, "--processes", "2")
    assert set(one[0]) == {m.key for m in msgs}
    assert one[0] == two[0]
    assert sorted(one[1]) == sorted(two[1])
