"""The Avro codec: round trips, single-object framing, corrupt input, schema evolution."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import load_schema, to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdpflow.codec import (
    MARKER,
    AvroCodec,
    _without_logical_types,
    default_codec,
    schema_dir,
    schema_fingerprint,
)
from cdpflow.errors import CodecError, CorruptRecordError, UnknownSchemaError

REPO = Path(__file__).resolve().parents[2]
AVRO_DIR = REPO / "avro"
FIXTURES = REPO / "tests" / "fixtures" / "avro"
V1_DIR = FIXTURES / "v1"
V2_DIR = FIXTURES / "v2"
HISTORY_V1 = FIXTURES / "history" / "cdp.Sample.v1.avsc"

CODEC = default_codec()
NAMED_KINDS = ("record", "error", "enum", "fixed")
SECRET_EMAIL = "jane.doe.4711@example.org"  # must never show up in an error message

FUZZ = settings(
    max_examples=150,
    deadline=None,  # two shared cores: timing says nothing here
    database=None,  # leave no state outside tests/
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- helpers


def _collect_named(schema: Any, acc: dict[str, Any]) -> dict[str, Any]:
    """Every named type defined anywhere in a parsed schema, by full name."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_named(branch, acc)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in NAMED_KINDS:
            acc.setdefault(schema["name"], schema)
        if kind in ("record", "error"):
            for f in schema["fields"]:
                _collect_named(f["type"], acc)
        elif kind == "array":
            _collect_named(schema["items"], acc)
        elif kind == "map":
            _collect_named(schema["values"], acc)
        elif isinstance(kind, dict | list):
            _collect_named(kind, acc)
    return acc


class Example:
    """Builds a datum for a parsed schema with real content in every field.

    Optional fields get their non-null branch; arrays and maps get two entries; enums a
    symbol other than the default; every string carries its field path, so two fields can
    never be swapped unnoticed. In a union of several records the branch named ``branch``
    is chosen (default: the last one) and written in fastavro's ``(name, datum)`` notation.
    """

    def __init__(self, schema: Any, branch: str | None = None) -> None:
        self.schema = schema
        self.named = _collect_named(schema, {})
        self.branch = branch
        self.numbers = itertools.count(2)

    def build(self) -> Any:
        return self.value(self.schema, self.schema.get("name", "root"))

    def value(self, schema: Any, path: str) -> Any:
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], path)
            return self.primitive(schema, path)
        if isinstance(schema, list):
            return self.union(schema, path)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if logical == "timestamp-millis":
            base = datetime(2026, 11, 2, 9, 30, 15, 123_000, tzinfo=UTC)
            return base + timedelta(minutes=next(self.numbers))
        if logical == "date":
            return date(2024, 2, 29) + timedelta(days=next(self.numbers))
        if logical is not None:
            pytest.fail(f"the example helper does not know logicalType {logical!r} ({path})")
        if kind in ("record", "error"):
            out = {}
            for f in schema["fields"]:
                v = self.value(f["type"], f"{path}.{f['name']}")
                if "default" in f:
                    assert v != f["default"], f"helper picked the default for {path}"
                out[f["name"]] = v
            return out
        if kind == "enum":
            symbols = [s for s in schema["symbols"] if s != schema.get("default")]
            return symbols[-1] if symbols else schema["symbols"][0]
        if kind == "array":
            return [self.value(schema["items"], f"{path}[{i}]") for i in range(2)]
        if kind == "map":
            return {k: self.value(schema["values"], f"{path}[{k}]") for k in ("k1", "k2")}
        if kind == "fixed":
            return bytes((i * 7 + 1) % 256 for i in range(schema["size"]))
        return self.value(kind, path)  # {"type": "string"} and similar wrappers

    def union(self, branches: list[Any], path: str) -> Any:
        candidates = [b for b in branches if b != "null"]
        if len(candidates) == 1:
            return self.value(candidates[0], path)
        names = [self.full_name(b) for b in candidates]
        pick = self.branch if self.branch in names else names[-1]
        chosen = candidates[names.index(pick)]
        datum = self.value(chosen, path)
        return (pick, datum) if pick in self.named else datum

    def full_name(self, schema: Any) -> str:
        if isinstance(schema, str):
            return schema
        if isinstance(schema, dict) and schema.get("type") in NAMED_KINDS:
            return schema["name"]
        return json.dumps(schema, sort_keys=True)

    def primitive(self, kind: str, path: str) -> Any:
        n = next(self.numbers)
        if kind == "string":
            return f"{path} \u00fc\u20ac#{n}"  # non-ASCII: exercises UTF-8 both ways
        if kind == "bytes":
            return path.encode() + b"\x00\xff" + bytes([n % 256])
        if kind == "int":
            return n
        if kind == "long":
            return n * 10_000_000_000  # beyond 32 bits
        if kind == "float":
            return n + 0.5  # exact in binary32
        if kind == "double":
            return n + 0.25
        if kind == "boolean":
            return True
        pytest.fail(f"the example helper does not know type {kind!r} ({path})")


