"""Logs of every cdpflow process, one way: one JSON object a line on stderr (the default,
for log pipelines), or text for people (``--log-format text``).

A JSON line is ``{"ts", "level", "logger", "msg"}`` plus the record's ``fields`` (names,
counts, codes: never personal data) and ``exc_type`` when an exception is logged — its
type only, as its text can carry values.

>>> import logging
>>> r = logging.LogRecord("cdpflow.x", logging.INFO, "f", 1, "started %s", ("run",), None)
>>> r.created = 0.0
>>> JsonFormatter().format(r)
'{"ts":"1970-01-01T00:00:00.000+00:00","level":"info","logger":"cdpflow.x","msg":"started run"}'
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["LOG_FORMATS", "JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")
_TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


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


def configure_logging(
    level: str = "info", fmt: LogFormat = "json", loggers: Iterable[str] = ("",)
) -> None:
    """``loggers`` (default: the root) to stderr at ``level``, in ``fmt``; named loggers stop
    propagating, so a line is written once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT))
    for name in loggers:
        target = logging.getLogger(name)
        target.handlers[:] = [handler]
        target.setLevel(level.upper())
        if name:
            target.propagate = False
