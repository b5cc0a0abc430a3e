"""Prometheus metrics of one collector app, on a registry of its own (``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """Requests by endpoint and status, events stored, rejects by reason, produce latency."""

    def __init__(self) -> None:
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
        )
