"""Request handlers. Each stays short: read, authenticate, map, store, answer; failures are
raised as :mod:`collector.exceptions` and turned into responses by ``app.py``."""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cdpflow.errors import EventValidationError
from cdpflow.json_events import normalize_json, parse_time
from cdpflow.secrets import Secret
from collector.body import parse_json, read_body
from collector.exceptions import InvalidEvent, MalformedRequest, Unauthorized
from collector.gate import InFlightGate
from collector.intake import Intake, Normalizer
from collector.logs import log
from collector.metrics import Metrics
from collector.openapi import openapi_spec
from collector.producer import EventSink, OutMessage
from collector.ratelimit import RateLimiter
from collector.responses import JsonResponse
from collector.segment import segment_to_record
from collector.settings import CollectorSettings
from collector.shopify import shopify_to_json
from collector.signatures import verify_generic, verify_shopify

__all__ = [
    "Services",
    "alias",
    "batch",
    "demo",
    "group",
    "healthz",
    "identify",
    "metrics",
    "openapi",
    "page",
    "readyz",
    "screen",
    "track",
    "webhook",
]

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers need, built once by ``create_app`` (``request.app.state.services``)."""

    settings: CollectorSettings
    normalizer: Normalizer
    sink: EventSink
    gate: InFlightGate
    limiter: RateLimiter
    metrics: Metrics
    now_ms: Callable[[], int]
    now_s: Callable[[], float]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# --- Segment tracking API --------------------------------------------------------------


def _segment(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        s = _services(request)
        limit = s.settings.max_event_bytes
        with s.gate.admit(_reservation(request, limit)):
            header_key = _check_basic_auth(request, s.settings.write_keys)
            body = _json_object(await read_body(request, limit))
            client = _check_body_write_key(body, s.settings.write_keys, header_key)
            s.limiter.take(client, 1)
            now = s.now_ms()
            try:
                record = segment_to_record(body, kind, received_at=now, client_ip=_ip(request))
                message = s.normalizer.encode_record(record)
            except EventValidationError as exc:
                raise InvalidEvent(exc.reason, str(exc)) from exc
            await _store(s, [message], kind, accepted=1)
        return JsonResponse({"success": True})

    endpoint.__name__ = kind
    return endpoint


track = _segment("track")
identify = _segment("identify")
page = _segment("page")
screen = _segment("screen")
group = _segment("group")
alias = _segment("alias")


async def batch(request: Request) -> Response:
    s = _services(request)
    limit = s.settings.max_batch_bytes
    with s.gate.admit(_reservation(request, limit)):
        header_key = _check_basic_auth(request, s.settings.write_keys)
        raw = await read_body(request, limit)
        body = _json_object(raw)
        client = _check_body_write_key(body, s.settings.write_keys, header_key)
        items = body.get("batch")
        if not isinstance(items, list):
            raise MalformedRequest("batch: expected an array")
        s.limiter.take(client, len(items))
        now, ip, max_event = s.now_ms(), _ip(request), s.settings.max_event_bytes
        context = body.get("context") if isinstance(body.get("context"), dict) else None
        sent_at = _batch_time(body.get("sentAt"))

        # Only a body above the per-event limit can hold an event above it.
        too_large = _oversized(items, max_event, len(raw)) if len(raw) > max_event else set()

        def mapper(item: Any) -> list[Json]:
            if too_large and id(item) in too_large:
                raise EventValidationError("event_too_large", f"event exceeds {max_event} bytes")
            return [
                segment_to_record(
                    item,
                    None,
                    received_at=now,
                    batch_sent_at=sent_at,
                    batch_context=context,
                    client_ip=ip,
                )
            ]

        # The compiled path takes the usual messages; the rest, invalid ones included,
        # go to ``mapper``, the reference.
        fast = s.normalizer.segment_fast
        done = None if fast is None else fast.encode(items, now, sent_at, context, ip, too_large)
        source = f"http:{request.url.path}"
        intake = s.normalizer.collect(items, mapper, source_topic=source, now_ms=now, done=done)
        await _store_intake(s, intake, "batch")
    return _batch_response(intake)


# --- webhooks --------------------------------------------------------------------------


async def webhook(request: Request) -> Response:
    s = _services(request)
    source = request.path_params["source"]
    secrets = s.settings.webhook_secrets.get(source)
    if secrets is None:
        raise Unauthorized("unknown webhook source")
    limit = s.settings.max_batch_bytes
    with s.gate.admit(_reservation(request, limit)):
        raw = await read_body(request, limit)
        now = s.now_ms()
        if source == "shopify" or source.startswith("shopify-"):
            verify_shopify(secrets, request.headers.get("x-shopify-hmac-sha256"), raw)
            intake = _shopify_intake(s, request, parse_json(raw), now)
        else:
            h = request.headers
            verify_generic(
                secrets,
                h.get("x-cdpflow-timestamp"),
                h.get("x-cdpflow-signature"),
                raw,
                now_s=s.now_s(),
                tolerance_s=s.settings.webhook_tolerance_s,
            )
            intake = _generic_intake(s, source, parse_json(raw), now)
        s.limiter.take(f"webhook:{source}", intake.accepted + len(intake.rejected))
        await _store_intake(s, intake, "webhook")
    return _batch_response(intake)


def _shopify_intake(s: Services, request: Request, body: Any, now: int) -> Intake:
    """A Shopify delivery is stored even when it does not map: Shopify cannot fix its
    payload and would retry a 4xx for two days, so the bad one goes to the dead letters."""
    topic = request.headers.get("x-shopify-topic")
    if not topic:
        raise MalformedRequest("X-Shopify-Topic is required")
    webhook_id = request.headers.get("x-shopify-webhook-id", "")
    return s.normalizer.collect(
        [body],
        lambda b: [normalize_json(e) for e in shopify_to_json(topic, b, webhook_id, now)],
        source_topic=f"http:/v1/webhooks/{request.path_params['source']}",
        now_ms=now,
    )


def _generic_intake(s: Services, source: str, body: Any, now: int) -> Intake:
    """One cdpflow JSON event (invalid -> 400), or a list / ``{"batch": [...]}`` of them."""

    def mapper(item: Any) -> list[Json]:
        if not isinstance(item, dict):
            raise EventValidationError("invalid_event", "event: expected a JSON object")
        return [normalize_json({**item, "source": f"webhook:{source}", "received_at": now})]

    if isinstance(body, dict) and "batch" not in body:
        try:
            message = s.normalizer.encode_record(mapper(body)[0])
        except EventValidationError as exc:
            raise InvalidEvent(exc.reason, str(exc)) from exc
        return Intake(messages=[message], accepted=1)
    items = body.get("batch") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise MalformedRequest('body: expected an event, a list of events or {"batch": [...]}')
    return s.normalizer.collect(
        items, mapper, source_topic=f"http:/v1/webhooks/{source}", now_ms=now
    )


# --- operations ------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JsonResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    s = _services(request)
    if await run_in_threadpool(s.sink.ready, 2.0):
        return JsonResponse({"status": "ready"})
    return JsonResponse(
        {"status": "kafka unreachable"},
        status_code=503,
        headers={"Retry-After": str(s.settings.broker_retry_after_s)},
    )


async def metrics(request: Request) -> Response:
    return Response(_services(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JsonResponse(openapi_spec())


async def demo(request: Request) -> Response:
    query = request.url.query
    return RedirectResponse("/static/shop.html" + (f"?{query}" if query else ""), status_code=307)


# --- helpers ---------------------------------------------------------------------------


async def _store(s: Services, messages: Sequence[OutMessage], endpoint: str, accepted: int) -> None:
    started = time.perf_counter()
    await s.sink.send(messages)
    s.metrics.produce_seconds.observe(time.perf_counter() - started)
    s.metrics.events.labels(endpoint).inc(accepted)


async def _store_intake(s: Services, intake: Intake, endpoint: str) -> None:
    await _store(s, intake.messages, endpoint, intake.accepted)
    for r in intake.rejected:
        s.metrics.rejects.labels(r.reason).inc()
    if intake.rejected:
        reasons = sorted({r.reason for r in intake.rejected})
        log(
            logging.INFO,
            "events dead-lettered",
            endpoint=endpoint,
            rejected=len(intake.rejected),
            accepted=intake.accepted,
            reasons=reasons,
        )


def _batch_response(intake: Intake) -> Response:
    return JsonResponse(
        {
            "success": True,
            "accepted": intake.accepted,
            "rejected": [r.to_json() for r in intake.rejected],
        }
    )


def _reservation(request: Request, limit: int) -> int:
    declared = request.headers.get("content-length", "")
    encoded = request.headers.get("content-encoding", "identity").lower() not in ("", "identity")
    if declared.isdigit() and not encoded:
        return min(int(declared), limit)
    return limit


def _oversized(items: list[Any], limit: int, body_bytes: int) -> set[int]:
    """The ``id``s of the items whose JSON is longer than ``limit`` bytes.

    Items are serialized in runs of about ``limit / 2`` bytes, judged by the body's average
    (one ``orjson.dumps`` a run, not one an item): an item is a part of its run's JSON, so
    a run within the limit holds no item above it; only the items of a longer run are
    measured one by one.
    """
    per_run = max(1, len(items) * limit // (2 * max(1, body_bytes)))
    found: set[int] = set()
    for start in range(0, len(items), per_run):
        run = items[start : start + per_run]
        if len(orjson.dumps(run)) > limit:
            found.update(id(item) for item in run if len(orjson.dumps(item)) > limit)
    return found


def _batch_time(value: Any) -> Any:
    """The batch's ``sentAt`` parsed once for all its events; unparsable, it is left as it
    is, so that each event that uses it is rejected naming ``sentAt``."""
    if value is None:
        return None
    try:
        return parse_time(value, "sentAt")
    except EventValidationError:
        return value


def _json_object(raw: bytes) -> Json:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise MalformedRequest("body: expected a JSON object")
    return body


def _check_basic_auth(request: Request, keys: Sequence[Secret]) -> int | None:
    """The position of the write key named by HTTP Basic auth; None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None  # the write key may be in the body (sendBeacon cannot set headers)
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Unauthorized("Authorization: expected Basic with the write key as user name")
    try:
        user = base64.b64decode(encoded.strip(), validate=True).partition(b":")[0]
    except (binascii.Error, ValueError):
        raise Unauthorized("Authorization: not base64") from None
    return _key_index(user, keys)


def _check_body_write_key(body: Json, keys: Sequence[Secret], found: int | None) -> str:
    """The rate-limit client of a request: its write key's position, from the header
    (``found``) or else from ``writeKey`` in the body."""
    if found is None:
        key = body.get("writeKey")
        if not isinstance(key, str) or not key:
            raise Unauthorized("write key required: HTTP Basic user name or writeKey in the body")
        found = _key_index(key.encode(), keys)
    return f"key:{found}"


def _key_index(candidate: bytes, keys: Sequence[Secret]) -> int:
    """Compares with every key in constant time; :class:`Unauthorized` if none matches."""
    found = -1
    for index, key in enumerate(keys):
        if key.matches(candidate):
            found = index
    if found < 0:
        raise Unauthorized("unknown write key")
    return found


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None
