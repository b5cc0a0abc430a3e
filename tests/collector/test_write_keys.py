"""Write-key scopes through the app: a public key (the browser snippet's) may not alias
and cannot date events after their receipt; a server key may do both (issue 16)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from cdpflow.errors import ConfigError
from collector.settings import CollectorSettings
from tests.collector.conftest import NOW_MS, SERVER_KEY, WRITE_KEY, RecordingSink, basic

ALIAS = {"userId": "attacker", "previousId": "victim", "messageId": "al-1"}
FUTURE = "2026-09-22T10:00:00Z"  # a day after the collector's clock (NOW_MS)


def view(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "c-1",
        "messageId": message_id,
        "event": "Product Viewed",
        "properties": {"product_id": "p-1", "category": "shoes"},
        **extra,
    }


@pytest.mark.parametrize("path", ["/v1/alias", "/v1/a"])
def test_a_public_key_may_not_alias_by_header_or_body(
    client: TestClient, sink: RecordingSink, path: str
) -> None:
    by_header = client.post(path, json=ALIAS, headers=basic(WRITE_KEY))
    by_body = client.post(path, content=orjson.dumps({**ALIAS, "writeKey": WRITE_KEY}))
    for response in (by_header, by_body):
        assert response.status_code == 403
        assert response.json()["reason"] == "forbidden_for_public_key"
        assert "server key" in response.json()["error"]
    assert sink.sent == []


def test_a_server_key_may_alias(client: TestClient, sink: RecordingSink) -> None:
    assert client.post("/v1/alias", json=ALIAS, headers=basic(SERVER_KEY)).status_code == 200
    [record] = sink.decoded("cdp.events")
    assert record["payload"]["name"] == "alias"
    assert record["customer_id"] == "attacker"


def test_an_unknown_key_on_alias_is_401_not_403(client: TestClient) -> None:
    assert client.post("/v1/alias", json=ALIAS, headers=basic("nope")).status_code == 401


@pytest.mark.parametrize("fast_path", [True, False])
def test_alias_items_of_a_public_batch_are_rejected_one_by_one(
    client_factory: Callable[..., TestClient], sink: RecordingSink, fast_path: bool
) -> None:
    client = client_factory(fast_path=fast_path)
    batch = [view("v-0"), {**ALIAS, "type": "alias"}, view("v-2")]
    public = client.post("/v1/batch", json={"batch": batch}, headers=basic(WRITE_KEY)).json()
    assert public["accepted"] == 2
    assert [(r["index"], r["reason"]) for r in public["rejected"]] == [
        (1, "forbidden_for_public_key")
    ]
    assert [r["event_id"] for r in sink.decoded("cdp.events")] == ["v-0", "v-2"]
    assert [d["event_id"] for d in sink.decoded("cdp.events.dlq")] == ["al-1"]

    sink.sent.clear()
    server = client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY)).json()
    assert (server["accepted"], server["rejected"]) == (3, [])


def _event_time(sink: RecordingSink) -> int:
    [record] = sink.decoded("cdp.events")
    moment: datetime = record["event_time"]
    return int(moment.astimezone(UTC).timestamp() * 1000)


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_a_public_keys_events_are_never_dated_after_their_receipt(
    client_factory: Callable[..., TestClient], sink: RecordingSink, fast_path: bool, batched: bool
) -> None:
    client = client_factory(fast_path=fast_path)

    def send(key: str) -> None:
        message = view("f-1", timestamp=FUTURE)
        if batched:
            response = client.post("/v1/batch", json={"batch": [message]}, headers=basic(key))
        else:
            response = client.post("/v1/track", json=message, headers=basic(key))
        assert response.status_code == 200

    send(WRITE_KEY)
    assert _event_time(sink) == NOW_MS  # clamped to received_at
    sink.sent.clear()
    send(SERVER_KEY)
    assert _event_time(sink) == int(datetime.fromisoformat(FUTURE).timestamp() * 1000)


def test_key_kinds_from_the_environment() -> None:
    s = CollectorSettings.from_env(
        {"CDPFLOW_WRITE_KEYS": "pk1,pk2", "CDPFLOW_SERVER_WRITE_KEYS": "sk1"}
    )
    assert [k.reveal() for k in s.write_keys] == ["pk1", "pk2"]
    assert [k.reveal() for k in s.server_write_keys] == ["sk1"]
    server_only = CollectorSettings.from_env({"CDPFLOW_SERVER_WRITE_KEYS": "sk1"})
    assert (server_only.write_keys, len(server_only.server_write_keys)) == ((), 1)


def test_no_key_of_either_kind_names_both_variables() -> None:
    with pytest.raises(ConfigError) as info:
        CollectorSettings.from_env({})
    assert "CDPFLOW_WRITE_KEYS" in str(info.value)
    assert "CDPFLOW_SERVER_WRITE_KEYS" in str(info.value)


def test_a_key_in_both_lists_is_refused_without_showing_it(tmp_path: Any) -> None:
    keys = tmp_path / "server-keys"
    keys.write_text("shared-secret\n")
    env = {"CDPFLOW_WRITE_KEYS": "a,shared-secret", "CDPFLOW_SERVER_WRITE_KEYS_FILE": str(keys)}
    with pytest.raises(ConfigError, match="both CDPFLOW_WRITE_KEYS and") as info:
        CollectorSettings.from_env(env)
    assert "shared-secret" not in str(info.value)


def test_keys_are_known_by_kind_and_position_in_rate_limits(
    client_factory: Callable[..., TestClient], sink: RecordingSink
) -> None:
    """The public and the server key have buckets of their own: a flood on the public key
    (known to anyone) does not stop the server's calls."""
    client = client_factory(rate_limit_per_s=1, rate_burst=2, monotonic=lambda: 5.0)
    two = {"batch": [view("a"), view("b")]}
    assert client.post("/v1/batch", json=two, headers=basic(WRITE_KEY)).status_code == 200
    assert client.post("/v1/track", json=view("c"), headers=basic(WRITE_KEY)).status_code == 429
    assert client.post("/v1/batch", json=two, headers=basic(SERVER_KEY)).status_code == 200
