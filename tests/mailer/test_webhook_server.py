"""Webhook delivery against a real HTTP server on loopback that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from cdpflow.secrets import Secret
from mailer.delivery import Backoff, deliver_with_retries
from mailer.message import OutgoingEmail
from mailer.webhook import WebhookDelivery

SECRET = "provider-shared-secret"
EMAIL = OutgoingEmail(trigger_id="t-web", rule="category_interest", template="category_interest",
                      sender="shop@example.com", to="ada@example.com", subject="Hi",
                      text="plain", html="<p>html</p>")  # fmt: skip


class Provider(BaseHTTPRequestHandler):
    """Answers 503 first (``fail_first``), then 200 to a correctly signed request, else 401."""

    fail_first = 1
    accepted: list[dict] = []  # noqa: RUF012 - reset per test by the fixture

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = hmac.new(SECRET.encode(), self.headers["X-Cdpflow-Timestamp"].encode() + b"."
                            + body, hashlib.sha256).hexdigest()  # fmt: skip
        if Provider.fail_first > 0:
            Provider.fail_first -= 1
            status = 503
        elif hmac.compare_digest(self.headers["X-Cdpflow-Signature"], f"v1={expected}"):
            Provider.accepted.append(orjson.loads(body))
            status = 200
        else:
            status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider_url() -> Iterator[str]:
    Provider.fail_first, Provider.accepted = 1, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/send"
    finally:
        server.shutdown()
        server.server_close()


def test_a_503_is_retried_and_the_signed_request_accepted(provider_url) -> None:
    delivery = WebhookDelivery(provider_url, Secret(SECRET), timeout_s=5)
    try:
        assert deliver_with_retries(delivery, EMAIL, Backoff(3, 0.01, 0.05), lambda s: None) is None
    finally:
        delivery.close()
    assert [(a["trigger_id"], a["to"]) for a in Provider.accepted] == [("t-web", "ada@example.com")]


def test_a_wrong_secret_is_refused_permanently(provider_url) -> None:
    Provider.fail_first = 0
    delivery = WebhookDelivery(provider_url, Secret("not-the-shared-secret"), timeout_s=5)
    try:
        gave_up = deliver_with_retries(delivery, EMAIL, Backoff(3, 0.01, 0.05), lambda s: None)
    finally:
        delivery.close()
    assert gave_up is not None
    assert (gave_up.attempts, gave_up.error.code) == (1, 401)
    assert gave_up.error.reason == "delivery_refused"
    assert Provider.accepted == []
