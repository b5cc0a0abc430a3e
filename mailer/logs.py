"""The mailer's logs on stderr: one JSON object a line (default), or text for people.

Log lines carry trigger ids, statuses, reasons, stage names and exception types only:
never an address, a name or a payload value.
"""

from __future__ import annotations

from cdpflow.logs import JsonFormatter, LogFormat
from cdpflow.logs import configure_logging as configure

__all__ = ["JsonFormatter", "LogFormat", "configure_logging"]


def configure_logging(level: str = "info", fmt: LogFormat = "json") -> None:
    """The root logger to stderr at ``level``, in ``fmt`` (:mod:`cdpflow.logs`)."""
    configure(level, fmt)
