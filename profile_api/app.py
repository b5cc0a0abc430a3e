"""The profile API, assembled: routes, auth middleware, error mapping, lifespan.

>>> from state.store import MemoryProfileStore
>>> from profile_api.settings import ApiSettings
>>> from cdpflow.secrets import Secret
>>> app = create_app(ApiSettings(tokens=(Secret("t" * 16),)), store=MemoryProfileStore())
>>> sorted((r.path, sorted(r.methods or ())) for r in app.routes if r.path.startswith("/v1/"))
... # doctest: +NORMALIZE_WHITESPACE
[('/v1/profiles/lookup', ['POST']),
 ('/v1/profiles/{customer_id:opaque}', ['DELETE']),
 ('/v1/profiles/{customer_id:opaque}', ['GET', 'HEAD']),
 ('/v1/segments/{name}/members', ['GET', 'HEAD'])]
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from cdpflow.forget import ErasureProducer
from profile_api import endpoints
from profile_api.auth import BearerAuth
from profile_api.endpoints import Eraser, Services
from profile_api.errors import api_error, http_error, internal_error
from profile_api.exceptions import ApiError
from profile_api.materializer import Materializer
from profile_api.metrics import FeedStats, Metrics, RequestMetrics
from profile_api.settings import ApiSettings
from state.store import ProfileStore, RocksProfileStore

__all__ = ["create_app"]

log = logging.getLogger("cdpflow.profile_api")


class _OpaqueConvertor(PathConvertor):
    """Every character, line breaks included (``:path`` is ``.*``)."""

    regex = "[\\s\\S]*"


register_url_convertor("opaque", _OpaqueConvertor())


def create_app(
    settings: ApiSettings, store: ProfileStore | None = None, eraser: Eraser | None = None
) -> Starlette:
    """The app. With no ``store``, the lifespan opens the RocksDB store in
    ``settings.store_dir`` and follows the profiles topic into it; with one (tests), the
    caller feeds it and the app is ready at once.

    With admin tokens configured, erasures go through ``eraser`` or, if none is given, one
    :class:`~cdpflow.forget.ErasureProducer` the lifespan creates and flushes on shutdown.
    """

    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        producer = None
        if eraser is None and settings.admin_tokens:
            producer = ErasureProducer(
                settings.bootstrap_servers,
                settings.events_topic,
                timeout_s=settings.erase_timeout_s,
                source="profile API",
            )
        active = (eraser or producer) if settings.admin_tokens else None
        try:
            if store is not None:
                app.state.services = _services(
                    settings, store, lambda: True, active, metrics,
                    lambda customer_id: store.apply([(customer_id, None)], {}),
                )  # fmt: skip
                yield
                return
            async with _materialized(settings, active, metrics) as services:
                app.state.services = services
                yield
        finally:
            if producer is not None and producer.close(settings.erase_timeout_s):
                log.warning("erasure events still unacknowledged at shutdown")

    routes = [
        Route("/v1/profiles/lookup", endpoints.by_email, methods=["POST"]),
        # ``:opaque``: an id may hold ``/`` (sent as ``%2F``, which the server decodes) and
        # line breaks; endpoints.path_id decodes it again, strictly, from the raw path.
        Route("/v1/profiles/{customer_id:opaque}", endpoints.profile, methods=["GET"]),
        Route("/v1/profiles/{customer_id:opaque}", endpoints.erase, methods=["DELETE"]),
        Route("/v1/segments/{name}/members", endpoints.segment_members, methods=["GET"]),
        Route("/healthz", endpoints.healthz),
        Route("/readyz", endpoints.readyz),
        Route("/metrics", endpoints.metrics),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, metrics=metrics),
            Middleware(BearerAuth, tokens=settings.tokens, admin_tokens=settings.admin_tokens),
        ],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            Exception: internal_error,
        },
        lifespan=lifespan,
    )


def _services(
    settings: ApiSettings,
    store: ProfileStore,
    ready: Callable[[], bool],
    eraser: Eraser | None,
    metrics: Metrics,
    forget_local: Callable[[str], None],
) -> Services:
    return Services(
        store,
        ready,
        settings.max_page_size,
        eraser=eraser,
        forget_local=forget_local,
        erase_retry_after_s=settings.erase_retry_after_s,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        segments=settings.segments,
        metrics=metrics,
    )


@asynccontextmanager
async def _materialized(
    settings: ApiSettings, eraser: Eraser | None, metrics: Metrics
) -> AsyncIterator[Services]:
    """The RocksDB store in ``settings.store_dir``, followed by a materializer thread."""
    owned = RocksProfileStore(settings.store_dir)
    feed = Materializer(owned, settings.bootstrap_servers, settings.profiles_topic)
    metrics.feed = FeedStats(lambda: feed.applied, lambda: dict(feed.skipped), lambda: feed.ready)
    try:
        feed.start()
        log.info("profile API started on topic %s (erasure over HTTP %s)",
                 settings.profiles_topic, "enabled" if eraser else "disabled")  # fmt: skip
        yield _services(settings, owned, lambda: feed.ready, eraser, metrics, feed.erase)
    finally:
        feed.close()
        owned.close()
        log.info("profile API stopped")
