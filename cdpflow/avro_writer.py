"""A validating Avro writer generated once from a parsed schema: check and encode in one pass.

The collector first ran fastavro's ``validate`` and then its ``schemaless_writer`` on
every event. Both walk the schema per datum, and the writer picks each union branch by
validating the datum against every branch: about 150 µs per ``cdp.Event`` together, most
of the collector's time. :func:`compile_writer` writes, once, the Python source of one
function per record of the schema (as ``dataclasses`` does for ``__init__``), with the
type checks and the encoding of each field inlined: an event is then checked and written
in one pass with few calls (about 10 µs). ``compile_writer(schema).source`` shows the code.

What it accepts is what ``fastavro.validation.validate`` accepts, but for non-finite
numbers, and for such data it writes the bytes ``fastavro.schemaless_writer`` writes
(``tests/cdpflow/test_avro_writer.py`` checks both with hypothesis):

- ``int``/``long``: an ``int`` (not a ``bool``) in range; ``float``/``double``: an ``int``
  or ``float`` (not a ``bool``) that is finite: ``NaN`` and the infinities are refused
  (Avro could carry them, but no cdpflow record means one, and a reader doing arithmetic
  on one, such as money in integer units, would fail on every replay); ``string``: a
  ``str``; ``bytes``: ``bytes``/``bytearray``; ``enum``: one of the symbols; ``array``:
  a sequence that is not a ``str``; ``map``: a mapping with ``str`` keys; ``record``: a
  mapping, a missing field taking its default.
- logical ``timestamp-millis`` also takes an aware ``datetime`` (a naive one is refused:
  fastavro would read it in the machine's zone); ``date`` a ``date`` or an ISO date
  string. Other logical types are written as their underlying type.
- A union takes fastavro's tuple notation ``(branch name, datum)``; otherwise ``None``
  selects ``null``, and other data the first branch that takes it, or, among record
  branches that take it, the one sharing most field names with it.

A datum that does not fit raises :class:`SchemaMismatch` whose ``field`` names the
innermost record field, e.g. ``cdp.Product.price`` (never the value).

>>> from fastavro import parse_schema
>>> write = compile_writer(parse_schema({"type": "record", "name": "cdp.T", "fields": [
...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]}))
>>> write({"id": "a", "n": 1})
b'\\x02a\\x02\\x02'
>>> write({"id": "a", "n": "x"})
Traceback (most recent call last):
...
cdpflow.avro_writer.SchemaMismatch: cdp.T.n
"""

from __future__ import annotations

