"""Avro codec: single-object encoding over the schemas in ``avro/``.

Framing (the Avro specification's *single-object encoding*)::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
          | Parsing Canonical Form | Avro binary body

The fingerprint lets a reader tell schema versions apart without a registry: each
reader knows the current schemas (``avro/*.avsc``) and every retired version kept in
``avro/history/`` (self-contained canonical forms), and resolves old data to the
current reader schema by Avro's resolution rules. See ``avro/README.md`` for the
evolution rules.

Unknown fingerprints and corrupt bytes raise :class:`~cdpflow.errors.CodecError`
subclasses; the dataflow turns them into dead letters, never a crash.

Bodies are read by code generated once per writer schema (and per ``logical``) by
:mod:`cdpflow.avro_reader`, several times faster than fastavro's ``schemaless_reader``,
which parses the writer schema again on every call. Bytes that reader refuses (corrupt
ones, or the few fastavro reads by a quirk) are read again with fastavro, so the verdict
and the error message are fastavro's, as before; so is a writer schema the compiler
does not handle. :meth:`AvroCodec.decode_into` reads a record straight into an object
(:class:`~cdpflow.avro_reader.Into`), with the same fallback for what that reader refuses.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from cdpflow.avro_reader import READ_ERRORS, Into, UnsupportedSchema, compile_reader
from cdpflow.avro_writer import AvroWriter, compile_writer
from cdpflow.errors import CorruptRecordError, UnknownSchemaError

__all__ = [
    "MARKER",
    "AvroCodec",
    "default_codec",
    "schema_dir",
    "schema_fingerprint",
]

MARKER = b"\xc3\x01"
# What fastavro raises for a body that does not read: truncation, bad varints, invalid
# UTF-8, union indexes out of range, dates out of range, irreconcilable writer schemas.
_UNREADABLE = (
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    SchemaResolutionError,
)
_HEADER_LEN = len(MARKER) + 8
_MISSING: Any = object()
#: A writer's full name and its compiled reader's function (None: read with fastavro).
_Compiled = tuple[str, Callable[[bytes, int, int], tuple[dict[str, Any], int]] | None]
#: A writer's reader straight into an object (:class:`Into`); None: read a dict.
_IntoRead = Callable[..., tuple[Any, int]] | None


def schema_dir() -> Path:
    """The folder holding the ``.avsc`` files.

    A source checkout (and an editable install) reads ``<repo>/avro``; a wheel carries
    the same files as ``cdpflow/schemas``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "avro", here / "schemas"):
        if (candidate / "cdp.Event.avsc").is_file():
            return candidate
    msg = f"Avro schemas not found next to {here} (looked for avro/ and cdpflow/schemas/)"
    raise FileNotFoundError(msg)


def schema_fingerprint(parsed: Any) -> bytes:
    """The 8 fingerprint bytes of a parsed schema, in single-object byte order."""
    # fastavro renders CRC-64-AVRO as the hex of the little-endian bytes the spec frames.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def _without_logical_types(schema: Any) -> Any:
    """The same schema minus ``logicalType``: identical bytes, read as plain ints."""
    if isinstance(schema, dict):
        return {
            k: _without_logical_types(v)
            for k, v in schema.items()
            if k != "logicalType" and not k.startswith("__")
        }
    if isinstance(schema, list):
        return [_without_logical_types(s) for s in schema]
    return schema


@dataclass(frozen=True, slots=True)
class _Writer:
    name: str
    schema: Any
    reader: Any  # current schema of the same name (old data reads as new); None if current
    plain_schema: Any = None
    plain_reader: Any = None

    @classmethod
    def of(cls, name: str, schema: Any, reader: Any) -> _Writer:
        plain_reader = None if reader is None else parse_schema(_without_logical_types(reader))
        return cls(name, schema, reader, parse_schema(_without_logical_types(schema)), plain_reader)


