"""An Avro reader generated once per (writer schema, reader schema): bytes straight to dicts.

fastavro's ``schemaless_reader`` parses the writer schema again on every call (fastavro
issue #444): for a ``cdp.Event`` with its ten-branch payload union that is most of the
~23 µs a message took. :func:`compile_reader` writes, once, the Python source of a
function reading the schema (as :mod:`cdpflow.avro_writer` does for writing) with every
field, nested record and union branch inlined (a record that contains itself gets a
function of its own); ``compile_reader(schema).source`` shows the code.

What it returns is what ``fastavro.schemaless_reader(fo, writer, reader)`` returns for the
same bytes: the same dicts (fields in the same order, defaults for fields the writer
lacks), logical ``timestamp-millis`` as aware UTC datetimes and ``date`` as dates when the
*writer* schema says so (as fastavro does), or plain ints with ``logical=False``.
Schema resolution is fastavro's, worked out once: the reader branch and type of each
writer type come from fastavro's own ``match_schemas``/``match_types``; fields the reader
lacks are skipped, fields the writer lacks take the reader's default (a copy per record),
enum symbols the reader lacks its default, and ``int``/``long``/``string``/``bytes`` are
promoted as fastavro promotes them.

It is stricter than fastavro, never more lenient: bytes fastavro reads by a quirk (a
boolean byte other than 0 or 1, an ``int`` beyond 32 bits, a varint beyond 64 bits, a
negative union or enum index, which fastavro takes from the end of the list) raise
:class:`Unreadable`, as do truncated or corrupt bytes. A caller that wants fastavro's
exact verdict reads such bytes again with fastavro (:mod:`cdpflow.codec` does), so
corrupt input costs the slow path only. Every length is checked against the bytes left
before it is used, so a corrupt length prefix cannot make it allocate or loop.

With an :class:`Into`, the top record is built by a call (e.g. straight into a
dataclass, its slots set directly) rather than as a dict, with per-field conversions of
the records in a field, so a caller that wants objects never builds the dict it would
throw away (``flows.decode.EVENT_INTO``).

A schema pair it cannot compile faithfully raises :class:`UnsupportedSchema` at compile
time (e.g. logical types other than ``timestamp-millis`` and ``date``, arrays of items
that take no bytes): read those with fastavro.

>>> from fastavro import parse_schema
>>> read = compile_reader(parse_schema({"type": "record", "name": "cdp.T", "fields": [
...     {"name": "id", "type": "string"}, {"name": "n", "type": ["null", "long"]}]}))
>>> read(b'\\x02a\\x02\\x02')
({'id': 'a', 'n': 1}, 4)
>>> read(b'\\x02a\\x02')
Traceback (most recent call last):
...
cdpflow.avro_reader.Unreadable: IndexError
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import inspect
import re
import struct
import types
from collections.abc import Callable, Mapping
from typing import Any

try:
    from fastavro import _read as _fastavro_impl
except ImportError:  # fastavro without its C extension
    from fastavro import _read_py as _fastavro_impl  # type: ignore[no-redef]

__all__ = [
    "READ_ERRORS",
    "AvroReader",
    "Into",
    "Unreadable",
    "UnsupportedSchema",
    "compile_reader",
]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "error", "enum", "fixed"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAYS_SHIFT = dt.date(1970, 1, 1).toordinal()
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
#: Names the generated code uses: an :class:`Into`'s parameters must not take them.
_RESERVED = frozenset({"data", "pos", "end", "v", "b", "shift", "_"})
_GENERATED = re.compile(r"_.*|[a-z]\d+")
# fastavro's own matching rules, from the reader it uses (its C one when built), so that the
# branch and field chosen for each writer type are fastavro's by construction.
_match_schemas: Callable[..., Any] = _fastavro_impl.match_schemas  # type: ignore[attr-defined]
_match_types: Callable[..., Any] = _fastavro_impl.match_types  # type: ignore[attr-defined]
#: fastavro's logical readers (``"<type>-<logicalType>"``); those we compile are below.
_FASTAVRO_LOGICAL = {
    "long-timestamp-millis",
    "long-local-timestamp-millis",
    "long-timestamp-micros",
    "long-local-timestamp-micros",
    "int-date",
    "bytes-decimal",
    "fixed-decimal",
    "string-uuid",
    "int-time-millis",
    "long-time-micros",
}


class Unreadable(ValueError):
    """The bytes do not read as the schema (or read only by one of fastavro's quirks).

    The message is the type of the low-level error, never a value.
    """


class UnsupportedSchema(ValueError):
    """This writer/reader pair is beyond the compiler: read it with fastavro."""


class _Invalid(Exception):
    """Raised by the generated code: a byte pattern it refuses (see the module doc)."""


#: Every exception :attr:`AvroReader.read` can raise on bad bytes (UnicodeDecodeError is a
#: ValueError).
READ_ERRORS = (_Invalid, IndexError, ValueError, OverflowError, struct.error, KeyError)


@dataclasses.dataclass(frozen=True, eq=False)
class Into:
    """Read the record named ``name`` straight into ``make(...)``, never building its dict.

    ``args``: ``make``'s arguments by name, each a Python expression over the record's
    fields written ``{field}`` (``"{customer_id} or None"``) and over ``params``, extra
    arguments of the generated function after ``end``. ``convert``: ``{field: {inner: fn}}``:
    in the record (or each record branch) of ``field``, a value of ``inner`` that is not
    None becomes ``fn(value)``, as the record is read. ``refused``: the exceptions a ``fn``
    raises for values it will not take; a caller reads such bytes another way.

    Hashed by identity: one instance per use, kept for the process (a cache key).
    """

    name: str
    make: Callable[..., Any]
    args: Mapping[str, str]
    params: tuple[str, ...] = ()
    convert: Mapping[str, Mapping[str, Callable[[Any], Any]]] = dataclasses.field(
        default_factory=dict
    )
    refused: tuple[type[Exception], ...] = ()
    slots: bool = False


class AvroReader:
    """``reader(data, pos=0, *params) -> (datum, end)``: the datum at ``data[pos:]`` and
    where it ends (``params``: an :class:`Into`'s).

    ``read(data, pos, len(data), *params)`` is the generated function itself, one call
    less, for a hot loop; it raises one of :data:`READ_ERRORS` instead of
    :class:`Unreadable`.
    """

    __slots__ = ("read", "source")

    def __init__(self, read: Callable[..., tuple[Any, int]], source: str) -> None:
        self.read = read
        self.source = source

    def __call__(self, data: bytes, pos: int = 0, *params: Any) -> tuple[Any, int]:
        try:
            return self.read(data, pos, len(data), *params)
        except READ_ERRORS as exc:
            raise Unreadable(type(exc).__name__) from exc


def compile_reader(
    writer: Any, reader: Any = None, *, logical: bool = True, into: Into | None = None
) -> AvroReader:
    """The reader of data written with ``writer`` into ``reader`` (both parsed by
    ``fastavro.parse_schema``; ``None``: no resolution, as fastavro with no reader schema).

    ``logical=False`` reads logical types as their underlying ints. ``into``: the record
    is built as it says (the reader then takes ``into.params`` after ``pos``). Raises
    :class:`UnsupportedSchema` for a pair it cannot compile (with ``into``: also a record
    of another name, or one without the fields it names).
    """
    gen = _Generator(_named(writer), _named(reader), logical)
    entry = (
        gen.function_for(writer, reader)
        if into is None
        else gen.function_into(writer, reader, into)
    )
    source = gen.source()
    namespace = dict(gen.constants)
    exec(compile(source, "<avro_reader>", "exec"), namespace)  # noqa: S102 - our own source
    return AvroReader(namespace[entry], source)


def _named(schema: Any) -> dict[str, Any]:
    return dict(schema.get("__named_schemas", {})) if isinstance(schema, dict) else {}


# --- helpers the generated code calls ----------------------------------------------------


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint of at most 64 bits (fastavro's C reader wraps longer ones)."""
    b = data[pos]
    n = b & 0x7F
    shift = 7
    pos += 1
    while b & 0x80:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if shift > 70:
            raise _Invalid
    if n >> 64:
        raise _Invalid
    return (n >> 1) ^ -(n & 1), pos


def _int(data: bytes, pos: int) -> tuple[int, int]:
    n, pos = _long(data, pos)
    if not _INT_MIN <= n <= _INT_MAX:
        raise _Invalid  # fastavro takes it as a long
    return n, pos


def _size(data: bytes, pos: int) -> tuple[int, int]:
    """A non-negative length."""
    n, pos = _long(data, pos)
    if n < 0:
        raise _Invalid
    return n, pos


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """An array or map block's item count; a negative count is followed by its byte size."""
    n, pos = _long(data, pos)
    if n < 0:
        n = -n
        _, pos = _long(data, pos)
    return n, pos


# --- the generator -----------------------------------------------------------------------


def _kind(schema: Any) -> str:
    """fastavro's ``extract_record_type``; a named reference is returned as its name."""
    if isinstance(schema, dict):
        kind = schema["type"]
        if not isinstance(kind, str):
            raise UnsupportedSchema("a nested type wrapper")
        return kind
    if isinstance(schema, list):
        return "union"
    return str(schema)


class _Generator:
    """Emits one function ``_fN(data, pos, end) -> (value, pos)`` for the top schema, and one
    per record that contains itself; everything else is inlined where it is used."""

    def __init__(self, wnamed: dict[str, Any], rnamed: dict[str, Any], logical: bool) -> None:
        self.wnamed = wnamed
        self.rnamed = rnamed
        self.names = {"writer": wnamed, "reader": rnamed}
        self.logical = logical
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "_Invalid": _Invalid,
            "_long": _long,
            "_int": _int,
            "_size": _size,
            "_block": _block,
            "_EPOCH": _EPOCH,
            "_timedelta": dt.timedelta,
            "_fromordinal": dt.date.fromordinal,
            "_deepcopy": copy.deepcopy,
            "_unpack_float": struct.Struct("<f").unpack_from,
            "_unpack_double": struct.Struct("<d").unpack_from,
        }
        self.functions: dict[tuple[str, str | None, bool], str] = {}
        self.inlining: list[str] = []  # records being emitted: one met again is a call
        #: conversions of the next record's own fields (:attr:`Into.convert`)
        self.convert: dict[str, Callable[[Any], Any]] = {}
        self.count = 0
        self.vars = 0

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"

    def constant(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | float | str):
            return repr(value)
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def var(self, stem: str) -> str:
        self.vars += 1
        return f"{stem}{self.vars}"

    def resolve(self, schema: Any, table: Mapping[str, Any]) -> Any:
        """A named reference as its definition."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in table:
                raise UnsupportedSchema(f"unknown named type {schema!r}")
            return table[schema]
        return schema

    def function_for(self, w: Any, r: Any, skip: bool = False) -> str:
        """The function reading a record written as ``w`` into ``r`` (or, at the top, any
        schema: it is wrapped in a function)."""
        w = self.resolve(w, self.wnamed)
        if r is not None:
            r = self.resolve(r, self.rnamed)
        if _kind(w) in ("record", "error"):
            if r is not None and _kind(r) not in ("record", "error"):
                raise UnsupportedSchema("a record read as another type")
            key = (w["name"], None if r is None else r["name"], skip)
            if key in self.functions:
                return self.functions[key]
            self.count += 1
            self.functions[key] = name = f"_f{self.count}"  # before the body: recursion
            body: list[str] = []
            self.emit_record(w, r, "v", body, 1, skip)
            body.append("    return v, pos")
        else:
            self.count += 1
            name = f"_f{self.count}"
            body = []
            self.emit(w, r, "v", body, 1, skip)
            body.append("    return v, pos")
        self.lines += [f"def {name}(data, pos, end):", *body, ""]
        return name

    def function_into(self, w: Any, r: Any, into: Into) -> str:
        """The function reading a record written as ``w`` into ``r`` as ``into`` says."""
        w = self.resolve(w, self.wnamed)
        if r is not None:
            r = self.resolve(r, self.rnamed)
        shape = w if r is None else r
        if _kind(w) not in ("record", "error") or _kind(shape) not in ("record", "error"):
            raise UnsupportedSchema("only a record is read into an object")
        if shape["name"] != into.name:
            raise UnsupportedSchema(f"{shape['name']} is not {into.name}")
        table = self.wnamed if r is None else self.rnamed
        types = {f["name"]: f["type"] for f in shape["fields"]}
        for outer in into.convert:
            if outer not in types:
                raise UnsupportedSchema(f"no field {outer} to convert in")
            kind = self.resolve(types[outer], table)
            if not all(
                _kind(self.resolve(b, table)) in ("record", "error")
                for b in (kind if isinstance(kind, list) else [kind])
            ):
                raise UnsupportedSchema(f"field {outer} is not a record or a union of records")
        for param in into.params:  # the generated code's own names are not to be taken
            if not param.isidentifier() or param in _RESERVED or _GENERATED.fullmatch(param):
                raise ValueError(f"parameter name {param!r} is one the reader uses")
        self.count += 1
        name = f"_f{self.count}"
        body: list[str] = []
        fields = dict(self.emit_fields(w, r, body, 1, False, into.convert))
        try:
            values = {k: f"({t.format_map(fields)})" for k, t in into.args.items()}
        except KeyError as exc:
            raise UnsupportedSchema(f"no field {exc} for {into.name}") from None
        setters = _slot_setters(into.make, values) if into.slots else None
        if setters is None:
            body.append(
                f"    return {self.constant(into.make)}({_call_args(into.make, values)}), pos"
            )
        else:
            body.append(f"    v = {self.constant(object.__new__)}({self.constant(into.make)})")
            body += [f"    {self.constant(setters[k])}(v, {values[k]})" for k in values]
            body.append("    return v, pos")
        params = "".join(f", {p}" for p in into.params)
        self.lines += [f"def {name}(data, pos, end{params}):", *body, ""]
        return name

    # Each emit_* appends code that reads one datum into variable ``v`` and advances
    # ``pos``. ``r`` is the reader schema fastavro would use (None: no resolution);
    # ``skip``: the value is discarded (fastavro's skip: no logical types, no resolution).

    def emit(self, w: Any, r: Any, v: str, body: list[str], depth: int, skip: bool) -> None:
        pad = "    " * depth
        w = self.resolve(w, self.wnamed)
        if r is not None and not skip:
            # fastavro's read_data: the reader schema fastavro pairs with this writer.
            matched = _match_schemas(w, r, self.names, raise_on_error=False)
            if matched is None:
                body.append(f"{pad}raise _Invalid  # no reader schema matches: fastavro raises")
                return
            r = self.resolve(matched, self.rnamed)
        else:
            r = None
        kind = _kind(w)
        if kind == "union":
            self.emit_union(w, r, v, body, depth, skip)
        elif kind in ("record", "error") and w["name"] in self.inlining:  # recursion
            if self.convert:
                raise UnsupportedSchema("a converted record that contains itself")
            body.append(f"{pad}{v}, pos = {self.function_for(w, r, skip)}(data, pos, end)")
        elif kind in ("record", "error"):
            self.emit_record(w, r, v, body, depth, skip)
        elif kind == "enum":
            self.emit_enum(w, r, v, body, depth)
        elif kind == "fixed":
            size = int(w["size"])
            body += [
                f"{pad}if pos + {size} > end:",
                f"{pad}    raise _Invalid",
                f"{pad}{v} = data[pos:pos + {size}]",
                f"{pad}pos += {size}",
            ]
            self.emit_logical(w, v, body, depth, skip)
        elif kind == "array":
            self.emit_array(w, r, v, body, depth, skip)
        elif kind == "map":
            self.emit_map(w, r, v, body, depth, skip)
        elif kind in _PRIMITIVES:
            self.emit_primitive(kind, v, body, depth)
            if not self.emit_logical(w, v, body, depth, skip) and r is not None:
                self.emit_promotion(kind, _kind(r), v, body, depth)
        else:
            raise UnsupportedSchema(f"type {kind!r}")

    def emit_primitive(self, kind: str, v: str, body: list[str], depth: int) -> None:
        pad = "    " * depth
        if kind == "null":
            body.append(f"{pad}{v} = None")
        elif kind == "boolean":
            body += [
                f"{pad}{v} = data[pos]",
                f"{pad}if {v} > 1:",
                f"{pad}    raise _Invalid  # fastavro reads any other byte as True",
                f"{pad}{v} = {v} == 1",
                f"{pad}pos += 1",
            ]
        elif kind in ("int", "long"):
            body += [pad + line for line in _varint_code(v)]
            if kind == "int":
                body += [
                    f"{pad}if not {_INT_MIN} <= {v} <= {_INT_MAX}:",
                    f"{pad}    raise _Invalid  # fastavro reads it as a long",
                ]
        elif kind in ("float", "double"):
            size = 4 if kind == "float" else 8
            body += [f"{pad}{v} = _unpack_{kind}(data, pos)[0]", f"{pad}pos += {size}"]
        else:  # bytes, string
            n = self.var("n")
            body += [
                f"{pad}{n} = data[pos]",
                f"{pad}if {n} & 129:  # a length of more than one byte, or negative",
                f"{pad}    {n}, pos = _size(data, pos)",
                f"{pad}else:",
                f"{pad}    {n} >>= 1",
                f"{pad}    pos += 1",
                f"{pad}if pos + {n} > end:",
                f"{pad}    raise _Invalid  # a length beyond the bytes left",
                f"{pad}{v} = data[pos:pos + {n}]{'.decode()' if kind == 'string' else ''}",
                f"{pad}pos += {n}",
            ]

    def emit_logical(self, w: Any, v: str, body: list[str], depth: int, skip: bool) -> bool:
        """fastavro converts by the *writer's* logical type; True if it applies here."""
        if skip or not self.logical or not isinstance(w, dict) or "logicalType" not in w:
            return False
        pad = "    " * depth
        key = f"{w['type']}-{w['logicalType']}"
        if key == "long-timestamp-millis":
            body.append(f"{pad}{v} = _EPOCH + _timedelta(microseconds={v} * 1000)")
        elif key == "int-date":
            body.append(f"{pad}{v} = _fromordinal({v} + {_DAYS_SHIFT})")
        elif key in _FASTAVRO_LOGICAL:
            raise UnsupportedSchema(f"logical type {key}")
        else:
            return False
        return True

    def emit_promotion(self, wkind: str, rkind: str, v: str, body: list[str], depth: int) -> None:
        """fastavro's ``maybe_promote``."""
        pad = "    " * depth
        if wkind in ("int", "long") and rkind in ("float", "double"):
            body.append(f"{pad}{v} = float({v})")
        elif wkind == "string" and rkind == "bytes":
            body.append(f"{pad}{v} = {v}.encode()")
        elif wkind == "bytes" and rkind == "string":
            body.append(f"{pad}{v} = {v}.decode()")

    def emit_record(self, w: Any, r: Any, v: str, body: list[str], depth: int, skip: bool) -> None:
        """A record inline: its fields' code, then one dict display (no call, no tuple)."""
        pad = "    " * depth
        out = self.emit_fields(w, r, body, depth, skip)
        if skip:
            body.append(f"{pad}{v} = None")
            return
        items = ", ".join(f"{name!r}: {x}" for name, x in out)
        body.append(f"{pad}{v} = {{{items}}}")

    def emit_fields(
        self,
        w: Any,
        r: Any,
        body: list[str],
        depth: int,
        skip: bool,
        inner: Mapping[str, Mapping[str, Callable[[Any], Any]]] | None = None,
    ) -> list[tuple[str, str]]:
        """A record's fields read into variables: ``(reader name, variable or default
        expression)`` in the order of fastavro's dict. ``inner``: the conversions of the
        fields of the records directly in a field of this one (see :class:`Into`)."""
        pad = "    " * depth
        if r is not None and _kind(r) not in ("record", "error"):
            raise UnsupportedSchema("a record read as another type")
        body.append(f"{pad}# {w['name']}" + ("" if r is None else f" read as {r['name']}"))
        if r is None or skip:
            fields = [(f["name"], f, None) for f in w["fields"]]
            defaults: list[tuple[str, Any]] = []
        else:
            fields, defaults = _resolve_fields(w, r)
        convert, self.convert = self.convert, {}  # only this record's own fields
        self.inlining.append(w["name"])
        out: list[tuple[str, str]] = []
        for name, wf, rf in fields:
            x = self.var("x")
            if rf is None and r is not None and not skip:
                self.emit(wf["type"], None, x, body, depth, True)  # a field the reader lacks
                continue
            self.convert = {} if inner is None else dict(inner.get(name, {}))
            self.emit(wf["type"], None if rf is None else rf["type"], x, body, depth, skip)
            self.convert = {}
            taken = [j for j, item in enumerate(out) if item[0] == name]
            if taken:  # a dict keeps a key's first place
                out[taken[0]] = (name, x)
            else:
                out.append((name, x))
        self.inlining.pop()
        self.convert = convert
        for name, default in defaults:
            if name in convert and not skip:  # converted below: a variable of its own
                x = self.var("x")
                body.append(f"{pad}{x} = {self.default(default)}")
                out.append((name, x))
            else:
                out.append((name, self.default(default)))
        if not skip:
            for name, x in out:
                if name in convert:
                    fn = self.constant(convert[name])
                    body += [f"{pad}if {x} is not None:", f"{pad}    {x} = {fn}({x})"]
        return out

    def default(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | float | str):
            return repr(value)
        if value == [] or value == {}:
            return repr(value)
        return f"_deepcopy({self.constant(value)})"  # each record its own copy

    def emit_enum(self, w: Any, r: Any, v: str, body: list[str], depth: int) -> None:
        pad = "    " * depth
        symbols: list[Any] = list(w["symbols"])
        if r is not None:
            for i, symbol in enumerate(symbols):
                if symbol not in r["symbols"]:
                    # fastavro: the reader's default if it has a (truthy) one, else an error
                    symbols[i] = r.get("default") or _Invalid
        table = self.constant(tuple(symbols))
        body += [
            f"{pad}{v} = data[pos]",
            f"{pad}if {v} < 128 and not {v} & 1:",
            f"{pad}    pos += 1",
            f"{pad}    {v} = {table}[{v} >> 1]",
            f"{pad}else:",
            f"{pad}    {v}, pos = _long(data, pos)",
            f"{pad}    if {v} < 0:",
            f"{pad}        raise _Invalid  # fastavro would index from the end",
            f"{pad}    {v} = {table}[{v}]",
        ]
        if _Invalid in symbols:
            body += [f"{pad}if {v} is _Invalid:", f"{pad}    raise _Invalid"]

    def emit_blocks(
        self,
        w_item: Any,
        v: str,
        body: list[str],
        depth: int,
        empty: str,
        add: Callable[[str], None],
    ) -> str:
        """The block loop of an array or a map; returns the indentation of its item code."""
        if _min_size(w_item, self.wnamed, set()) == 0:
            raise UnsupportedSchema("items that take no bytes: a count could loop for ever")
        pad = "    " * depth
        n = self.var("n")
        body += [
            f"{pad}{v} = {empty}",
            f"{pad}{n} = data[pos]",
            f"{pad}if {n} & 129:  # more than one byte, or negative",
            f"{pad}    {n}, pos = _block(data, pos)",
            f"{pad}else:",
            f"{pad}    {n} >>= 1",
            f"{pad}    pos += 1",
            f"{pad}while {n}:",
            f"{pad}    if {n} > end - pos:",
            f"{pad}        raise _Invalid  # more items than bytes left",
            f"{pad}    for _ in range({n}):",
        ]
        add(pad + "        ")
        body += [
            f"{pad}    {n} = data[pos]",
            f"{pad}    if {n} & 129:",
            f"{pad}        {n}, pos = _block(data, pos)",
            f"{pad}    else:",
            f"{pad}        {n} >>= 1",
            f"{pad}        pos += 1",
        ]
        return pad

    def emit_array(self, w: Any, r: Any, v: str, body: list[str], depth: int, skip: bool) -> None:
        item = self.var("i")

        def add(pad: str) -> None:
            self.emit(w["items"], None if r is None else r["items"], item, body, depth + 2, skip)
            body.append(f"{pad}{v}.append({item})")

        self.emit_blocks(w["items"], v, body, depth, "[]", add)

    def emit_map(self, w: Any, r: Any, v: str, body: list[str], depth: int, skip: bool) -> None:
        key, item = self.var("k"), self.var("i")

        def add(pad: str) -> None:
            self.emit_primitive("string", key, body, depth + 2)
            self.emit(w["values"], None if r is None else r["values"], item, body, depth + 2, skip)
            body.append(f"{pad}{v}[{key}] = {item}")

        self.emit_blocks("string", v, body, depth, "{}", add)

    def emit_union(
        self, w: list[Any], r: Any, v: str, body: list[str], depth: int, skip: bool
    ) -> None:
        pad = "    " * depth
        if not 0 < len(w) < 64:
            raise UnsupportedSchema("a union of no or more than 63 branches")
        readers: list[Any] = []
        for branch in w:
            if r is None:
                readers.append(None)
                continue
            # fastavro's read_union: the first reader branch that matches the writer's.
            options = r if isinstance(r, list) else [r]
            found = [o for o in options if _match_types(branch, o, self.names)]
            readers.append(found[0] if found else _Invalid)
        # The index in one byte (branches < 64); a longer or negative one is refused.
        body += [f"{pad}{v} = data[pos]", f"{pad}pos += 1"]
        for i, (branch, rb) in enumerate(zip(w, readers, strict=True)):
            body.append(f"{pad}{'if' if i == 0 else 'elif'} {v} == {2 * i}:")
            if rb is _Invalid:
                body.append(f"{pad}    raise _Invalid  # no reader branch: fastavro raises")
                continue
            before = len(body)
            self.emit(branch, rb, v, body, depth + 1, skip)
            if len(body) == before:
                body.append(f"{pad}    pass")
        body += [f"{pad}else:", f"{pad}    raise _Invalid  # out of range, negative or long"]


def _call_args(make: Callable[..., Any], values: Mapping[str, str]) -> str:
    """``make``'s arguments: by position while its signature allows (a cheaper call),
    then by name; a name it does not take is a TypeError now, not at the first read."""
    params = inspect.signature(make).parameters
    inspect.signature(make).bind(**dict.fromkeys(values))
    args: list[str] = []
    named = dict(values)
    for p in params.values():
        if p.kind is not p.POSITIONAL_OR_KEYWORD or p.name not in named:
            break
        args.append(named.pop(p.name))
    return ", ".join([*args, *(f"{k}={v}" for k, v in named.items())])


def _slot_setters(
    make: Callable[..., Any], values: Mapping[str, str]
) -> dict[str, Callable[[Any, Any], None]] | None:
    """Each field's slot setter, if the slots can stand for ``make``'s ``__init__``."""
    if not dataclasses.is_dataclass(make) or hasattr(make, "__post_init__"):
        return None
    fields = dataclasses.fields(make)
    if any(not f.init for f in fields) or {f.name for f in fields} != set(values):
        return None
    slots = {f.name: vars(make).get(f.name) for f in fields}
    if not all(isinstance(s, types.MemberDescriptorType) for s in slots.values()):
        return None
    return {name: s.__set__ for name, s in slots.items()}  # type: ignore[union-attr]


def _resolve_fields(w: Any, r: Any) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any]]]:
    """fastavro's ``read_record`` worked out once: ``(reader name, writer field, reader
    field or None)`` in writer order, then the reader's defaults for what is left."""
    readers = {f["name"]: f for f in r["fields"]}
    aliases = {a: f for f in r["fields"] for a in f.get("aliases", [])}
    fields: list[tuple[str, Any, Any]] = []
    for wf in w["fields"]:
        rf = readers.get(wf["name"], aliases.get(wf["name"]))
        if rf is not None:
            if rf["name"] not in readers:
                raise UnsupportedSchema(f"two writer fields for reader field {rf['name']}")
            fields.append((rf["name"], wf, rf))
            del readers[rf["name"]]
        else:
            fields.append((wf["name"], wf, None))
    defaults: list[tuple[str, Any]] = []
    for name, rf in readers.items():
        if "default" not in rf:
            raise UnsupportedSchema(f"reader field {name} has no default")  # fastavro raises
        defaults.append((name, rf["default"]))
    return fields, defaults


