"""Request handlers: short, they read :class:`Services` and raise typed errors."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_to_bytes

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from cdpflow.topics import BrokerUnavailableError
from profile_api.exceptions import (
    BadRequest,
    BrokerUnavailable,
    ErasureDisabled,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RequestTimeout,
)
from profile_api.metrics import Metrics
from state.store import ProfileStore, StoredProfile, email_key
from state.store.exceptions import StoreError

__all__ = [
    "Eraser",
    "Services",
    "by_email",
    "customer_ref",
    "erase",
    "healthz",
    "metrics",
    "profile",
    "readyz",
    "segment_members",
]

log = logging.getLogger("cdpflow.profile_api")

DEFAULT_PAGE_SIZE = 100
#: Longest customer id the API reads, erases or takes as a cursor (``cdpflow forget``
#: takes any).
MAX_ID_BYTES = 512
#: Ids are opaque: everything after this in the raw path, percent-decoded, is the id.
_PROFILES_PATH = b"/v1/profiles/"
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
    max_body_bytes: int = 16 * 1024
    body_timeout_s: float = 10.0
    #: Segment names the rules define; ``None``: any name.
    segments: frozenset[str] | None = None
    metrics: Metrics | None = None


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _found(found: StoredProfile | None) -> JSONResponse:
    if found is None:
        raise NotFound("no profile for this customer")
    return JSONResponse(found.to_json(), headers=_PRIVATE)


async def profile(request: Request) -> JSONResponse:
    """``GET /v1/profiles/{customer_id}``: the latest snapshot."""
    return _found(_services(request).store.get(path_id(request)))


async def erase(request: Request) -> JSONResponse:
    """``DELETE /v1/profiles/{customer_id}`` (admin token): ``202`` with the erasure event's
    id once Kafka has acknowledged it; the local copy is deleted at once, and again when
    the dataflow's tombstone arrives. ``503`` with ``Retry-After`` if Kafka did not answer
    in time (the erasure may still happen; repeating it is harmless)."""
    services = _services(request)
    customer_id = path_id(request)
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


def path_id(request: Request) -> str:
    """The customer id of a ``/v1/profiles/{id}`` path: any string, percent-encoded
    (``team%2F42`` is ``team/42``). Decoded from the raw path, strictly, so bytes that
    are not UTF-8 are :class:`BadRequest` rather than a replacement character."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(_PROFILES_PATH):
        try:
            customer_id = unquote_to_bytes(raw[len(_PROFILES_PATH) :]).decode()
        except UnicodeDecodeError:
            raise BadRequest("customer_id: must be percent-encoded UTF-8") from None
    else:  # a server that keeps no raw path: the router's decoding
        customer_id = str(request.path_params["customer_id"])
    return _checked_id(customer_id, "customer_id")


def _checked_id(value: str, name: str) -> str:
    if not value:
        raise BadRequest(f"{name}: must not be empty")
    if len(value.encode(errors="surrogatepass")) > MAX_ID_BYTES:
        raise BadRequest(f"{name}: at most {MAX_ID_BYTES} bytes")
    return value


async def _body(request: Request, services: Services) -> bytes:
    """The request body, at most ``max_body_bytes`` (else 413) and within
    ``body_timeout_s`` (else 408): a look-up never holds unbounded memory or a slow
    client's connection."""
    limit = services.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body: at most {limit} bytes")
            chunks.append(chunk)

    try:
        async with asyncio.timeout(services.body_timeout_s):
            await read()
    except TimeoutError:
        raise RequestTimeout(f"body: not received within {services.body_timeout_s:g} s") from None
    except ClientDisconnect:
        raise BadRequest("body: the client went away") from None
    return b"".join(chunks)


async def by_email(request: Request) -> JSONResponse:
    """``POST /v1/profiles/lookup`` with ``{"email": ...}``: the email stays out of URLs
    (and so out of access logs and proxies).

    Answers the first claimant still holding the address (see
    :class:`~state.store.EmailMatch`), with ``"shared": true`` and the number of
    ``"claimants"`` when more than one customer holds it.
    """
    services = _services(request)
    try:
        body = orjson.loads(await _body(request, services))
    except orjson.JSONDecodeError:
        raise BadRequest("body must be a JSON object with an email") from None
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or email_key(email) is None:
        raise BadRequest("email: expected an email address")
    match = services.store.find_by_email(email)
    if match is None:
        raise NotFound("no profile holds this address")
    answer = {**match.profile.to_json(), "shared": match.shared, "claimants": match.claimants}
    return JSONResponse(answer, headers=_PRIVATE)


async def segment_members(request: Request) -> JSONResponse:
    """``GET /v1/segments/{name}/members?limit=&cursor=``: ids ascending; pass the answer's
    ``next_cursor`` as ``cursor`` for the next page (``null`` when done)."""
    services = _services(request)
    name = request.path_params["name"]
    if services.segments is not None and name not in services.segments:
        raise NotFound("no segment of this name in the rules")
    limit = _limit(request.query_params.get("limit"), services.max_page_size)
    cursor = request.query_params.get("cursor") or None  # empty: the first page
    if cursor is not None:
        cursor = _checked_id(cursor, "cursor")
    # One extra tells whether another page exists.
    members = services.store.segment_members(name, after=cursor, limit=limit + 1)
    page = members[:limit]
    more = len(members) > limit
    return JSONResponse(
        {"segment": name, "members": page, "next_cursor": page[-1] if more else None},
        headers=_PRIVATE,
    )


def _limit(raw: str | None, most: int) -> int:
    """``limit``: ASCII digits only (``int()`` also takes ``²``-like digits, spaces and
    ``_``), from 1 to ``most``."""
    if raw is None:
        return min(DEFAULT_PAGE_SIZE, most)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= most):
        raise BadRequest(f"limit: expected a whole number from 1 to {most}")
    return int(raw)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: Prometheus text; no token, like the collector's (no personal data)."""
    found = _services(request).metrics
    return Response(b"" if found is None else found.render(), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready once the store has caught up with the profiles topic after start-up."""
    if not _services(request).ready():
        raise NotReady("the profile store is still catching up with the profiles topic")
    return JSONResponse({"status": "ready"})
