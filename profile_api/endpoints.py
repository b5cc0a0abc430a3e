"""Request handlers: short, they read :class:`Services` and raise typed errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from profile_api.exceptions import BadRequest, NotFound, NotReady
from state.store import ProfileStore, StoredProfile

__all__ = ["Services", "by_email", "healthz", "profile", "readyz", "segment_members"]

DEFAULT_PAGE_SIZE = 100
#: Profiles are personal data: no shared cache may keep a copy.
_PRIVATE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Services:
    store: ProfileStore
    ready: Callable[[], bool]
    max_page_size: int


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _found(found: StoredProfile | None) -> JSONResponse:
    if found is None:
        raise NotFound("no profile for this customer")
    return JSONResponse(found.to_json(), headers=_PRIVATE)


async def profile(request: Request) -> JSONResponse:
    """``GET /v1/profiles/{customer_id}``: the latest snapshot."""
    return _found(_services(request).store.get(request.path_params["customer_id"]))


async def by_email(request: Request) -> JSONResponse:
    """``POST /v1/profiles/lookup`` with ``{"email": ...}``: the email stays out of URLs
    (and so out of access logs and proxies)."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("body must be a JSON object with an email") from None
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise BadRequest("email: expected an email address")
    return _found(_services(request).store.find_by_email(email))


async def segment_members(request: Request) -> JSONResponse:
    """``GET /v1/segments/{name}/members?limit=&cursor=``: ids ascending; pass the answer's
    ``next_cursor`` as ``cursor`` for the next page (``null`` when done)."""
    services = _services(request)
    raw_limit = request.query_params.get("limit", str(DEFAULT_PAGE_SIZE))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= services.max_page_size:
        raise BadRequest(f"limit: expected a whole number from 1 to {services.max_page_size}")
    limit = int(raw_limit)
    cursor = request.query_params.get("cursor") or None
    name = request.path_params["name"]
    # One extra tells whether another page exists.
    members = services.store.segment_members(name, after=cursor, limit=limit + 1)
    page = members[:limit]
    more = len(members) > limit
    return JSONResponse(
        {"segment": name, "members": page, "next_cursor": page[-1] if more else None},
        headers=_PRIVATE,
    )


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready once the store has caught up with the profiles topic after start-up."""
    if not _services(request).ready():
        raise NotReady("the profile store is still catching up with the profiles topic")
    return JSONResponse({"status": "ready"})
