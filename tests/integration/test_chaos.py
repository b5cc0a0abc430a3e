"""Faults on the real broker: repeated SIGKILLs (one before the first recovery snapshot, one
during a replay) and poison records of every kind.

Slower than the rest (about two minutes together); .ci/run runs them like every test.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import orjson
import pytest

from bench.workload import encoded_events
from cdpflow.codec import default_codec
from tests.integration.conftest import (
    final_outputs,
    fresh_outputs,
    produce_messages,
    read_topic,
    run_cdpflow,
    settings_env,
)

pytestmark = pytest.mark.timeout(600)
QUICK = {"CDPFLOW_SNAPSHOT_INTERVAL_S": "1", "CDPFLOW_PROFILE_FLUSH_MS": "200"}


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_after(proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def test_five_sigkills_during_100k_events_equal_a_clean_run(
    kafka_admin, kafka_settings, tmp_path
) -> None:
    msgs = encoded_events(
        default_codec(),
        100_000,
        5_000,
        seed=31,
        t0=int(time.time() * 1000) - 100_000 * 200 - 300_000,
    )
    produce_messages(kafka_settings, msgs)
    target = fresh_outputs(kafka_admin, kafka_settings)
    env = settings_env(target, **QUICK)

    # 1. A replay killed part-way, continued with --force on its directory.
    state = tmp_path / "state"
    replay = ["replay", "--triggers", "all", "--recovery-dir", str(state)]
    _kill_after(_start(replay, env), 6.0)
    # 2. Killed again before its first recovery snapshot of this run can complete.
    _kill_after(_start([*replay, "--force"], env), 0.6)
    # 3-5. Three more kills of the continued replay at random points.
    rng = random.Random(7)
    for _ in range(3):
        _kill_after(_start([*replay, "--force"], env), rng.uniform(2.0, 5.0))
    run_cdpflow([*replay, "--force"], env, timeout=300)

    clean = fresh_outputs(kafka_admin, kafka_settings)
    run_cdpflow(
        ["replay", "--triggers", "all", "--recovery-dir", str(tmp_path / "clean")],
        settings_env(clean, **QUICK),
        timeout=300,
    )
    profiles, triggers = final_outputs(target)
    clean_profiles, clean_triggers = final_outputs(clean)
    assert len(clean_profiles) > 4_000
    assert profiles == clean_profiles
    # No trigger lost; duplicates only with the same id.
    assert set(triggers) == set(clean_triggers)


def test_poison_records_are_dead_lettered_and_the_flow_goes_on(
    kafka_settings, produce_events, json_event_factory
) -> None:
    codec = default_codec()
    j = json_event_factory
    good = codec.encode(
        "cdp.Event",
        {
            "event_id": "ok-1",
            "event_type": "product_viewed",
            "customer_id": "pat",
            "event_time": 1_793_000_000_000,
            "received_at": 1_793_000_000_000,
            "source": "t",
            "payload": ("cdp.ProductViewed", {"product": {"product_id": "p"}}),
        },
    )

    def event(**fields) -> bytes:
        record = {
            "event_id": "x",
            "event_type": "custom",
            "customer_id": "pat",
            "event_time": 1_793_000_000_000,
            "received_at": 1_793_000_000_000,
            "source": "t",
            "payload": ("cdp.CustomEvent", {"name": "n"}),
        }
        record.update(fields)
        return codec.encode("cdp.Event", record)

    poison = {
        "random bytes": (os.urandom(64), "corrupt_avro"),
        "huge garbage": (b"\xc3\x01" + os.urandom(900_000), "unknown_schema"),
        "truncated avro": (good[:-7], "corrupt_avro"),
        "unknown fingerprint": (b"\xc3\x01" + bytes(8) + good[10:], "unknown_schema"),
        "far future": (event(event_id="f", event_time=4_000_000_000_000), "event_time_in_future"),
        "ancient": (event(event_id="a", event_time=0), "event_time_too_old"),
        "missing ids": (event(event_id="m", customer_id=None), "missing_identity"),
        "missing event id": (event(event_id=""), "missing_event_id"),
        # Within the broker's message limit, but one field over CDPFLOW_MAX_FIELD_BYTES: it
        # would make the profile (and every output carrying it) unboundedly large.
        "huge field": (
            event(event_id="h", payload=("cdp.CustomEvent", {"name": "x" * 500_000})),
            "field_too_large",
        ),
        "not an event": (
            codec.encode(
                "cdp.TagChange",
                {
                    "change_id": "c",
                    "customer_id": "c",
                    "tag": "t",
                    "added": True,
                    "reason": "r",
                    "event_time": 0,
                    "emitted_at": 0,
                },
            ),
            "wrong_record_type",
        ),
    }
    # Large, but every field within the limit: applied like any event.
    huge = event(event_id="l", payload=("cdp.CustomEvent", {"name": "x" * 8_000}))
    items = [j(t=1_793_000_000_000 + k, customer="pat") for k in range(3)]
    items = [items[0], *(v for v, _ in poison.values()), huge, items[1], items[2]]
    produce_events(kafka_settings, items)
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))

    dead = read_topic(kafka_settings, kafka_settings.topics.dead_letters)
    reasons = sorted(r["reason"] for _, r, _ in dead)
    assert reasons == sorted(reason for _, reason in poison.values())
    # The large (but valid) event and the good ones after the poison were all applied.
    profiles = [
        r
        for n, r, m in read_topic(kafka_settings, kafka_settings.topics.profiles)
        if m.key() == b"pat"
    ]
    assert orjson.loads(profiles[-1]["profile_json"])["event_counts"] == {
        "custom": 1,
        "product_viewed": 3,
    }
