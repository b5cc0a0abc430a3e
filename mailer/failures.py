"""The mailer's failure boundary: what an unexpected error becomes.

An exception while handling one trigger (decode, policy, render, building the message,
delivery) is not allowed to stop the mailer: :class:`~mailer.sink.TriggerMailer` turns it
into a ``processing_error`` dead letter and goes on with the next trigger. The letter
names the stage, the exception type and where it was raised (file, line, function),
never the exception's message, which can carry values (an address, a name). The format
is the dataflow's (``flows.failures``), so one reader understands both.
"""

from __future__ import annotations

from cdpflow.errors import describe_failure

__all__ = ["PROCESSING_ERROR", "describe"]

PROCESSING_ERROR = "processing_error"


def describe(stage: str, exc: BaseException) -> str:
    """:func:`cdpflow.errors.describe_failure`: the same format in every part."""
    return describe_failure(stage, exc)
