"""Prometheus metrics of the dataflow.

They live in ``prometheus_client``'s default registry, which Bytewax's own web server
exports next to its per-step metrics: run with ``BYTEWAX_DATAFLOW_API_ENABLED=true`` and
scrape ``http://<host>:3030/metrics`` (``BYTEWAX_DATAFLOW_API_PORT`` to move it).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from state.traits.state import SKIPPED

__all__ = ["DEAD_LETTERS", "LATE_EVENTS", "TAG_CHANGES", "TRAIT_SKIPS", "TRIGGERS"]

DEAD_LETTERS = Counter(
    "cdpflow_dead_letters", "Records written to the dead-letter topic, by reason", ["reason"]
)
LATE_EVENTS = Counter(
    "cdpflow_late_events",
    "Events too late for a window: lifetime aggregates took them, windows did not",
)
TRIGGERS = Counter("cdpflow_triggers", "Triggers emitted, by rule", ["rule"])
TAG_CHANGES = Counter("cdpflow_tag_changes", "Tag changes emitted, added or removed", ["added"])


class _TraitSkips(Collector):
    """``state.traits`` counts events a declared trait skipped for a missing or ill-typed
    value (pure state keeps a plain counter); this exports it at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "cdpflow_trait_values_skipped",
            "Events (or each-elements) a declared trait skipped: missing or ill-typed value",
            labels=["trait", "reason"],
        )
        for (trait, reason), n in sorted(SKIPPED.items()):
            family.add_metric([trait, reason], n)
        yield family


TRAIT_SKIPS = _TraitSkips()
REGISTRY.register(TRAIT_SKIPS)
