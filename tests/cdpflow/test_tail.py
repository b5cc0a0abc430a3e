"""``cdpflow tail``'s rendering: every record as one plain JSON line, never a crash."""

from __future__ import annotations

import base64

import orjson

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings, Topics
from cdpflow.tail import json_line, render, resolve_topic

CODEC = default_codec()
T = 1_796_000_000_123  # 2026-11-30T00:53:20.123Z


def _line(value: bytes | None, key: bytes | None = b"c-1") -> dict:
    return orjson.loads(json_line(render("cdp.events", 1, 7, T, key, value, CODEC)))


def test_an_event_is_decoded_with_iso_times_and_its_coordinates() -> None:
    record = record_from_json({"event_id": "e-1", "type": "page_viewed", "customer_id": "c-1",
                               "timestamp": "2026-11-02T10:00:00.5Z",
                               "payload": {"path": "/x"}}, CODEC)  # fmt: skip
    line = _line(CODEC.encode("cdp.Event", record))
    assert (line["topic"], line["partition"], line["offset"], line["key"]) == (
        "cdp.events",
        1,
        7,
        "c-1",
    )
    assert line["timestamp"] == "2026-11-30T00:53:20.123Z"
    assert line["schema"] == "cdp.Event"
    assert line["value"]["event_id"] == "e-1"
    assert line["value"]["event_time"] == "2026-11-02T10:00:00.500Z"


def test_a_tombstone_is_shown_as_such() -> None:
    line = _line(None)
    assert line["tombstone"] is True
    assert line["value"] is None
    assert "error" not in line


def test_undecodable_bytes_are_an_error_line_without_the_bytes() -> None:
    secret = b'{"email": "ada@example.com"}'
    text = json_line(render("cdp.events", 0, 3, T, b"poison", secret, CODEC))
    line = orjson.loads(text)
    assert line["error"].startswith("CorruptRecordError: not Avro single-object encoding")
    assert line["bytes"] == len(secret)
    assert "ada@example.com" not in text
    unknown = b"\xc3\x01" + b"\x00" * 8 + b"body"
    assert orjson.loads(json_line(render("t", 0, 0, T, None, unknown, CODEC)))["error"].startswith(
        "UnknownSchemaError: unknown schema fingerprint"
    )


def test_bytes_fields_are_base64_and_a_binary_key_is_kept() -> None:
    raw = b"\xc3\x01\xff\x00"
    letter = {"reason": "corrupt_avro", "error": "x", "error_type": "E", "raw": raw,
              "key": b"\xff", "event_id": None, "source_topic": "cdp.events",
              "source_partition": 0, "source_offset": 5, "seen_at": T}  # fmt: skip
    line = _line(CODEC.encode("cdp.DeadLetter", letter), key=b"\xff\xfe")
    assert base64.b64decode(line["value"]["raw"]) == raw
    assert line["value"]["seen_at"] == "2026-11-30T00:53:20.123Z"
    assert line["key"] is None
    assert base64.b64decode(line["key_base64"]) == b"\xff\xfe"


def test_short_names_resolve_to_the_configured_topics() -> None:
    s = Settings(topics=Topics("e", "t", "p", "d", "i"))
    names = ["events", "triggers", "profiles", "dlq", "dead-letters", "identities", "other.x"]
    assert [resolve_topic(s, n) for n in names] == ["e", "t", "p", "d", "d", "i", "other.x"]
