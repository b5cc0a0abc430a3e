"""The mailer's failure boundary: what an unexpected error becomes.

An exception while handling one trigger (decode, policy, render, building the message,
delivery) is not allowed to stop the mailer: :class:`~mailer.sink.TriggerMailer` turns it
into a ``processing_error`` dead letter and goes on with the next trigger. The letter
names the stage, the exception type and where it was raised (file, line, function),
never the exception's message, which can carry values (an address, a name). The format
is the dataflow's (``flows.failures``), so one reader understands both.
"""

from __future__ import annotations

import traceback
from pathlib import PurePath

__all__ = ["PROCESSING_ERROR", "describe"]

PROCESSING_ERROR = "processing_error"


def describe(stage: str, exc: BaseException) -> str:
    """``"<stage> failed: <Type> at <dir/file>:<line> in <function>"``, with no values.

    >>> try:
    ...     {}["k"]
    ... except KeyError as exc:
    ...     describe("render", exc).startswith("render failed: KeyError at ")
    True
    """
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        path = PurePath(f.filename)
        where = f" at {path.parent.name}/{path.name}:{f.lineno} in {f.name}"
    return f"{stage} failed: {type(exc).__name__}{where}"
