"""The broker stops and starts again mid-stream, under the collector and a running
dataflow: the collector answers 503 while it is down, the dataflow resumes by itself, and
every event acknowledged with a 2xx is applied, none twice.

Runs on a broker of its own (``docker/kafka-local.sh`` with a temporary state dir and free
ports), so the shared broker is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from cdpflow.settings import Settings, Topics
from collector.app import create_app
from collector.settings import CollectorSettings
from tests.collector.conftest import WRITE_KEY, basic
from tests.integration.conftest import OwnBroker, create_fresh_topics, read_topic, settings_env

pytestmark = pytest.mark.timeout(420)
BATCH = 50


def _batch(start: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "batch": [
            {
                "type": "track",
                "userId": f"c-{i % 13}",
                "messageId": f"m-{i}",
                "event": "Product Viewed",
                "timestamp": now,
                "properties": {"product_id": f"p-{i % 5}", "category": "shoes"},
            }
            for i in range(start, start + BATCH)
        ]
    }


def _revisions(settings: Settings) -> dict[str, int]:
    """Each customer's latest profile revision: how many events it applied."""
    latest: dict[str, int] = {}
    for name, record, msg in read_topic(settings, settings.topics.profiles):
        if name == "cdp.ProfileSnapshot" and msg.key() is not None:
            latest[msg.key().decode()] = orjson.loads(record["profile_json"])["revision"]
    return latest


def _wait_applied(
    settings: Settings, want: int, proc: subprocess.Popen[bytes], log: Path, limit: float
) -> dict[str, int]:
    deadline = time.monotonic() + limit
    revisions: dict[str, int] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the dataflow exited: {log.read_text()[-3000:]}"
        revisions = _revisions(settings)
        if sum(revisions.values()) >= want:
            break
        time.sleep(1.0)
    return revisions


def test_broker_restart_mid_stream_loses_nothing_and_the_dataflow_resumes_by_itself(
    own_broker: OwnBroker, tmp_path: Path
) -> None:
    tag = tmp_path.name[-8:]
    topics = Topics(
        *(f"restart-{tag}.{n}" for n in ("events", "triggers", "profiles", "dlq", "ids"))
    )
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    settings = create_fresh_topics(admin, own_broker.bootstrap, topics)
    collector = CollectorSettings(
        bootstrap_servers=own_broker.bootstrap,
        topics=topics,
        write_keys=(Secret(WRITE_KEY),),
        produce_timeout_ms=3000,
        broker_retry_after_s=1,
    )
    env = settings_env(
        settings,
        KAFKA_BOOTSTRAP_SERVERS=own_broker.bootstrap,
        CDPFLOW_SNAPSHOT_INTERVAL_S="1",
        CDPFLOW_PROFILE_FLUSH_MS="200",
    )
    # stderr to a file, not a pipe: librdkafka logs every failed connect while the broker
    # is away, and a full pipe nobody reads would block the dataflow itself.
    log = tmp_path / "dataflow.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "run", "--recovery-dir", str(tmp_path / "rec")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    acked: list[str] = []
    try:
        with TestClient(create_app(collector)) as client:

            def post(body: dict[str, Any]) -> int:
                response = client.post("/v1/batch", json=body, headers=basic())
                if response.status_code == 200:
                    acked.extend(m["messageId"] for m in body["batch"])
                return response.status_code

            for k in range(20):
                assert post(_batch(k * BATCH)) == 200
            # Mid-stream: the dataflow is running and more events are on their way.
            own_broker.stop()
            assert [post(_batch(k * BATCH)) for k in range(20, 23)] == [503, 503, 503]
            time.sleep(5)  # down long enough for every connection of the dataflow to notice
            own_broker.start()
            pending = list(range(20, 40))
            deadline = time.monotonic() + 90
            while pending and time.monotonic() < deadline:
                status = post(_batch(pending[0] * BATCH))
                if status == 200:
                    pending.pop(0)
                else:
                    assert status == 503
                    time.sleep(1)
            assert pending == [], "the collector did not recover within 90 s of the restart"

        stored = Counter(r["event_id"] for _, r, _ in read_topic(settings, topics.events))
        assert set(acked) <= set(stored), "an event acknowledged with a 2xx is not in Kafka"
        revisions = _wait_applied(settings, len(stored), proc, log, 150)
        applied = sum(revisions.values())
        assert applied == len(stored), (
            f"{applied} of {len(stored)} stored events applied after the broker's restart:\n"
            f"{log.read_text()[-3000:]}"
        )
        per_customer = Counter(f"c-{int(m[2:]) % 13}" for m in stored)
        assert revisions == dict(per_customer)  # each event applied to its customer, once
        assert read_topic(settings, topics.dead_letters) == []
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
