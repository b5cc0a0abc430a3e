"""Rate limits per write key and webhook source: the token bucket with an injected clock,
the settings, and 429 + Retry-After through the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret
from collector.exceptions import RateLimited, TooManyItems
from collector.ratelimit import RateLimiter, TokenBucket
from collector.settings import CollectorSettings
from collector.signatures import sign_generic
from tests.collector.conftest import NOW_MS, WRITE_KEY, RecordingSink, basic


class Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=20, tokens=20, updated=0.0)
    assert bucket.take(20, now=0.0) == 0.0
    assert bucket.take(5, now=0.0) == pytest.approx(0.5)  # 5 tokens at 10 a second
    assert bucket.tokens == 0  # a refusal takes nothing
    assert bucket.take(5, now=0.5) == 0.0
    assert bucket.take(1, now=100.0) == 0.0
    assert bucket.tokens == 19  # capped at the burst, then one taken


def test_a_bucket_never_goes_into_debt() -> None:
    """A request is admitted only when the bucket holds its whole cost (this replaces the
    old rule that a full bucket let a bigger batch through into debt: one request could
    lock a shared public key out for half a minute, issue 16)."""
    bucket = TokenBucket(rate=10, burst=20, tokens=20, updated=0.0)
    assert bucket.take(15, now=0.0) == 0.0
    assert bucket.take(10, now=0.0) == pytest.approx(0.5)  # refused: 5 short at 10 a second
    assert bucket.tokens == 5
    assert bucket.take(20, now=0.0) == pytest.approx(1.5)
    assert bucket.take(20, now=1.5) == 0.0
    assert bucket.tokens == 0  # never below zero


def test_a_request_costing_more_than_the_burst_is_too_many_items_not_a_debt() -> None:
    limits = RateLimiter(rate=10, burst=20, clock=Clock())
    with pytest.raises(TooManyItems) as info:
        limits.take("public:0", 21)
    assert info.value.status == 400
    limits.take("public:0", 20)  # the bucket was left full


def test_the_limiter_refuses_with_the_seconds_to_wait_and_keeps_clients_apart() -> None:
    clock = Clock()
    limits = RateLimiter(rate=2, burst=4, clock=clock)
    limits.take("key:0", 4)
    with pytest.raises(RateLimited) as info:
        limits.take("key:0", 3)
    assert info.value.status == 429
    assert info.value.retry_after == 2  # 3 tokens at 2 a second: 1.5 s, rounded up
    limits.take("key:1", 4)  # another key has its own bucket
    limits.take("webhook:crm", 4)
    clock.advance(1.5)
    limits.take("key:0", 3)


def test_rate_zero_turns_limiting_off() -> None:
    limits = RateLimiter(rate=0, burst=1, clock=Clock())
    for _ in range(1000):
        limits.take("key:0", 10_000)
    assert not limits.enabled


def test_limits_come_from_the_environment() -> None:
    default = CollectorSettings.from_env({"CDPFLOW_WRITE_KEYS": "k"})
    assert (default.rate_limit_per_s, default.rate_burst) == (5_000, 20_000)
    s = CollectorSettings.from_env(
        {"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_RATE_LIMIT": "50"}
    )
    assert (s.rate_limit_per_s, s.rate_burst) == (50, 200)  # burst: 4 s of the rate
    s = CollectorSettings.from_env(
        {
            "CDPFLOW_WRITE_KEYS": "k",
            "CDPFLOW_COLLECTOR_RATE_LIMIT": "0",
            "CDPFLOW_COLLECTOR_RATE_BURST": "7",
        }
    )
    assert (s.rate_limit_per_s, s.rate_burst) == (0, 7)
    with pytest.raises(ConfigError, match="CDPFLOW_COLLECTOR_RATE_LIMIT"):
        CollectorSettings.from_env(
            {"CDPFLOW_WRITE_KEYS": "k", "CDPFLOW_COLLECTOR_RATE_LIMIT": "-1"}
        )


def track(i: int) -> dict[str, Any]:
    return {"type": "track", "userId": "c-1", "messageId": f"m-{i}", "event": "X"}


def test_a_write_key_over_its_rate_gets_429_with_retry_after_and_a_reason(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    clock = Clock()
    client = client_factory(
        monotonic=clock,
        rate_limit_per_s=2,
        rate_burst=3,
        write_keys=(Secret(WRITE_KEY), Secret("other-key")),
    )
    ok = client.post("/v1/batch", json={"batch": [track(0), track(1), track(2)]}, headers=basic())
    assert ok.status_code == 200

    refused = client.post("/v1/track", json=track(3), headers=basic())
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "success": False,
        "reason": "rate_limited",
        "error": "more than 2 events a second for this write key or source",
    }
    assert len(sink.sent) == 3  # nothing of the refused request was stored
    # The body's writeKey is the same client as the header's.
    beacon = client.post("/v1/track", content=orjson.dumps({**track(4), "writeKey": WRITE_KEY}))
    assert beacon.status_code == 429
    assert client.post("/v1/track", json=track(5), headers=basic("other-key")).status_code == 200

    clock.advance(0.5)
    assert client.post("/v1/track", json=track(6), headers=basic()).status_code == 200
    metrics = client.get("/metrics").text
    assert 'cdpflow_collector_rejects_total{reason="rate_limited"} 2.0' in metrics


def test_a_webhook_source_has_its_own_bucket(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    client = client_factory(monotonic=Clock(), rate_limit_per_s=1, rate_burst=2)
    event = {
        "event_id": "w-1",
        "type": "custom",
        "customer_id": "c-9",
        "timestamp": "2026-09-01T00:00:00Z",
        "payload": {"name": "Ticket Opened"},
    }
    raw = orjson.dumps([event, {**event, "event_id": "w-2"}])
    ts = NOW_MS // 1000
    headers = {
        "X-Cdpflow-Timestamp": str(ts),
        "X-Cdpflow-Signature": sign_generic(b"old-secret", ts, raw),
    }
    assert client.post("/v1/webhooks/crm", content=raw, headers=headers).status_code == 200
    refused = client.post("/v1/webhooks/crm", content=raw, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert client.post("/v1/track", json=track(0), headers=basic()).status_code == 200
