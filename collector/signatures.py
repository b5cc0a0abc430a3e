"""Webhook signatures: constant-time HMAC-SHA256 checks against every valid secret.

Generic scheme (``/v1/webhooks/{source}``)::

    X-Cdpflow-Timestamp: <unix seconds>
    X-Cdpflow-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>[,v1=<hex>...]

The timestamp must lie within the tolerance (default ±300 s) of the collector's clock, so a
captured request cannot be replayed later. Shopify's scheme is ``X-Shopify-Hmac-Sha256:
<base64 HMAC-SHA256(secret, body)>``. Either way, any configured secret of the source may
match: two at once during a rotation. ``body`` is the request body after any
``Content-Encoding`` is removed.

What a signature covers, and why the mapping is safe anyway:

- **Generic**: the timestamp and the body. A captured request replays only within the
  tolerance; inside it, the events' own ``event_id`` s (in the signed body) make a replay
  a duplicate, which the dataflow's dedupe drops.
- **Shopify**: the body only. ``X-Shopify-Topic``, ``X-Shopify-Webhook-Id``,
  ``X-Shopify-Shop-Domain`` and the other headers are not covered, and there is no
  timestamp, so a captured delivery can be replayed at any time with any of them changed.
  Hence :mod:`collector.shopify` takes nothing that matters from them: the ``event_id`` is
  derived from the signed body (the order, checkout, cart or customer id and, for a
  change, its ``updated_at``) and the topic, so the same body gives the same event however
  often and with whatever webhook id it comes; and a body that plainly belongs to another
  resource than the topic claims (a customer with ``line_items``, a checkout with
  ``financial_status``...) is refused. What remains possible with a captured body is
  presenting it under another topic of the same resource kind (at most one event per
  topic and version, each one the body's own data), never a second order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from cdpflow.secrets import Secret
from collector.exceptions import Unauthorized

__all__ = ["sign_generic", "sign_shopify", "verify_generic", "verify_shopify"]


def sign_generic(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Cdpflow-Signature`` value a sender computes (also used by tests and docs)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def sign_shopify(secret: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def verify_generic(
    secrets: Sequence[Secret],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now_s: float,
    tolerance_s: int,
) -> None:
    """Raise :class:`Unauthorized` unless one ``v1`` signature matches one secret in time."""
    if not timestamp or not signature:
        raise Unauthorized("X-Cdpflow-Timestamp and X-Cdpflow-Signature are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise Unauthorized("X-Cdpflow-Timestamp: expected unix seconds") from None
    if abs(now_s - sent) > tolerance_s:
        raise Unauthorized(f"X-Cdpflow-Timestamp: outside the {tolerance_s} s tolerance")
    offered = [
        part.strip()[3:].encode() for part in signature.split(",") if part.strip()[:3] == "v1="
    ]
    expected = [sign_generic(s.reveal_bytes(), sent, body)[3:].encode() for s in secrets]
    if not _any_match(offered, expected):
        raise Unauthorized("X-Cdpflow-Signature: no valid signature")


def verify_shopify(secrets: Sequence[Secret], signature: str | None, body: bytes) -> None:
    if not signature:
        raise Unauthorized("X-Shopify-Hmac-Sha256 is required")
    try:
        offered = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("X-Shopify-Hmac-Sha256: not base64") from None
    expected = [hmac.new(s.reveal_bytes(), body, hashlib.sha256).digest() for s in secrets]
    if not _any_match([offered], expected):
        raise Unauthorized("X-Shopify-Hmac-Sha256: no valid signature")


def _any_match(offered: Sequence[bytes], expected: Sequence[bytes]) -> bool:
    # Compare every pair (no early exit), each in constant time.
    found = False
    for o in offered:
        for e in expected:
            found |= hmac.compare_digest(o, e)
    return found
