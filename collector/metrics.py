"""Prometheus metrics of one collector app, on a registry of its own (``/metrics``).

With several worker processes (``--workers``), ``prometheus_client`` runs in multiprocess
mode (see :mod:`collector.workers`): each process writes its values to files in
``multiprocess_dir`` and :meth:`Metrics.render` sums every process's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Requests by endpoint and status, events stored, rejects by reason, produce latency."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "cdpflow_collector_requests",
            "HTTP requests answered",
            ["endpoint", "status"],
            registry=r,
        )
        self.events = Counter(
            "cdpflow_collector_events", "Events acknowledged by Kafka", ["endpoint"], registry=r
        )
        self.rejects = Counter(
            "cdpflow_collector_rejects", "Events or requests refused", ["reason"], registry=r
        )
        self.produce_seconds = Histogram(
            "cdpflow_collector_produce_seconds",
            "From produce to the broker's acknowledgement of a request's last message",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight_bytes = Gauge(
            "cdpflow_collector_in_flight_bytes",
            "Request bytes admitted and not yet answered",
            registry=r,
            multiprocess_mode="livesum",  # the live workers' sum (multiprocess mode only)
        )
        self._names = frozenset(m.name for m in r.collect())

    def render(self) -> bytes:
        """The text exposition: this process's metrics, or all workers' summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        files = MultiProcessCollector(None, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(_Only(self._names, files))
        return generate_latest(registry)


class _Only(Collector):
    """The families of ``inner`` named in ``names``: the workers' files also hold the
    metrics other imported modules define on the default registry."""

    def __init__(self, names: Iterable[str], inner: Collector) -> None:
        self._names = frozenset(names)
        self._inner = inner

    def collect(self) -> Iterator[Metric]:
        return (m for m in self._inner.collect() if m.name in self._names)