def unwrap(datum: Any) -> Any:
    """What a datum reads back as: ``(name, record)`` union notation becomes the record."""
    if isinstance(datum, tuple) and len(datum) == 2 and isinstance(datum[0], str):
        return unwrap(datum[1])
    if isinstance(datum, dict):
        return {k: unwrap(v) for k, v in datum.items()}
    if isinstance(datum, list):
        return [unwrap(v) for v in datum]
    return datum


def datetimes(datum: Any) -> list[datetime]:
    if isinstance(datum, datetime):
        return [datum]
    if isinstance(datum, dict):
        return [d for v in datum.values() for d in datetimes(v)]
    if isinstance(datum, list | tuple):
        return [d for v in datum for d in datetimes(v)]
    return []


def payload_branches() -> list[str]:
    payload = next(f for f in CODEC.schema("cdp.Event")["fields"] if f["name"] == "payload")
    return [b if isinstance(b, str) else b["name"] for b in payload["type"]]


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp & 0xFFFFFFFFFFFFFFFF)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def sample_event() -> tuple[dict[str, Any], bytes]:
    """A cdp.Event with a distinctive email in it, and its encoding."""
    record = {
        "event_id": "e-trunc",
        "event_type": "identify",
        "customer_id": "c-1",
        "anonymous_id": None,
        "event_time": 1_793_000_000_000,
        "sent_at": None,
        "received_at": 1_793_000_000_500,
        "source": "web",
        "context": None,
        "payload": ("cdp.Identify", {"email": SECRET_EMAIL, "first_name": "Jane"}),
    }
    return record, CODEC.encode("cdp.Event", record)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- round trips


def test_codec_knows_the_record_schemas_and_no_enums() -> None:
    record_files = {
        p.stem for p in AVRO_DIR.glob("cdp.*.avsc") if load_json(p).get("type") == "record"
    }
    assert CODEC.names == sorted(record_files)
    assert "cdp.Event" in CODEC.names
    assert "cdp.EventType" not in CODEC.names
    assert "cdp.EmailAction" not in CODEC.names


def test_schema_dir_is_the_repo_avro_folder() -> None:
    assert schema_dir().resolve() == AVRO_DIR.resolve()


@pytest.mark.parametrize("name", CODEC.names)
def test_round_trip_every_record_schema(name: str) -> None:
    datum = Example(CODEC.schema(name)).build()
    data = CODEC.encode(name, datum)

    decoded_name, decoded = CODEC.decode(data)

    assert decoded_name == name
    assert decoded == unwrap(datum)
    stamps = datetimes(decoded)
    assert len(stamps) == len(datetimes(datum))
    assert all(d.tzinfo is not None and d.utcoffset() == timedelta(0) for d in stamps)


@pytest.mark.parametrize("branch", payload_branches())
def test_round_trip_each_event_payload_branch(branch: str) -> None:
    datum = Example(CODEC.schema("cdp.Event"), branch=branch).build()
    assert datum["payload"][0] == branch

    name, decoded = CODEC.decode(CODEC.encode("cdp.Event", datum))

    assert name == "cdp.Event"
    assert decoded == unwrap(datum)
    branch_fields = {f["name"] for f in CODEC.schema(branch)["fields"]}
    assert set(decoded["payload"]) == branch_fields


