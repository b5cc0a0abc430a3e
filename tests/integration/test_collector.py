"""The collector against the real broker: every endpoint lands in Kafka exactly as answered.

Requests go through Starlette's TestClient into the real app, whose lifespan starts a real
idempotent producer; the topics are read back with ``read_topic``.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from cdpflow.settings import Settings
from collector.app import create_app
from collector.settings import CollectorSettings
from collector.signatures import sign_generic, sign_shopify
from tests.collector.conftest import WRITE_KEY, basic
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.timeout(120)


def collector_settings(settings: Settings, **overrides: Any) -> CollectorSettings:
    base = CollectorSettings(
        bootstrap_servers=settings.bootstrap_servers,
        topics=settings.topics,
        write_keys=(Secret(WRITE_KEY),),
        webhook_secrets={"crm": (Secret("crm-secret"),), "shopify": (Secret("shop-secret"),)},
    )
    return replace(base, **overrides)


@pytest.fixture
def collector_factory() -> Iterator[Callable[[CollectorSettings], TestClient]]:
    clients: list[TestClient] = []

    def start(settings: CollectorSettings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def message(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"c-{i % 3}",
        "messageId": f"m-{i}",
        "event": "Product Viewed",
        "timestamp": "2026-09-01T10:00:00Z",
        "properties": {"product_id": f"p-{i}", "category": "shoes"},
        **extra,
    }


def test_every_endpoint_lands_in_kafka(
    kafka_settings: Settings, collector_factory: Callable[[CollectorSettings], TestClient]
) -> None:
    client = collector_factory(collector_settings(kafka_settings))
    h = basic()
    answers = [
        client.post("/v1/track", json=message(1), headers=h),
        client.post(
            "/v1/identify",
            json={"userId": "c-1", "messageId": "id-1", "traits": {"email": "a@example.com"}},
            headers=h,
        ),
        client.post(
            "/v1/page",
            json={"anonymousId": "anon-1", "messageId": "pg-1", "name": "Home"},
            headers=h,
        ),
        client.post(
            "/v1/batch", json={"batch": [message(2), message(3), {"type": "track"}]}, headers=h
        ),
        client.post(
            "/v1/batch",
            content=gzip.compress(orjson.dumps({"batch": [message(4)]})),
            headers={**h, "Content-Encoding": "gzip"},
        ),
    ]
    generic = orjson.dumps(
        {
            "event_id": "wh-1",
            "type": "custom",
            "customer_id": "c-9",
            "timestamp": "2026-09-01T00:00:00Z",
            "payload": {"name": "Ticket Opened"},
        }
    )
    ts = int(time.time())
    answers.append(
        client.post(
            "/v1/webhooks/crm",
            content=generic,
            headers={
                "X-Cdpflow-Timestamp": str(ts),
                "X-Cdpflow-Signature": sign_generic(b"crm-secret", ts, generic),
            },
        )
    )
    order = orjson.dumps(
        {
            "id": 5,
            "created_at": "2026-09-01T00:00:00Z",
            "total_price": "9.99",
            "customer": {"id": 77},
            "line_items": [],
        }
    )
    answers.append(
        client.post(
            "/v1/webhooks/shopify",
            content=order,
            headers={
                "X-Shopify-Hmac-Sha256": sign_shopify(b"shop-secret", order),
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Webhook-Id": "sh-1",
            },
        )
    )
    assert [a.status_code for a in answers] == [200] * 7
    assert answers[3].json()["rejected"][0]["index"] == 2
    assert client.get("/healthz").status_code == 200
    assert "/v1/batch" in client.get("/openapi.json").json()["paths"]
    metrics = client.get("/metrics").text
    assert 'cdpflow_collector_events_total{endpoint="batch"} 3.0' in metrics
    assert 'cdpflow_collector_rejects_total{reason="missing_identity"} 1.0' in metrics
    assert "cdpflow_collector_produce_seconds_count 7.0" in metrics

    events = read_topic(kafka_settings, kafka_settings.topics.events)
    by_id = {r["event_id"]: (r, msg) for _, r, msg in events}
    assert sorted(by_id) == sorted(
        ["m-1", "id-1", "pg-1", "m-2", "m-3", "m-4", "wh-1", "shopify:orders/create:5"]
    )
    assert len(events) == len(by_id)
    assert by_id["pg-1"][1].key() == b"anon-1"
    assert by_id["m-2"][1].key() == b"c-2"
    assert by_id["shopify:orders/create:5"][0]["event_type"] == "order_completed"
    assert by_id["wh-1"][0]["source"] == "webhook:crm"
    assert by_id["id-1"][0]["payload"]["email"] == "a@example.com"
    [(name, letter, _)] = read_topic(kafka_settings, kafka_settings.topics.dead_letters)
    assert name == "cdp.DeadLetter"
    assert letter["reason"] == "missing_identity"
    assert letter["source_topic"] == "http:/v1/batch"


def test_refused_requests_store_nothing(
    kafka_settings: Settings, collector_factory: Callable[[CollectorSettings], TestClient]
) -> None:
    client = collector_factory(collector_settings(kafka_settings))
    stale = int(time.time()) - 600
    body = orjson.dumps(
        {
            "event_id": "x",
            "type": "custom",
            "customer_id": "c",
            "timestamp": 0,
            "payload": {"name": "n"},
        }
    )
    statuses = [
        client.post("/v1/track", json=message(1), headers=basic("wrong")).status_code,
        client.post(
            "/v1/webhooks/crm",
            content=body,
            headers={
                "X-Cdpflow-Timestamp": str(stale),
                "X-Cdpflow-Signature": sign_generic(b"crm-secret", stale, body),
            },
        ).status_code,
        client.post(
            "/v1/webhooks/crm",
            content=body,
            headers={
                "X-Cdpflow-Timestamp": str(int(time.time())),
                "X-Cdpflow-Signature": "v1=" + "0" * 64,
            },
        ).status_code,
        client.post(
            "/v1/track",
            json=message(2, properties={"product_id": "p", "x": "y" * 40_000}),
            headers=basic(),
        ).status_code,
        client.post("/v1/track", content=b"{nope", headers=basic()).status_code,
        client.post("/v1/track", json=message(3, properties={}), headers=basic()).status_code,
    ]
    assert statuses == [401, 401, 401, 413, 400, 400]
    assert read_topic(kafka_settings, kafka_settings.topics.events) == []
    assert read_topic(kafka_settings, kafka_settings.topics.dead_letters) == []


def test_readiness_follows_the_broker(
    kafka_settings: Settings, collector_factory: Callable[[CollectorSettings], TestClient]
) -> None:
    up = collector_factory(collector_settings(kafka_settings))
    # A topic created a moment ago may take a metadata round to be known to the broker.
    deadline = time.monotonic() + 15
    while (status := up.get("/readyz").status_code) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status == 200
    nowhere = collector_factory(
        collector_settings(kafka_settings, bootstrap_servers="127.0.0.1:1", produce_timeout_ms=1000)
    )
    assert nowhere.get("/readyz").status_code == 503
    answer = nowhere.post("/v1/track", json=message(1), headers=basic())
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) > 0


def test_a_retried_message_id_is_stored_per_request_and_answered_each_time(
    kafka_settings: Settings, collector_factory: Callable[[CollectorSettings], TestClient]
) -> None:
    """The collector is at-least-once per request: dedupe by event_id is downstream's job;
    a 2xx always means stored."""
    client = collector_factory(collector_settings(kafka_settings))
    for _ in range(2):
        assert client.post("/v1/track", json=message(1), headers=basic()).status_code == 200
    ids = Counter(
        r["event_id"] for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)
    )
    assert ids == {"m-1": 2}
