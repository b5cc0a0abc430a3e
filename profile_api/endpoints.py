"""Request handlers: short, they read :class:`Services` and raise typed errors."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cdpflow.topics import BrokerUnavailableError
from profile_api.exceptions import (
    BadRequest,
    BrokerUnavailable,
    ErasureDisabled,
    NotFound,
    NotReady,
)
from state.store import ProfileStore, StoredProfile
from state.store.exceptions import StoreError

__all__ = [
    "Eraser",
    "Services",
    "by_email",
    "customer_ref",
    "erase",
    "healthz",
    "profile",
    "readyz",
    "segment_members",
]

log = logging.getLogger("cdpflow.profile_api")

DEFAULT_PAGE_SIZE = 100
#: Longest customer id an erasure accepts over HTTP (``cdpflow forget`` takes any).
MAX_ERASE_ID_BYTES = 512
#: Profiles are personal data: no shared cache may keep a copy.
_PRIVATE = {"Cache-Control": "no-store"}


class Eraser(Protocol):
    """Writes an erasure event and blocks until Kafka acknowledged it; returns its id.

    :class:`cdpflow.forget.ErasureProducer` in production; raises
    :class:`~cdpflow.topics.BrokerUnavailableError` when not acknowledged in time.
    """

    def request(self, customer_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Services:
    store: ProfileStore
    ready: Callable[[], bool]
    max_page_size: int
    #: ``None`` when no admin token is configured (erasure over HTTP disabled).
    eraser: Eraser | None = None
    #: Deletes one customer from the local store at once (serialized with the
    #: materializer's writes).
    forget_local: Callable[[str], None] | None = None
    erase_retry_after_s: int = 5


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


async def erase(request: Request) -> JSONResponse:
    """``DELETE /v1/profiles/{customer_id}`` (admin token): ``202`` with the erasure event's
    id once Kafka has acknowledged it; the local copy is deleted at once, and again when
    the dataflow's tombstone arrives. ``503`` with ``Retry-After`` if Kafka did not answer
    in time (the erasure may still happen; repeating it is harmless)."""
    services = _services(request)
    customer_id = _erasable_id(request.path_params["customer_id"])
    if services.eraser is None:  # the auth middleware refuses first; never reached
        raise ErasureDisabled("erasure over HTTP is disabled")
    ref = customer_ref(customer_id)
    try:
        event_id = await run_in_threadpool(services.eraser.request, customer_id)
    except BrokerUnavailableError:
        log.warning("erasure of customer %s not acknowledged by Kafka: answering 503", ref)
        raise BrokerUnavailable(
            "Kafka did not acknowledge the erasure in time; retry later",
            services.erase_retry_after_s,
        ) from None
    if services.forget_local is not None:
        try:
            await run_in_threadpool(services.forget_local, customer_id)
        except StoreError as exc:  # the tombstone will erase it; the erasure is on its way
            log.warning("erasure %s: local delete failed (%s); the tombstone will do it",
                        event_id, exc.reason)  # fmt: skip
    log.info("erasure %s requested over HTTP for customer %s", event_id, ref)
    return JSONResponse({"status": "accepted", "event_id": event_id}, status_code=202,
                        headers=_PRIVATE)  # fmt: skip


def customer_ref(customer_id: str) -> str:
    """A stable pseudonym of a customer id for logs: the id itself never goes there.

    Whoever knows the id finds its lines (``printf %s ID | sha256sum``, first 16 digits).

    >>> customer_ref("c-1001")
    'sha256:a4391d7e4aeae41b'
    """
    return "sha256:" + hashlib.sha256(customer_id.encode()).hexdigest()[:16]


def _erasable_id(raw: str) -> str:
    """The path's customer id, or :class:`BadRequest` if it cannot be a real one."""
    if not raw.strip():
        raise BadRequest("customer_id: must not be empty")
    if raw != raw.strip():
        raise BadRequest("customer_id: must not start or end with whitespace")
    if "\ufffd" in raw or not raw.isprintable():
        raise BadRequest("customer_id: must be printable UTF-8 text")
    if len(raw.encode()) > MAX_ERASE_ID_BYTES:
        raise BadRequest(f"customer_id: at most {MAX_ERASE_ID_BYTES} bytes")
    return raw


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