def test_timestamp_millis_written_as_int_reads_as_aware_utc_datetime() -> None:
    record = {
        "change_id": "c1",
        "customer_id": "42",
        "tag": "frequent_buyer",
        "added": False,
        "reason": "r",
        "event_time": 0,
        "emitted_at": 1_000_000_000_000,  # 2001-09-09T01:46:40Z
    }
    _, decoded = CODEC.decode(CODEC.encode("cdp.TagChange", record))
    assert decoded["event_time"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert decoded["emitted_at"] == datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    assert decoded["emitted_at"].utcoffset() == timedelta(0)
    assert decoded["added"] is False


def test_date_reads_as_date() -> None:
    _, decoded = CODEC.decode(CODEC.encode("cdp.Identify", {"signup_date": date(2024, 2, 29)}))
    assert decoded["signup_date"] == date(2024, 2, 29)
    assert type(decoded["signup_date"]) is date


def test_encode_unknown_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        CODEC.encode("cdp.NoSuchRecord", {})


# --------------------------------------------------------------------------- framing


@pytest.mark.parametrize("name", CODEC.names)
def test_framing_is_marker_then_fingerprint(name: str) -> None:
    data = CODEC.encode(name, Example(CODEC.schema(name)).build())
    assert data[:2] == b"\xc3\x01"
    assert MARKER == b"\xc3\x01"
    assert data[2:10] == CODEC.fingerprint_of(name)


@pytest.mark.parametrize("name", CODEC.names)
def test_fingerprint_is_little_endian_crc64_of_canonical_form(name: str) -> None:
    canonical = to_parsing_canonical_form(CODEC.schema(name)).encode()
    expected = struct.pack("<Q", crc64_avro(canonical))
    assert CODEC.fingerprint_of(name) == expected


def test_fingerprints_differ_between_schemas() -> None:
    fps = [CODEC.fingerprint_of(n) for n in CODEC.names]
    assert len(set(fps)) == len(fps)


def test_crc64_avro_spec_test_vector() -> None:
    # Avro specification: the CRC-64-AVRO fingerprint of "null" is 7195948357588979594.
    fp = schema_fingerprint(fastavro.parse_schema("null"))
    assert len(fp) == 8
    assert struct.unpack("<q", fp)[0] == 7195948357588979594
    assert struct.unpack("<Q", fp)[0] == 7195948357588979594
    assert crc64_avro(b'"null"') == 7195948357588979594  # and the helper above agrees


# --------------------------------------------------------------------------- corrupt input


def test_none_is_corrupt() -> None:
    with pytest.raises(CorruptRecordError, match="null"):
        CODEC.decode(None)


def test_empty_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptRecordError, match="marker") as info:
        CODEC.decode(b"")
    assert "length 0" in str(info.value)


def test_wrong_marker_is_corrupt_and_not_echoed() -> None:
    _, good = sample_event()
    data = b'{"email": "' + SECRET_EMAIL.encode() + b'"}' + good
    with pytest.raises(CorruptRecordError, match="C3 01") as info:
        CODEC.decode(data)
    assert SECRET_EMAIL not in str(info.value)
    assert "jane" not in str(info.value).lower()


def test_wrong_second_marker_byte_is_corrupt() -> None:
    _, good = sample_event()
    with pytest.raises(CorruptRecordError):
        CODEC.decode(b"\xc3\x02" + good[2:])


@pytest.mark.parametrize("length", range(2, 10))
def test_marker_without_full_fingerprint_is_corrupt(length: int) -> None:
    _, good = sample_event()
    with pytest.raises(CorruptRecordError):
        CODEC.decode(good[:length])


def test_unknown_fingerprint_names_it() -> None:
    _, good = sample_event()
    fp = bytes.fromhex("0123456789abcdef")
    assert fp not in {CODEC.fingerprint_of(n) for n in CODEC.names}
    with pytest.raises(UnknownSchemaError) as info:
        CODEC.decode(MARKER + fp + good[10:])
    assert fp.hex() in str(info.value)
    assert SECRET_EMAIL not in str(info.value)