class AvroCodec:
    """Encodes and decodes ``cdp.*`` records; parsed schemas are cached per instance.

    >>> codec = default_codec()
    >>> data = codec.encode("cdp.TagChange", {"change_id": "c1", "customer_id": "42",
    ...     "tag": "frequent_buyer", "added": True, "reason": "3 orders in 90d",
    ...     "event_time": 0, "emitted_at": 0})
    >>> data[:2] == MARKER
    True
    >>> codec.decode(data)[0]
    'cdp.TagChange'
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory or schema_dir()
        self._current: dict[str, Any] = {}
        self._prefix: dict[str, bytes] = {}
        self._writers: dict[bytes, _Writer] = {}
        self._compiled: dict[str, AvroWriter] = {}
        #: header (marker + fingerprint) -> (full name, compiled reader or None: fastavro)
        self._plain: dict[bytes, _Compiled] = {}
        self._logical: dict[bytes, _Compiled] = {}
        self._into: dict[Into, dict[bytes, _IntoRead]] = {}
        for path in sorted(self._dir.glob("cdp.*.avsc")):
            parsed = load_schema(str(path))
            if not isinstance(parsed, dict) or parsed.get("type") != "record":
                continue  # enums are only referenced, never framed on their own
            name = path.stem
            fp = schema_fingerprint(parsed)
            self._current[name] = parsed
            self._prefix[name] = MARKER + fp
            # No reader schema for current data: fastavro then skips schema resolution.
            self._writers[fp] = _Writer.of(name, parsed, None)
        history = self._dir / "history"
        for path in sorted(history.glob("*.avsc")) if history.is_dir() else ():
            self.register_writer(json.loads(path.read_text()))

    @property
    def names(self) -> list[str]:
        """Full names of the record schemas this codec writes."""
        return sorted(self._current)

    def schema(self, name: str) -> Any:
        """The current parsed schema of ``name`` (e.g. ``"cdp.Event"``)."""
        return self._current[name]

    def fingerprint_of(self, name: str) -> bytes:
        return self._prefix[name][len(MARKER) :]

    def register_writer(self, schema: Any) -> bytes:
        """Teach the reader an older (or foreign) version of a ``cdp`` record.

        Data written with it decodes into the current schema of the same full name,
        with defaults for fields the old version lacked.
        """
        parsed: Any = parse_schema(schema)  # a record: fastavro types it as any schema
        name = parsed["name"]
        if name not in self._current:
            raise UnknownSchemaError(f"no current schema named {name!r} to read it into")
        fp = schema_fingerprint(parsed)
        if fp not in self._writers:
            self._writers[fp] = _Writer.of(name, parsed, self._current[name])
        return fp

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Frame ``record`` with the current ``name`` schema.

        Raises ``KeyError`` for an unknown name and
        :class:`~cdpflow.avro_writer.SchemaMismatch` (a ``ValueError`` naming the field) for a
        record that does not fit the schema.
        """
        writer = self._compiled.get(name)
        if writer is None:
            # Checked and written in one pass by code generated once per schema
            # (:mod:`cdpflow.avro_writer`): the same bytes as fastavro, several times faster.
            writer = self._compiled[name] = compile_writer(self._current[name], self._prefix[name])
        return writer(record)

    def encode_with(self, schema: Any, record: dict[str, Any]) -> bytes:
        """Frame ``record`` with an explicit (e.g. older) parsed schema; for tests and tools."""
        buf = io.BytesIO()
        buf.write(MARKER + schema_fingerprint(schema))
        schemaless_writer(buf, schema, record)
        return buf.getvalue()

    def decode(self, data: bytes | None, *, logical: bool = True) -> tuple[str, dict[str, Any]]:
        """Return ``(full_name, record)`` or raise a :class:`CodecError`.

        ``logical=False`` skips logical types: timestamps stay integer milliseconds and
        dates integer days, which is what the dataflow wants and saves building datetimes.
        The message says what is wrong with the framing, never the content.
        """
        if data is None:
            raise CorruptRecordError("empty message (null value)")
        # The whole 10-byte header is the key: a hit means the marker is right and the
        # writer known; everything else takes the checks in _reader_for.
        cache = self._logical if logical else self._plain
        compiled = cache.get(data[:_HEADER_LEN]) if type(data) is bytes else None
        if compiled is None:
            if isinstance(data, bytearray | memoryview):
                data = bytes(data)  # the generated readers slice bytes
            compiled = self._reader_for(data, cache, logical)
        name, read = compiled
        if read is not None:
            try:
                record, end = read(data, _HEADER_LEN, len(data))
            except READ_ERRORS:
                pass  # refused: fastavro below gives the verdict and names the error
            else:
                if end != len(data):
                    raise CorruptRecordError(
                        f"{len(data) - end} trailing bytes after a {name} record"
                    )
                return name, record
        return name, self._fastavro_decode(data, self._writers[data[2:_HEADER_LEN]], logical)

    def decode_into(self, data: bytes | None, into: Into, *params: Any) -> tuple[str, Any]:
        """``decode(data, logical=False)``, but a record named ``into.name`` comes built by
        ``into`` (``params``: its extra arguments), its dict never made.

        Any other record, and the bytes that reader refuses (corrupt ones, or values a
        conversion refuses, :attr:`Into.refused`), come as ``decode`` gives them, a dict
        or a :class:`CodecError`: a caller turns those dicts into objects its old way and
        gets the old verdict, messages included.
        """
        readers = self._into.get(into)
        if readers is None:
            readers = self._into[into] = {}
        if type(data) is bytes:  # else (None, a bytearray...) decode decides
            read = readers.get(data[:_HEADER_LEN], _MISSING)
            if read is _MISSING:
                read = self._into_reader_for(data, into, readers)
            if read is not None:
                try:
                    value, end = read(data, _HEADER_LEN, len(data), *params)
                except READ_ERRORS:
                    pass
                except into.refused:
                    pass
                else:
                    if end == len(data):
                        return into.name, value
        return self.decode(data, logical=False)

    def _into_reader_for(
        self, data: bytes, into: Into, readers: dict[bytes, _IntoRead]
    ) -> _IntoRead:
        """The writer's reader into ``into``, compiled on first use; None for a writer of
        another record or beyond the compiler (also cached) and for bad framing (not)."""
        if len(data) < _HEADER_LEN or data[:2] != MARKER:
            return None
        writer = self._writers.get(data[2:_HEADER_LEN])
        if writer is None:
            return None
        read: _IntoRead = None
        try:
            if writer.name == into.name:
                schema, reader = writer.plain_schema, writer.plain_reader
                read = compile_reader(schema, reader, logical=False, into=into).read
        except UnsupportedSchema:
            read = None  # read as a dict
        readers[data[:_HEADER_LEN]] = read
        return read

    def _reader_for(self, data: bytes, cache: dict[bytes, _Compiled], logical: bool) -> _Compiled:
        """Check the framing of a message; its writer's reader, compiled on first use."""
        if len(data) < _HEADER_LEN or data[:2] != MARKER:
            raise CorruptRecordError(
                f"not Avro single-object encoding (length {len(data)}, "
                f"expected marker C3 01, got {data[:2].hex(' ').upper() or 'nothing'})"
            )
        fp = bytes(data[2:_HEADER_LEN])
        writer = self._writers.get(fp)
        if writer is None:
            raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}")
        header = bytes(data[:_HEADER_LEN])
        if header in cache:
            return cache[header]
        schema, reader = (
            (writer.schema, writer.reader)
            if logical
            else (writer.plain_schema, writer.plain_reader)
        )
        try:
            read: Any = compile_reader(schema, reader, logical=logical).read
        except UnsupportedSchema:
            read = None  # beyond the compiler: fastavro reads this writer
        cache[header] = (writer.name, read)
        return cache[header]

    def _fastavro_decode(self, data: bytes, writer: _Writer, logical: bool) -> dict[str, Any]:
        buf = io.BytesIO(data)
        buf.seek(_HEADER_LEN)
        try:
            if logical:
                record = schemaless_reader(buf, writer.schema, writer.reader)
            else:
                record = schemaless_reader(buf, writer.plain_schema, writer.plain_reader)
        except _UNREADABLE as exc:
            raise CorruptRecordError(
                f"body does not read as {writer.name}: {type(exc).__name__}"
            ) from exc
        if buf.tell() != len(data):
            raise CorruptRecordError(
                f"{len(data) - buf.tell()} trailing bytes after a {writer.name} record"
            )
        if not isinstance(record, dict):
            raise CorruptRecordError(f"{writer.name} body is not a record")
        return record


@cache
def default_codec() -> AvroCodec:
    """One codec per process over the bundled schemas (parsing is the expensive part)."""
    return AvroCodec()
