"""From request items to Kafka messages: validate each, keep the good, dead-letter the bad.

Every event becomes a ``cdp.Event`` record (Segment calls by
:func:`collector.segment.segment_to_record`, cdpflow JSON events by
:func:`cdpflow.json_events.normalize_json`) and is checked against the schema while it is
encoded (:mod:`cdpflow.avro_writer`); its key is the customer id, else the anonymous id.
In a batch, an event that fails becomes a ``cdp.DeadLetter`` on the dead-letter topic
(reason, message naming the field, the item's JSON bytes, key, ``source_topic`` =
``http:<path>``) and is reported by its index; its siblings go on.

Nothing one item holds can fail its batch: an exception other than
``EventValidationError`` while mapping or encoding it (a bug) makes it a dead letter too,
reason ``processing_error`` with the exception's type only, and an item nested deeper
than orjson writes (254 levels) is kept in its dead letter with the deep part cut
(:func:`item_json`).
"""

from __future__ import annotations

import logging
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

__all__ = ["Intake", "Normalizer", "Rejected", "item_json"]

_log = logging.getLogger(__name__)

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
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - the failure boundary: one item, not the batch
                name = type(exc).__name__
                _log.warning("mapping a %s item failed: %s", source_topic, name)  # no values
                failed = EventValidationError("processing_error", f"{name} while mapping the item")
                out.rejected.append(Rejected(index, failed.reason, str(failed)))
                messages.append(self._dead_letter(item, failed, source_topic, now_ms))
                continue
            messages.extend(encoded)
            out.accepted += len(encoded)
        return out

    def _dead_letter(
        self, item: Any, exc: EventValidationError, source_topic: str, now_ms: int
    ) -> OutMessage:
        ident = _field(item, "userId", "customer_id", "anonymousId", "anonymous_id")
        raw, cut = item_json(item)
        letter = DeadLetter(
            reason=exc.reason,
            error=f"{exc} (raw: {cut})" if cut else str(exc),
            error_type=type(exc).__name__,
            origin=Origin(
                topic=source_topic,
                partition=None,
                offset=None,
                key=ident.encode() if ident else None,
                raw=raw,
            ),
            seen_at=now_ms,
            event_id=_field(item, "messageId", "event_id"),
        )
        value = self.codec.encode("cdp.DeadLetter", letter.to_record())
        return OutMessage(
            self.topics.dead_letters, letter.origin.key if letter.origin else None, value
        )


_new_tuple = tuple.__new__

#: Nesting kept in a dead letter's copy of an item (orjson writes at most 254 levels).
RAW_DEPTH = 200
_CUT = "<cut>"


def item_json(item: Any) -> tuple[bytes, str | None]:
    """The JSON of a request item, and what was cut from it (``None``: nothing).

    Items come from ``orjson.loads``, which reads up to 1024 levels of nesting, but
    ``orjson.dumps`` writes only 254: deeper objects and arrays are replaced by
    ``"<cut>"`` at :data:`RAW_DEPTH` levels, so the dead letter keeps the rest.

    >>> deep = [[[1]]]
    >>> item_json(deep)
    (b'[[[1]]]', None)
    >>> import orjson; item_json(orjson.loads(b"[" * 300 + b"]" * 300))[1]
    'nesting beyond 200 levels cut'
    """
    try:
        return orjson.dumps(item), None
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(_cut(item, RAW_DEPTH)), f"nesting beyond {RAW_DEPTH} levels cut"
    except orjson.JSONEncodeError:  # not from a JSON body (e.g. an int beyond 64 bits)
        return b"null", "not JSON, left out"


def _cut(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        return _CUT if depth == 0 else {k: _cut(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return _CUT if depth == 0 else [_cut(v, depth - 1) for v in value]
    return value


def _field(item: Any, *names: str) -> str | None:
    if not isinstance(item, dict):
        return None
    for name in names:
        value = item.get(name)
        if isinstance(value, str) and value:
            return value
    return None