def test_truncated_event_is_corrupt_at_every_length() -> None:
    _, good = sample_event()
    assert CODEC.decode(good)[1]["payload"]["email"] == SECRET_EMAIL
    for length in range(len(good)):
        with pytest.raises(CorruptRecordError) as info:
            CODEC.decode(good[:length])
        assert SECRET_EMAIL not in str(info.value), length


@pytest.mark.parametrize("name", CODEC.names)
def test_truncated_body_of_every_schema_is_corrupt(name: str) -> None:
    good = CODEC.encode(name, Example(CODEC.schema(name)).build())
    for length in range(10, len(good)):
        with pytest.raises(CorruptRecordError):
            CODEC.decode(good[:length])


@pytest.mark.parametrize("garbage", [b"\x00", b"\x00\x00\x00", b"trailing junk"])
def test_trailing_bytes_are_corrupt(garbage: bytes) -> None:
    _, good = sample_event()
    with pytest.raises(CorruptRecordError, match="trailing") as info:
        CODEC.decode(good + garbage)
    assert str(len(garbage)) in str(info.value)
    assert SECRET_EMAIL not in str(info.value)


def test_codec_errors_carry_their_dead_letter_reason() -> None:
    with pytest.raises(CorruptRecordError) as corrupt:
        CODEC.decode(b"nope")
    with pytest.raises(UnknownSchemaError) as unknown:
        CODEC.decode(MARKER + b"\xff" * 8)
    assert corrupt.value.reason == "corrupt_avro"
    assert unknown.value.reason == "unknown_schema"


def _decode_or_codec_error(data: bytes) -> None:
    try:
        name, record = CODEC.decode(data)
    except CodecError:
        return
    assert name in CODEC.names
    assert isinstance(record, dict)


@FUZZ
@given(st.binary())
def test_random_bytes_decode_or_raise_codec_error(data: bytes) -> None:
    _decode_or_codec_error(data)


@FUZZ
@given(st.binary(max_size=12))
def test_random_bytes_after_marker_decode_or_raise_codec_error(data: bytes) -> None:
    _decode_or_codec_error(MARKER + data)


@FUZZ
@given(st.sampled_from(CODEC.names), st.binary(max_size=64))
def test_random_body_after_a_known_header_decodes_or_raises_codec_error(
    name: str, body: bytes
) -> None:
    _decode_or_codec_error(MARKER + CODEC.fingerprint_of(name) + body)


def test_timestamp_beyond_year_9999_is_a_codec_error() -> None:
    record = {
        "change_id": "c1",
        "customer_id": "42",
        "tag": "t",
        "added": True,
        "reason": "r",
        "event_time": 253_402_300_800_000,  # 10000-01-01T00:00:00Z: no datetime has it
        "emitted_at": 0,
    }
    data = CODEC.encode("cdp.TagChange", record)
    with pytest.raises(CodecError):
        CODEC.decode(data)


def test_date_beyond_int_range_of_datetime_is_a_codec_error() -> None:
    data = CODEC.encode("cdp.Identify", {"signup_date": 2**31 - 1})
    with pytest.raises(CodecError):
        CODEC.decode(data)


def test_date_just_out_of_range_is_a_codec_error() -> None:
    # 3 million days is past year 9999 but fits a C int: this one is caught today.
    data = CODEC.encode("cdp.Identify", {"signup_date": 3_000_000})
    with pytest.raises(CorruptRecordError):
        CODEC.decode(data)


# --------------------------------------------------------------------------- evolution


V1_RECORD = {"sample_id": "s-1", "kind": "beta", "note": "written by v1"}


def v1_schema() -> Any:
    return load_schema(str(V1_DIR / "cdp.Sample.avsc"))


def test_fixture_v2_codec_loads_only_the_record() -> None:
    codec = AvroCodec(directory=V2_DIR)
    assert codec.names == ["cdp.Sample"]
    assert {f["name"] for f in codec.schema("cdp.Sample")["fields"]} >= {"weight", "labels"}


