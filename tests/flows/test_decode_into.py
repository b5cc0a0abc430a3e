"""Decoding straight into ``Event`` (``EVENT_INTO``) against the decode before it: fastavro,
then ``event_from_record`` and ``check_event``. The same events (equal, payload keys in the
same order, the same value types) and the same dead letters (reason, message, type, event
id) for every writer the codec knows, for resolved older writers, and for corrupt bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.codec import MARKER, AvroCodec, schema_fingerprint
from cdpflow.errors import CodecError, EventValidationError
from flows.dead_letters import DeadLetter, Origin
from flows.decode import EVENT_INTO, decode_one, event_from_record
from state.events import Event
from state.validation import EventLimits, check_event
from tests.cdpflow.test_avro_reader import _shape, corrupted
from tests.cdpflow.test_avro_writer import valid

REPO = Path(__file__).resolve().parents[2]
HISTORY = sorted((REPO / "avro" / "history").glob("*.avsc"))
CODEC = AvroCodec()  # its own: the older writers below are registered on it
LIMITS = EventLimits()
T = 1_793_000_000_000
EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _variant(change: Any) -> Any:
    """An older cdp.Event writer: the current one's canonical form, changed by ``change``."""
    schema = json.loads(to_parsing_canonical_form(CODEC.schema("cdp.Event")))
    change({t["name"]: t for t in _named_types(schema)}, schema)
    return parse_schema(schema)


def _named_types(schema: Any) -> list[Any]:
    if isinstance(schema, list):
        return [t for s in schema for t in _named_types(s)]
    if not isinstance(schema, dict):
        return []
    found = [schema] if schema.get("type") in ("record", "enum") else []
    for f in schema.get("fields", []):
        found += _named_types(f["type"])
    for key in ("items", "values"):
        found += _named_types(schema.get(key))
    return found


def _drop(record: Any, *names: str) -> None:
    record["fields"] = [f for f in record["fields"] if f["name"] not in names]


def _without_optional_fields(types: dict[str, Any], event: Any) -> None:
    _drop(event, "sent_at", "context")
    _drop(types["cdp.Identify"], "location", "traits")
    _drop(types["cdp.Product"], "currency", "image_url")


def _with_fields_the_reader_lacks(types: dict[str, Any], event: Any) -> None:
    event["fields"].insert(3, {"name": "legacy", "type": ["null", "string"]})
    types["cdp.Identify"]["fields"].insert(0, {"name": "nickname", "type": "string"})
    types["cdp.EventType"]["symbols"].append("legacy_kind")  # read as the default, custom


def _reordered(types: dict[str, Any], event: Any) -> None:
    payload = next(f for f in event["fields"] if f["name"] == "payload")
    payload["type"].append(payload["type"].pop(0))  # Identify last (types stay defined first)
    for f in event["fields"]:
        if f["name"] == "customer_id":
            f["type"] = "string"  # a non-union read as the reader's union
    event["fields"].reverse()  # the reader's dict keeps its own order


VARIANTS = [_without_optional_fields, _with_fields_the_reader_lacks, _reordered]
for _change in VARIANTS:
    CODEC.register_writer(_variant(_change))
HISTORY_WRITERS = [parse_schema(json.loads(p.read_text())) for p in HISTORY]
#: Every writer the dataflow may meet: the current records, the history, the variants.
WRITERS = (
    [CODEC.schema(n) for n in CODEC.names]
    + HISTORY_WRITERS
    + [_variant(change) for change in VARIANTS]
)
EVENT_WRITERS = [w for w in WRITERS if w["name"] == "cdp.Event"]


def message(value: bytes | None) -> KafkaSourceMessage[bytes | None, bytes | None]:
    return KafkaSourceMessage(b"k", value, topic="t", partition=2, offset=9)


def fastavro_decode(data: bytes | None) -> tuple[str, Any]:
    """``codec.decode(logical=False)`` as it was before any compiled reader: fastavro reads
    every body (the framing checks, which read no body, are the codec's)."""
    good = data is not None and len(data) >= 10 and data[:2] == MARKER
    writer = CODEC._writers.get(data[2:10]) if good and data is not None else None
    if writer is None or data is None:
        return CODEC.decode(data, logical=False)  # raises the framing error
    return writer.name, CODEC._fastavro_decode(data, writer, logical=False)


def old_decode_one(value: bytes | None) -> Event | DeadLetter:
    """``flows.decode.decode_one`` before this path, over fastavro."""
    origin = Origin("t", 2, 9, b"k", value)
    try:
        name, record = fastavro_decode(value)
    except CodecError as exc:
        return DeadLetter(exc.reason, str(exc), type(exc).__name__, origin, 0)
    if name != "cdp.Event":
        return DeadLetter("wrong_record_type", f"expected cdp.Event, got {name}",
                          "WrongRecordType", origin, 0)  # fmt: skip
    try:
        event = event_from_record(record, origin)
    except EventValidationError as exc:
        event_id = record.get("event_id")
        return DeadLetter(exc.reason, str(exc), "EventValidation", origin, 0,
                          event_id if isinstance(event_id, str) else None)  # fmt: skip
    problem = check_event(event, LIMITS)
    if problem is not None:
        return DeadLetter(*problem, "EventValidation", origin, 0, event.event_id)
    return event


def assert_same(value: bytes | None) -> Event | DeadLetter:
    new = decode_one(message(value), CODEC, LIMITS, lambda: 0)
    old = old_decode_one(value)
    assert type(new) is type(old)
    assert new == old
    assert new.origin == old.origin
    if isinstance(new, Event) and isinstance(old, Event):
        assert _shape(new.payload) == _shape(old.payload)  # key order and types too
        assert _shape(new.context) == _shape(old.context)
    return new


