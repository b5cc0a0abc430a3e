"""``compile_reader(..., into=Into(...))``: a record built by a call as it is read, equal to
building it from fastavro's dict; conversions of the records in a field; what it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastavro import parse_schema
from hypothesis import given
from hypothesis import strategies as st

from cdpflow.avro_reader import Into, Unreadable, UnsupportedSchema, compile_reader
from tests.cdpflow.test_avro_reader import (
    EXAMPLES,
    RESOLVE_READER,
    RESOLVE_WRITER,
    fastavro_bytes,
    fastavro_read,
    pair,
)
from tests.cdpflow.test_avro_writer import valid


def _keywords(**fields: Any) -> dict[str, Any]:
    return fields


@pytest.mark.parametrize("logical", [False, True], ids=["plain", "logical"])
@EXAMPLES
@given(data=st.data())
def test_a_record_read_into_a_call_is_fastavros_dict(logical: bool, data: st.DataObject) -> None:
    w, r = pair(RESOLVE_WRITER, RESOLVE_READER, logical)
    names = [f["name"] for f in r["fields"]]
    into = Into("t.R", _keywords, {n: "{%s}" % n for n in names})  # noqa: UP031
    read = compile_reader(w, r, logical=logical, into=into)
    body = fastavro_bytes(RESOLVE_WRITER, data.draw(valid(RESOLVE_WRITER, w["__named_schemas"])))
    try:
        expected, end = fastavro_read(body, w, r)
    except (ValueError, OverflowError):  # a time beyond datetime's range
        with pytest.raises(Unreadable):
            read(body)
        return
    assert read(body) == (expected, end)
    with pytest.raises(Unreadable):
        read(body[:-1])


@dataclass(frozen=True)
class Row:
    key: str
    kind: Any
    extra: Any = None
    where: Any = None


WRITER = parse_schema({"type": "record", "name": "t.Top", "fields": [
    {"name": "key", "type": ["null", "string"]},
    {"name": "body", "type": [
        {"type": "record", "name": "t.A", "fields": [
            {"name": "n", "type": ["null", "int"]},
            {"name": "inner", "type": {"type": "record", "name": "t.In", "fields": [
                {"name": "n", "type": "int"}]}}]},
        {"type": "record", "name": "t.B", "fields": [{"name": "s", "type": "string"}]}]},
]})  # fmt: skip
#: The reader adds t.B.n with a default: converted like a value that was read.
READER = parse_schema({"type": "record", "name": "t.Top", "fields": [
    {"name": "key", "type": ["null", "string"]},
    {"name": "body", "type": [
        {"type": "record", "name": "t.A", "fields": [
            {"name": "n", "type": ["null", "int"]},
            {"name": "inner", "type": {"type": "record", "name": "t.In", "fields": [
                {"name": "n", "type": "int"}]}}]},
        {"type": "record", "name": "t.B", "fields": [
            {"name": "s", "type": "string"}, {"name": "n", "type": "int", "default": 7}]}]},
]})  # fmt: skip


def _double(n: int) -> int:
    if n > 100:
        raise LookupError("too big")  # a refusal the caller handles
    return 2 * n


INTO = Into(
    "t.Top",
    Row,
    {"key": "{key} or '-'", "kind": "{body}", "where": "where"},
    params=("where",),
    convert={"body": {"n": _double}},
    refused=(LookupError,),
)


def test_fields_converted_in_each_record_of_a_field_and_nowhere_else() -> None:
    read = compile_reader(WRITER, READER, into=INTO)
    a = fastavro_bytes(WRITER, {"key": "", "body": ("t.A", {"n": 5, "inner": {"n": 5}})})
    assert read(a, 0, "here") == (Row("-", {"n": 10, "inner": {"n": 5}}, None, "here"), len(a))
    none = fastavro_bytes(WRITER, {"key": "k", "body": ("t.A", {"n": None, "inner": {"n": 1}})})
    assert read(none, 0, 1)[0] == Row("k", {"n": None, "inner": {"n": 1}}, None, 1)
    b = fastavro_bytes(WRITER, {"key": None, "body": ("t.B", {"s": "x"})})
    assert read(b, 0, None)[0].kind == {"s": "x", "n": 14}  # the default, converted
    big = fastavro_bytes(WRITER, {"key": "k", "body": ("t.A", {"n": 101, "inner": {"n": 1}})})
    with pytest.raises(LookupError):
        read(big, 0, None)
    assert "n" not in compile_reader(WRITER, into=INTO)(b, 0, None)[0].kind  # no resolution


def test_what_it_cannot_build_is_refused_when_compiled() -> None:
    with pytest.raises(UnsupportedSchema, match="is not"):
        compile_reader(WRITER, into=Into("t.Other", Row, {"key": "{key}", "kind": "{body}"}))
    with pytest.raises(UnsupportedSchema, match="no field"):
        compile_reader(WRITER, into=Into("t.Top", Row, {"key": "{gone}", "kind": "{body}"}))
    with pytest.raises(UnsupportedSchema, match="not a record"):
        compile_reader(WRITER, into=Into("t.Top", Row, {"key": "{key}", "kind": "{body}"},
                                         convert={"key": {"n": _double}}))  # fmt: skip
    for param in ("pos", "x3", "_c1", "not a name"):
        with pytest.raises(ValueError, match="parameter name"):
            compile_reader(WRITER, into=Into("t.Top", Row, {"key": "{key}", "kind": "{body}"},
                                             params=(param,)))  # fmt: skip
    with pytest.raises(TypeError):  # a name the call does not take: now, not at a read
        compile_reader(WRITER, into=Into("t.Top", Row, {"key": "{key}", "size": "{body}"}))


def test_arguments_go_by_position_while_the_signature_allows() -> None:
    reader = compile_reader(WRITER, into=Into("t.Top", Row, {"where": "1", "key": "{key}",
                                                             "kind": "{body}"}))  # fmt: skip
    call = reader.source.strip().splitlines()[-1]
    assert "where=(1)" in call
    assert "key=" not in call
    assert "kind=" not in call


@dataclass(frozen=True, slots=True)
class Slotted:
    key: Any
    kind: Any


@dataclass(frozen=True, slots=True)
class Checked:
    key: Any
    kind: Any

    def __post_init__(self) -> None:
        if self.key == "bad":
            raise LookupError("checked")


def test_slots_are_set_as_the_dataclass_would_and_only_when_that_is_the_same() -> None:
    args = {"key": "{key}", "kind": "{body}"}
    body = fastavro_bytes(WRITER, {"key": "bad", "body": ("t.B", {"s": "x"})})
    fast = compile_reader(WRITER, into=Into("t.Top", Slotted, args, slots=True))
    assert "Slotted" not in fast.source.strip().splitlines()[-1]  # no call: slots set
    assert fast(body) == (Slotted("bad", {"s": "x"}), len(body))
    with pytest.raises(AttributeError):  # still frozen
        fast(body)[0].key = "other"  # type: ignore[misc]
    with pytest.raises(LookupError):  # a __post_init__ is kept: the class is called
        compile_reader(WRITER, into=Into("t.Top", Checked, args, slots=True))(body)
    partial = compile_reader(WRITER, into=Into("t.Top", Row, args, slots=True))
    assert partial(body)[0] == Row("bad", {"s": "x"})  # fields left to defaults: called
