"""Prometheus metrics of the dataflow.

They live in ``prometheus_client``'s default registry, which Bytewax's own web server
exports next to its per-step metrics: run with ``BYTEWAX_DATAFLOW_API_ENABLED=true`` and
scrape ``http://<host>:3030/metrics`` (``BYTEWAX_DATAFLOW_API_PORT`` to move it).
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["DEAD_LETTERS", "LATE_EVENTS", "TAG_CHANGES", "TRIGGERS"]

DEAD_LETTERS = Counter(
    "cdpflow_dead_letters", "Records written to the dead-letter topic, by reason", ["reason"]
)
LATE_EVENTS = Counter(
    "cdpflow_late_events",
    "Events too late for a window: lifetime aggregates took them, windows did not",
)
TRIGGERS = Counter("cdpflow_triggers", "Triggers emitted, by rule", ["rule"])
TAG_CHANGES = Counter("cdpflow_tag_changes", "Tag changes emitted, added or removed", ["added"])
