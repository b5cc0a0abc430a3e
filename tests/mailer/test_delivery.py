"""Retries with backoff, the webhook's signature and status mapping, and SMTP against a
real aiosmtpd server on loopback."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
import pytest

from cdpflow.secrets import Secret
from mailer.delivery import Backoff, GaveUp, deliver_with_retries
from mailer.exceptions import PermanentDeliveryError, TransientDeliveryError
from mailer.message import OutgoingEmail
from mailer.smtp import SmtpConfig, SmtpDelivery
from mailer.webhook import WebhookDelivery
from tests.mailer.smtp_server import free_port

EMAIL = OutgoingEmail(trigger_id="t-1", rule="category_interest", template="category_interest",
                      sender="shop@example.com", to="ada@example.com", subject="Hi Ada",
                      text="plain body", html="<p>html body</p>")  # fmt: skip


class Scripted:
    """A delivery that raises the given errors in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def send(self, email: OutgoingEmail) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)

    def close(self) -> None:
        pass


def test_transient_errors_are_retried_with_growing_delays() -> None:
    sleeps: list[float] = []
    d = Scripted(TransientDeliveryError("x"), TransientDeliveryError("y"))
    assert deliver_with_retries(d, EMAIL, Backoff(4, 0.5, 10), sleeps.append) is None
    assert (d.calls, sleeps) == (3, [0.5, 1.0])


def test_retries_stop_after_max_attempts() -> None:
    sleeps: list[float] = []
    d = Scripted(*[TransientDeliveryError("x", code=451) for _ in range(5)])
    gave_up = deliver_with_retries(d, EMAIL, Backoff(3, 1, 10), sleeps.append)
    assert isinstance(gave_up, GaveUp)
    assert (gave_up.attempts, gave_up.error.code, d.calls, sleeps) == (3, 451, 3, [1, 2])


def test_a_permanent_error_is_not_retried() -> None:
    d = Scripted(PermanentDeliveryError("no", code=550))
    gave_up = deliver_with_retries(d, EMAIL, Backoff(5, 1, 10), lambda s: None)
    assert gave_up is not None
    assert (gave_up.attempts, d.calls) == (1, 1)


def test_outgoing_email_repr_hides_address_and_bodies() -> None:
    assert "ada@" not in repr(EMAIL)
    assert "plain body" not in repr(EMAIL)


# --- webhook (httpx.MockTransport: a unit test of our request and status mapping) ---


def _webhook(handler) -> WebhookDelivery:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookDelivery("https://provider.example/send", Secret("webhook-secret-123456"),
                           client=client, wall_clock_s=lambda: 1_700_000_000.5)  # fmt: skip


def test_webhook_signs_the_timestamp_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    _webhook(handler).send(EMAIL)
    (request,) = seen
    assert request.headers["X-Cdpflow-Timestamp"] == "1700000000"
    expected = hmac.new(b"webhook-secret-123456", b"1700000000." + request.content,
                        hashlib.sha256).hexdigest()  # fmt: skip
    assert request.headers["X-Cdpflow-Signature"] == f"v1={expected}"
    assert request.headers["Idempotency-Key"] == "t-1"
    body = orjson.loads(request.content)
    assert (body["to"], body["subject"], body["html"]) == ("ada@example.com", "Hi Ada",
                                                           "<p>html body</p>")  # fmt: skip


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, TransientDeliveryError), (503, TransientDeliveryError), (429, TransientDeliveryError),
     (408, TransientDeliveryError), (400, PermanentDeliveryError), (401, PermanentDeliveryError),
     (422, PermanentDeliveryError)],
)  # fmt: skip
def test_webhook_status_decides_the_retry(status, error) -> None:
    with pytest.raises(error) as info:
        _webhook(lambda r: httpx.Response(status, text="ada@example.com unknown")).send(EMAIL)
    assert info.value.code == status
    assert "ada@" not in str(info.value)


def test_webhook_connection_trouble_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientDeliveryError, match="ConnectError"):
        _webhook(handler).send(EMAIL)


# --- SMTP, against a real server on loopback ---


def _smtp(address: tuple[str, int], **kw) -> SmtpDelivery:
    host, port = address
    return SmtpDelivery(SmtpConfig(host=host, port=port, security="none", timeout_s=5, **kw))


def test_smtp_delivers_a_multipart_message(smtp, smtp_handler) -> None:
    _smtp(smtp, sender_name="The Shop").send(EMAIL)
    (got,) = smtp_handler.received
    assert got.to == ["ada@example.com"]
    assert got.message["Subject"] == "Hi Ada"
    assert got.message["From"] == "The Shop <shop@example.com>"
    assert got.message["Message-ID"] == "<t-1@example.com>"
    assert got.text().strip() == "plain body"
    assert got.html().strip() == "<p>html body</p>"


def test_smtp_550_is_permanent_and_hides_the_reply_text(smtp, smtp_handler) -> None:
    smtp_handler.refuse_rcpt = "550 5.1.1 <ada@example.com>: no such user"
    with pytest.raises(PermanentDeliveryError) as info:
        _smtp(smtp).send(EMAIL)
    assert info.value.code == 550
    assert "ada@" not in str(info.value)


def test_smtp_451_is_transient(smtp, smtp_handler) -> None:
    smtp_handler.refuse_rcpt = "451 4.3.0 try again later"
    with pytest.raises(TransientDeliveryError) as info:
        _smtp(smtp).send(EMAIL)
    assert info.value.code == 451


def test_smtp_connection_refused_is_transient() -> None:
    with pytest.raises(TransientDeliveryError, match="connection"):
        _smtp(("127.0.0.1", free_port())).send(EMAIL)


def test_starttls_against_a_server_without_it_is_transient(smtp) -> None:
    host, port = smtp
    delivery = SmtpDelivery(SmtpConfig(host=host, port=port, security="starttls", timeout_s=5))
    with pytest.raises(TransientDeliveryError, match="SMTPNotSupportedError"):
        delivery.send(EMAIL)
