"""What the profile API's handlers raise; :mod:`profile_api.errors` maps each to a response.

Messages name the parameter or rule, never a value (an email must not reach a log).
"""

from __future__ import annotations

from typing import ClassVar

from cdpflow.errors import CdpflowError

__all__ = [
    "ApiError",
    "BadRequest",
    "BrokerUnavailable",
    "ErasureDisabled",
    "Forbidden",
    "InternalError",
    "MethodNotAllowed",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "RequestTimeout",
    "Unauthorized",
]


class ApiError(CdpflowError):
    """A request answered with an error status."""

    status: ClassVar[int] = 500
    reason = "api_error"
    #: Seconds for a ``Retry-After`` header; ``None`` sends none.
    retry_after: int | None = None


class Unauthorized(ApiError):
    """No bearer token, or not one of ``CDPFLOW_API_TOKENS``."""

    status = 401
    reason = "unauthorized"


class Forbidden(ApiError):
    """A valid token that does not grant this request: a read token asking to erase, or
    the admin token asking to read."""

    status = 403
    reason = "forbidden"


class ErasureDisabled(ApiError):
    """An erasure asked of an API with no ``CDPFLOW_API_ADMIN_TOKENS`` configured."""

    status = 403
    reason = "erasure_disabled"


class BadRequest(ApiError):
    """A parameter or body that is missing or of the wrong shape."""

    status = 400
    reason = "bad_request"


class NotFound(ApiError):
    """No such profile (never seen, or erased), segment or route."""

    status = 404
    reason = "not_found"


class MethodNotAllowed(ApiError):
    """A route that exists, asked with a method it does not answer."""

    status = 405
    reason = "method_not_allowed"


class RequestTimeout(ApiError):
    """The body did not arrive within ``CDPFLOW_API_BODY_TIMEOUT_MS``."""

    status = 408
    reason = "request_timeout"


class PayloadTooLarge(ApiError):
    """A body over ``CDPFLOW_API_MAX_BODY_BYTES``."""

    status = 413
    reason = "payload_too_large"


class InternalError(ApiError):
    """A bug: answered as JSON like every other error, and logged with its type only."""

    status = 500
    reason = "internal_error"


class NotReady(ApiError):
    """The store has not caught up with the profiles topic since start-up."""

    status = 503
    reason = "not_ready"


class BrokerUnavailable(ApiError):
    """Kafka did not acknowledge an erasure in time; the client should retry."""

    status = 503
    reason = "broker_unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
