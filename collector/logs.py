"""Structured logs: one JSON object a line, on stderr.

Log lines carry names, counts, codes and durations only: never a body, a user id, an
email, an IP address or a write key. (uvicorn's access log, which prints client IPs, is
switched off in ``main``; :class:`~collector.app` logs requests itself.)
"""

from __future__ import annotations

import logging
from typing import Any

from cdpflow.logs import JsonFormatter, LogFormat
from cdpflow.logs import configure_logging as configure

__all__ = ["JsonFormatter", "configure_logging", "log", "logger"]

logger = logging.getLogger("cdpflow.collector")


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    configure(level, fmt, ("cdpflow.collector", "cdpflow.kafka", "uvicorn", "uvicorn.error"))


def log(level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with ``fields`` (names, counts, codes: no personal data)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
