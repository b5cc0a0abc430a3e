"""The assembled app over a recording sink: status codes, bodies, what reaches "Kafka"."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from collector.app import create_app
from collector.exceptions import BrokerUnavailable
from collector.items import TOO_LARGE, unfit_items
from collector.producer import OutMessage
from collector.settings import CollectorSettings
from collector.signatures import sign_generic, sign_shopify
from tests.collector.conftest import NOW_MS, SERVER_KEY, WRITE_KEY, RecordingSink, basic


def track(**extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "c-1",
        "messageId": "m-1",
        "event": "Product Viewed",
        "properties": {"product_id": "p-1", "category": "shoes"},
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "body", "event_type"),
    [
        ("/v1/track", track(), "product_viewed"),
        (
            "/v1/identify",
            {"userId": "c-1", "messageId": "m", "traits": {"email": "a@b.c"}},
            "identify",
        ),
        ("/v1/page", {"anonymousId": "a-1", "messageId": "m", "name": "Home"}, "page_viewed"),
    ],
)
def test_single_calls_are_stored_keyed_by_identity(
    client: TestClient, sink: RecordingSink, path: str, body: dict[str, Any], event_type: str
) -> None:
    response = client.post(path, json=body, headers=basic())
    assert response.status_code == 200
    assert response.json() == {"success": True}
    [message] = sink.sent
    assert message.topic == "cdp.events"
    assert message.key == (body.get("userId") or body.get("anonymousId")).encode()
    [record] = sink.decoded("cdp.events")
    assert record["event_type"] == event_type


@pytest.mark.parametrize(
    ("path", "body", "event_type"),
    [
        ("/v1/t", track(), "product_viewed"),
        ("/v1/p", {"anonymousId": "a", "messageId": "m", "name": "Home"}, "page_viewed"),
        ("/v1/i", {"userId": "c", "messageId": "m", "traits": {}}, "identify"),
        ("/v1/screen", {"userId": "c", "messageId": "m", "name": "Cart"}, "page_viewed"),
        ("/v1/s", {"userId": "c", "messageId": "m", "name": "Cart"}, "page_viewed"),
        ("/v1/group", {"userId": "c", "messageId": "m", "groupId": "g"}, "custom"),
        ("/v1/a", {"userId": "c", "messageId": "m", "previousId": "a-1"}, "custom"),
        ("/v1/b", {"batch": [track()]}, "product_viewed"),
        ("/v1/import", {"batch": [track()]}, "product_viewed"),
    ],
)
def test_analytics_js_paths_with_text_plain_and_body_write_key(
    client: TestClient, sink: RecordingSink, path: str, body: dict[str, Any], event_type: str
) -> None:
    key = SERVER_KEY if path == "/v1/a" else WRITE_KEY  # an alias needs a server key
    raw = orjson.dumps({**body, "writeKey": key})
    response = client.post(path, content=raw, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert [r["event_type"] for r in sink.decoded("cdp.events")] == [event_type]


def test_write_key_in_the_body_is_accepted(client: TestClient, sink: RecordingSink) -> None:
    assert client.post("/v1/track", json=track(writeKey=WRITE_KEY)).status_code == 200
    assert len(sink.sent) == 1


@pytest.mark.parametrize(
    "headers_body",
    [
        ({}, track()),
        (basic("nope"), track()),
        ({}, track(writeKey="nope")),
        ({"Authorization": "Bearer " + WRITE_KEY}, track()),
        ({"Authorization": "Basic %%%"}, track()),
    ],
)
def test_wrong_or_missing_write_key_is_401(
    client: TestClient, sink: RecordingSink, headers_body: tuple[dict[str, str], dict[str, Any]]
) -> None:
    headers, body = headers_body
    response = client.post("/v1/track", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["reason"] == "unauthorized"
    assert sink.sent == []


def test_malformed_json_is_400(client: TestClient, sink: RecordingSink) -> None:
    response = client.post("/v1/track", content=b'{"userId": ', headers=basic())
    assert response.status_code == 400
    assert response.json()["reason"] == "malformed_request"
    assert client.post("/v1/batch", content=b"[1, 2]", headers=basic()).status_code == 400
    assert sink.sent == []


def test_invalid_single_event_is_400_naming_the_field(
    client: TestClient, sink: RecordingSink
) -> None:
    body = track(properties={"category": "shoes"})
    response = client.post("/v1/track", json=body, headers=basic())
    assert response.status_code == 400
    assert response.json()["error"].startswith("properties.product_id")
    assert response.json()["reason"] == "missing_field"
    assert sink.sent == []


def test_oversized_bodies_are_413(client: TestClient, sink: RecordingSink) -> None:
    big = track(properties={"product_id": "p", "blob": "x" * (32 * 1024)})
    assert client.post("/v1/track", json=big, headers=basic()).status_code == 413
    batch = {
        "batch": [
            track(messageId=f"m{i}", properties={"product_id": "p", "pad": "x" * 9000})
            for i in range(60)
        ]
    }
    response = client.post("/v1/batch", json=batch, headers=basic())
    assert response.status_code == 413
    assert sink.sent == []


def test_gzip_bodies_are_accepted(client: TestClient, sink: RecordingSink) -> None:
    raw = gzip.compress(orjson.dumps({"batch": [track(messageId=f"m{i}") for i in range(3)]}))
    response = client.post(
        "/v1/batch", content=raw, headers={**basic(), "Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 3
    assert [r["event_id"] for r in sink.decoded("cdp.events")] == ["m0", "m1", "m2"]


def test_gzip_bomb_bad_gzip_and_unknown_encoding(client: TestClient) -> None:
    bomb = gzip.compress(b" " * 5_000_000)
    enc = {**basic(), "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=bomb, headers=enc).status_code == 413
    assert client.post("/v1/batch", content=b"plain", headers=enc).status_code == 400
    br = {**basic(), "Content-Encoding": "br"}
    assert client.post("/v1/batch", content=b"{}", headers=br).status_code == 415


def test_batch_keeps_good_events_and_dead_letters_bad_ones(
    client: TestClient, sink: RecordingSink
) -> None:
    batch = [
        track(messageId="ok-0"),
        {"type": "track", "event": "X", "messageId": "bad-1"},  # no identity
        {"type": "identify", "userId": "c-2", "messageId": "ok-2", "traits": {}},
        {
            "type": "track",
            "userId": "c-3",
            "messageId": "bad-3",
            "event": "Order Completed",
            "properties": {"total": 3},
        },  # no order_id
        track(messageId="big-4", properties={"product_id": "p", "blob": "y" * 33_000}),
        "not an object",
    ]
    response = client.post(
        "/v1/batch", json={"batch": batch, "sentAt": "2026-01-01T00:00:00Z"}, headers=basic()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "missing_identity"),
        (3, "missing_field"),
        (4, "event_too_large"),
        (5, "invalid_event"),
    ]
    assert body["rejected"][1]["error"].startswith("properties.order_id")
    assert [r["event_id"] for r in sink.decoded("cdp.events")] == ["ok-0", "ok-2"]
    letters = sink.decoded("cdp.events.dlq")
    assert [d["event_id"] for d in letters] == ["bad-1", "bad-3", "big-4", None]
    assert letters[1]["source_topic"] == "http:/v1/batch"
    assert letters[1]["source_partition"] is None
    assert letters[1]["key"] == b"c-3"
    assert json.loads(letters[1]["raw"])["messageId"] == "bad-3"
    assert letters[1]["seen_at"].timestamp() * 1000 == NOW_MS


def test_a_batch_gets_the_same_answer_and_messages_with_or_without_the_fast_path(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    """The compiled path (``fast_path``) is an optimisation of the Python one: for a batch
    mixing what it takes and what it leaves to Python (valid and invalid), the answer and
    every message, in order, are the same as with it switched off."""
    batch = [
        track(messageId="fast-0", timestamp="2026-01-01T00:00:00.250Z"),
        {"type": "identify", "userId": "c-2", "messageId": "py-1", "traits": {"plan": 1}},
        track(messageId="bad-2", userId=None),  # no identity: a dead letter
        {**track(messageId="fast-3", event="Email Opened"), "anonymousId": "a-3"},
        track(messageId="big-4", properties={"product_id": "p", "blob": "y" * 33_000}),
        track(messageId="py-5", userId=5),  # a number: the Python path takes it
        {"type": "page", "anonymousId": "a-6", "messageId": "fast-6", "name": "Home"},
        track(messageId="fast-7", event="Wishlist", properties={"n": [1, 2.5]}),
    ]
    body = {"batch": batch, "sentAt": "2026-01-01T00:00:01Z", "context": {"locale": "de"}}
    answers, sent = [], []
    for fast_path in (True, False):
        sink.sent.clear()
        client = client_factory(fast_path=fast_path)
        assert (client.app.state.services.normalizer.segment_fast is not None) is fast_path
        answers.append(client.post("/v1/batch", json=body, headers=basic()).json())
        sent.append(list(sink.sent))
    assert answers[0] == answers[1]
    assert answers[0]["accepted"] == 6
    assert [r["index"] for r in answers[0]["rejected"]] == [2, 4]
    assert sent[0] == sent[1]
    dead, events = "cdp.events.dlq", "cdp.events"
    assert [(m.topic, m.key) for m in sent[0]] == [
        (events, b"c-1"),
        (events, b"c-2"),
        (dead, None),
        (events, b"c-1"),
        (dead, b"c-1"),
        (events, b"5"),
        (events, b"a-6"),
        (events, b"c-1"),
    ]


def test_broker_unavailable_is_503_with_retry_after(
    client: TestClient, sink: RecordingSink
) -> None:
    sink.fail_with = BrokerUnavailable("Kafka is unreachable", retry_after=5)
    response = client.post("/v1/track", json=track(), headers=basic())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["success"] is False


class BlockingSink(RecordingSink):
    """Holds every send until released, to keep requests in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = 0

    async def send(self, messages: Sequence[OutMessage]) -> None:
        self.waiting += 1
        await self.release.wait()
        await super().send(messages)


