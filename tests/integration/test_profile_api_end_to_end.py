"""Events on a real broker -> ``cdpflow run`` -> ``cdp.profiles`` -> ``cdpflow serve``:
the profile API's answers match the last snapshot, and a restart resumes from the offsets
kept in the store instead of re-reading the topic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer

from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from profile_api.materializer import Materializer
from state.store import RocksProfileStore, iso_ms
from tests.integration.conftest import read_topic, run_cdpflow, settings_env
from tests.integration.serve_process import serve, stop, wait_ready
from tests.mailer.smtp_server import free_port

TOKEN = "integration-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MIN = 60_000


def _events(j, t0: int) -> list[dict[str, Any]]:
    ada = [
        j("identify", t0, customer="ada",
          payload={"email": "Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"}),
        j("preference_updated", t0 + MIN, customer="ada",
          payload={"preferences": {"interests": "premium,outdoor"}}),
        j("order_completed", t0 + 2 * MIN, customer="ada",
          payload={"order_id": "o-1", "revenue": 640.0, "currency": "EUR"}),
        *[j(t=t0 + (3 + i) * MIN, customer="ada") for i in range(2)],
    ]  # fmt: skip
    ben = [j("identify", t0, customer="ben", payload={"email": "ben@example.com"})]
    return [*ada, *ben]


def _last_snapshots(settings: Settings) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for name, _, msg in read_topic(settings, settings.topics.profiles):
        if name == "cdp.ProfileSnapshot":
            last[msg.key().decode()] = default_codec().decode(msg.value(), logical=False)[1]
    return last


def test_profile_api_serves_the_last_snapshot_and_resumes_after_restart(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    t0 = time.time_ns() // 1_000_000 - 60 * MIN
    produce_events(kafka_settings, _events(json_event_factory, t0))
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))
    last = _last_snapshots(kafka_settings)
    assert set(last) == {"ada", "ben"}
    # High revenue, a recent order and interest:premium put Ada in a shipped segment.
    assert last["ada"]["segments"], last["ada"]["segments"]

    store_dir, port = tmp_path / "store", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(kafka_settings, store_dir, port, CDPFLOW_API_TOKENS=TOKEN)
    try:
        wait_ready(base, proc)
        assert httpx.get(f"{base}/v1/profiles/ada").status_code == 401
        for customer, snap in last.items():
            got = httpx.get(f"{base}/v1/profiles/{customer}", headers=AUTH).json()
            assert got["profile"] == orjson.loads(snap["profile_json"])
            for name in ("customer_id", "email", "first_name", "last_name", "lifecycle",
                         "tags", "segments", "state_version"):  # fmt: skip
                assert got[name] == snap[name], name
            assert got["event_time"] == iso_ms(snap["event_time"])  # ISO 8601 in answers
        by_email = httpx.post(f"{base}/v1/profiles/lookup", json={"email": "ada@example.com"},
                              headers=AUTH)  # fmt: skip
        assert by_email.json()["customer_id"] == "ada"
        for segment in last["ada"]["segments"]:
            page = httpx.get(f"{base}/v1/segments/{segment}/members", headers=AUTH).json()
            assert page["members"] == ["ada"]
        assert httpx.get(f"{base}/v1/profiles/nobody", headers=AUTH).status_code == 404
    finally:
        err = stop(proc)
    assert "example.com" not in err.lower(), "an address reached the logs"

    # Erase Ben (a tombstone on the compacted topic) and add a record that is no snapshot,
    # then resume from the stored offsets: exactly the two new records are read.
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    producer.produce(kafka_settings.topics.profiles, None, b"ben")
    producer.produce(kafka_settings.topics.profiles, b"\xc3\x01 not a snapshot", b"zed")
    assert producer.flush(30) == 0
    store = RocksProfileStore(store_dir)
    feed = Materializer(store, kafka_settings.bootstrap_servers, kafka_settings.topics.profiles)
    try:
        feed.assign()
        assert feed.catch_up() == 2
        assert store.get("ben") is None
        assert store.get("zed") is None  # skipped, but its offset is consumed
        assert store.get("ada") is not None
        ends = {p: end for p, end in feed.end_offsets().items() if end > 0}
        assert store.offsets(kafka_settings.topics.profiles) == ends
    finally:
        feed.close()
        store.close()


def test_serve_refuses_to_start_without_tokens(kafka_settings) -> None:
    env = {k: v for k, v in settings_env(kafka_settings).items() if k != "CDPFLOW_API_TOKENS"}
    proc = subprocess.run([sys.executable, "-m", "profile_api.main"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert "CDPFLOW_API_TOKENS" in proc.stderr
    assert os.environ.get("CDPFLOW_API_TOKENS") is None or TOKEN not in proc.stderr


def _snapshot(customer_id: str, event_time: int, revision: int, **fields: Any) -> bytes:
    return default_codec().encode("cdp.ProfileSnapshot", {
        "customer_id": customer_id, "state_version": 1, "email": None, "first_name": None,
        "last_name": None, "lifecycle": None, "tags": [], "segments": [],
        "profile_json": orjson.dumps({"revision": revision}).decode(),
        "event_time": event_time, "emitted_at": event_time, **fields,
    })  # fmt: skip


def _wait_for(check: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not seen in time"
        time.sleep(0.2)


def test_a_replayed_older_snapshot_and_poison_records_leave_the_live_profile(
    kafka_settings, tmp_path
) -> None:
    """Readers never go back in time (issue 17, defect 2), and no record stops the
    materializer (issue 16): an older snapshot of a customer after a newer one, on the real
    topic, is skipped; corrupt records are skipped while the API runs, and it goes on."""
    topic = kafka_settings.topics.profiles
    t0 = time.time_ns() // 1_000_000
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(err.name())

    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers},
                        on_delivery=delivered)  # fmt: skip
    producer.produce(topic, _snapshot("live-1", t0, 7), b"live-1")  # the live run's
    producer.produce(topic, _snapshot("live-1", t0 - 60 * MIN, 3), b"live-1")  # a replay's
    assert producer.flush(30) == 0

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve(kafka_settings, tmp_path / "store", port, CDPFLOW_API_TOKENS=TOKEN)
    try:
        wait_ready(base, proc)
        got = httpx.get(f"{base}/v1/profiles/live-1", headers=AUTH).json()
        assert (got["profile"]["revision"], got["event_time"]) == (7, iso_ms(t0))
        # Poison while running, then a good record behind it (one partition): it lands.
        producer.produce(topic, b"\xc3\x01 corrupt", b"poison-1", partition=0)
        producer.produce(topic, b"no framing at all", b"poison-2", partition=0)
        # (A keyless tombstone cannot be tried here: a compacted topic refuses it.)
        producer.produce(topic, _snapshot("after", t0, 1), b"after", partition=0)
        assert producer.flush(30) == 0
        assert failed == []
        _wait_for(lambda: httpx.get(f"{base}/v1/profiles/after", headers=AUTH).status_code == 200)
        metrics = httpx.get(f"{base}/metrics").text
        assert 'cdpflow_profile_api_records_skipped_total{reason="stale_snapshot"} 1.0' in metrics
        assert 'cdpflow_profile_api_records_skipped_total{reason="undecodable"} 2.0' in metrics
        # Errors are JSON on the real server too.
        segments = f"{base}/v1/segments/recent_high_value_premium/members"
        for url, status in ((f"{segments}?limit=%C2%B2", 400), (f"{segments}?limit=5", 200),
                            (f"{base}/v1/segments/no_such_segment/members", 404),
                            (f"{base}/nowhere", 404)):  # fmt: skip
            answer = httpx.get(url, headers=AUTH)
            assert (answer.status_code, answer.headers["content-type"]) == (
                status, "application/json")  # fmt: skip
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        err = stop(proc)
    assert "poison" not in err, "a customer id reached the logs"
    assert "live-1" not in err, "a customer id reached the logs"
