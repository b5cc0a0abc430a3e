"""The collector application, assembled: routes, middleware, error mapping, lifespan.

>>> from cdpflow.secrets import Secret
>>> from collector.settings import CollectorSettings
>>> app = create_app(CollectorSettings(write_keys=(Secret("k"),)))
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1/") and len(r.path) > 6)
['/v1/alias', '/v1/batch', '/v1/group', '/v1/identify', '/v1/import', '/v1/page', \
'/v1/screen', '/v1/track', '/v1/webhooks/{source}']
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdpflow.codec import default_codec
from collector import endpoints, unsubscribe
from collector.auth import KeyRing
from collector.endpoints import Services
from collector.exceptions import CollectorError
from collector.gate import InFlightGate
from collector.intake import Normalizer
from collector.logs import log
from collector.metrics import Metrics
from collector.producer import EventSink, KafkaSink
from collector.ratelimit import RateLimiter
from collector.responses import JsonResponse
from collector.settings import CollectorSettings

__all__ = ["create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: What ``/static`` serves in production: the browser snippet; the demo shop only with
#: ``CDPFLOW_COLLECTOR_DEMO=1``.
SNIPPET = frozenset({"cdp.js"})


def create_app(
    settings: CollectorSettings,
    sink: EventSink | None = None,
    *,
    now_ms: Callable[[], int] | None = None,
    now_s: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    metrics_dir: str | None = None,
) -> Starlette:
    """The app; ``sink`` defaults to a :class:`KafkaSink` started and flushed by the lifespan.

    ``now_ms``/``now_s`` read the wall clock (event times, webhook timestamps);
    ``monotonic`` the rate limits' clock. ``metrics_dir``: the workers' shared metrics
    directory (multiprocess mode, see :mod:`collector.workers`), else None.
    """
    metrics = Metrics(metrics_dir)
    if sink is None:
        sink = KafkaSink(settings, on_broker_down=_log_broker_down)
    services = Services(
        settings=settings,
        keys=KeyRing(settings.write_keys, settings.server_write_keys),
        normalizer=Normalizer(default_codec(), settings.topics, compiled=settings.fast_path),
        sink=sink,
        gate=InFlightGate(
            settings.max_in_flight_bytes,
            settings.overload_retry_after_s,
            metrics.in_flight_bytes,
            key_share_pct=settings.in_flight_key_share_pct,
            peer_share_pct=settings.in_flight_peer_share_pct,
        ),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_burst, monotonic),
        metrics=metrics,
        now_ms=now_ms or (lambda: time.time_ns() // 1_000_000),
        now_s=now_s,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services.sink.start()
        log(logging.INFO, "collector started", topic=settings.topics.events)
        try:
            yield
        finally:
            left = services.sink.close(10.0)
            log(logging.INFO, "collector stopped", unsent=left)

    routes = [
        Route("/v1/track", endpoints.track, methods=["POST"]),
        Route("/v1/identify", endpoints.identify, methods=["POST"]),
        Route("/v1/page", endpoints.page, methods=["POST"]),
        Route("/v1/screen", endpoints.screen, methods=["POST"]),
        Route("/v1/group", endpoints.group, methods=["POST"]),
        Route("/v1/alias", endpoints.alias, methods=["POST"]),
        Route("/v1/batch", endpoints.batch, methods=["POST"]),
        Route("/v1/import", endpoints.batch, methods=["POST"]),
        # analytics.js (analytics-next) posts single calls to one-letter paths, batches to /b.
        Route("/v1/b", endpoints.batch, methods=["POST"]),
        *(
            Route(f"/v1/{kind[0]}", getattr(endpoints, kind), methods=["POST"])
            for kind in ("track", "identify", "page", "screen", "group", "alias")
        ),
        Route("/v1/webhooks/{source}", endpoints.webhook, methods=["POST"]),
        *(  # one-click unsubscribe links of the mailer's emails (collector/unsubscribe.py)
            [Route("/v1/unsubscribe", unsubscribe.unsubscribe, methods=["GET", "POST"])]
            if settings.unsubscribe_secrets
            else []
        ),
        Route("/healthz", endpoints.healthz),
        Route("/readyz", endpoints.readyz),
        Route("/metrics", endpoints.metrics),
        Route("/openapi.json", endpoints.openapi),
        *(
            [Route("/demo", endpoints.demo)] if settings.demo else []  # not in production
        ),
        Mount(
            "/static",
            SomeStaticFiles(STATIC_DIR, None if settings.demo else SNIPPET),
            name="static",
        ),
    ]
    middleware = [
        Middleware(RequestMetrics, metrics=metrics),
        Middleware(HeaderLimit, max_bytes=MAX_HEADER_BYTES),
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["POST", "GET"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
            expose_headers=["Retry-After"],
            max_age=600,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={CollectorError: collector_error},
        lifespan=lifespan,
    )
    app.state.services = services
    return app


async def collector_error(request: Request, exc: Exception) -> Response:
    """The one place where a refusal becomes a status code."""
    if not isinstance(exc, CollectorError):  # pragma: no cover - registered for it only
        raise exc
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="cdpflow"'
    if exc.status in _MAY_LEAVE_BODY_UNREAD:
        headers["Connection"] = "close"  # the rest of a slow body is not waited for
    services: Services = request.app.state.services
    services.metrics.rejects.labels(exc.reason).inc()
    log(
        logging.INFO,
        "request refused",
        path=request.url.path,
        status=exc.status,
        reason=exc.reason,
        error=str(exc),
    )
    return JsonResponse(
        {"success": False, "reason": exc.reason, "error": str(exc)},
        status_code=exc.status,
        headers=headers,
    )


#: Refusals that can come before the body is read (authentication, admission, limits,
#: the body deadline): the connection is closed rather than kept for the body's rest.
_MAY_LEAVE_BODY_UNREAD = frozenset({401, 403, 408, 413, 415, 429})

MAX_HEADER_BYTES = 16 * 1024
"""Request headers, names and values together, the collector reads at most (431 beyond).
The HTTP parser itself accepts more (uvicorn with httptools has no limit): a reverse proxy
in front should cap what reaches the process; this keeps the app from working on it."""


class HeaderLimit:
    """``431`` for a request whose headers exceed ``max_bytes``, before any handler runs."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) for k, v in scope["headers"])
            if size > self.max_bytes:
                response = JsonResponse(
                    {
                        "success": False,
                        "reason": "headers_too_large",
                        "error": f"request headers exceed {self.max_bytes} bytes",
                    },
                    status_code=431,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestMetrics:
    """Counts answers by endpoint and status; logs them (no client address, no body)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            endpoint = getattr(scope.get("endpoint"), "__name__", "unmatched")
            self.metrics.requests.labels(endpoint, str(status)).inc()
            log(
                logging.DEBUG,
                "request",
                endpoint=endpoint,
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )


class SomeStaticFiles(StaticFiles):
    """``directory``'s files, or only those named in ``only`` (404 for the others)."""

    def __init__(self, directory: Path, only: frozenset[str] | None) -> None:
        super().__init__(directory=directory)
        self.only = only

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if self.only is not None and path not in self.only:
            return "", None
        return super().lookup_path(path)


def _log_broker_down(code: str) -> None:
    log(logging.WARNING, "kafka unreachable: answering 503", code=code)
