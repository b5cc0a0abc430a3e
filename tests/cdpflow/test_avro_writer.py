"""The compiled writer against fastavro: same bytes for valid data, same verdict for any data."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.validation import validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.avro_writer import SchemaMismatch, compile_record_writer, compile_writer
from cdpflow.codec import default_codec

CODEC = default_codec()
RECORDS = CODEC.names
#: One writer per record, shared by all examples: what a writer remembers between data (the
#: last timestamp written) is exercised too.
WRITERS = {name: compile_writer(CODEC.schema(name)) for name in RECORDS}

_INT = st.integers(-(2**31), 2**31 - 1)
_LONG = st.integers(-(2**63), 2**63 - 1)
_LEAF = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": _INT,
    "long": _LONG,
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53),
    "bytes": st.binary(max_size=20),
    "string": st.text(max_size=20),
}


def valid(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Data that fits a parsed schema (fastavro's tuple notation for record unions)."""
    if isinstance(schema, list):
        return st.one_of(*(_branch(b, named) for b in schema))
    if isinstance(schema, str):
        return (
            _LEAF[schema] if schema in _LEAF else st.deferred(lambda: valid(named[schema], named))
        )
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        # Few distinct values, so that a writer often meets the timestamp it wrote last.
        return (
            st.sampled_from([0, -1, 1_793_000_000_000])
            | _LONG
            | st.datetimes(timezones=st.just(dt.UTC))
        )
    if logical == "date":
        return st.integers(-700_000, 2_000_000) | st.dates()
    if kind in _LEAF:
        return _LEAF[kind]
    if kind == "record":
        fields = {f["name"]: valid(f["type"], named) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(valid(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=5), valid(schema["values"], named), max_size=3)
    return valid(kind, named)


def _branch(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    target = named.get(schema, schema) if isinstance(schema, str) else schema
    if isinstance(target, dict) and target.get("type") == "record":
        return valid(schema, named).map(lambda d: (target["name"], d))
    return valid(schema, named)


def fastavro_bytes(schema: Any, datum: Any) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, datum)
    return buf.getvalue()


@pytest.mark.parametrize("name", RECORDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_records_encode_to_fastavros_bytes(name: str, data: st.DataObject) -> None:
    schema = CODEC.schema(name)
    datum = data.draw(valid(schema, schema["__named_schemas"]))
    assert WRITERS[name](datum) == fastavro_bytes(schema, datum)


POSITIONAL = {name: compile_record_writer(CODEC.schema(name), b"\xc3\x01") for name in RECORDS}


@pytest.mark.parametrize("name", RECORDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_positional_writer_writes_the_dict_writers_bytes_and_verdict(
    name: str, data: st.DataObject
) -> None:
    schema = CODEC.schema(name)
    datum = data.draw(valid(schema, schema["__named_schemas"]))
    if data.draw(st.booleans()):  # one field's value (or something inside it) replaced
        field = data.draw(st.sampled_from([f["name"] for f in schema["fields"]]))
        datum = {**datum, field: mutate(datum[field], data)}
    values = [datum[f["name"]] for f in schema["fields"]]
    try:
        expected: bytes | str = b"\xc3\x01" + WRITERS[name](datum)
    except SchemaMismatch as exc:
        expected = f"mismatch {exc.field}"
    try:
        got: bytes | str = POSITIONAL[name](*values)
    except SchemaMismatch as exc:
        got = f"mismatch {exc.field}"
    assert got == expected


def test_positional_writer_needs_a_record_and_every_field() -> None:
    with pytest.raises(ValueError, match="record schema"):
        compile_record_writer(parse_schema({"type": "array", "items": "long"}))
    with pytest.raises(TypeError):
        POSITIONAL["cdp.TagChange"]("c1", "42")


JSONISH = st.recursive(
    st.none() | st.booleans() | _LONG | st.floats(allow_nan=False) | st.text(max_size=5),
    # infinities included: fastavro takes them, this writer refuses them
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def fastavro_accepts(datum: Any, schema: Any) -> bool:
    try:
        return validate(datum, schema, raise_errors=False)
    except ValueError:  # e.g. a date string that is not ISO: fastavro refuses it by raising
        return False


def mutate(datum: Any, data: st.DataObject) -> Any:
    """``datum`` with one value somewhere replaced by anything JSON can hold."""
    if isinstance(datum, tuple):
        return (datum[0], mutate(datum[1], data))
    if isinstance(datum, dict) and datum and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(datum)))
        return {**datum, key: mutate(datum[key], data)}
    if isinstance(datum, list) and datum and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(datum) - 1))
        return [*datum[:i], mutate(datum[i], data), *datum[i + 1 :]]
    return data.draw(JSONISH)


