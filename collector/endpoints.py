"""Request handlers. Each stays short: read, authenticate, map, store, answer; failures are
raised as :mod:`collector.exceptions` and turned into responses by ``app.py``."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cdpflow.errors import EventValidationError
from cdpflow.json_events import normalize_json, parse_time
from collector.auth import KeyRing, WriteKey
from collector.body import parse_json, read_body
from collector.exceptions import (
    ForbiddenForPublicKey,
    InvalidEvent,
    MalformedRequest,
    TooManyItems,
    Unauthorized,
)
from collector.gate import BODY_KEY, InFlightGate
from collector.intake import Intake, Normalizer, Rejected
from collector.items import TOO_DEEP, TOO_LARGE, unfit_items, with_stand_ins, writable
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
    keys: KeyRing
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
        header_key = s.keys.from_header(request.headers.get("authorization"))  # 401 first
        if kind == "alias" and header_key is not None:
            _check_may_alias(header_key)
        with _admit(s, request, limit, header_key):
            body = _json_object(await read_body(request, limit, s.settings.body_timeout_s))
            key = header_key or s.keys.from_body(body.get("writeKey"))
            if kind == "alias":
                _check_may_alias(key)
            s.limiter.take(key.client, 1)
            if not writable(body):
                raise InvalidEvent(TOO_DEEP, "message: nested deeper than JSON can be stored")
            now = s.now_ms()
            try:
                record = segment_to_record(
                    body, kind, received_at=now, client_ip=_ip(request), public=key.public
                )
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
    header_key = s.keys.from_header(request.headers.get("authorization"))  # 401 first
    with _admit(s, request, limit, header_key):
        raw = await read_body(request, limit, s.settings.body_timeout_s)
        body = _json_object(raw)
        key = header_key or s.keys.from_body(body.get("writeKey"))
        items = body.get("batch")
        if not isinstance(items, list):
            raise MalformedRequest("batch: expected an array")
        _check_item_count(s, items)
        s.limiter.take(key.client, len(items))
        now, ip, max_event = s.now_ms(), _ip(request), s.settings.max_event_bytes
        context = body.get("context") if isinstance(body.get("context"), dict) else None
        sent_at = _batch_time(body.get("sentAt"))
        public = key.public
        unfit = unfit_items(items, max_event, len(raw))
        if TOO_DEEP in unfit.values():
            items, unfit = with_stand_ins(items, unfit)

        def mapper(item: Any) -> list[Json]:
            reason = unfit.get(id(item)) if unfit else None
            if reason is not None:
                raise EventValidationError(reason, _UNFIT_ERRORS[reason].format(max_event))
            return [
                segment_to_record(
                    item,
                    None,
                    received_at=now,
                    batch_sent_at=sent_at,
                    batch_context=context,
                    client_ip=ip,
                    public=public,
                )
            ]

        # The compiled path takes the usual messages; the rest, invalid ones included,
        # go to ``mapper``, the reference.
        fast = s.normalizer.segment_fast
        skip = set(unfit)
        done = (
            None
            if fast is None
            else fast.encode(items, now, sent_at, context, ip, skip, public=public)
        )
        source = f"http:{request.url.path}"
        intake = s.normalizer.collect(items, mapper, source_topic=source, now_ms=now, done=done)
        await _store_intake(s, intake, "batch")
    return _batch_response(s, intake)


_UNFIT_ERRORS = {
    TOO_LARGE: "event exceeds {} bytes",
    TOO_DEEP: "event nested deeper than JSON can be stored",
}


# --- webhooks --------------------------------------------------------------------------


async def webhook(request: Request) -> Response:
    s = _services(request)
    source = request.path_params["source"]
    secrets = s.settings.webhook_secrets.get(source)
    if secrets is None:
        raise Unauthorized("unknown webhook source")
    limit = s.settings.max_batch_bytes
    with s.gate.admit(_reservation(request, limit), key=f"webhook:{source}", peer=_ip(request)):
        raw = await read_body(request, limit, s.settings.body_timeout_s)
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
    return _batch_response(s, intake)


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
    _check_item_count(s, items)
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
    """The demo shop; routed only when ``CDPFLOW_COLLECTOR_DEMO=1``."""
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


def _batch_response(s: Services, intake: Intake) -> Response:
    """The answer to a batch: every reject counted, the first ones listed (index, reason,
    error), so the answer stays small whatever the batch holds."""
    listed = intake.rejected[: s.settings.max_rejects_listed]
    return JsonResponse(
        {
            "success": True,
            "accepted": intake.accepted,
            "rejected": [_short(r) for r in listed],
            "rejected_count": len(intake.rejected),
        }
    )


_MAX_ERROR_CHARS = 200


def _short(r: Rejected) -> dict[str, Any]:
    out = r.to_json()
    if len(r.error) > _MAX_ERROR_CHARS:
        out["error"] = r.error[: _MAX_ERROR_CHARS - 3] + "..."
    return out


def _admit(
    s: Services, request: Request, limit: int, key: WriteKey | None
) -> AbstractContextManager[None]:
    """The request's part of the in-flight budget, from its key's share (the shared
    ``body-key`` share while its key is still unread) and its client address's."""
    client = BODY_KEY if key is None else key.client
    return s.gate.admit(_reservation(request, limit), key=client, peer=_ip(request))


def _reservation(request: Request, limit: int) -> int:
    declared = request.headers.get("content-length", "")
    encoded = request.headers.get("content-encoding", "identity").lower() not in ("", "identity")
    if declared.isdigit() and not encoded:
        return min(int(declared), limit)
    return limit


def _check_may_alias(key: WriteKey) -> None:
    if key.public:
        raise ForbiddenForPublicKey(
            "alias: a public write key may not merge customers; send it with a server key"
        )


def _check_item_count(s: Services, items: list[Any]) -> None:
    """At most ``max_batch_items`` items, and never more than the key's burst: checked
    before any item is mapped or any token taken."""
    cap = min(s.settings.max_batch_items, s.limiter.max_cost)
    if len(items) > cap:
        raise TooManyItems(f"batch: at most {cap:g} items a request")


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


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None
