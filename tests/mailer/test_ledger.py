"""The mailer's durable memory in RocksDB."""

from __future__ import annotations

import pytest

from mailer.exceptions import MailerError
from mailer.ledger import Deferred, Ledger, Outcome


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger")
    yield led
    led.close()


def _deferred(due: int, trigger_id: str = "t-1") -> Deferred:
    return Deferred(due, trigger_id, b"raw-" + trigger_id.encode(), b"c-1", "triggers", 1, 7)


def test_outcomes_and_send_times_survive_a_reopen(tmp_path) -> None:
    led = Ledger(tmp_path / "l")
    led.record("t-1", Outcome("sent", "category_interest", 100), sent_to_customer="c-1")
    led.record("t-2", Outcome("skipped", "unsubscribed", 200))
    led.close()
    led = Ledger(tmp_path / "l")
    try:
        assert led.outcome("t-1") == Outcome("sent", "category_interest", 100)
        assert led.outcome("t-2") == Outcome("skipped", "unsubscribed", 200)
        assert led.outcome("t-3") is None
        assert led.sends("c-1") == [100]
        assert led.sends("c-2") == []
    finally:
        led.close()


def test_send_times_accumulate_oldest_first(ledger) -> None:
    for i, at in enumerate((10, 20, 30)):
        ledger.record(f"t-{i}", Outcome("sent", "x", at), sent_to_customer="c-1")
    assert ledger.sends("c-1") == [10, 20, 30]


def test_deferred_triggers_come_due_in_time_order(ledger) -> None:
    ledger.defer(_deferred(300, "t-b"), Outcome("deferred", "quiet_hours", 1))
    ledger.defer(_deferred(200, "t-a"), Outcome("deferred", "quiet_hours", 1))
    assert ledger.due(199) == []
    assert [d.trigger_id for d in ledger.due(300)] == ["t-a", "t-b"]
    assert ledger.due(250) == [_deferred(200, "t-a")]
    assert ledger.outcome("t-a").outcome == "deferred"
    assert ledger.pending() == 2


def test_recording_the_final_outcome_removes_the_deferred_entry(ledger) -> None:
    item = _deferred(200)
    ledger.defer(item, Outcome("deferred", "quiet_hours", 1))
    ledger.record("t-1", Outcome("sent", "x", 250), sent_to_customer="c-1", done=item)
    assert ledger.due(10**15) == []
    assert ledger.outcome("t-1").outcome == "sent"


def test_redeferring_replaces_the_entry(ledger) -> None:
    first = _deferred(200)
    ledger.defer(first, Outcome("deferred", "quiet_hours", 1))
    ledger.defer(_deferred(500), Outcome("deferred", "quiet_hours", 2), replaces=first)
    assert [d.due_ms for d in ledger.due(10**15)] == [500]


def test_prune_forgets_old_outcomes_but_not_deferred_ones(ledger) -> None:
    ledger.record("old", Outcome("sent", "x", 10))
    ledger.record("new", Outcome("sent", "x", 100))
    ledger.defer(_deferred(5, "waiting"), Outcome("deferred", "quiet_hours", 1))
    assert ledger.prune(50) == 1
    assert ledger.outcome("old") is None
    assert ledger.outcome("new") is not None
    assert ledger.outcome("waiting") is not None


def test_a_second_open_is_refused(tmp_path, ledger) -> None:
    with pytest.raises(MailerError, match="cannot open"):
        Ledger(tmp_path / "ledger")


def test_forget_customer_drops_their_send_times(ledger) -> None:
    ledger.record("t-1", Outcome("sent", "x", 10), sent_to_customer="c-1")
    ledger.record("t-2", Outcome("sent", "x", 20), sent_to_customer="c-2")
    ledger.forget_customer("c-1")
    assert (ledger.sends("c-1"), ledger.sends("c-2")) == ([], [20])
