"""The one place where an error becomes a response: JSON ``{"error", "detail"}`` always,
for the handlers' :class:`~profile_api.exceptions.ApiError`, Starlette's own 404/405 (an
unknown route) and anything unexpected (500)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from profile_api.exceptions import ApiError, InternalError, MethodNotAllowed, NotFound

__all__ = ["api_error", "error_response", "http_error", "internal_error"]

log = logging.getLogger("cdpflow.profile_api")


def error_response(exc: ApiError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="cdpflow"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        {"error": exc.reason, "detail": str(exc)}, status_code=exc.status, headers=headers
    )


async def api_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`ApiError`."""
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (no such route, method not allowed), as JSON."""
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for it only
        raise exc
    if exc.status_code == 405:
        return error_response(MethodNotAllowed("method not allowed here"), exc.headers)
    if exc.status_code == 404:
        return error_response(NotFound("no such route"))
    failure = ApiError("request refused")
    return JSONResponse({"error": failure.reason, "detail": str(failure)},
                        status_code=exc.status_code)  # fmt: skip


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything a handler did not expect: 500 JSON. The log names the exception type, not
    its message (it may hold a value from the request)."""
    log.error("internal error answering %s: %s", request.method, type(exc).__name__)
    return error_response(InternalError("internal error"))
