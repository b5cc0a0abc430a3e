"""What the profile API's handlers raise; :mod:`profile_api.errors` maps each to a response.

Messages name the parameter or rule, never a value (an email must not reach a log).
"""

from __future__ import annotations

from typing import ClassVar

from cdpflow.errors import CdpflowError

__all__ = ["ApiError", "BadRequest", "NotFound", "NotReady", "Unauthorized"]


class ApiError(CdpflowError):
    """A request answered with an error status."""

    status: ClassVar[int] = 500
    reason = "api_error"


class Unauthorized(ApiError):
    """No bearer token, or not one of ``CDPFLOW_API_TOKENS``."""

    status = 401
    reason = "unauthorized"


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
