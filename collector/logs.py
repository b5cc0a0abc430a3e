"""Structured logs: one JSON object a line, on stderr.

Log lines carry names, counts, codes and durations only: never a body, a user id, an
email, an IP address or a write key. (uvicorn's access log, which prints client IPs, is
switched off in ``main``; :class:`~collector.app` logs requests itself.)
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["configure_logging", "log", "logger"]

logger = logging.getLogger("cdpflow.collector")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("cdpflow.collector", "uvicorn", "uvicorn.error"):
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.setLevel(level.upper())
        target.propagate = False


def log(level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with ``fields`` (names, counts, codes: no personal data)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