def _varint_code(v: str) -> list[str]:
    """Inline code reading a zig-zag varint of at most 64 bits into ``v`` (see ``_long``)."""
    return [
        f"{v} = data[pos]",
        "pos += 1",
        f"if {v} > 127:",
        f"    {v} &= 127",
        "    shift = 7",
        "    b = data[pos]",
        "    pos += 1",
        "    while b > 127:",
        f"        {v} |= (b & 127) << shift",
        "        shift += 7",
        "        b = data[pos]",
        "        pos += 1",
        f"    {v} |= b << shift",
        f"    if shift >= 63 and (shift > 63 or {v} >> 64):",
        "        raise _Invalid  # beyond 64 bits: fastavro's C reader wraps",
        f"{v} = ({v} >> 1) ^ -({v} & 1)",
    ]


def _min_size(schema: Any, named: Mapping[str, Any], seen: set[str]) -> int:
    """The fewest bytes a datum of ``schema`` takes (0 for a record met again: recursion)."""
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        if schema in seen or schema not in named:
            return 0
        schema = named[schema]
    kind = _kind(schema)
    if kind == "null":
        return 0
    if kind in ("float",):
        return 4
    if kind == "double":
        return 8
    if kind == "fixed":
        return int(schema["size"])
    if kind in ("record", "error"):
        if schema["name"] in seen:
            return 0
        inner = seen | {schema["name"]}
        return sum(_min_size(f["type"], named, inner) for f in schema["fields"])
    return 1  # a varint, a length, a count or a union index
