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
    "NotFound",
    "NotReady",
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
    """No such profile (never seen, or erased)."""

    status = 404
    reason = "not_found"


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
