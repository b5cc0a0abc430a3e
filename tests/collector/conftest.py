"""Unit-level fixtures: the real app and codec, with a recording sink instead of Kafka."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from cdpflow.codec import default_codec
from cdpflow.secrets import Secret
from collector.app import create_app
from collector.exceptions import CollectorError
from collector.producer import OutMessage
from collector.settings import CollectorSettings

WRITE_KEY = "wk-test"  # a public key, as a browser snippet's
SERVER_KEY = "sk-test"  # a server key: may alias
NOW_MS = 1_790_000_000_000  # 2026-09-21T...Z, fixed


class RecordingSink:
    """Stores what a request sends, or raises the error it is told to (broker down...)."""

    def __init__(self) -> None:
        self.sent: list[OutMessage] = []
        self.fail_with: CollectorError | None = None
        self.is_ready = True
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    async def send(self, messages: Sequence[OutMessage]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.extend(messages)

    def ready(self, timeout_s: float) -> bool:
        return self.is_ready

    def close(self, timeout_s: float) -> int:
        self.closed = True
        return 0

    def decoded(self, topic: str) -> list[dict[str, Any]]:
        codec = default_codec()
        return [codec.decode(m.value)[1] for m in self.sent if m.topic == topic]


@pytest.fixture
def settings() -> CollectorSettings:
    return CollectorSettings(
        write_keys=(Secret(WRITE_KEY),),
        server_write_keys=(Secret(SERVER_KEY),),
        webhook_secrets={
            "crm": (Secret("old-secret"), Secret("new-secret")),
            "shopify": (Secret("shop-secret"),),
        },
        cors_origins=("https://shop.example",),
    )


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def client_factory(
    sink: RecordingSink, settings: CollectorSettings
) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(
        now_s: float = NOW_MS / 1000,
        monotonic: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> TestClient:
        app = create_app(
            replace(settings, **overrides),
            sink,
            now_ms=lambda: NOW_MS,
            now_s=lambda: now_s,
            monotonic=monotonic,
        )
        client = TestClient(app, raise_server_exceptions=True)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
