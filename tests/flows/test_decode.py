"""The decode step alone: plain-int decoding agrees with the logical-type decoding."""

from __future__ import annotations

from datetime import UTC, datetime

from bytewax.connectors.kafka import KafkaSourceMessage

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from flows.dead_letters import DeadLetter
from flows.decode import decode_one, event_from_record, to_ms
from state.validation import EventLimits

CODEC = default_codec()


def _identify() -> dict:
    return {"event_id": "e-1", "type": "identify", "customer_id": "c-1",
            "timestamp": "2026-11-02T09:00:00.123+01:00", "sent_at": 1_793_000_000_001,
            "received_at": "2026-11-02T08:00:01Z",
            "payload": {"signup_date": "2026-10-20", "first_name": "Zed"}}  # fmt: skip


def test_plain_decoding_gives_the_same_event_as_logical_decoding() -> None:
    data = CODEC.encode("cdp.Event", record_from_json(_identify(), CODEC))
    _, plain = CODEC.decode(data, logical=False)
    _, logical = CODEC.decode(data)
    assert isinstance(plain["event_time"], int)
    assert plain["event_time"] == to_ms(logical["event_time"])
    assert plain["sent_at"] == 1_793_000_000_001 == to_ms(logical["sent_at"])
    assert event_from_record(plain) == event_from_record(logical)
    ev = event_from_record(plain)
    assert ev.payload["signup_date"] == "2026-10-20"
    expected = datetime(2026, 11, 2, 8, 0, 0, 123_000, tzinfo=UTC).timestamp() * 1000
    assert ev.event_time == round(expected)


def test_decode_one_keeps_source_coordinates() -> None:
    data = CODEC.encode("cdp.Event", record_from_json(_identify(), CODEC))
    msg = KafkaSourceMessage(b"c-1", data, topic="t", partition=3, offset=42)
    ev = decode_one(msg, CODEC, EventLimits(), lambda: 0)
    assert not isinstance(ev, DeadLetter)
    assert (ev.origin.topic, ev.origin.partition, ev.origin.offset) == ("t", 3, 42)
    bad = decode_one(KafkaSourceMessage(b"k", None, topic="t", partition=1, offset=7), CODEC,
                     EventLimits(), lambda: 5)  # fmt: skip
    assert isinstance(bad, DeadLetter)
    assert (bad.reason, bad.origin.offset, bad.seen_at) == ("corrupt_avro", 7, 5)


def test_a_dead_letter_of_a_huge_message_keeps_a_bounded_prefix() -> None:
    from flows.dead_letters import MAX_RAW_BYTES, Origin

    raw = b"\x00" * (3 * MAX_RAW_BYTES)
    record = DeadLetter("corrupt_avro", "bad", "X", Origin("t", 0, 9, None, raw), 0).to_record()
    assert record["raw"] == raw[:MAX_RAW_BYTES]
    assert record["error"] == f"bad (raw bytes cut to {MAX_RAW_BYTES} of {len(raw)})"
    assert record["source_offset"] == 9
    small = DeadLetter("corrupt_avro", "bad", "X", Origin("t", 0, 9, None, b"ab"), 0).to_record()
    assert (small["raw"], small["error"]) == (b"ab", "bad")
