"""The exception hierarchy every cdpflow package raises from.

Messages name the field, rule or setting that is wrong, never a payload value: an email
address or a name must not end up in a log line.
"""

import traceback
from pathlib import PurePath

__all__ = [
    "CdpflowError",
    "CodecError",
    "ConfigError",
    "CorruptRecordError",
    "EventValidationError",
    "UnknownSchemaError",
    "describe_failure",
]


class CdpflowError(Exception):
    """Root of every error cdpflow raises on purpose."""

    #: Stable, machine-readable code; dead letters carry it as ``reason``.
    reason: str = "error"


class ConfigError(CdpflowError):
    """A setting or a rules file is invalid; the message names it."""

    reason = "config"


class CodecError(CdpflowError):
    """Bytes that cannot be turned into a record."""

    reason = "codec"


class CorruptRecordError(CodecError):
    """Not Avro single-object encoding, truncated, or not readable with its schema."""

    reason = "corrupt_avro"


class UnknownSchemaError(CodecError):
    """Well-framed, but written with a schema fingerprint this reader does not know."""

    reason = "unknown_schema"


class EventValidationError(CdpflowError):
    """An event that decodes but breaks a semantic rule (missing ids, impossible time)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def describe_failure(stage: str, exc: BaseException) -> str:
    """``"<stage> failed: <Type> at <dir/file>:<line> in <function>"``: what a failure
    boundary keeps of an exception (its text can carry values, personal data among them).

    >>> try:
    ...     {}["k"]
    ... except KeyError as exc:
    ...     describe_failure("render", exc).startswith("render failed: KeyError at ")
    True
    """
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        path = PurePath(f.filename)
        where = f" at {path.parent.name}/{path.name}:{f.lineno} in {f.name}"
    return f"{stage} failed: {type(exc).__name__}{where}"
