"""The exception hierarchy every cdpflow package raises from.

Messages name the field, rule or setting that is wrong, never a payload value: an email
address or a name must not end up in a log line.
"""

__all__ = [
    "CdpflowError",
    "CodecError",
    "ConfigError",
    "CorruptRecordError",
    "EventValidationError",
    "UnknownSchemaError",
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
