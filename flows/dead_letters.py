"""Dead letters: what could not be applied, with the reason and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadLetter", "Origin"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Source coordinates of a consumed message, and its bytes, kept for the dead letter."""

    topic: str | None
    partition: int | None
    offset: int | None
    key: bytes | None
    raw: bytes | None


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
        return {
            "reason": self.reason,
            "error": self.error,
            "error_type": self.error_type,
            "raw": o.raw if o else None,
            "key": o.key if o else None,
            "event_id": self.event_id,
            "source_topic": o.topic if o else None,
            "source_partition": o.partition if o else None,
            "source_offset": o.offset if o else None,
            "seen_at": self.seen_at,
        }
