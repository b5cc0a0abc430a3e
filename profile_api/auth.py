"""Bearer-token authentication and authorization for every ``/v1/`` route.

Runs as middleware, so no endpoint can forget it; the refusal is rendered by
:func:`profile_api.errors.error_response` like every other error.

Two kinds of token, each of which grants one thing:

- a **read token** (``CDPFLOW_API_TOKENS``) may ``GET``/``POST`` (look-ups), never erase;
- an **admin token** (``CDPFLOW_API_ADMIN_TOKENS``) may ``DELETE`` (erase), and nothing else.

So the method decides the grant needed. No token or an unknown one is ``401``; a known token
of the other kind ``403``; a ``DELETE`` when no admin token is configured ``403
erasure_disabled`` (after a valid read token — an anonymous caller learns only ``401``).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from cdpflow.secrets import Secret
from profile_api.errors import error_response
from profile_api.exceptions import ApiError, ErasureDisabled, Forbidden, Unauthorized

__all__ = ["BearerAuth"]

PROTECTED_PREFIX = "/v1/"
#: The one method that needs an admin token: erasure.
ERASE_METHOD = "DELETE"


class BearerAuth:
    """Answers 401/403 to a ``/v1/`` request whose bearer token does not grant it."""

    def __init__(
        self, app: ASGIApp, tokens: tuple[Secret, ...], admin_tokens: tuple[Secret, ...] = ()
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.admin_tokens = admin_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIX):
            refusal = self._refusal(scope)
            if refusal is not None:
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> ApiError | None:
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
        # Compare with every token of both kinds, so timing does not tell which one (or
        # which kind) nearly matched.
        reads = [t.matches(presented) for t in self.tokens]
        admins = [t.matches(presented) for t in self.admin_tokens]
        is_read, is_admin = bool(presented) and any(reads), bool(presented) and any(admins)
        if not (is_read or is_admin):
            return Unauthorized("missing or unknown bearer token")
        if scope["method"] == ERASE_METHOD:
            if not self.admin_tokens:
                return ErasureDisabled(
                    "erasure over HTTP is disabled: no CDPFLOW_API_ADMIN_TOKENS configured"
                )
            if not is_admin:
                return Forbidden("a read token cannot erase: erasure needs an admin token")
        elif not is_read:
            return Forbidden("an admin token may only erase: reading needs a read token")
        return None