import datetime as dt
import struct
import sys
from array import array as _typed_array
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["AvroWriter", "SchemaMismatch", "compile_record_writer", "compile_writer"]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "error", "enum", "fixed"}
_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
#: The Python type most data of an Avro type has: checked first, inline.
_USUAL_TYPE = {"string": "str", "long": "int", "int": "int", "double": "float", "boolean": "bool"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAYS = dt.date(1970, 1, 1).toordinal()


class SchemaMismatch(ValueError):
    """The datum does not fit the schema; ``field`` is ``"<record full name>.<field>"``."""

    def __init__(self, field: str | None = None) -> None:
        super().__init__(field or "datum")
        self.field = field


class AvroWriter:
    """``writer(datum) -> bytes``: ``prefix`` followed by the datum's Avro binary body."""

    __slots__ = ("_write", "prefix", "source")

    def __init__(self, write: Callable[[Any, bytearray, str], None], prefix: bytes, source: str):
        self._write = write
        self.prefix = prefix
        self.source = source

    def __call__(self, datum: Any) -> bytes:
        out = bytearray(self.prefix)
        self._write(datum, out, "datum")
        return bytes(out)


def compile_writer(schema: Any, prefix: bytes = b"") -> AvroWriter:
    """The writer of a schema parsed by ``fastavro.parse_schema``.

    ``prefix`` is written before each body (e.g. the single-object encoding header).
    """
    named = schema.get("__named_schemas", {}) if isinstance(schema, dict) else {}
    gen = _Generator(named)
    entry = gen.function_for(schema)
    source = gen.source()
    namespace = dict(gen.constants)
    exec(compile(source, "<avro_writer>", "exec"), namespace)  # noqa: S102 - our own source
    return AvroWriter(namespace[entry], prefix, source)


def compile_record_writer(schema: Any, prefix: bytes = b"") -> Callable[..., bytes]:
    """``write(field_0, field_1, ...) -> bytes`` for a record schema: the fields' values
    positionally, in the schema's order (every one, defaults are not applied), with the
    same checks and bytes as :func:`compile_writer`'s, and no dict built or read: for a
    hot record (a profile snapshot per customer change) whose producer has the values
    at hand. Its ``source`` attribute shows the code.

    >>> from fastavro import parse_schema
    >>> write = compile_record_writer(parse_schema({"type": "record", "name": "cdp.T",
    ...     "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]}))
    >>> write("a", 1)
    b'\\x02a\\x02\\x02'
    """
    if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
        raise ValueError("compile_record_writer needs a record schema")
    gen = _Generator(schema.get("__named_schemas", {}))
    full, fields = schema["name"], schema["fields"]
    params = ", ".join(f"a{i}" for i in range(len(fields)))
    body = [f"    out = bytearray({gen.constant(prefix)})"]
    for i, field in enumerate(fields):
        body.append(f"    x = a{i}  # {field['name']}")
        gen.emit(field["type"], "x", repr(f"{full}.{field['name']}"), body, 1)
    gen.lines += [f"def _record({params}):", f"    # {full}", *body, "    return bytes(out)", ""]
    source = gen.source()
    namespace = dict(gen.constants)
    exec(compile(source, "<avro_writer>", "exec"), namespace)  # noqa: S102 - our own source
    write: Any = namespace["_record"]
    write.source = source
    return write  # type: ignore[no-any-return]


# --- helpers the generated code calls ----------------------------------------------------


def _varint(n: int, out: bytearray) -> None:
    """Append a non-negative integer (already zig-zagged) as a varint."""
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _millis(value: Any, where: str) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise SchemaMismatch(where)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return value


def _days(value: Any, where: str) -> Any:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise SchemaMismatch(where) from None
    if isinstance(value, dt.datetime):
        return value.date().toordinal() - _EPOCH_DAYS
    if isinstance(value, dt.date):
        return value.toordinal() - _EPOCH_DAYS
    return value


def _untag(value: tuple[Any, ...], where: str) -> tuple[Any, Any]:
    """fastavro's tuple notation for a union branch: ``(branch name, datum)``."""
    if len(value) != 2:
        raise SchemaMismatch(where)
    return value[0], value[1]


def _best_branch(
    value: Any,
    branches: Sequence[tuple[Callable[[Any, bytearray, str], None], frozenset[str] | None]],
    where: str,
) -> tuple[int, bytearray]:
    """fastavro's choice without a tag: the first non-record branch that takes the datum,
    else the record branch that shares most field names with it."""
    best: tuple[int, bytearray] | None = None
    most = -1
    for index, (write, fields) in enumerate(branches):
        scratch = bytearray()
        try:
            write(value, scratch, where)
        except SchemaMismatch:
            continue
        if fields is None:
            return index, scratch
        shared = len(fields & value.keys())
        if shared > most:
            best, most = (index, scratch), shared
    if best is None:
        raise SchemaMismatch(where)
    return best


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    _varint(_zigzag(n), out)
    return bytes(out)


# --- the generator -----------------------------------------------------------------------


def _int_code(v: str, w: str, kind: str, checked: bool = False) -> list[str]:
    """``checked``: ``v`` is known to be an ``int`` already; only its range is checked."""
    low, high = _RANGE[kind]
    test = (
        f"not {low} <= {v} <= {high}"
        if checked
        else f"type({v}) is not int and (not isinstance({v}, int) or isinstance({v}, bool)) "
        f"or not {low} <= {v} <= {high}"
    )
    return [
        f"if {test}:",
        f"    raise SchemaMismatch({w})",
        f"n = ({v} << 1) ^ ({v} >> 63)",
        "if n < 128:",
        "    out.append(n)",
        "else:",
        "    _varint(n, out)",
    ]


def _real_code(v: str, w: str, pack: str, checked: bool = False) -> list[str]:
    test = [
        f"if type({v}) is not float and "
        f"(not isinstance({v}, (int, float)) or isinstance({v}, bool)):",
        f"    raise SchemaMismatch({w})",
    ]
    return [
        *([] if checked else test),
        f"if not -_DOUBLE_MAX <= {v} <= _DOUBLE_MAX:  # NaN, the infinities, a huge int",
        f"    raise SchemaMismatch({w})",
        "try:",
        f"    out += {pack}({v})",
        "except (OverflowError, _struct_error):",
        f"    raise SchemaMismatch({w}) from None",
    ]


def _string_code(v: str, w: str, checked: bool = False) -> list[str]:
    test = [
        f"if type({v}) is not str and not isinstance({v}, str):",
        f"    raise SchemaMismatch({w})",
    ]
    return [
        *([] if checked else test),
        "try:",
        f"    b = {v}.encode()",
        "except UnicodeEncodeError:  # a lone surrogate",
        f"    raise SchemaMismatch({w}) from None",
        *_length_code("b"),
        "out += b",
    ]


def _length_code(v: str) -> list[str]:
    return [
        f"n = len({v})",
        "if n < 64:",
        "    out.append(n << 1)",
        "else:",
        "    _varint(n << 1, out)",
    ]


#: Code writing variable ``v`` (raising ``SchemaMismatch(w)``); with ``checked`` true, ``v``
#: is known to have the type's usual Python type (see ``_USUAL_TYPE``).
_PRIMITIVE_CODE: dict[str, Callable[[str, str, bool], list[str]]] = {
    "null": lambda v, w, checked: [f"if {v} is not None:", f"    raise SchemaMismatch({w})"],
    "boolean": lambda v, w, checked: [
        f"if {v} is True:",
        "    out.append(1)",
        f"elif {v} is False:",
        "    out.append(0)",
        "else:",
        f"    raise SchemaMismatch({w})",
    ],
    "int": lambda v, w, checked: _int_code(v, w, "int", checked),
    "long": lambda v, w, checked: _int_code(v, w, "long", checked),
    "float": lambda v, w, checked: _real_code(v, w, "_pack_float", checked),
    "double": lambda v, w, checked: _real_code(v, w, "_pack_double", checked),
    "bytes": lambda v, w, checked: [
        f"if not isinstance({v}, (bytes, bytearray)):",
        f"    raise SchemaMismatch({w})",
        *_length_code(v),
        f"out += {v}",
    ],
    "string": _string_code,
}


class _Generator:
    """Emits one function ``_fN(v, out, where)`` per named, array, map and union type;
    primitives and ``["null", T]`` unions are inlined where they are used."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.tail: list[str] = []  # tables naming functions: after every ``def``
        self.constants: dict[str, Any] = {
            "SchemaMismatch": SchemaMismatch,
            "Mapping": Mapping,
            "Sequence": Sequence,
            "_typed_array": _typed_array,
            "_varint": _varint,
            "_millis": _millis,
            "_days": _days,
            "_untag": _untag,
            "_best_branch": _best_branch,
            "_pack_double": struct.Struct("<d").pack,
            "_pack_float": struct.Struct("<f").pack,
            "_struct_error": struct.error,
            "_DOUBLE_MAX": sys.float_info.max,
        }
        self.functions: dict[str, str] = {}  # full name of a named type -> its function
        self.count = 0

    def source(self) -> str:
        return "\n".join([*self.lines, *self.tail]) + "\n"

    def constant(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | float | str | bytes):
            return repr(value)
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def function_for(self, schema: Any) -> str:
        """The name of the function writing ``schema``, emitted on first use."""
        if isinstance(schema, str):
            if schema in self.functions:
                return self.functions[schema]
            if schema in self.named:
                return self.function_for(self.named[schema])
            if schema in _PRIMITIVES:
                return self.emit_function(lambda body: self.emit(schema, "v", "where", body, 1))
            raise ValueError(f"unknown Avro type {schema!r}")
        if isinstance(schema, list):
            return self.emit_union(schema)
        kind = schema["type"]
        if not isinstance(kind, str) or kind not in _PRIMITIVES | _NAMED | {"array", "map"}:
            return self.function_for(kind)  # {"type": <a nested schema or a named type>}
        if kind in _NAMED:
            name = schema["name"]
            if name in self.functions:
                return self.functions[name]
            self.count += 1
            self.functions[name] = function = f"_f{self.count}"  # before the body: recursion
            emit = {
                "record": self.emit_record,
                "error": self.emit_record,
                "enum": self.emit_enum,
                "fixed": self.emit_fixed,
            }[kind]
            return self.emit_function(lambda body: emit(schema, body), function)
        if kind == "array":
            return self.emit_function(lambda body: self.emit_array(schema, body))
        if kind == "map":
            return self.emit_function(lambda body: self.emit_map(schema, body))
        return self.emit_function(lambda body: self.emit(schema, "v", "where", body, 1))

    def emit_function(self, fill: Callable[[list[str]], None], name: str | None = None) -> str:
        if name is None:
            self.count += 1
            name = f"_f{self.count}"
        body: list[str] = []
        fill(body)  # may emit other functions first: each is complete before the next
        self.lines += [f"def {name}(v, out, where):", *body, ""]
        return name

    def emit(
        self, schema: Any, v: str, w: str, body: list[str], depth: int, checked: bool = False
    ) -> None:
        """Append code writing variable ``v`` as ``schema``; on a mismatch raise
        ``SchemaMismatch(<w>)`` (``w`` is an expression). ``checked``: ``v`` is known to
        have the schema's usual Python type."""
        pad = "    " * depth
        if isinstance(schema, list) and len(schema) == 2 and "null" in schema:
            self.emit_optional(schema, v, w, body, depth)
            return
        kind = schema if isinstance(schema, str) else None
        if isinstance(schema, dict) and isinstance(schema["type"], str):
            kind, logical = schema["type"], schema.get("logicalType")
            if kind == "long" and logical == "timestamp-millis":
                self.emit_timestamp(v, w, body, depth, checked)
                return
            if kind == "int" and logical == "date" and not checked:
                body += [f"{pad}if type({v}) is not int:", f"{pad}    {v} = _days({v}, {w})"]
        if kind in _PRIMITIVES:
            body += [pad + line for line in _PRIMITIVE_CODE[kind](v, w, checked)]
            return
        body.append(f"{pad}{self.function_for(schema)}({v}, out, {w})")

    def emit_timestamp(self, v: str, w: str, body: list[str], depth: int, checked: bool) -> None:
        """A ``timestamp-millis``: the last value written and its bytes are remembered (one
        tuple, replaced whole), as the times of a request's events are often the same
        (``received_at`` always, ``sent_at`` in a batch); a varint costs ~1 µs in Python."""
        pad = "    " * depth
        memo = self.constant([(None, b"")])
        if not checked:
            body += [f"{pad}if type({v}) is not int:", f"{pad}    {v} = _millis({v}, {w})"]
        body += [
            f"{pad}last = {memo}[0]",
            f"{pad}if type({v}) is int and {v} == last[0]:",
            f"{pad}    out += last[1]",
            f"{pad}else:",
            f"{pad}    start = len(out)",
            *(f"{pad}    {line}" for line in _int_code(v, w, "long", checked)),
            f"{pad}    {memo}[0] = ({v}, bytes(out[start:]))",
        ]

    def emit_record(self, schema: Any, body: list[str]) -> None:
        full = schema["name"]
        body += [
            f"    # {full}",
            "    if type(v) is not dict and not isinstance(v, Mapping):",
            "        raise SchemaMismatch(where)",
            "    get = v.get",
        ]
        for field in schema["fields"]:
            default = self.constant(field.get("default"))
            body.append(f"    x = get({field['name']!r}, {default})")
            self.emit(field["type"], "x", repr(f"{full}.{field['name']}"), body, 1)

    def emit_enum(self, schema: Any, body: list[str]) -> None:
        table = self.constant({s: _varint_bytes(i) for i, s in enumerate(schema["symbols"])})
        body += [
            f"    # {schema['name']}",
            "    try:",
            f"        out += {table}[v]",
            "    except (KeyError, TypeError):",
            "        raise SchemaMismatch(where) from None",
        ]

    def emit_fixed(self, schema: Any, body: list[str]) -> None:
        body += [
            f"    if not isinstance(v, bytes) or len(v) != {int(schema['size'])}:",
            "        raise SchemaMismatch(where)",
            "    out += v",
        ]

    def emit_array(self, schema: Any, body: list[str]) -> None:
        body += [
            "    if not isinstance(v, (Sequence, _typed_array)) or isinstance(v, str):",
            "        raise SchemaMismatch(where)",
            "    if v:",
            *("        " + line for line in _length_code("v")),
            "        for item in v:",
        ]
        self.emit(schema["items"], "item", "where", body, 3)
        body.append("    out.append(0)")

    def emit_map(self, schema: Any, body: list[str]) -> None:
        body += [
            "    if not isinstance(v, Mapping):",
            "        raise SchemaMismatch(where)",
            "    if v:",
            *("        " + line for line in _length_code("v")),
            "        for key, item in v.items():",
        ]
        self.emit("string", "key", "where", body, 3)
        self.emit(schema["values"], "item", "where", body, 3)
        body.append("    out.append(0)")

    def emit_optional(self, schema: list[Any], v: str, w: str, body: list[str], depth: int) -> None:
        """``["null", T]``: inline for the common data (``None``, or T's usual Python type),
        a function for the rest (fastavro's tuple notation, subclasses, mismatches)."""
        pad = "    " * depth
        null_at = schema.index("null")
        other = schema[1 - null_at]
        usual = _usual_type(other, self.named)
        if usual is None:
            self.emit_optional_body(schema, v, w, body, depth)
            return
        general = self.emit_function(lambda b: self.emit_optional_body(schema, "v", "where", b, 1))
        branch = (1 - null_at) * 2
        body.append(f"{pad}if type({v}) is {usual}:")
        if other == "string" or other == {"type": "string"}:
            # The branch and a short length in one append of two bytes.
            heads = self.constant(tuple(bytes((branch, n << 1)) for n in range(64)))
            body += [
                f"{pad}    try:",
                f"{pad}        b = {v}.encode()",
                f"{pad}    except UnicodeEncodeError:  # a lone surrogate",
                f"{pad}        raise SchemaMismatch({w}) from None",
                f"{pad}    n = len(b)",
                f"{pad}    if n < 64:",
                f"{pad}        out += {heads}[n]",
                f"{pad}    else:",
                f"{pad}        out.append({branch})",
                f"{pad}        _varint(n << 1, out)",
                f"{pad}    out += b",
            ]
        else:
            body.append(f"{pad}    out.append({branch})")
            self.emit(other, v, w, body, depth + 1, checked=True)
        body += [
            f"{pad}elif {v} is None:",
            f"{pad}    out.append({null_at * 2})",
            f"{pad}else:",
            f"{pad}    {general}({v}, out, {w})",
        ]

    def emit_optional_body(
        self, schema: list[Any], v: str, w: str, body: list[str], depth: int
    ) -> None:
        pad = "    " * depth
        null_at = schema.index("null")
        other = schema[1 - null_at]
        body += [
            f"{pad}if type({v}) is tuple:",
            f"{pad}    tag, {v} = _untag({v}, {w})",
            f"{pad}    if tag != {_branch_name(other)!r} and (tag != 'null' or {v} is not None):",
            f"{pad}        raise SchemaMismatch({w})",
            f"{pad}if {v} is None:",
            f"{pad}    out.append({null_at * 2})",
            f"{pad}else:",
            f"{pad}    out.append({(1 - null_at) * 2})",
        ]
        self.emit(other, v, w, body, depth + 1)

    def emit_union(self, schema: list[Any]) -> str:
        branches = [self.function_for(b) for b in schema]
        self.count += 1
        name = f"_f{self.count}"
        tags = ", ".join(
            f"{_branch_name(b)!r}: ({_varint_bytes(i)!r}, {f})"
            for i, (b, f) in enumerate(zip(schema, branches, strict=True))
        )
        choices = ", ".join(
            f"({f}, {self.constant(_record_fields(b, self.named))})"
            for b, f in zip(schema, branches, strict=True)
        )
        self.tail += [f"{name}_tags = {{{tags}}}", f"{name}_branches = ({choices},)"]
        null_at = schema.index("null") if "null" in schema else -1
        self.lines += [
            f"def {name}(v, out, where):",
            "    if type(v) is tuple:",
            "        tag, v = _untag(v, where)",
            f"        found = {name}_tags.get(tag) if type(tag) is str else None",
            "        if found is None:",
            "            raise SchemaMismatch(where)",
            "        out += found[0]",
            "        found[1](v, out, where)",
            "        return",
            *(
                [
                    "    if v is None:",
                    f"        out += {_varint_bytes(null_at)!r}",
                    "        return",
                ]
                if null_at >= 0
                else []
            ),
            f"    index, scratch = _best_branch(v, {name}_branches, where)",
            f"    out += {name}_index[index]",
            "    out += scratch",
            "",
        ]
        indexes = ", ".join(repr(_varint_bytes(i)) for i in range(len(schema)))
        self.tail.append(f"{name}_index = ({indexes},)")
        return name


def _usual_type(schema: Any, named: Mapping[str, Any]) -> str | None:
    """The name of the Python type most data of ``schema`` has, if there is one."""
    schema = named.get(schema, schema) if isinstance(schema, str) else schema
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if kind in ("record", "error", "map"):
        return "dict"
    return _USUAL_TYPE.get(kind) if isinstance(kind, str) else None


def _branch_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        if schema["type"] in _NAMED:
            return str(schema["name"])
        return str(schema["type"])
    return "union"


def _record_fields(schema: Any, named: Mapping[str, Any]) -> frozenset[str] | None:
    if isinstance(schema, str):
        schema = named.get(schema)
    if isinstance(schema, dict) and schema.get("type") in ("record", "error"):
        return frozenset(f["name"] for f in schema["fields"])
    return None
