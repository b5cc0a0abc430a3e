"""Segment's and RudderStack's own Python SDKs, unchanged, pointed at the collector.

The SDKs post gzip-compressed ``/v1/batch`` requests with HTTP Basic auth, their own
``messageId``s, ``timestamp``s and ``sentAt``; the events must arrive in Kafka typed and
keyed as the mapping says. The app runs on a real uvicorn server in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as segment_analytics
import uvicorn

from cdpflow.secrets import Secret
from cdpflow.settings import Settings
from collector.app import create_app
from collector.settings import CollectorSettings
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.timeout(120)

SDK_KEY = "sdk-write-key"  # a server key: these SDKs run on the customer's servers
PUBLIC_KEY = "public-write-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def collector_url(kafka_settings: Settings) -> Iterator[str]:
    settings = CollectorSettings(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        topics=kafka_settings.topics,
        write_keys=(Secret(PUBLIC_KEY),),
        server_write_keys=(Secret(SDK_KEY),),
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.parametrize(
    "make_client",
    [
        pytest.param(
            lambda url, key, errors: segment_analytics.Client(
                key,
                host=url,
                gzip=True,
                max_retries=1,
                on_error=lambda e, batch: errors.append(e),
            ),
            id="segment-analytics-python",
        ),
        pytest.param(
            lambda url, key, errors: rudder_analytics.Client(
                key, host=url, max_retries=1, on_error=lambda e, batch: errors.append(e)
            ),
            id="rudder-sdk-python",
        ),
    ],
)
def test_an_sdk_pointed_at_the_collector_lands_in_kafka(
    kafka_settings: Settings, collector_url: str, make_client: Callable[..., Any]
) -> None:
    errors: list[Exception] = []
    client = make_client(collector_url, SDK_KEY, errors)
    calls = [
        client.identify("sdk-user-1", {"email": "sdk@example.com", "firstName": "Sam"}),
        client.page("sdk-user-1", name="Home", properties={"path": "/"}),
        client.track(
            "sdk-user-1", "Product Viewed", {"product_id": "p-9", "category": "shoes", "price": 10}
        ),
        client.track("sdk-user-1", "Product Added", {"product_id": "p-9", "quantity": 2}),
        client.track(
            "sdk-user-1",
            "Order Completed",
            {
                "order_id": "o-1",
                "total": 20.0,
                "currency": "EUR",
                "products": [{"product_id": "p-9", "price": 10, "quantity": 2}],
            },
        ),
        client.track(anonymous_id="anon-7", event="Newsletter Opened", properties={"n": 3}),
        client.alias("anon-7", "sdk-user-1"),  # a server key may merge
    ]
    client.flush()
    client.join()
    assert errors == []
    sent = [msg["messageId"] for _ok, msg in calls]

    events = read_topic(kafka_settings, kafka_settings.topics.events)
    by_id = {r["event_id"]: (r, m) for _, r, m in events}
    assert sorted(by_id) == sorted(sent)
    types = [by_id[i][0]["event_type"] for i in sent]
    assert types == [
        "identify",
        "page_viewed",
        "product_viewed",
        "cart_item_added",
        "order_completed",
        "custom",
        "custom",
    ]
    assert by_id[sent[0]][0]["payload"]["email"] == "sdk@example.com"
    assert by_id[sent[4]][0]["payload"]["revenue"] == 20.0
    assert by_id[sent[3]][1].key() == b"sdk-user-1"
    assert by_id[sent[5]][1].key() == b"anon-7"
    assert by_id[sent[5]][0]["payload"]["name"] == "Newsletter Opened"
    assert by_id[sent[6]][0]["payload"]["name"] == "alias"
    # The SDK stamps timestamp and sentAt on the same clock: the skew correction keeps
    # event_time at or before the collector's receipt.
    for record, _ in by_id.values():
        assert record["event_time"] <= record["received_at"]


@pytest.mark.parametrize(
    "make_client",
    [
        pytest.param(
            lambda url, key: segment_analytics.Client(key, host=url, gzip=True, max_retries=1),
            id="segment-analytics-python",
        ),
        pytest.param(
            lambda url, key: rudder_analytics.Client(key, host=url, max_retries=1),
            id="rudder-sdk-python",
        ),
    ],
)
def test_an_sdk_with_the_public_key_cannot_alias(
    kafka_settings: Settings, collector_url: str, make_client: Callable[..., Any]
) -> None:
    """The public key, which ships in every browser, takes a customer's events but never a
    merge: the alias in its batch is dead-lettered, the track beside it stored."""
    client = make_client(collector_url, PUBLIC_KEY)
    _, tracked = client.track("attacker", "Product Viewed", {"product_id": "p", "category": "c"})
    _, aliased = client.alias("victim", "attacker")
    client.flush()
    client.join()
    stored = [r["event_id"] for _, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)]
    assert stored == [tracked["messageId"]]
    letters = read_topic(kafka_settings, kafka_settings.topics.dead_letters)
    assert [(r["event_id"], r["reason"]) for _, r, _ in letters] == [
        (aliased["messageId"], "forbidden_for_public_key")
    ]