def test_overload_is_429_with_retry_after_and_admits_again_after(
    settings: CollectorSettings,
) -> None:
    from dataclasses import replace

    sink = BlockingSink()
    # Room for two single-event requests (32 KiB reservation each when the length is unknown).
    # One client address and key may hold all of it here: this is about the whole budget.
    wide = replace(settings, in_flight_key_share_pct=100, in_flight_peer_share_pct=100)
    app = create_app(replace(wide, max_in_flight_bytes=2 * 32 * 1024 + 100), sink)
    body = orjson.dumps(track())

    async def scenario() -> tuple[list[int], int, str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            async def post() -> httpx.Response:
                # A streamed body has no Content-Length: the whole 32 KiB limit is reserved.
                async def chunks() -> AsyncIterator[bytes]:
                    yield body

                return await c.post("/v1/track", content=chunks(), headers=basic())

            held = [asyncio.create_task(post()) for _ in range(2)]
            for _ in range(500):
                if sink.waiting == 2:
                    break
                await asyncio.sleep(0.01)
            refused = await post()
            sink.release.set()
            done = [r.status_code for r in await asyncio.gather(*held)]
            again = await c.post("/v1/track", json=track(), headers=basic())
            return done, refused.status_code, refused.headers.get("retry-after"), again.status_code

    done, refused, retry_after, again = asyncio.run(scenario())
    assert refused == 429
    assert retry_after == "1"
    assert done == [200, 200]
    assert again == 200


def webhook_headers(body: bytes, secret: bytes, ts: int) -> dict[str, str]:
    return {"X-Cdpflow-Timestamp": str(ts), "X-Cdpflow-Signature": sign_generic(secret, ts, body)}


EVENT = {
    "event_id": "w-1",
    "type": "custom",
    "customer_id": "c-9",
    "timestamp": "2026-09-01T00:00:00Z",
    "payload": {"name": "Ticket Opened"},
}


@pytest.mark.parametrize("secret", [b"old-secret", b"new-secret"])
def test_generic_webhook_signed_with_either_secret(
    client: TestClient, sink: RecordingSink, secret: bytes
) -> None:
    raw = orjson.dumps(EVENT)
    ts = NOW_MS // 1000
    response = client.post(
        "/v1/webhooks/crm", content=raw, headers=webhook_headers(raw, secret, ts)
    )
    assert response.status_code == 200
    [record] = sink.decoded("cdp.events")
    assert record["source"] == "webhook:crm"
    assert record["event_id"] == "w-1"
    assert record["received_at"].timestamp() * 1000 == NOW_MS


@pytest.mark.parametrize(
    ("path", "secret", "ts_offset", "tamper"),
    [
        ("/v1/webhooks/crm", b"wrong", 0, False),
        ("/v1/webhooks/crm", b"new-secret", -301, False),
        ("/v1/webhooks/crm", b"new-secret", 0, True),
        ("/v1/webhooks/billing", b"new-secret", 0, False),
    ],
)
def test_bad_stale_or_unknown_webhooks_are_401(
    client: TestClient,
    sink: RecordingSink,
    path: str,
    secret: bytes,
    ts_offset: int,
    tamper: bool,
) -> None:
    raw = orjson.dumps(EVENT)
    ts = NOW_MS // 1000 + ts_offset
    headers = webhook_headers(raw, secret, ts)
    response = client.post(path, content=raw + (b" " if tamper else b""), headers=headers)
    assert response.status_code == 401
    assert sink.sent == []


def test_generic_webhook_list_with_a_bad_event(client: TestClient, sink: RecordingSink) -> None:
    raw = orjson.dumps([EVENT, {**EVENT, "event_id": None}])
    ts = NOW_MS // 1000
    response = client.post(
        "/v1/webhooks/crm", content=raw, headers=webhook_headers(raw, b"new-secret", ts)
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 1
    assert len(sink.decoded("cdp.events.dlq")) == 1


def test_generic_webhook_single_invalid_event_is_400(client: TestClient) -> None:
    raw = orjson.dumps({**EVENT, "type": "teleported"})
    ts = NOW_MS // 1000
    response = client.post(
        "/v1/webhooks/crm", content=raw, headers=webhook_headers(raw, b"old-secret", ts)
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("type")


def shopify_headers(raw: bytes, secret: bytes = b"shop-secret") -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": sign_shopify(secret, raw),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4",
        "X-Shopify-Shop-Domain": "x.myshopify.com",
    }


ORDER = {
    "id": 1001,
    "created_at": "2026-09-20T10:00:00Z",
    "total_price": "12.50",
    "currency": "EUR",
    "customer": {"id": 7},
    "line_items": [],
}


def test_shopify_webhook(client: TestClient, sink: RecordingSink) -> None:
    raw = orjson.dumps(ORDER)
    response = client.post("/v1/webhooks/shopify", content=raw, headers=shopify_headers(raw))
    assert response.status_code == 200
    [record] = sink.decoded("cdp.events")
    assert record["event_type"] == "order_completed"
    # Named by the order, not by the unsigned webhook id (issue 16: a replay with a new
    # X-Shopify-Webhook-Id is the same event).
    assert record["event_id"] == "shopify:orders/create:1001"
    assert sink.sent[0].key == b"7"
    replayed = {**shopify_headers(raw), "X-Shopify-Webhook-Id": "another-id"}
    assert client.post("/v1/webhooks/shopify", content=raw, headers=replayed).status_code == 200
    assert [r["event_id"] for r in sink.decoded("cdp.events")] == [record["event_id"]] * 2


def test_shopify_bad_hmac_is_401(client: TestClient, sink: RecordingSink) -> None:
    raw = orjson.dumps(ORDER)
    headers = shopify_headers(raw, b"another-shop")
    assert client.post("/v1/webhooks/shopify", content=raw, headers=headers).status_code == 401
    assert sink.sent == []


def test_unmappable_shopify_delivery_is_dead_lettered_not_refused(
    client: TestClient, sink: RecordingSink
) -> None:
    raw = orjson.dumps({**ORDER, "total_price": None})
    response = client.post("/v1/webhooks/shopify", content=raw, headers=shopify_headers(raw))
    assert response.status_code == 200
    assert response.json()["rejected"][0]["error"].startswith("total_price")
    [letter] = sink.decoded("cdp.events.dlq")
    assert letter["source_topic"] == "http:/v1/webhooks/shopify"
    assert letter["raw"] == raw


def test_health_readiness_metrics_and_openapi(client: TestClient, sink: RecordingSink) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    sink.is_ready = False
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert "retry-after" in not_ready.headers
    client.post("/v1/track", json=track(), headers=basic())
    client.post("/v1/track", json=track(), headers=basic("nope"))
    text = client.get("/metrics").text
    assert 'cdpflow_collector_requests_total{endpoint="track",status="200"} 1.0' in text
    assert 'cdpflow_collector_requests_total{endpoint="track",status="401"} 1.0' in text
    assert 'cdpflow_collector_events_total{endpoint="track"} 1.0' in text
    assert 'cdpflow_collector_rejects_total{reason="unauthorized"} 1.0' in text
    assert "cdpflow_collector_produce_seconds_count 1.0" in text
    spec = client.get("/openapi.json").json()
    assert {"/v1/track", "/v1/identify", "/v1/page", "/v1/batch", "/v1/webhooks/{source}"} <= set(
        spec["paths"]
    )


def test_cors_for_configured_origins_only(client: TestClient) -> None:
    allowed = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    ok = client.options("/v1/track", headers=allowed)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    denied = client.options("/v1/track", headers={**allowed, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers
    simple = client.post(
        "/v1/track",
        content=orjson.dumps(track(writeKey=WRITE_KEY)),
        headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
    )
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"


def test_snippet_is_served_and_the_demo_only_when_switched_on(
    client_factory: Callable[..., TestClient],
) -> None:
    production = client_factory()
    js = production.get("/static/cdp.js")
    assert js.status_code == 200
    assert "sendBeacon" in js.text
    assert production.get("/demo?writeKey=k", follow_redirects=False).status_code == 404
    assert production.get("/static/shop.html").status_code == 404
    assert production.get("/static/../static/shop.html").status_code == 404

    client = client_factory(demo=True)
    demo = client.get("/demo?writeKey=k&api=https://c.example", follow_redirects=False)
    assert demo.status_code == 307
    assert demo.headers["location"] == "/static/shop.html?writeKey=k&api=https://c.example"
    assert "add to cart" in client.get(demo.headers["location"]).text.lower()
    assert client.get("/static/cdp.js").status_code == 200


def test_lifespan_starts_and_closes_the_sink(
    sink: RecordingSink, client_factory: Callable[..., TestClient]
) -> None:
    client = client_factory()
    assert sink.started
    client.__exit__(None, None, None)
    assert sink.closed


def test_logs_carry_no_personal_data(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cdpflow.collector")
    pii = {
        "userId": "ada-lovelace-id",
        "messageId": "m",
        "traits": {"email": "ada@example.com"},
        "context": {"ip": "203.0.113.77"},
    }
    client.post("/v1/identify", json=pii, headers=basic())
    client.post(
        "/v1/batch",
        json={"batch": [{**pii, "type": "identify", "traits": {"age": "x"}}]},
        headers=basic(),
    )
    client.post("/v1/identify", json={**pii, "traits": {"age": "x"}}, headers=basic("ada@x.y"))
    assert caplog.records, "expected request logs"
    text = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    for value in ("ada-lovelace-id", "ada@example.com", "203.0.113.77", "ada@x.y", WRITE_KEY):
        assert value not in text


def test_received_at_is_the_collector_clock(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    client = client_factory(now_s=time.time())
    client.post("/v1/track", json=track(timestamp="2026-09-01T00:00:00Z"), headers=basic())
    [record] = sink.decoded("cdp.events")
    assert record["received_at"].timestamp() * 1000 == NOW_MS


def test_an_unhashable_type_is_a_rejected_item_not_a_500(
    client: TestClient, sink: RecordingSink
) -> None:
    response = client.post(
        "/v1/batch", json={"batch": [track(), {**track(), "type": ["track"]}]}, headers=basic()
    )
    assert response.status_code == 200
    assert [(r["index"], r["reason"]) for r in response.json()["rejected"]] == [
        (1, "invalid_field")
    ]
    raw = orjson.dumps({**EVENT, "type": ["custom"]})
    ts = NOW_MS // 1000
    response = client.post(
        "/v1/webhooks/crm", content=raw, headers=webhook_headers(raw, b"new-secret", ts)
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("type")


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.recursive(
            st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
            max_leaves=20,
        ),
        max_size=30,
    ),
    limit=st.integers(1, 400),
)
def test_oversized_items_are_found_exactly_with_few_serializations(
    items: list[Any], limit: int
) -> None:
    body_bytes = len(orjson.dumps({"batch": items}))
    expected = {id(i): TOO_LARGE for i in items if len(orjson.dumps(i)) > limit}
    assert unfit_items(items, limit, body_bytes) == expected


def test_oversized_request_headers_get_431_before_any_handler(client: TestClient) -> None:
    big = {"X-Padding": "a" * (17 * 1024)}
    r = client.post("/v1/track", content=b"{}", headers={**basic(), **big})
    assert r.status_code == 431
    assert r.json()["reason"] == "headers_too_large"
    ok = client.get("/healthz", headers={"X-Padding": "a" * 4096})
    assert ok.status_code == 200
