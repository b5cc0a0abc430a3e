"""The compiled reader against fastavro: the same records for valid bytes, never more lenient
for bad ones, and the codec's verdict on any bytes the one fastavro gave before it."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.avro_reader import Unreadable, UnsupportedSchema, compile_reader
from cdpflow.codec import (
    MARKER,
    AvroCodec,
    _without_logical_types,
    default_codec,
    schema_fingerprint,
)
from cdpflow.errors import CodecError, CorruptRecordError
from tests.cdpflow.test_avro_writer import valid

REPO = Path(__file__).resolve().parents[2]
CODEC = default_codec()
RECORDS = CODEC.names
HISTORY = sorted((REPO / "avro" / "history").glob("*.avsc"))
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def plain(schema: Any) -> Any:
    return parse_schema(_without_logical_types(schema))


def fastavro_read(data: bytes, writer: Any, reader: Any = None) -> tuple[Any, int]:
    buf = io.BytesIO(data)
    return schemaless_reader(buf, writer, reader), buf.tell()


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, datum)
    return buf.getvalue()


def pair(writer: Any, reader: Any, logical: bool) -> tuple[Any, Any]:
    if logical:
        return writer, reader
    return plain(writer), None if reader is None else plain(reader)


def assert_reads_like_fastavro(data: bytes, writer: Any, reader: Any, logical: bool) -> None:
    w, r = pair(writer, reader, logical)
    read = compile_reader(w, r, logical=logical)
    try:
        expected, end = fastavro_read(data, w, r)
    except (ValueError, OverflowError):  # a time beyond datetime's range: refused too
        with pytest.raises(Unreadable):
            read(data)
        return
    got, got_end = read(data)
    assert got == expected
    assert got_end == end == len(data)
    assert _shape(got) == _shape(expected)  # same key order, same types all the way down


def _shape(datum: Any) -> Any:
    if isinstance(datum, dict):
        return [(k, _shape(v)) for k, v in datum.items()]
    if isinstance(datum, list):
        return [_shape(v) for v in datum]
    return type(datum).__name__


# --------------------------------------------------------------------------- valid data


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@pytest.mark.parametrize("name", RECORDS)
@EXAMPLES
@given(data=st.data())
def test_every_schema_reads_like_fastavro(name: str, logical: bool, data: st.DataObject) -> None:
    schema = CODEC.schema(name)
    datum = data.draw(valid(schema, schema["__named_schemas"]))
    assert_reads_like_fastavro(fastavro_bytes(schema, datum), schema, None, logical)


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@pytest.mark.parametrize("path", HISTORY, ids=lambda p: p.name)
@EXAMPLES
@given(data=st.data())
def test_every_history_writer_reads_into_the_current_schema_like_fastavro(
    path: Path, logical: bool, data: st.DataObject
) -> None:
    writer = parse_schema(json.loads(path.read_text()))
    current = CODEC.schema(writer["name"])
    datum = data.draw(valid(writer, writer["__named_schemas"]))
    body = fastavro_bytes(writer, datum)
    assert_reads_like_fastavro(body, writer, current, logical)
    # and through the codec, framed with the old writer's fingerprint
    framed = CODEC.encode_with(writer, datum)
    try:
        expected, _ = fastavro_read(body, *pair(writer, current, logical))
    except (ValueError, OverflowError):  # a time beyond datetime's range: refused too
        with pytest.raises(CodecError):
            CODEC.decode(framed, logical=logical)
        return
    assert CODEC.decode(framed, logical=logical) == (writer["name"], expected)


def test_there_is_history_to_test() -> None:
    assert HISTORY, "avro/history/ is empty: the resolution tests above test nothing"


#: A writer and a reader exercising each resolution rule fastavro applies.
RESOLVE_WRITER = parse_schema({
    "type": "record", "name": "t.R", "fields": [
        {"name": "keep", "type": "string"},
        {"name": "gone_rec", "type": {"type": "record", "name": "t.Old", "fields": [
            {"name": "a", "type": {"type": "array", "items": ["null", "string"]}},
            {"name": "m", "type": {"type": "map", "values": "double"}},
            {"name": "f", "type": "float"}]}},
        {"name": "to_long", "type": "int"},
        {"name": "to_double", "type": "long"},
        {"name": "to_bytes", "type": "string"},
        {"name": "to_string", "type": "bytes"},
        {"name": "colour", "type": {"type": "enum", "name": "t.Colour",
                                    "symbols": ["red", "green", "blue"]}},
        {"name": "now_union", "type": "long"},
        {"name": "branches", "type": ["null", "int", "string"]},
        {"name": "kids", "type": {"type": "array", "items": {
            "type": "record", "name": "t.Kid", "fields": [
                {"name": "n", "type": "int"}, {"name": "x", "type": "boolean"}]}}},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ]})  # fmt: skip
RESOLVE_READER = parse_schema({
    "type": "record", "name": "t.R", "fields": [
        {"name": "added_list", "type": {"type": "array", "items": "string"}, "default": ["d"]},
        {"name": "keep", "type": "string"},
        {"name": "to_long", "type": "long"},
        {"name": "to_double", "type": "double"},
        {"name": "to_bytes", "type": "bytes"},
        {"name": "to_string", "type": "string"},
        {"name": "colour", "type": {"type": "enum", "name": "t.Colour",
                                    "symbols": ["green", "red"], "default": "red"}},
        {"name": "now_union", "type": ["null", "string", "long"]},
        {"name": "branches", "type": ["string", "null", "long"]},
        {"name": "kids", "type": {"type": "array", "items": {
            "type": "record", "name": "t.Kid", "fields": [
                {"name": "x", "type": "boolean"},
                {"name": "y", "type": {"type": "map", "values": "int"}, "default": {"k": 1}}]}}},
        {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "added_rec", "type": ["null", "t.Kid"], "default": None},
    ]})  # fmt: skip


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@EXAMPLES
@given(data=st.data())
def test_schema_resolution_reads_like_fastavro(logical: bool, data: st.DataObject) -> None:
    datum = data.draw(valid(RESOLVE_WRITER, RESOLVE_WRITER["__named_schemas"]))
    body = fastavro_bytes(RESOLVE_WRITER, datum)
    assert_reads_like_fastavro(body, RESOLVE_WRITER, RESOLVE_READER, logical)


def test_defaults_are_not_shared_between_records() -> None:
    read = compile_reader(RESOLVE_WRITER, RESOLVE_READER)
    datum = {"keep": "k", "gone_rec": {"a": [], "m": {}, "f": 1.5}, "to_long": 1,
             "to_double": 2, "to_bytes": "s", "to_string": b"b", "colour": "blue",
             "now_union": 3, "branches": None, "kids": [], "when": 0}  # fmt: skip
    body = fastavro_bytes(RESOLVE_WRITER, datum)
    first, _ = read(body)
    assert first["added_list"] == ["d"]
    assert first["colour"] == "red"  # "blue" is not the reader's: its default
    first["added_list"].append("mutated")
    assert read(body)[0]["added_list"] == ["d"]


def test_fixed_read_and_skipped_like_fastavro() -> None:
    four = {"type": "fixed", "name": "t.Four", "size": 4}
    writer = parse_schema({"type": "record", "name": "t.X", "fields": [
        {"name": "a", "type": four}, {"name": "b", "type": ["null", "t.Four"]},
        {"name": "c", "type": "t.Four"}]})  # fmt: skip
    reader = parse_schema({"type": "record", "name": "t.X", "fields": [
        {"name": "b", "type": ["null", four]}]})  # fmt: skip
    body = fastavro_bytes(writer, {"a": b"abcd", "b": b"\x00\x01\x02\x03", "c": b"wxyz"})
    for r in (None, reader):
        assert_reads_like_fastavro(body, writer, r, True)
    with pytest.raises(Unreadable):
        compile_reader(writer)(body[:-1])


NODE = parse_schema({"type": "record", "name": "t.Node", "fields": [
    {"name": "label", "type": {"type": "string"}},
    {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "next", "type": ["null", "t.Node"], "default": None},
    {"name": "kids", "type": {"type": "array", "items": "t.Node"}, "default": []},
    {"name": "tags", "type": {"type": "map", "values": ["null", "int"]}, "default": {}},
]})  # fmt: skip


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
def test_recursive_records_read_like_fastavro(logical: bool) -> None:
    leaf = {"label": "leaf", "when": 2, "next": None, "kids": [], "tags": {"x": None}}
    mid = {"label": "mid", "when": -3, "next": leaf, "kids": [leaf, leaf], "tags": {}}
    datum = {"label": "top", "when": 1_793_000_000_000, "next": mid, "kids": [mid],
             "tags": {"a": 1, "b": -(2**31)}}  # fmt: skip
    body = fastavro_bytes(NODE, datum)
    assert_reads_like_fastavro(body, NODE, None, logical)
    assert_reads_like_fastavro(body, NODE, NODE, logical)
    for length in range(len(body)):
        with pytest.raises(Unreadable):
            compile_reader(NODE, logical=logical)(body[:length])


def test_an_unmatched_union_branch_is_refused_where_fastavro_raises() -> None:
    writer = parse_schema({"type": "record", "name": "t.U", "fields": [
        {"name": "u", "type": ["null", "int", "boolean"]}]})  # fmt: skip
    reader = parse_schema({"type": "record", "name": "t.U", "fields": [
        {"name": "u", "type": ["null", "long"]}]})  # fmt: skip
    read = compile_reader(writer, reader)
    assert read(b"\x02\x04") == ({"u": 2}, 2)
    with pytest.raises(Exception, match="mismatch"):  # fastavro: SchemaResolutionError
        fastavro_read(b"\x04\x01", writer, reader)
    with pytest.raises(Unreadable):
        read(b"\x04\x01")


# --------------------------------------------------------------------------- bad bytes


def old_decode(data: bytes, logical: bool) -> tuple[str, Any] | tuple[type, str]:
    """What ``AvroCodec.decode`` answered before the compiled reader: fastavro on every
    message. An error as ``(type, message)``."""
    writers = {CODEC.fingerprint_of(n): (n, CODEC.schema(n), None) for n in RECORDS}
    for path in HISTORY:
        old = parse_schema(json.loads(path.read_text()))
        writers[schema_fingerprint(old)] = (old["name"], old, CODEC.schema(old["name"]))
    name, writer, reader = writers[data[2:10]]
    buf = io.BytesIO(data)
    buf.seek(10)
    try:
        record = schemaless_reader(buf, *pair(writer, reader, logical))
    except (
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        OverflowError,
        SchemaResolutionError,
    ) as exc:
        return CorruptRecordError, f"body does not read as {name}: {type(exc).__name__}"
    if buf.tell() != len(data):
        return CorruptRecordError, f"{len(data) - buf.tell()} trailing bytes after a {name} record"
    return name, record


def decode_outcome(data: bytes, logical: bool) -> tuple[str, Any] | tuple[type, str]:
    try:
        return CODEC.decode(data, logical=logical)
    except CodecError as exc:
        return type(exc), str(exc)


def strict_or_equal(data: bytes, name: str, logical: bool) -> None:
    """The compiled reader either refuses the body or reads what fastavro reads."""
    schema = CODEC.schema(name)
    w = schema if logical else plain(schema)
    try:
        got = compile_reader(w, logical=logical)(data, 10)
    except Unreadable:
        return
    assert got == fastavro_read_at(data, w)


def fastavro_read_at(data: bytes, writer: Any) -> tuple[Any, int]:
    buf = io.BytesIO(data)
    buf.seek(10)
    return schemaless_reader(buf, writer, None), buf.tell()


def example(name: str, data: st.DataObject) -> bytes:
    schema = CODEC.schema(name)
    return CODEC.encode(name, data.draw(valid(schema, schema["__named_schemas"])))


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@pytest.mark.parametrize("name", RECORDS)
@settings(max_examples=5, deadline=None, database=None)
@given(data=st.data())
def test_truncated_bytes_are_refused_with_fastavros_verdict(
    name: str, logical: bool, data: st.DataObject
) -> None:
    good = example(name, data)
    for length in range(10, len(good)):
        assert decode_outcome(good[:length], logical) == old_decode(good[:length], logical)
        strict_or_equal(good[:length], name, logical)


def corrupted(good: bytes, data: st.DataObject, min_edits: int = 0) -> bytes:
    """``good`` with up to three bytes replaced, inserted or deleted past its framing (the
    first 10 bytes: marker and fingerprint), as hypothesis draws them."""
    out = bytearray(good)
    for _ in range(data.draw(st.integers(min_edits, 3))):
        at = data.draw(st.integers(10, len(out) - 1))
        edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.integers(0, 255))
        if edit == "replace":
            out[at] = byte
        elif edit == "insert":
            out.insert(at, byte)
        elif len(out) > 11:
            del out[at]
    return bytes(out)


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@pytest.mark.parametrize(
    "name", ["cdp.Event", "cdp.ProfileSnapshot", "cdp.Identify", "cdp.Trigger"]
)
@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_corrupted_bytes_get_the_verdict_fastavro_gave(
    name: str, logical: bool, data: st.DataObject
) -> None:
    bad = corrupted(example(name, data), data, min_edits=1)
    assert decode_outcome(bad, logical) == old_decode(bad, logical)
    strict_or_equal(bad, name, logical)


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@pytest.mark.parametrize("path", HISTORY, ids=lambda p: p.name)
@settings(max_examples=100, deadline=None, database=None)
@given(data=st.data())
def test_corrupted_history_messages_get_the_verdict_fastavro_gave(
    path: Path, logical: bool, data: st.DataObject
) -> None:
    writer = parse_schema(json.loads(path.read_text()))
    good = CODEC.encode_with(writer, data.draw(valid(writer, writer["__named_schemas"])))
    cut = data.draw(st.integers(10, len(good)))
    tail = data.draw(st.binary(max_size=3))
    for bad in (good[:cut], good[:cut] + tail + good[cut + len(tail) :]):
        assert decode_outcome(bad, logical) == old_decode(bad, logical)


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@settings(max_examples=200, deadline=None, database=None)
@given(name=st.sampled_from(RECORDS), body=st.binary(max_size=80))
def test_random_bodies_get_the_verdict_fastavro_gave(name: str, body: bytes, logical: bool) -> None:
    data = MARKER + CODEC.fingerprint_of(name) + body
    assert decode_outcome(data, logical) == old_decode(data, logical)
    strict_or_equal(data, name, logical)


QUIRKS = parse_schema({"type": "record", "name": "t.Q", "fields": [
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "u", "type": ["null", "string"]},
    {"name": "e", "type": {"type": "enum", "name": "t.E", "symbols": ["a", "b"]}},
    {"name": "n", "type": "long"},
]})  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        b"\x04\x00\x00\x00\x00",  # boolean byte 2: fastavro says True
        b"\x00\xff\xff\xff\xff\xff\x01\x00\x00\x00",  # an int beyond 32 bits: fastavro takes it
        b"\x00\x00\x01\x02a\x00\x00",  # union index -1: fastavro takes the last branch
        b"\x00\x00\x00\x01\x00",  # enum index -1: likewise
        b"\x00\x00\x00\x00" + b"\xff" * 10 + b"\x01",  # 11 varint bytes: fastavro wraps
        b"\x00\x00\x00\x00" + b"\xff" * 9 + b"\x03",  # 10 bytes but 65 bits: likewise
    ],
)
def test_fastavros_quirks_are_refused_so_that_fastavro_decides(body: bytes) -> None:
    assert fastavro_read(body, QUIRKS)[1] == len(body)  # fastavro reads each of them
    with pytest.raises(Unreadable):
        compile_reader(QUIRKS)(body)


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("string", b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 10),  # ~2**62 bytes
        ("bytes", b"\xfe\xff\xff\xff\x0f"),  # 2 GiB
        ({"type": "array", "items": "long"}, b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f\x02"),
        ({"type": "map", "values": "string"}, b"\xfe\xff\xff\xff\x0f\x02a\x02b"),
        ({"type": "array", "items": "long"}, b"\xfd\xff\xff\xff\x0f\x02\x02"),  # negative count
    ],
)
def test_a_corrupt_length_allocates_nothing_big(schema: Any, body: bytes) -> None:
    read = compile_reader(parse_schema({"type": "record", "name": "t.L", "fields": [
        {"name": "x", "type": schema}]}))  # fmt: skip
    tracemalloc.start()
    try:
        with pytest.raises(Unreadable):
            read(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_a_corrupt_length_through_the_codec_is_a_corrupt_record() -> None:
    data = CODEC.encode("cdp.Event", {"event_id": "e", "event_type": "identify",
                                      "event_time": 0, "received_at": 0, "source": "s",
                                      "payload": ("cdp.Identify", {})})  # fmt: skip
    assert data[10] == 2  # event_id's length: 1
    bad = data[:10] + b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + data[11:]
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecordError, match="EOFError"):
            CODEC.decode(bad, logical=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize(
    "field",
    [
        {"name": "x", "type": {"type": "array", "items": "null"}},  # items of no bytes
        {"name": "x", "type": {"type": "bytes", "logicalType": "decimal", "precision": 4}},
        {"name": "x", "type": {"type": "string", "logicalType": "uuid"}},
    ],
)
def test_a_schema_beyond_the_compiler_is_read_by_fastavro(tmp_path: Path, field: Any) -> None:
    schema = {"type": "record", "name": "Odd", "namespace": "cdp", "fields": [field]}
    (tmp_path / "cdp.Event.avsc").write_text(json.dumps(schema))  # the codec wants an Event
    codec = AvroCodec(directory=tmp_path)
    parsed = codec.schema("cdp.Event")
    if field["type"].get("logicalType"):
        compile_reader(plain(parsed), logical=False)  # fine without logical types
    with pytest.raises(UnsupportedSchema):
        compile_reader(parsed, logical=True)
    datum = {"x": [None, None]} if field["type"]["type"] == "array" else {"x": _odd_value(field)}
    data = codec.encode_with(parsed, datum)
    expected, _ = fastavro_read(data[10:], parsed)
    assert codec.decode(data) == ("cdp.Event", expected)


def _odd_value(field: Any) -> Any:
    import decimal
    import uuid

    if field["type"]["logicalType"] == "decimal":
        return decimal.Decimal("12.5").quantize(decimal.Decimal(1))
    return str(uuid.UUID(int=7))


def test_decode_takes_a_memoryview_and_a_bytearray() -> None:
    data = CODEC.encode("cdp.TagChange", {"change_id": "c", "customer_id": "1", "tag": "t",
                                          "added": True, "reason": "r", "event_time": 5,
                                          "emitted_at": 6})  # fmt: skip
    expected = CODEC.decode(data, logical=False)
    assert CODEC.decode(memoryview(data), logical=False) == expected
    assert CODEC.decode(bytearray(data), logical=False) == expected
    assert expected[1]["event_time"] == 5
