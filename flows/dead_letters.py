"""Dead letters: what could not be applied, with the reason and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_RAW_BYTES", "DeadLetter", "Origin"]

MAX_RAW_BYTES = 256 * 1024
"""Dead letters keep at most this much of the original bytes (Kafka's default message
limit is 1 MiB)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Source coordinates of a consumed message, and its bytes, kept for the dead letter;
    ``caught_up``: the source's news on its partition, if the message carried any
    (:mod:`flows.stream_clock`)."""

    topic: str | None
    partition: int | None
    offset: int | None
    key: bytes | None
    raw: bytes | None
    caught_up: bool | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One ``cdp.DeadLetter`` record before encoding (``seen_at`` in ms since the epoch)."""

    reason: str
    error: str
    error_type: str
    origin: Origin | None
    seen_at: int
    event_id: str | None = None

    def to_record(self) -> dict[str, object]:
        o = self.origin
        raw, error = (o.raw if o else None), self.error
        if raw is not None and len(raw) > MAX_RAW_BYTES:
            # Kafka would refuse the whole dead letter, and that would stop the dataflow;
            # the original stays at its source offset.
            error = f"{error} (raw bytes cut to {MAX_RAW_BYTES} of {len(raw)})"
            raw = raw[:MAX_RAW_BYTES]
        return {
            "reason": self.reason,
            "error": error,
            "error_type": self.error_type,
            "raw": raw,
            "key": o.key if o else None,
            "event_id": self.event_id,
            "source_topic": o.topic if o else None,
            "source_partition": o.partition if o else None,
            "source_offset": o.offset if o else None,
            "seen_at": self.seen_at,
        }
