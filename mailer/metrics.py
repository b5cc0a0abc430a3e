"""Prometheus metrics of one mailer process, on a registry of its own.

Served on ``/metrics`` when ``CDPFLOW_MAILER_METRICS_PORT`` is set (see
:mod:`mailer.worker`). Labels are statuses, reasons and stage names only: never a
customer id, an address or a trigger id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

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

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
