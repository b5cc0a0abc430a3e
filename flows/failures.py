"""The failure boundary: an exception while handling one record becomes data.

Every stage that handles one customer's record (decode, identity, profile fold and
timers, encode) catches what escapes it, turns it into a ``processing_error`` dead letter
and goes on. The dead letter names the stage, the exception type and where it was raised
(file, line, function), never the exception's message: messages can carry values, and
values can be personal data. The original bytes stay in the dead letter (and at their
source offset), so the event can be redriven once the cause is fixed.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from cdpflow.errors import describe_failure

__all__ = ["PROCESSING_ERRORS", "describe", "record_failure"]

_log = logging.getLogger("cdpflow.failures")

PROCESSING_ERRORS = Counter(
    "cdpflow_processing_errors",
    "Records a stage failed on and dead-lettered instead of stopping, by stage",
    ["stage"],
)


def describe(stage: str, exc: BaseException) -> str:
    """:func:`cdpflow.errors.describe_failure`: the same format in every part."""
    return describe_failure(stage, exc)


def record_failure(stage: str, exc: BaseException) -> str:
    """Count and log one failure (type and place only); returns :func:`describe`."""
    PROCESSING_ERRORS.labels(stage).inc()
    text = describe(stage, exc)
    _log.error("%s; the record is dead-lettered (processing_error)", text)
    return text
