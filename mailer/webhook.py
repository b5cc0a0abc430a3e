"""Delivery by POST to an email provider's webhook, signed with HMAC-SHA256.

Body: JSON ``{"trigger_id", "rule", "template", "from", "to", "subject", "text",
"html", "headers"}``; ``headers`` holds ``List-Unsubscribe`` and ``List-Unsubscribe-Post``
when the email has a one-click unsubscribe link (else it is empty), for the provider to
set on the message. Headers: ``X-Cdpflow-Timestamp`` (Unix seconds), ``X-Cdpflow-Signature:
v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>`` and
``Idempotency-Key: <trigger_id>``, so the provider can refuse replays and duplicates.
Status 2xx is delivered; 408, 429 and 5xx are transient; any other 4xx permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
import orjson

from cdpflow.secrets import Secret
from mailer.exceptions import PermanentDeliveryError, TransientDeliveryError
from mailer.message import ONE_CLICK, OutgoingEmail

__all__ = ["WebhookDelivery", "sign"]

_TRANSIENT = {408, 425, 429}


def sign(secret: Secret, timestamp: int, body: bytes) -> str:
    """The ``X-Cdpflow-Signature`` value.

    >>> sign(Secret("s3cret"), 1700000000, b"{}")[:9]
    'v1=979268'
    """
    mac = hmac.new(secret.reveal().encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def _list_headers(email: OutgoingEmail) -> dict[str, str]:
    if not email.list_unsubscribe:
        return {}
    return {"List-Unsubscribe": email.list_unsubscribe, "List-Unsubscribe-Post": ONE_CLICK}


class WebhookDelivery:
    """A :class:`~mailer.delivery.Delivery` to ``url``."""

    def __init__(
        self,
        url: str,
        secret: Secret,
        *,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
        wall_clock_s: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._secret = secret
        self._client = client or httpx.Client(timeout=timeout_s)
        self._wall_clock_s = wall_clock_s

    def send(self, email: OutgoingEmail) -> None:
        body = orjson.dumps(
            {
                "trigger_id": email.trigger_id,
                "rule": email.rule,
                "template": email.template,
                "from": email.sender,
                "to": email.to,
                "subject": email.subject,
                "text": email.text,
                "html": email.html,
                "headers": _list_headers(email),
            }
        )
        ts = int(self._wall_clock_s())
        headers = {
            "Content-Type": "application/json",
            "X-Cdpflow-Timestamp": str(ts),
            "X-Cdpflow-Signature": sign(self._secret, ts, body),
            "Idempotency-Key": email.trigger_id,
        }
        try:
            answer = self._client.post(self._url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise TransientDeliveryError(f"webhook: {type(exc).__name__}") from None
        status = answer.status_code
        if 200 <= status < 300:
            return
        if status in _TRANSIENT or status >= 500:
            raise TransientDeliveryError(f"webhook answered {status}", code=status)
        raise PermanentDeliveryError(f"webhook answered {status}", code=status)

    def close(self) -> None:
        self._client.close()
