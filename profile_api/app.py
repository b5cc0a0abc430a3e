"""The profile API, assembled: routes, auth middleware, error mapping, lifespan.

>>> from state.store import MemoryProfileStore
>>> from profile_api.settings import ApiSettings
>>> from profile_api.secret import Secret
>>> app = create_app(ApiSettings(tokens=(Secret("t" * 16),)), store=MemoryProfileStore())
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1/"))
['/v1/profiles/lookup', '/v1/profiles/{customer_id}', '/v1/segments/{name}/members']
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from profile_api import endpoints
from profile_api.auth import BearerAuth
from profile_api.endpoints import Services
from profile_api.errors import api_error
from profile_api.exceptions import ApiError
from profile_api.materializer import Materializer
from profile_api.settings import ApiSettings
from state.store import ProfileStore, RocksProfileStore

__all__ = ["create_app"]

log = logging.getLogger("cdpflow.profile_api")


def create_app(settings: ApiSettings, store: ProfileStore | None = None) -> Starlette:
    """The app. With no ``store``, the lifespan opens the RocksDB store in
    ``settings.store_dir`` and follows the profiles topic into it; with one (tests), the
    caller feeds it and the app is ready at once."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if store is not None:
            app.state.services = Services(store, lambda: True, settings.max_page_size)
            yield
            return
        owned = RocksProfileStore(settings.store_dir)
        feed = Materializer(owned, settings.bootstrap_servers, settings.profiles_topic)
        try:
            feed.start()
            app.state.services = Services(owned, lambda: feed.ready, settings.max_page_size)
            log.info("profile API started on topic %s", settings.profiles_topic)
            yield
        finally:
            feed.close()
            owned.close()
            log.info("profile API stopped")

    routes = [
        Route("/v1/profiles/lookup", endpoints.by_email, methods=["POST"]),
        Route("/v1/profiles/{customer_id}", endpoints.profile, methods=["GET"]),
        Route("/v1/segments/{name}/members", endpoints.segment_members, methods=["GET"]),
        Route("/healthz", endpoints.healthz),
        Route("/readyz", endpoints.readyz),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, tokens=settings.tokens)],
        exception_handlers={ApiError: api_error},
        lifespan=lifespan,
    )
