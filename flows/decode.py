"""The ``decode`` operator: Kafka messages in, ``Event``s and dead letters out.

Nothing that fails here stops the dataflow: corrupt bytes, unknown schema fingerprints,
records of the wrong type, missing ids, times and dates outside :mod:`state.bounds`,
non-finite or huge amounts and over-long strings (:func:`state.validation.check_event`)
each become a :class:`DeadLetter` carrying the original bytes and source offset; so does
any exception (``processing_error``, :mod:`flows.failures`).

``cdp.Event`` bytes are read straight into :class:`Event` by a reader generated per writer
schema (:data:`EVENT_INTO`); what it refuses, and records of any other writer, take the
dict and :func:`event_from_record`, so every dead letter keeps its reason and message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from bytewax.dataflow import Stream, operator

from cdpflow.avro_reader import Into
from cdpflow.codec import AvroCodec
from cdpflow.errors import CodecError, EventValidationError
from flows.clock import Clock
from flows.dead_letters import DeadLetter, Origin
from flows.failures import record_failure
from flows.kafka_io import PROGRESS_HEADER
from state.bounds import MAX_DATE, MIN_DATE
from state.events import Event
from state.validation import EventLimits, check_event

__all__ = ["EVENT_INTO", "DecodeOut", "decode", "decode_one", "event_from_record", "signup_iso"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MIN_DAYS = MIN_DATE.toordinal() - _EPOCH_ORDINAL
_MAX_DAYS = MAX_DATE.toordinal() - _EPOCH_ORDINAL

SourceItem = KafkaSourceMessage[bytes | None, bytes | None] | KafkaError[Any, Any]


@dataclass(frozen=True)
class DecodeOut:
    """``oks``: events ready to apply; ``errs``: dead letters."""

    oks: Stream[Event]
    errs: Stream[DeadLetter]


def to_ms(value: datetime | int) -> int:
    """Avro ``timestamp-millis`` arrives as an aware datetime; exact integer maths."""
    if isinstance(value, int):
        return value
    return (value - _EPOCH) // _MS


def event_from_record(record: dict[str, Any], origin: Any = None) -> Event:
    """A decoded ``cdp.Event`` record as the profile logic's :class:`Event`.

    Takes records decoded with or without logical types; a ``signup_date`` becomes an
    ISO date string either way (it sorts like the date and reads well in a profile).
    :data:`EVENT_INTO` does the same as the bytes are read; this serves the rest.
    """
    payload = record["payload"]
    signup = payload.get("signup_date")
    if signup is not None and not isinstance(signup, str):
        payload["signup_date"] = signup_iso(signup)
    return Event(
        event_id=record["event_id"],
        event_type=record["event_type"],
        event_time=to_ms(record["event_time"]),
        received_at=to_ms(record["received_at"]),
        customer_id=record["customer_id"] or None,
        anonymous_id=record["anonymous_id"] or None,
        source=record["source"],
        payload=payload,
        context=record["context"],
        origin=origin,
    )


def signup_iso(signup: Any) -> Any:
    """A ``signup_date`` (days since the epoch, or a date) as an ISO date string; a
    string or None as it is. Out of :mod:`state.bounds`: :class:`EventValidationError`."""
    if signup is None or isinstance(signup, str):
        return signup
    days = signup if isinstance(signup, int) else signup.toordinal() - _EPOCH_ORDINAL
    if not _MIN_DAYS <= days <= _MAX_DAYS:
        raise EventValidationError("invalid_field", "payload.signup_date: out of range")
    return date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


EVENT_INTO = Into(
    name="cdp.Event",
    make=Event,
    args={
        "event_id": "{event_id}",
        "event_type": "{event_type}",
        "event_time": "{event_time}",  # read without logical types: already integer ms
        "received_at": "{received_at}",
        "customer_id": "{customer_id} or None",
        "anonymous_id": "{anonymous_id} or None",
        "source": "{source}",
        "payload": "{payload}",
        "context": "{context}",
        "origin": "origin",
    },
    params=("origin",),
    convert={"payload": {"signup_date": signup_iso}},
    refused=(EventValidationError,),
    slots=True,  # Event's slots set as its __init__ sets them, without the call
)
"""``cdp.Event`` bytes straight into :class:`Event`, as :func:`event_from_record` makes
it from the dict (``AvroCodec.decode_into``): the reader is generated from each writer
schema when first met. A signup date it refuses leaves the message to the dict path,
which gives the dead letter its reason and event id."""


def decode_one(
    item: SourceItem, codec: AvroCodec, limits: EventLimits, clock: Clock
) -> Event | DeadLetter:
    """One message as an event, or a dead letter; never raises (the failure boundary)."""
    if isinstance(item, KafkaError):
        msg = item.msg
        origin = Origin(msg.topic, msg.partition, msg.offset, msg.key, msg.value)
        return DeadLetter("consumer_error", str(item.err), "KafkaError", origin, clock())
    caught_up = None
    for name, value in item.headers:  # usually none; the batch's last message has ours
        if name == PROGRESS_HEADER:
            caught_up = value == b"1"
    origin = Origin(item.topic, item.partition, item.offset, item.key, item.value, caught_up)
    try:
        return _decode(item.value, origin, codec, limits, clock)
    except Exception as exc:  # noqa: BLE001 - the failure boundary: the worker goes on
        error = record_failure("decode", exc)
        return DeadLetter("processing_error", error, type(exc).__name__, origin, clock())


def _decode(
    value: bytes | None, origin: Origin, codec: AvroCodec, limits: EventLimits, clock: Clock
) -> Event | DeadLetter:
    try:
        name, decoded = codec.decode_into(value, EVENT_INTO, origin)
    except CodecError as exc:
        return DeadLetter(exc.reason, str(exc), type(exc).__name__, origin, clock())
    if name != "cdp.Event":
        return DeadLetter(
            "wrong_record_type",
            f"expected cdp.Event, got {name}",
            "WrongRecordType",
            origin,
            clock(),
        )
    if type(decoded) is Event:
        event = decoded
    else:  # a dict: a writer beyond the compiler, or bytes its reader refused
        try:
            event = event_from_record(decoded, origin)
        except EventValidationError as exc:
            event_id = decoded.get("event_id")
            return DeadLetter(exc.reason, str(exc), "EventValidation", origin, clock(),
                              event_id if isinstance(event_id, str) else None)  # fmt: skip
    problem = check_event(event, limits)
    if problem is not None:
        reason, message = problem
        return DeadLetter(reason, message, "EventValidation", origin, clock(), event.event_id)
    return event


@operator
def decode(
    step_id: str,
    up: Stream[SourceItem],
    codec: AvroCodec,
    limits: EventLimits,
    clock: Clock,
) -> DecodeOut:
    """Decode and validate each message; split into events and dead letters."""
    results = op.map("decode_one", up, lambda item: decode_one(item, codec, limits, clock))
    split = op.branch("split", results, lambda x: isinstance(x, Event))
    return DecodeOut(split.trues, split.falses)  # type: ignore[arg-type]
