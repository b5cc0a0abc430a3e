"""Broker stopped mid-test: 503 with Retry-After while it is down, 2xx again once it is
back, and every event that got a 2xx is in the events topic exactly once by event_id.

The shared broker is never touched: this test starts a broker of its own
(``docker/kafka-local.sh`` with a temporary state dir and free ports), stops it, and starts
it again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from cdpflow.settings import Settings, Topics
from collector.app import create_app
from collector.settings import CollectorSettings
from tests.collector.conftest import WRITE_KEY, basic
from tests.integration.conftest import OwnBroker, _free_port, read_topic, settings_env

pytestmark = pytest.mark.timeout(300)


def batch(start: int, n: int) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "userId": f"c-{i % 7}",
                "messageId": f"m-{i}",
                "event": "Product Added",
                "timestamp": "2026-09-01T10:00:00Z",
                "properties": {"product_id": f"p-{i}"},
            }
            for i in range(start, start + n)
        ]
    }


def test_broker_outage_gives_503_then_recovers_with_each_acked_event_once(
    own_broker: OwnBroker,
) -> None:
    topics = Topics("outage.events", "outage.triggers", "outage.profiles", "outage.dlq")
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    specs = [NewTopic(topics.events, 2, 1), NewTopic(topics.dead_letters, 1, 1)]
    for future in admin.create_topics(specs).values():
        future.result(timeout=30)
    settings = CollectorSettings(
        bootstrap_servers=own_broker.bootstrap,
        topics=topics,
        write_keys=(Secret(WRITE_KEY),),
        produce_timeout_ms=3000,
        broker_retry_after_s=2,
    )
    acked: list[str] = []

    def post(client: TestClient, body: dict[str, Any]) -> Any:
        response = client.post("/v1/batch", json=body, headers=basic())
        if response.status_code == 200:
            assert response.json()["accepted"] == len(body["batch"])
            acked.extend(m["messageId"] for m in body["batch"])
        return response

    with TestClient(create_app(settings)) as client:
        for k in range(3):
            assert post(client, batch(k * 10, 10)).status_code == 200

        own_broker.stop()
        refused = []
        timings = []
        for k in range(3, 6):
            started = time.monotonic()
            response = post(client, batch(k * 10, 10))
            timings.append(time.monotonic() - started)
            refused.append(batch(k * 10, 10))
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) >= 1
        # The first waits for the delivery timeout; later ones fail fast while it is down.
        assert timings[0] < 3 + 5
        assert max(timings[1:]) < 1.0

        own_broker.start()
        deadline = time.monotonic() + 90
        pending = refused + [batch(k * 10, 10) for k in range(6, 8)]
        while pending and time.monotonic() < deadline:
            response = post(client, pending[0])
            if response.status_code == 200:
                pending.pop(0)
            else:
                assert response.status_code == 503
                time.sleep(int(response.headers["retry-after"]))
        assert pending == [], "the collector did not recover within 90 s of the broker's restart"

    assert len(acked) == 80
    stored = Counter(
        r["event_id"]
        for _, r, _ in read_topic(
            replace(Settings(), bootstrap_servers=own_broker.bootstrap, topics=topics),
            topics.events,
        )
    )
    assert {event_id: stored[event_id] for event_id in acked} == dict.fromkeys(acked, 1)
    assert sum(stored.values()) == len(acked)


def _collect(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "collector.main", "--port", str(port)],
        env={**env, "CDPFLOW_WRITE_KEYS": WRITE_KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_missing_events_topic_refuses_to_start_naming_it(kafka_settings: Settings) -> None:
    """Against the real broker: the events topic is not there, so ``cdpflow collect`` does
    not start (it used to start and answer 503 without saying why): one line, exit 2."""
    env = settings_env(kafka_settings, CDPFLOW_TOPIC_EVENTS=f"{kafka_settings.topics.events}.x")
    proc = _collect(env, _free_port())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.splitlines() == [err.strip()], err  # one line
    assert f"{kafka_settings.topics.events}.x (CDPFLOW_TOPIC_EVENTS)" in err
    assert "cdpflow topics create" in err
    assert kafka_settings.topics.dead_letters not in err  # that one exists
    assert "Traceback" not in err
    assert out == ""


def test_with_its_topics_it_starts_and_with_no_broker_it_starts_and_answers_503(
    kafka_settings: Settings,
) -> None:
    """The topic check needs an answer: with no broker at start the collector still
    starts (it outlives outages) and says so on /readyz, with no librdkafka lines."""
    for env, ready in (
        (settings_env(kafka_settings), 200),
        (settings_env(kafka_settings, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{_free_port()}"), 503),
    ):
        port = _free_port()
        proc = _collect(env, port)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the collector did not answer"
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert status == ready
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err
        assert "rdkafka" not in err
