"""What the collector's handlers raise; ``app.py`` maps each to its response in one place.

Messages name the field or rule, never a value: they go back to the client and into logs.
"""

from __future__ import annotations

from typing import ClassVar

from cdpflow.errors import CdpflowError

__all__ = [
    "BodyTimeout",
    "BrokerUnavailable",
    "CollectorError",
    "ForbiddenForPublicKey",
    "InvalidEvent",
    "MalformedRequest",
    "Overloaded",
    "PayloadTooLarge",
    "RateLimited",
    "TooManyItems",
    "Unauthorized",
    "UnsupportedEncoding",
]


class CollectorError(CdpflowError):
    """A request the collector answers with an error status."""

    status: ClassVar[int] = 500
    reason = "collector_error"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(CollectorError):
    """Missing or wrong write key, unknown webhook source, bad or stale signature."""

    status = 401
    reason = "unauthorized"


class ForbiddenForPublicKey(CollectorError):
    """A call a public (browser, mobile) write key may not make, such as an alias."""

    status = 403
    reason = "forbidden_for_public_key"


class MalformedRequest(CollectorError):
    """The body is not JSON, not gzip as announced, or not the expected shape."""

    status = 400
    reason = "malformed_request"


class InvalidEvent(CollectorError):
    """A single event that fails normalization or the ``cdp.Event`` schema."""

    status = 400

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooManyItems(CollectorError):
    """A batch with more items than the collector maps in one request."""

    status = 400
    reason = "too_many_items"


class BodyTimeout(CollectorError):
    """The body did not arrive in time: a slow client must not hold a slot for ever."""

    status = 408
    reason = "body_timeout"


class PayloadTooLarge(CollectorError):
    status = 413
    reason = "payload_too_large"


class UnsupportedEncoding(CollectorError):
    status = 415
    reason = "unsupported_encoding"


class Overloaded(CollectorError):
    """Too many request bytes in flight: back-pressure, the client retries later."""

    status = 429
    reason = "overloaded"


class RateLimited(CollectorError):
    """A write key or webhook source sends more events a second than it is allowed."""

    status = 429
    reason = "rate_limited"


class BrokerUnavailable(CollectorError):
    """Kafka did not acknowledge every event of the request; nothing is promised stored."""

    status = 503
    reason = "broker_unavailable"
