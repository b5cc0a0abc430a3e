"""Prometheus metrics of the profile API, on a registry of its own (``GET /metrics``).

Requests are counted by a middleware; the materializer's counts (records applied, records
skipped by reason, whether the store has caught up) are read from it at scrape time, so
:mod:`profile_api.materializer` stays free of Prometheus (the mailer runs one too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FeedStats", "Metrics", "RequestMetrics"]


class FeedStats:
    """What the scrape reads from the materializer; a stand-in when there is none."""

    def __init__(
        self,
        applied: Callable[[], int] = lambda: 0,
        skipped: Callable[[], Mapping[str, int]] = dict,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.applied = applied
        self.skipped = skipped
        self.ready = ready


class Metrics:
    """Requests by endpoint and status, and the materializer's :class:`FeedStats`."""

    def __init__(self, feed: FeedStats | None = None) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "cdpflow_profile_api_requests",
            "HTTP requests answered",
            ["endpoint", "status"],
            registry=r,
        )
        self.feed = feed or FeedStats()
        r.register(_FeedCollector(self))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _FeedCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        feed = self._metrics.feed
        applied = CounterMetricFamily(
            "cdpflow_profile_api_records_applied",
            "cdp.profiles records (snapshots and tombstones) written to the store",
        )
        applied.add_metric([], feed.applied())
        yield applied
        skipped = CounterMetricFamily(
            "cdpflow_profile_api_records_skipped",
            "cdp.profiles records not applied, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(feed.skipped().items()):
            skipped.add_metric([reason], count)
        yield skipped
        ready = GaugeMetricFamily(
            "cdpflow_profile_api_ready", "1 once the store has caught up with cdp.profiles"
        )
        ready.add_metric([], 1.0 if feed.ready() else 0.0)
        yield ready


class RequestMetrics:
    """Counts answers by endpoint (the handler's name; ``unmatched`` for no route) and
    status: no path, so no customer id, reaches a label."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

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
