"""From request items to Kafka messages: validate each, keep the good, dead-letter the bad.

Every event becomes a ``cdp.Event`` record (Segment calls by
:func:`collector.segment.segment_to_record`, cdpflow JSON events by
:func:`cdpflow.json_events.normalize_json`) and is checked against the schema while it is
encoded (:mod:`cdpflow.avro_writer`); its key is the customer id, else the anonymous id.
In a batch, an event that fails becomes a ``cdp.DeadLetter`` on the dead-letter topic
(reason, message naming the field, the item's JSON bytes, key, ``source_topic`` =
``http:<path>``) and is reported by its index; its siblings go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cdpflow.avro_writer import SchemaMismatch, compile_writer
from cdpflow.codec import MARKER, AvroCodec
from cdpflow.errors import EventValidationError
from cdpflow.json_events import normalize_json
from cdpflow.settings import Topics
from collector import fastpath
from collector.producer import OutMessage
from flows.dead_letters import DeadLetter, Origin

__all__ = ["Intake", "Normalizer", "Rejected"]

Json = dict[str, Any]
#: Turns one request item into the ``cdp.Event`` record(s) it stands for (``normalize_json``
#: of JSON events); raises EventValidationError.
ItemMapper = Callable[[Any], list[Json]]


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    reason: str
    error: str

    def to_json(self) -> Json:
        return {"index": self.index, "reason": self.reason, "error": self.error}


@dataclass(slots=True)
class Intake:
    """What one request produces: events, dead letters, and the per-index rejects."""

    messages: list[OutMessage] = field(default_factory=list)
    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)


class Normalizer:
    """JSON events to ``cdp.Event`` messages for one codec and set of topics."""

    __slots__ = ("_write_event", "codec", "segment_fast", "topics")

    def __init__(self, codec: AvroCodec, topics: Topics, *, compiled: bool = True) -> None:
        self.codec = codec
        self.topics = topics
        #: Segment batches mapped and encoded by compiled code (``collector.fastpath``);
        #: None: all in Python (``compiled=False``, or the extension is not usable).
        self.segment_fast = fastpath.load(codec, topics.events) if compiled else None
        # Checks each record against cdp.Event while it encodes it (one pass; see
        # avro_writer): the bytes codec.encode would write, with the same header.
        self._write_event = compile_writer(
            codec.schema("cdp.Event"), MARKER + codec.fingerprint_of("cdp.Event")
        )

    def encode(self, event: Json) -> OutMessage:
        """One JSON event as a ``cdp.Event`` message; ``EventValidationError`` if invalid."""
        return self.encode_record(normalize_json(event))

    def encode_record(self, record: Json) -> OutMessage:
        """One ``cdp.Event`` record (see ``normalize_json``) as a message, checked against
        the schema while it is encoded; ``EventValidationError`` naming the field."""
        try:
            value = self._write_event(record)
        except SchemaMismatch as exc:
            raise EventValidationError(
                "schema_mismatch", f"does not fit cdp.Event at: {exc.field or 'record'}"
            ) from None
        key = record["customer_id"] or record["anonymous_id"]
        if not key:
            raise EventValidationError("missing_identity", "customer_id or anonymous_id: required")
        # tuple.__new__: a NamedTuple's own __new__ is Python code, a third of this call.
        return _new_tuple(OutMessage, (self.topics.events, key.encode(), value))

    def collect(
        self,
        items: Sequence[Any],
        mapper: ItemMapper,
        *,
        source_topic: str,
        now_ms: int,
        done: list[OutMessage | None] | None = None,
    ) -> Intake:
        """Map and encode every item; each failure becomes a reject and a dead letter.

        ``done``: the items' messages already made by the fast path, ``None`` for those
        left to ``mapper``."""
        if done is not None and done.count(None) == 0:
            return Intake(messages=done, accepted=len(done))  # type: ignore[arg-type]
        out = Intake()
        encode = self.encode_record
        messages = out.messages
        for index, item in enumerate(items):
            if done is not None and (message := done[index]) is not None:
                messages.append(message)
                out.accepted += 1
                continue
            try:
                records = mapper(item)
                if len(records) == 1:  # most items: no list of messages to build
                    message = encode(records[0])
                    messages.append(message)
                    out.accepted += 1
                    continue
                encoded = [encode(record) for record in records]
            except EventValidationError as exc:
                out.rejected.append(Rejected(index, exc.reason, str(exc)))
                messages.append(self._dead_letter(item, exc, source_topic, now_ms))
                continue
            messages.extend(encoded)
            out.accepted += len(encoded)
        return out

    def _dead_letter(
        self, item: Any, exc: EventValidationError, source_topic: str, now_ms: int
    ) -> OutMessage:
        ident = _field(item, "userId", "customer_id", "anonymousId", "anonymous_id")
        letter = DeadLetter(
            reason=exc.reason,
            error=str(exc),
            error_type=type(exc).__name__,
            origin=Origin(
                topic=source_topic,
                partition=None,
                offset=None,
                key=ident.encode() if ident else None,
                raw=orjson.dumps(item),
            ),
            seen_at=now_ms,
            event_id=_field(item, "messageId", "event_id"),
        )
        value = self.codec.encode("cdp.DeadLetter", letter.to_record())
        return OutMessage(
            self.topics.dead_letters, letter.origin.key if letter.origin else None, value
        )


_new_tuple = tuple.__new__


def _field(item: Any, *names: str) -> str | None:
    if not isinstance(item, dict):
        return None
    for name in names:
        value = item.get(name)
        if isinstance(value, str) and value:
            return value
    return None
