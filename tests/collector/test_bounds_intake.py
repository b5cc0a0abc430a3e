"""Issue 16, repro class 8: no item of a batch can fail the batch.

JSON nested deeper than ``orjson.dumps`` writes (254 levels; ``orjson.loads`` reads up to
1024) in an item that is dead-lettered, and a mapper that fails with a bug, each cost
that one item: a dead letter naming what happened, the siblings stored.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdpflow.codec import default_codec
from cdpflow.errors import EventValidationError
from cdpflow.settings import Topics
from collector.intake import RAW_DEPTH, Normalizer, item_json
from collector.segment import segment_to_record

CODEC = default_codec()
TOPICS = Topics(events="cdp.events.t", dead_letters="cdp.events.dlq.t")
NOW = 1_793_000_000_000


def deep(levels: int, leaf: Any = 1) -> Any:
    """``levels`` nested objects around ``leaf``, as orjson reads them from a body."""
    return orjson.loads(b'{"a":' * levels + orjson.dumps(leaf) + b"}" * levels)


def segment(item: Any) -> list[dict[str, Any]]:
    return [segment_to_record(item, None, received_at=NOW)]


def good(n: int) -> dict[str, Any]:
    return {"type": "track", "event": "X", "userId": f"c-{n}", "messageId": f"m-{n}"}


def letters(intake: Any) -> list[dict[str, Any]]:
    found = []
    for message in intake.messages:
        if message.topic == TOPICS.dead_letters:
            name, record = CODEC.decode(message.value, logical=False)
            assert name == "cdp.DeadLetter"
            found.append(record)
    return found


@pytest.mark.parametrize("levels", [255, 300, 1000])
@pytest.mark.parametrize(
    ("where", "reason", "field"),
    [
        ("properties", "invalid_field", "properties"),  # a custom event's properties: text
        ("ignored", "missing_field", "event"),  # refused for another reason; x is not read
    ],
)
def test_a_deeply_nested_item_is_dead_lettered_and_its_siblings_stored(
    levels: int, where: str, reason: str, field: str
) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps([deep(levels)])  # what made the whole batch fail
    normalizer = Normalizer(CODEC, TOPICS, compiled=False)
    if where == "properties":
        hostile = {**good(1), "properties": {"nested": deep(levels)}}
    else:
        hostile = {**good(1), "x": deep(levels)}
        del hostile["event"]
    intake = normalizer.collect(
        [good(0), hostile, good(2)], segment, source_topic="http:/v1/batch", now_ms=NOW
    )
    assert intake.accepted == 2
    assert [m.key for m in intake.messages if m.topic == TOPICS.events] == [b"c-0", b"c-2"]
    [rejected] = intake.rejected
    assert (rejected.index, rejected.reason) == (1, reason)
    assert rejected.error.startswith(field)
    [letter] = letters(intake)
    assert letter["reason"] == reason
    assert (letter["event_id"], letter["key"]) == ("m-1", b"c-1")
    kept = orjson.loads(letter["raw"])
    assert kept["messageId"] == "m-1"
    assert b'"<cut>"' in letter["raw"]
    assert letter["error"].endswith(f"(raw: nesting beyond {RAW_DEPTH} levels cut)")


def test_a_deep_field_the_mapping_does_not_read_is_no_reason_to_refuse() -> None:
    normalizer = Normalizer(CODEC, TOPICS, compiled=False)
    intake = normalizer.collect(
        [{**good(1), "x": deep(600)}], segment, source_topic="http:/v1/batch", now_ms=NOW
    )
    assert (intake.accepted, intake.rejected) == (1, [])


def test_a_deep_item_without_message_id_is_refused_not_a_500() -> None:
    # With a timestamp and no messageId the id is a digest of the message's JSON.
    item = {**good(1), "messageId": None, "timestamp": "2026-11-01T10:00:00Z", "x": deep(300)}
    with pytest.raises(EventValidationError) as info:
        segment(item)
    assert info.value.reason == "invalid_field"
    assert str(info.value).startswith("messageId")


def test_item_json_keeps_what_orjson_can_write() -> None:
    assert item_json(good(1)) == (orjson.dumps(good(1)), None)
    raw, cut = item_json(deep(600, "leaf"))
    assert cut == f"nesting beyond {RAW_DEPTH} levels cut"
    assert raw.count(b'{"a":') == RAW_DEPTH
    assert b'"<cut>"' in raw
    assert b"leaf" not in raw
    # A list of deep lists: each is cut at the same depth.
    raw, cut = item_json([orjson.loads(b"[" * 400 + b"]" * 400)] * 2)
    assert cut is not None
    assert orjson.loads(raw)[1] is not None
    assert item_json({"big": 2**70}) == (b"null", "not JSON, left out")  # not from a body


def test_a_bug_while_mapping_one_item_is_a_processing_error_dead_letter() -> None:
    normalizer = Normalizer(CODEC, TOPICS, compiled=False)

    def mapper(item: Any) -> list[dict[str, Any]]:
        if item["userId"] == "c-1":
            raise ZeroDivisionError("secret@example.com")  # a bug, with a value in it
        return segment(item)

    intake = normalizer.collect(
        [good(0), good(1), good(2)], mapper, source_topic="http:/v1/batch", now_ms=NOW
    )
    assert intake.accepted == 2
    [rejected] = intake.rejected
    assert (rejected.index, rejected.reason) == (1, "processing_error")
    assert rejected.error == "ZeroDivisionError while mapping the item"
    [letter] = letters(intake)
    assert letter["reason"] == "processing_error"
    assert "secret" not in letter["error"]
    assert orjson.loads(letter["raw"]) == good(1)