@pytest.mark.parametrize("name", ["cdp.Event", "cdp.DeadLetter", "cdp.Identify"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_accepts_exactly_what_fastavro_validates(name: str, data: st.DataObject) -> None:
    schema = CODEC.schema(name)
    datum = mutate(data.draw(valid(schema, schema["__named_schemas"])), data)
    write = WRITERS[name]
    if not fastavro_accepts(datum, schema):
        with pytest.raises(SchemaMismatch):
            write(datum)
    elif not _has_infinity(datum):
        assert write(datum) == fastavro_bytes(schema, datum)
    else:  # refused if the infinity is a float or double, else (an unknown key) ignored
        try:
            written = write(datum)
        except SchemaMismatch:
            return
        assert written == fastavro_bytes(schema, datum)


def _has_infinity(datum: Any) -> bool:
    if isinstance(datum, float):
        return math.isinf(datum)
    if isinstance(datum, dict):
        return any(_has_infinity(v) for v in datum.values())
    if isinstance(datum, (list, tuple)):
        return any(_has_infinity(v) for v in datum)
    return False


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("payload", "revenue"), "cdp.OrderCompleted.revenue"),
        (("payload", "discount"), "cdp.OrderCompleted.discount"),
        (("payload", "items", 0, "product", "price"), "cdp.Product.price"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_field(
    value: float, path: tuple[Any, ...], field: str
) -> None:
    # fastavro would write them; a NaN revenue then fails money arithmetic downstream.
    payload = {
        "order_id": "o-1",
        "revenue": 1.0,
        "discount": 0.5,
        "items": [{"product": {"product_id": "p", "price": 2.0}, "quantity": 1}],
    }
    record = {
        "event_id": "e",
        "event_type": "order_completed",
        "customer_id": "c",
        "event_time": 0,
        "received_at": 0,
        "source": "t",
        "payload": ("cdp.OrderCompleted", payload),
    }
    write = WRITERS["cdp.Event"]
    assert write(record) == fastavro_bytes(CODEC.schema("cdp.Event"), record)
    node: Any = payload
    for key in path[1:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(SchemaMismatch) as info:
        write(record)
    assert info.value.field == field


def test_mismatch_names_the_innermost_field_and_not_the_value() -> None:
    write = compile_writer(CODEC.schema("cdp.Event"))
    product = {"product_id": "p-1", "price": "secret-price"}
    record = {
        "event_id": "e",
        "event_type": "product_viewed",
        "event_time": 1,
        "received_at": 1,
        "source": "web",
        "payload": ("cdp.ProductViewed", {"product": product}),
    }
    write({**record, "payload": ("cdp.ProductViewed", {"product": {"product_id": "p"}})})
    with pytest.raises(SchemaMismatch) as info:
        write(record)
    assert info.value.field == "cdp.Product.price"
    assert "secret" not in str(info.value)
    with pytest.raises(SchemaMismatch) as info:
        write({**record, "event_id": None})
    assert info.value.field == "cdp.Event.event_id"
    with pytest.raises(SchemaMismatch) as info:
        write({**record, "payload": ("cdp.Nope", {})})
    assert info.value.field == "cdp.Event.payload"


def test_unions_without_tuple_notation_choose_like_fastavro() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "t.U",
            "fields": [
                {
                    "name": "u",
                    "type": [
                        "null",
                        {
                            "type": "record",
                            "name": "t.A",
                            "fields": [{"name": "a", "type": "long"}],
                        },
                        {
                            "type": "record",
                            "name": "t.B",
                            "fields": [
                                {"name": "a", "type": "long"},
                                {"name": "b", "type": ["null", "string"], "default": None},
                            ],
                        },
                        "string",
                    ],
                }
            ],
        }
    )
    write = compile_writer(schema)
    for datum in ({"u": None}, {"u": {"a": 1}}, {"u": {"a": 1, "b": "x"}}, {"u": "s"}):
        assert write(datum) == fastavro_bytes(schema, datum)
    with pytest.raises(SchemaMismatch):
        write({"u": 3})


def test_nested_type_spellings_and_recursion() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "t.Node",
            "fields": [
                {"name": "label", "type": {"type": "string"}},
                {"name": "when", "type": {"type": "long", "logicalType": "timestamp-millis"}},
                {"name": "next", "type": ["null", "t.Node"], "default": None},
                {"name": "kids", "type": {"type": "array", "items": "t.Node"}, "default": []},
                {"name": "tags", "type": {"type": "map", "values": ["null", "int"]}, "default": {}},
                {"name": "raw", "type": {"type": "fixed", "name": "t.Four", "size": 4}},
            ],
        }
    )
    leaf = {"label": "b", "when": 2, "raw": b"abcd"}
    datum = {
        "label": "a",
        "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "next": leaf,
        "kids": [leaf, leaf],
        "tags": {"x": 1, "y": None},
        "raw": b"1234",
    }
    write = compile_writer(schema)
    assert write(datum) == fastavro_bytes(schema, datum)
    with pytest.raises(SchemaMismatch) as info:
        write({**datum, "kids": [leaf, {**leaf, "raw": b"abc"}]})
    assert info.value.field == "t.Node.raw"
    with pytest.raises(SchemaMismatch) as info:
        write({**datum, "when": dt.datetime(2026, 1, 1)})  # naive: refused
    assert info.value.field == "t.Node.when"


@pytest.mark.parametrize(
    "text",
    ["", "a" * 63, "a" * 64, "é" * 32, "é" * 40, "a" * 127, "a" * 128, "x" * 10_000, "\U0001f600"],
)
def test_optional_strings_around_the_one_byte_length(text: str) -> None:
    # ["null", "string"] fields write their branch and a short length in one step; the
    # lengths around 64 bytes (the last one-byte varint) and multi-byte characters.
    schema = parse_schema(
        {
            "type": "record",
            "name": "cdp.OptionalText",
            "fields": [
                {"name": "a", "type": ["null", "string"]},
                {"name": "b", "type": ["string", "null"]},
            ],
        }
    )
    write = compile_writer(schema)
    datum = {"a": text, "b": text}
    assert write(datum) == fastavro_bytes(schema, datum)
    with pytest.raises(SchemaMismatch) as raised:
        write({"a": "\ud800", "b": None})  # a lone surrogate has no UTF-8
    assert raised.value.field == "cdp.OptionalText.a"