def event_datum(writer: Any, data: st.DataObject) -> Any:
    """A record for ``writer``; most of them made plausible (times, a customer id), so that
    they pass ``check_event`` and whole events are compared, not only dead letters."""
    datum = data.draw(valid(writer, writer["__named_schemas"]))
    if writer["name"] == "cdp.Event" and data.draw(st.integers(0, 3)):
        datum["event_time"] = T + data.draw(st.integers(-(10**9), 10**6))
        datum["received_at"] = T
        datum["customer_id"] = data.draw(st.sampled_from(["", "c-1"]) | st.text(max_size=3))
        if "anonymous_id" in datum:
            datum["anonymous_id"] = data.draw(st.sampled_from([None, "", "a-1"]))
    return datum


def _ids(writer: Any) -> str:
    return f"{writer['name']}-{schema_fingerprint(writer).hex()[:6]}"


@pytest.mark.parametrize("writer", EVENT_WRITERS, ids=_ids)
@EXAMPLES
@given(data=st.data())
def test_every_event_writer_decodes_as_fastavro_and_event_from_record(
    writer: Any, data: st.DataObject
) -> None:
    assert_same(CODEC.encode_with(writer, event_datum(writer, data)))


@pytest.mark.parametrize("writer", [w for w in WRITERS if w["name"] != "cdp.Event"], ids=_ids)
@settings(max_examples=5, deadline=None, database=None)
@given(data=st.data())
def test_other_records_are_the_same_dead_letter(writer: Any, data: st.DataObject) -> None:
    out = assert_same(CODEC.encode_with(writer, event_datum(writer, data)))
    assert isinstance(out, DeadLetter)
    assert out.reason == "wrong_record_type"


@pytest.mark.parametrize("writer", EVENT_WRITERS, ids=_ids)
@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_corrupt_and_truncated_bytes_get_the_same_dead_letter(
    writer: Any, data: st.DataObject
) -> None:
    bad = corrupted(CODEC.encode_with(writer, event_datum(writer, data)), data)
    cut = data.draw(st.integers(0, len(bad)))
    assert_same(bad[:cut])
    assert_same(bad)


@pytest.mark.parametrize("writer", EVENT_WRITERS, ids=_ids)
def test_good_events_are_built_without_a_dict(writer: Any) -> None:
    datum = {"event_id": "e-1", "event_type": "identify", "customer_id": "",
             "anonymous_id": "a-1", "event_time": T, "sent_at": None, "received_at": T,
             "source": "web", "context": None, "legacy": None,
             "payload": ("cdp.Identify", {"email": None, "first_name": "Zed",
                                          "last_name": None, "signup_date": 20_000,
                                          "age": None, "location": None,
                                          "traits": {}, "nickname": "n"})}  # fmt: skip
    value = CODEC.encode_with(writer, datum)
    name, event = CODEC.decode_into(value, EVENT_INTO, "here")
    assert name == "cdp.Event"
    assert type(event) is Event  # the fast path: no dict, no event_from_record
    assert (event.customer_id, event.anonymous_id) == (None, "a-1")
    assert event.payload["signup_date"] == "2024-10-04"
    assert event.origin == "here"
    assert assert_same(value) == event


@pytest.mark.parametrize("days", [-(10**6), 2_000_000])
def test_a_signup_date_out_of_range_is_a_dead_letter_with_the_event_id(days: int) -> None:
    datum = {"event_id": "e-9", "event_type": "identify", "customer_id": "c",
             "event_time": T, "received_at": T, "source": "web",
             "payload": ("cdp.Identify", {"signup_date": days})}  # fmt: skip
    value = CODEC.encode_with(CODEC.schema("cdp.Event"), datum)
    _, decoded = CODEC.decode_into(value, EVENT_INTO, None)
    assert isinstance(decoded, dict)  # refused by the conversion: the dict path decides
    out = assert_same(value)
    assert isinstance(out, DeadLetter)
    assert (out.reason, out.error, out.event_id) == (
        "invalid_field",
        "payload.signup_date: out of range",
        "e-9",
    )


def test_a_bytearray_and_null_are_decoded_as_before() -> None:
    datum = {"event_id": "e-2", "event_type": "custom", "customer_id": "c",
             "event_time": T, "received_at": T, "source": "web",
             "payload": ("cdp.CustomEvent", {"name": "x", "properties": {"k": "1"}})}  # fmt: skip
    value = CODEC.encode("cdp.Event", datum)
    _, from_bytes = CODEC.decode_into(value, EVENT_INTO, None)
    _, from_array = CODEC.decode_into(bytearray(value), EVENT_INTO, None)
    assert event_from_record(from_array) == from_bytes
    assert isinstance(assert_same(None), DeadLetter)
    assert isinstance(assert_same(value[:9]), DeadLetter)
    assert isinstance(assert_same(MARKER + b"\x00" * 8 + value[10:]), DeadLetter)  # unknown


def test_there_are_older_event_writers_to_test() -> None:
    assert len(EVENT_WRITERS) >= 1 + len(VARIANTS)
    prints = {schema_fingerprint(w) for w in EVENT_WRITERS}
    assert len(prints) == len(EVENT_WRITERS)  # each variant is a writer of its own
    assert {"legacy", "nickname"} <= {
        f["name"] for w in EVENT_WRITERS for t in _named_types(w) for f in t.get("fields", [])
    }