def test_v1_data_is_unknown_until_its_writer_is_registered() -> None:
    codec = AvroCodec(directory=V2_DIR)
    v1 = v1_schema()
    data = codec.encode_with(v1, V1_RECORD)
    assert data[2:10] != codec.fingerprint_of("cdp.Sample")

    with pytest.raises(UnknownSchemaError):
        codec.decode(data)

    fp = codec.register_writer(load_json(HISTORY_V1))
    assert fp == schema_fingerprint(v1) == data[2:10]

    name, record = codec.decode(data)
    assert name == "cdp.Sample"
    assert record == {
        **V1_RECORD,
        "weight": 7,
        "labels": {"origin": "v2-default"},
        "comment": None,
    }


def test_register_writer_accepts_a_parsed_schema_too() -> None:
    codec = AvroCodec(directory=V2_DIR)
    v1 = v1_schema()
    codec.register_writer(v1)
    _, record = codec.decode(codec.encode_with(v1, V1_RECORD))
    assert record["weight"] == 7
    assert record["note"] == "written by v1"


def test_v2_data_keeps_its_own_values() -> None:
    codec = AvroCodec(directory=V2_DIR)
    codec.register_writer(v1_schema())
    record = {
        **V1_RECORD,
        "weight": 11,
        "labels": {"origin": "explicit"},
        "comment": "v2 comment",
    }
    assert codec.decode(codec.encode("cdp.Sample", record)) == ("cdp.Sample", record)


def test_history_file_matches_the_v1_fixture() -> None:
    assert schema_fingerprint(fastavro.parse_schema(load_json(HISTORY_V1))) == (
        schema_fingerprint(v1_schema())
    )


def test_history_folder_is_picked_up_automatically(tmp_path: Path) -> None:
    for path in V2_DIR.glob("*.avsc"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "history").mkdir()
    shutil.copy(HISTORY_V1, tmp_path / "history" / HISTORY_V1.name)

    codec = AvroCodec(directory=tmp_path)
    data = codec.encode_with(v1_schema(), V1_RECORD)

    name, record = codec.decode(data)
    assert name == "cdp.Sample"
    assert record["weight"] == 7
    assert record["labels"] == {"origin": "v2-default"}
    assert record["comment"] is None
    assert record["kind"] == "beta"


def test_register_writer_without_current_schema_is_unknown() -> None:
    codec = AvroCodec(directory=V2_DIR)
    orphan = {
        "type": "record",
        "name": "Orphan",
        "namespace": "cdp",
        "fields": [{"name": "x", "type": "string"}],
    }
    with pytest.raises(UnknownSchemaError, match=r"cdp\.Orphan"):
        codec.register_writer(orphan)


def test_register_writer_does_not_touch_other_codecs() -> None:
    mine = AvroCodec(directory=V2_DIR)
    other = AvroCodec(directory=V2_DIR)
    mine.register_writer(v1_schema())
    with pytest.raises(UnknownSchemaError):
        other.decode(other.encode_with(v1_schema(), V1_RECORD))


def test_incompatible_registered_writer_is_a_codec_error() -> None:
    codec = AvroCodec(directory=V2_DIR)
    # sample_id changed type: string -> int. Registration cannot tell; reading can.
    bad = {
        "type": "record",
        "name": "cdp.Sample",
        "fields": [{"name": "sample_id", "type": "int"}],
    }
    codec.register_writer(bad)
    data = codec.encode_with(fastavro.parse_schema(bad), {"sample_id": 5})
    with pytest.raises(CodecError):
        codec.decode(data)


# --------------------------------------------------------------------------- compiled reader


