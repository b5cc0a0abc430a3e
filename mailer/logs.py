"""The mailer's logs on stderr: one JSON object a line (default), or text for people.

Log lines carry trigger ids, statuses, reasons, stage names and exception types only:
never an address, a name or a payload value.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["json", "text"]
_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg"}`` (and ``exc_type``), as the collector logs."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    """The root logger to stderr at ``level``, in ``fmt``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
