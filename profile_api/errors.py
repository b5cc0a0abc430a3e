"""The one place where an :class:`~profile_api.exceptions.ApiError` becomes a response."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from profile_api.exceptions import ApiError

__all__ = ["api_error", "error_response"]


def error_response(exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="cdpflow"'} if exc.status == 401 else {}
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
