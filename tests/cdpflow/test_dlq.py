"""``cdpflow dlq redrive``'s choice of letters: fixable reasons only, original bytes,
each letter once."""

from __future__ import annotations

import io

import pytest

from cdpflow.dlq import FIXABLE, _print, group_for, redrivable, redrive, select
from cdpflow.errors import ConfigError
from cdpflow.settings import Settings

EVENT = b"\xc3\x01" + b"\x01" * 8 + b"body"


def letter(reason: str, raw: bytes | None = EVENT, source: str = "cdp.events") -> dict:
    return {"reason": reason, "raw": raw, "key": b"c-1", "source_topic": source}


def test_only_fixable_letters_with_avro_bytes_from_the_events_topic_are_sent() -> None:
    letters = [
        (0, 0, letter("unknown_schema")),
        (0, 1, letter("corrupt_avro")),
        (0, 2, letter("late_event")),
        (1, 0, letter("event_time_too_old", raw=None)),
        (1, 1, letter("missing_identity", source="http:/v1/batch")),
        (1, 2, letter("processing_error", source="http:/v1/batch")),
        (1, 3, letter("processing_error", raw=b'{"json": 1}')),
        (1, 4, None),
        (1, 5, letter("event_time_in_future")),
    ]
    report, sent = select(letters, set(FIXABLE), {}, "cdp.events")
    assert sent == [(EVENT, b"c-1"), (EVENT, b"c-1")]
    assert dict(report.sent) == {"unknown_schema": 1, "event_time_in_future": 1}
    assert dict(report.unfixable) == {"corrupt_avro": 1, "late_event": 1, "missing_identity": 1}
    assert (report.no_raw, report.not_from_events, report.not_avro) == (1, 1, 1)


def test_letters_before_a_reasons_committed_offset_are_not_sent_again() -> None:
    letters = [(0, o, letter("unknown_schema")) for o in range(3)]
    letters += [(0, 3 + o, letter("processing_error")) for o in range(3)]
    done = {"unknown_schema": {0: 2}, "processing_error": {0: 6}}
    report, sent = select(letters, {"unknown_schema", "processing_error"}, done, "cdp.events")
    assert len(sent) == 1
    assert dict(report.sent) == {"unknown_schema": 1}


def test_a_reason_filter_leaves_the_other_reasons_for_later() -> None:
    letters = [(0, 0, letter("unknown_schema")), (0, 1, letter("processing_error"))]
    report, _ = select(letters, {"processing_error"}, {}, "cdp.events")
    assert dict(report.sent) == {"processing_error": 1}


def test_each_reason_has_its_own_group() -> None:
    assert len({group_for(r) for r in FIXABLE}) == len(FIXABLE)
    assert not FIXABLE & {"corrupt_avro", "wrong_record_type", "late_event", "missing_event_id"}


def test_an_unfixable_reason_is_refused_before_any_broker_call() -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"--reason corrupt_avro is not a fixable reason"):
        redrive(settings, io.StringIO(), reason="corrupt_avro")


def test_the_report_counts_what_was_skipped_and_why() -> None:
    letters = [(0, 0, letter("unknown_schema")), (0, 1, letter("corrupt_avro")),
               (0, 2, letter("processing_error", raw=None))]  # fmt: skip
    report, _ = select(letters, set(FIXABLE), {}, "cdp.events")
    out = io.StringIO()
    _print(report, Settings(), out, dry_run=True)
    assert out.getvalue().splitlines() == [
        "would send 1 dead letters to cdp.events (unknown_schema: 1)",
        "skipped: 1 of unfixable reasons (corrupt_avro: 1); 1 without the original bytes",
        "dry run: nothing sent, nothing recorded",
    ]


def test_list_calls_fixable_only_what_a_redrive_would_send() -> None:
    assert redrivable(letter("processing_error"), "cdp.events")
    assert not redrivable(letter("processing_error", source="cdp.triggers"), "cdp.events")  # mailer
    assert not redrivable(letter("unknown_schema", raw=None), "cdp.events")
    assert not redrivable(letter("corrupt_avro"), "cdp.events")
