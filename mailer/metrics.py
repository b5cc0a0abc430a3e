"""Prometheus metrics of one mailer process, on a registry of its own.

Served on ``/metrics`` when ``CDPFLOW_MAILER_METRICS_PORT`` is set (see
:mod:`mailer.worker`). Labels are statuses, reasons and stage names only: never a
customer id, an address or a trigger id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["MailerMetrics"]


class MailerMetrics:
    """Triggers by outcome, dead letters by reason, processing errors by stage, and
    profile snapshots the freshness rule kept out of the mailer's profile store."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.triggers = Counter(
            "cdpflow_mailer_triggers",
            "Messages of the triggers topic handled, by status",
            ["status"],
            registry=r,
        )
        self.dead_letters = Counter(
            "cdpflow_mailer_dead_letters",
            "Triggers written to the mailer's dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.processing_errors = Counter(
            "cdpflow_mailer_processing_errors",
            "Triggers an unexpected error stopped, dead-lettered instead of stopping the "
            "mailer, by stage",
            ["stage"],
            registry=r,
        )
        self.stale_snapshots = Counter(
            "cdpflow_mailer_stale_snapshots",
            "cdp.profiles records older than the stored profile, not applied",
            registry=r,
        )

    def watch_feed(self, skipped: Callable[[], Mapping[str, int]]) -> None:
        """Also expose the profile feed's skipped records by reason (the materializer's
        own counts, read at scrape time): ``cdpflow_mailer_profile_records_skipped``."""
        self.registry.register(_FeedSkipped(skipped))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class _FeedSkipped(Collector):
    def __init__(self, skipped: Callable[[], Mapping[str, int]]) -> None:
        self._skipped = skipped

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "cdpflow_mailer_profile_records_skipped",
            "cdp.profiles records the mailer's materializer did not apply, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(self._skipped().items()):
            family.add_metric([reason], n)
        yield family
