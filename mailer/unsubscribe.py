"""One-click unsubscribe tokens (RFC 8058 links): signed by the mailer, checked by the
collector's ``/v1/unsubscribe`` (:mod:`collector.unsubscribe`).

A token is ``1.<payload>.<mac>``, both parts unpadded URL-safe base64. The payload is
the expiry (Unix seconds, 4 bytes big-endian), the customer id's length (1 byte), the
customer id and the trigger id (UTF-8); the MAC is the first 16 bytes of HMAC-SHA256
over ``cdpflow-unsubscribe.1.<payload>`` with the secret. The first configured secret
signs; every configured one (two during a rotation) verifies, each compared in constant
time. Nothing in a token is secret (the ids are readable), but none can be made or
changed without the secret, and it stops working at its expiry.

>>> from cdpflow.secrets import Secret
>>> key = (Secret("k" * 32),)
>>> token = sign_token(key, "c-1", "t-9", expires_s=2_000_000_000)
>>> verify_token(key, token, now_s=1_900_000_000)
UnsubscribeToken(customer_id='c-1', trigger_id='t-9', expires_s=2000000000)
>>> verify_token(key, token, now_s=2_000_000_001)
Traceback (most recent call last):
...
mailer.unsubscribe.TokenExpired: token expired
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdpflow.errors import CdpflowError, ConfigError
from cdpflow.secrets import Secret, secrets_from_env

__all__ = [
    "MAX_TOKEN_CHARS",
    "SECRET_VARIABLE",
    "TokenExpired",
    "TokenForged",
    "TokenInvalid",
    "TokenMalformed",
    "UnsubscribeToken",
    "event_id_for",
    "secrets_from_settings",
    "sign_token",
    "verify_token",
]

#: The one setting both sides read: the mailer signs, the collector verifies.
SECRET_VARIABLE = "CDPFLOW_UNSUBSCRIBE_SECRET"  # noqa: S105 - its name

_VERSION = "1"
_CONTEXT = b"cdpflow-unsubscribe.1."
_MAC_BYTES = 16
_HEAD = struct.Struct(">IB")
#: Longer tokens are refused before any decoding (ids are at most 255 + 128 bytes).
MAX_TOKEN_CHARS = 700


class TokenInvalid(CdpflowError):
    """A token that unsubscribes nobody; ``reason`` says why, the message never the token."""

    reason = "invalid_token"


class TokenMalformed(TokenInvalid):
    reason = "malformed_token"


class TokenForged(TokenInvalid):
    reason = "invalid_signature"


class TokenExpired(TokenInvalid):
    reason = "expired_token"


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    customer_id: str
    trigger_id: str
    expires_s: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise TokenMalformed("token is not URL-safe base64")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenMalformed("token is not URL-safe base64") from None


def _mac(secret: Secret, payload_b64: str) -> bytes:
    msg = _CONTEXT + payload_b64.encode("ascii")
    return hmac.new(secret.reveal_bytes(), msg, hashlib.sha256).digest()[:_MAC_BYTES]


def sign_token(
    secrets: Sequence[Secret], customer_id: str, trigger_id: str, *, expires_s: int
) -> str:
    """A token for ``customer_id`` from the email of ``trigger_id``, signed with the
    first secret. ``ValueError`` for ids that do not fit (named, never shown)."""
    if not secrets:
        raise ValueError("no unsubscribe secret configured")
    cid, tid = customer_id.encode(), trigger_id.encode()
    if not 0 < len(cid) <= 255 or not 0 < len(tid) <= 128:
        raise ValueError("customer_id (1-255 bytes) or trigger_id (1-128 bytes) out of range")
    if not 0 < expires_s < 2**32:
        raise ValueError("expires_s out of range")
    payload = _b64(_HEAD.pack(expires_s, len(cid)) + cid + tid)
    return f"{_VERSION}.{payload}.{_b64(_mac(secrets[0], payload))}"


def verify_token(secrets: Sequence[Secret], token: str, *, now_s: float) -> UnsubscribeToken:
    """The token's contents, or :class:`TokenMalformed` / :class:`TokenForged` /
    :class:`TokenExpired`. The signature is checked before the payload is read."""
    if not secrets:
        raise TokenForged("no unsubscribe secret configured")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed("token too long")
    version, _, rest = token.partition(".")
    payload_b64, _, mac_b64 = rest.partition(".")
    if version != _VERSION or not payload_b64 or not mac_b64:
        raise TokenMalformed("token is not <version>.<payload>.<signature>")
    mac = _unb64(mac_b64)
    _unb64(payload_b64)  # the alphabet, before the MAC is computed over it
    # Every secret is tried, so the time taken does not say which one matched.
    matched = [hmac.compare_digest(_mac(s, payload_b64), mac) for s in secrets]
    if not any(matched):
        raise TokenForged("token signature does not match")
    raw = _unb64(payload_b64)
    if len(raw) < _HEAD.size:
        raise TokenMalformed("token payload too short")
    expires_s, cid_len = _HEAD.unpack_from(raw)
    try:
        cid = raw[_HEAD.size : _HEAD.size + cid_len].decode()
        tid = raw[_HEAD.size + cid_len :].decode()
    except UnicodeDecodeError:
        raise TokenMalformed("token payload is not UTF-8") from None
    if len(cid.encode()) != cid_len or not cid or not tid:
        raise TokenMalformed("token payload has no customer or trigger id")
    if now_s >= expires_s:
        raise TokenExpired("token expired")
    return UnsubscribeToken(cid, tid, expires_s)


def event_id_for(token: str) -> str:
    """The id of the consent event a token writes: the same for every use of the same
    token, so a replayed request is deduplicated downstream (``state`` drops an event id
    it has seen).

    >>> event_id_for("1.a.b") == event_id_for("1.a.b"), event_id_for("1.a.b")[:6]
    (True, 'unsub-')
    """
    return "unsub-" + hashlib.sha256(token.encode()).hexdigest()[:32]


def secrets_from_settings(env: Mapping[str, str]) -> tuple[Secret, ...]:
    """``CDPFLOW_UNSUBSCRIBE_SECRET`` (or ``_FILE``): one secret, or two during a rotation
    (the first signs), each at least 32 characters; ``()`` when unset."""
    secrets = secrets_from_env(env, SECRET_VARIABLE, min_length=32)
    if len(secrets) > 2:
        raise ConfigError(f"{SECRET_VARIABLE}: at most two secrets (the new one first)")
    return secrets
