"""Bearer-token authentication for every ``/v1/`` route.

Runs as middleware, so no endpoint can forget it; the refusal is rendered by
:func:`profile_api.errors.error_response` like every other error.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from profile_api.errors import error_response
from profile_api.exceptions import Unauthorized
from profile_api.secret import Secret

__all__ = ["BearerAuth"]

PROTECTED_PREFIX = "/v1/"


class BearerAuth:
    """Answers 401 to a ``/v1/`` request without one of ``tokens`` as its bearer token."""

    def __init__(self, app: ASGIApp, tokens: tuple[Secret, ...]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIX):
            scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
            # Compare with every token, so timing does not tell which one nearly matched.
            matches = [t.matches(token.strip()) for t in self.tokens]
            if scheme.lower() != "bearer" or not any(matches):
                response = error_response(Unauthorized("missing or unknown bearer token"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