@pytest.fixture
def fastavro_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the codec's calls of fastavro's reader (which still reads them)."""
    calls: list[int] = []
    real = fastavro.schemaless_reader

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("cdpflow.codec.schemaless_reader", counting)
    return calls


@pytest.mark.parametrize("logical", [True, False])
@pytest.mark.parametrize("name", CODEC.names)
def test_good_messages_are_read_without_fastavro(
    name: str, logical: bool, fastavro_calls: list[int]
) -> None:
    codec = AvroCodec()
    datum = Example(codec.schema(name)).build()
    data = codec.encode(name, datum)
    decoded = codec.decode(data, logical=logical)
    assert fastavro_calls == []
    if logical:
        assert decoded == (name, unwrap(datum))
    else:
        plain = fastavro.parse_schema(_without_logical_types(codec.schema(name)))
        buf = io.BytesIO(data[10:])
        assert decoded == (name, fastavro.schemaless_reader(buf, plain))


def test_history_messages_are_read_without_fastavro(fastavro_calls: list[int]) -> None:
    old = fastavro.parse_schema(load_json(AVRO_DIR / "history" / "cdp.ProfileSnapshot.1.avsc"))
    record = {"customer_id": "c", "state_version": 3, "email": None, "first_name": "A",
              "last_name": None, "lifecycle": "active", "tags": ["t"], "segments": [],
              "profile_json": "{}", "event_time": 5, "emitted_at": 6}  # fmt: skip
    data = CODEC.encode_with(old, record)
    expected = {**record, "revision": None, "as_of": None}
    assert CODEC.decode(data, logical=False) == ("cdp.ProfileSnapshot", expected)
    assert CODEC.decode(data) == ("cdp.ProfileSnapshot", expected)  # the writer has no times
    assert fastavro_calls == []


def test_plain_decode_keeps_times_and_dates_as_integers() -> None:
    data = CODEC.encode("cdp.Identify", {"signup_date": date(2024, 2, 29)})
    assert CODEC.decode(data, logical=False)[1]["signup_date"] == 19782
    _, event = sample_event()
    decoded = CODEC.decode(event, logical=False)[1]
    assert (decoded["event_time"], decoded["received_at"]) == (1_793_000_000_000, 1_793_000_000_500)


def test_corrupt_bytes_get_fastavros_verdict_and_message(fastavro_calls: list[int]) -> None:
    _, good = sample_event()
    with pytest.raises(CorruptRecordError) as info:
        CODEC.decode(good[:-3], logical=False)
    assert str(info.value) == "body does not read as cdp.Event: EOFError"
    assert fastavro_calls == [1]


def test_bytes_only_fastavro_reads_still_read_as_before(fastavro_calls: list[int]) -> None:
    # A boolean byte of 2 is not Avro, but fastavro reads it as true and so did the codec:
    # the compiled reader refuses it and fastavro decides, as before.
    record = {"change_id": "c1", "customer_id": "42", "tag": "t", "added": True,
              "reason": "r", "event_time": 0, "emitted_at": 0}  # fmt: skip
    data = bytearray(CODEC.encode("cdp.TagChange", record))
    unadded = CODEC.encode("cdp.TagChange", {**record, "added": False})
    at = next(i for i, (a, b) in enumerate(zip(data, unadded, strict=True)) if a != b)
    assert data[at] == 1  # the byte of "added"
    data[at] = 2
    assert CODEC.decode(bytes(data)) == ("cdp.TagChange", CODEC.decode(CODEC.encode(
        "cdp.TagChange", record))[1])  # fmt: skip
    assert fastavro_calls == [1]


# --------------------------------------------------------------------------- avro/ folder


AVSC_FILES = sorted(AVRO_DIR.glob("*.avsc"))


def test_avro_folder_has_schemas() -> None:
    assert len(AVSC_FILES) >= 10
    assert (AVRO_DIR / "cdp.Event.avsc") in AVSC_FILES


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: p.name)
def test_avsc_is_json_in_namespace_cdp_named_after_its_file(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert isinstance(schema, dict)
    assert schema.get("namespace") == "cdp"
    assert path.name == f"cdp.{schema['name']}.avsc"


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: p.name)
def test_nullable_fields_default_to_null(path: Path) -> None:
    schema = json.loads(path.read_text())
    missing = [
        f["name"]
        for f in schema.get("fields", [])
        if isinstance(f["type"], list)
        and f["type"]
        and f["type"][0] == "null"
        and ("default" not in f or f["default"] is not None)
    ]
    assert missing == [], f"{path.name}: nullable fields without default null: {missing}"


@pytest.mark.parametrize("path", sorted((AVRO_DIR / "history").glob("*.avsc")))
def test_history_files_are_self_contained(path: Path) -> None:
    schema = json.loads(path.read_text())
    fastavro.parse_schema(schema)  # raises on a reference to a type it does not define
    assert f"cdp.{schema['name'].split('.')[-1]}" in CODEC.names
