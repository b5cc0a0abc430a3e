"""TriggerMailer: dedupe, consent, cap, quiet hours, retries and dead letters, with a
scripted delivery, a list for dead letters, the in-memory profile store, a real ledger and
a fake clock."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from cdpflow.codec import default_codec
from mailer.dead_letters import MailerDeadLetter
from mailer.delivery import Backoff
from mailer.exceptions import PermanentDeliveryError, TransientDeliveryError
from mailer.ledger import Ledger
from mailer.message import OutgoingEmail
from mailer.policy import DAY_MS, PolicyConfig
from mailer.quiet_hours import QuietHours
from mailer.sink import MailerConfig, TriggerMailer, TriggerMessage
from mailer.templates import Renderer
from state.store import MemoryProfileStore
from tests.mailer.conftest import NOW, UNSUBSCRIBE_LINKS


@dataclass
class Clock:
    now: int = NOW
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += int(seconds * 1000)


@dataclass
class Outbox:
    errors: list[Exception] = field(default_factory=list)
    sent: list[OutgoingEmail] = field(default_factory=list)
    attempts: int = 0

    def send(self, email: OutgoingEmail) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(email)

    def close(self) -> None:
        pass


@dataclass
class Letters:
    letters: list[MailerDeadLetter] = field(default_factory=list)

    def send(self, letter: MailerDeadLetter) -> None:
        self.letters.append(letter)

    def close(self) -> None:
        pass


class Profiles:
    def __init__(self) -> None:
        self.store = MemoryProfileStore()
        self.refreshes = 0
        self.arriving: list = []

    def get(self, customer_id):
        return self.store.get(customer_id)

    def refresh(self) -> None:
        self.refreshes += 1
        if self.arriving:
            self.store.apply([self.arriving.pop(0)], {})


@dataclass
class Rig:
    mailer: TriggerMailer
    clock: Clock
    outbox: Outbox
    letters: Letters
    profiles: Profiles
    ledger: Ledger
    offset: int = 0

    def add(self, record: dict | None = None, raw: bytes | None = None):
        value = raw if raw is not None else default_codec().encode("cdp.Trigger", record)
        self.offset += 1
        return self.mailer.add(TriggerMessage(value, b"c-1", "cdp.triggers", 0, self.offset))


@pytest.fixture
def rig_factory(tmp_path, stored_profile_factory):
    ledgers: list[Ledger] = []

    def make(policy: PolicyConfig | None = None, max_attempts: int = 3) -> Rig:
        clock, outbox, letters, profiles = Clock(), Outbox(), Letters(), Profiles()
        profiles.store.apply([("c-1", stored_profile_factory())], {})
        ledger = Ledger(tmp_path / f"ledger-{len(ledgers)}")
        ledgers.append(ledger)
        config = MailerConfig("shop@example.com", "Shop", policy or PolicyConfig(quiet_hours=None),
                              Backoff(max_attempts, 1.0, 10.0), profile_wait_ms=2000,
                              links=UNSUBSCRIBE_LINKS)  # fmt: skip
        mailer = TriggerMailer(config, ledger=ledger, profiles=profiles, renderer=Renderer(),
                               delivery=outbox, dead_letters=letters, codec=default_codec(),
                               now_ms=clock, sleep=clock.sleep)  # fmt: skip
        return Rig(mailer, clock, outbox, letters, profiles, ledger)

    yield make
    for ledger in ledgers:
        ledger.close()


def test_a_trigger_is_sent_once_and_a_redelivery_sends_nothing(rig_factory, trigger_factory):
    rig = rig_factory()
    t = trigger_factory(trigger_id="t-1")
    assert rig.add(t).status == "sent"
    assert rig.add(t).status == "duplicate"
    (email,) = rig.outbox.sent
    assert (email.to, email.trigger_id, email.template) == ("ada@example.com", "t-1",
                                                            "category_interest")  # fmt: skip
    assert "sho-021" in email.text
    assert rig.ledger.sends("c-1") == [NOW]


def test_unsubscribed_and_unknown_customers_get_nothing(
    rig_factory, trigger_factory, stored_profile_factory
):
    rig = rig_factory()
    rig.profiles.store.apply([("c-1", stored_profile_factory(unsubscribed=True))], {})
    assert rig.add(trigger_factory()).reason == "unsubscribed"
    # Unknown: waited for up to profile_wait_ms after emission, then no consent known.
    result = rig.add(trigger_factory(customer="c-404"))
    assert (result.status, result.reason) == ("skipped", "no_profile")
    assert rig.profiles.refreshes >= 1
    assert rig.outbox.sent == []


def test_a_profile_arriving_after_its_trigger_is_waited_for(
    rig_factory, trigger_factory, stored_profile_factory
):
    rig = rig_factory()
    rig.profiles.arriving.append(("c-2", stored_profile_factory("c-2", email="ben@example.com")))
    assert rig.add(trigger_factory(customer="c-2")).status == "sent"
    assert rig.outbox.sent[0].to == "ben@example.com"


def test_the_frequency_cap_holds_across_rules(rig_factory, trigger_factory):
    rig = rig_factory(PolicyConfig(cap_count=1, cap_window_ms=DAY_MS, quiet_hours=None))
    assert rig.add(trigger_factory()).status == "sent"
    rig.clock.now += DAY_MS - 1
    second = rig.add(trigger_factory("abandoned_cart", emitted_at=rig.clock.now))
    assert (second.status, second.reason) == ("skipped", "frequency_cap")
    rig.clock.now += 1
    assert rig.add(trigger_factory(emitted_at=rig.clock.now)).status == "sent"
    assert len(rig.outbox.sent) == 2


def test_a_refused_email_is_dead_lettered_at_once(rig_factory, trigger_factory):
    rig = rig_factory()
    rig.outbox.errors.append(PermanentDeliveryError("SMTP 550 on recipient", code=550))
    result = rig.add(trigger_factory(trigger_id="t-9"))
    assert (result.status, result.reason) == ("dead_lettered", "delivery_refused")
    (letter,) = rig.letters.letters
    assert (letter.reason, letter.trigger_id, letter.topic, letter.offset) == (
        "delivery_refused", "t-9", "cdp.triggers", 1)  # fmt: skip
    assert letter.error == "SMTP 550 on recipient after 1 attempt(s)"
    assert default_codec().decode(letter.raw)[1]["trigger_id"] == "t-9"
    assert rig.outbox.attempts == 1
    assert rig.add(trigger_factory(trigger_id="t-9")).status == "duplicate"


def test_transient_failures_are_retried_then_dead_lettered(rig_factory, trigger_factory):
    rig = rig_factory(max_attempts=3)
    rig.outbox.errors.extend(TransientDeliveryError("SMTP 451", code=451) for _ in range(3))
    result = rig.add(trigger_factory())
    assert (result.status, result.reason) == ("dead_lettered", "delivery_failed")
    assert rig.outbox.attempts == 3
    assert rig.clock.slept == [1.0, 2.0]
    assert rig.letters.letters[0].error.endswith("after 3 attempt(s)")


def test_a_transient_failure_then_success_sends_once(rig_factory, trigger_factory):
    rig = rig_factory()
    rig.outbox.errors.append(TransientDeliveryError("timeout"))
    assert rig.add(trigger_factory()).status == "sent"
    assert (rig.outbox.attempts, len(rig.outbox.sent)) == (2, 1)


def test_quiet_hours_defer_and_run_due_sends_when_they_end(
    rig_factory, trigger_factory, stored_profile_factory
):
    quiet = QuietHours.parse("00:00-23:59")  # quiet almost all day in UTC
    rig = rig_factory(PolicyConfig(quiet_hours=quiet, max_delay_ms=2 * DAY_MS))
    rig.profiles.store.apply([("c-1", stored_profile_factory(timezone="UTC"))], {})
    t = trigger_factory(trigger_id="t-q")
    assert rig.add(t).status == "deferred"
    assert rig.add(t).status == "duplicate"
    assert rig.mailer.run_due() == []
    (item,) = rig.ledger.due(10**15)
    rig.clock.now = item.due_ms
    results = rig.mailer.run_due()
    assert [(r.status, r.trigger_id) for r in results] == [("sent", "t-q")]
    assert rig.ledger.due(10**15) == []
    assert len(rig.outbox.sent) == 1


def test_consent_is_checked_again_when_a_deferred_trigger_comes_due(
    rig_factory, trigger_factory, stored_profile_factory
):
    rig = rig_factory(PolicyConfig(quiet_hours=QuietHours.parse("00:00-23:59"),
                                   max_delay_ms=2 * DAY_MS))  # fmt: skip
    rig.profiles.store.apply([("c-1", stored_profile_factory(timezone="UTC"))], {})
    rig.add(trigger_factory())
    rig.profiles.store.apply([("c-1", stored_profile_factory(unsubscribed=True))], {})
    rig.clock.now += DAY_MS
    assert [r.reason for r in rig.mailer.run_due()] == ["unsubscribed"]
    assert rig.outbox.sent == []


def test_undecodable_messages_are_dead_lettered_and_tag_changes_ignored(rig_factory):
    rig = rig_factory()
    result = rig.add(raw=b"\xc3\x01 not avro")
    assert (result.status, result.reason) == ("dead_lettered", "unknown_schema")
    assert rig.letters.letters[0].raw == b"\xc3\x01 not avro"
    change = default_codec().encode("cdp.TagChange", {
        "change_id": "x", "customer_id": "c-1", "tag": "vip", "added": True, "reason": "r",
        "event_time": 0, "emitted_at": 0})  # fmt: skip
    assert rig.add(raw=change).status == "ignored"


@pytest.mark.parametrize(
    ("rule", "attributes"),
    [("segment_entered", {"segment": "vip"}), ("lifecycle_change", {"to": '"active"'})],
)
def test_rules_without_a_template_are_skipped(rig_factory, trigger_factory, rule, attributes):
    rig = rig_factory()
    result = rig.add(trigger_factory(rule, attributes=attributes))
    assert (result.status, result.reason) == ("skipped", "no_template")
    assert rig.outbox.attempts == 0


def test_a_win_back_trigger_is_sent_with_its_template(rig_factory, trigger_factory):
    rig = rig_factory()
    t = trigger_factory("win_back", category=None, product_ids=[],
                        attributes={"from": "active", "to": "lapsed"})  # fmt: skip
    assert rig.add(t).reason == "win_back"
    assert rig.outbox.sent[0].subject == "Ada, we miss you at Shop"


# --- hostile input and the failure boundary (issue 16) --------------------------------

HOSTILE = [
    ("a@victim.example\r\nBcc: b@evil.example", "contains a control character"),
    ("a@victim.example, b@evil.example", "not a single bare address"),
    ("Victim <a@victim.example>", "not a single bare address"),
]


@pytest.mark.parametrize(("address", "why"), HOSTILE)
def test_a_hostile_address_is_dead_lettered_naming_the_field_and_the_next_one_is_sent(
    rig_factory, trigger_factory, stored_profile_factory, address, why
):
    rig = rig_factory()
    rig.profiles.store.apply([("c-6", stored_profile_factory("c-6", email=address))], {})
    result = rig.add(trigger_factory(customer="c-6", trigger_id="t-h", email=address))
    assert (result.status, result.reason) == ("dead_lettered", "invalid_recipient")
    (letter,) = rig.letters.letters
    assert (letter.reason, letter.trigger_id, letter.error_type) == (
        "invalid_recipient", "t-h", "InvalidRecipient")  # fmt: skip
    assert letter.error == f"profile.email: {why}"
    assert rig.outbox.attempts == 0
    assert rig.ledger.outcome("t-h").outcome == "dead_lettered"
    assert rig.add(trigger_factory(customer="c-6", trigger_id="t-h")).status == "duplicate"
    # The neighbour is not affected.
    assert rig.add(trigger_factory()).status == "sent"
    assert [e.to for e in rig.outbox.sent] == ["ada@example.com"]
    assert rig.mailer.metrics.dead_letters.labels("invalid_recipient")._value.get() == 1


def test_a_bad_profile_address_never_falls_back_to_the_triggers(
    rig_factory, trigger_factory, stored_profile_factory
):
    rig = rig_factory()
    rig.profiles.store.apply([("c-1", stored_profile_factory(email="not an address"))], {})
    result = rig.add(trigger_factory(email="ada@example.com"))
    assert result.reason == "invalid_recipient"
    assert rig.outbox.sent == []


def test_a_hostile_first_name_cannot_add_a_header(
    rig_factory, trigger_factory, stored_profile_factory
):
    rig = rig_factory()
    name = "Ada\r\nBcc: b@evil.example\x00"
    rig.profiles.store.apply([("c-1", stored_profile_factory(first_name=name))], {})
    assert rig.add(trigger_factory()).status == "sent"
    (email,) = rig.outbox.sent
    assert email.subject == "Ada Bcc: b@evil.example , still looking at shoes?"
    assert not any(ch in email.subject for ch in "\r\n\x00")


def test_a_trigger_id_that_could_break_a_header_is_dead_lettered(rig_factory, trigger_factory):
    rig = rig_factory()
    result = rig.add(trigger_factory(trigger_id="t-1>\r\nBcc: b@evil.example"))
    assert (result.status, result.reason) == ("dead_lettered", "invalid_trigger")
    (letter,) = rig.letters.letters
    assert letter.trigger_id is None
    assert letter.error.startswith("trigger_id: ")
    assert rig.outbox.attempts == 0


def test_an_email_without_an_unsubscribe_link_is_never_sent(rig_factory, trigger_factory):
    """A trigger id the dataflow would never make, too long for an unsubscribe token: the
    email could carry no List-Unsubscribe, so it is a dead letter and nothing is sent."""
    rig = rig_factory()
    result = rig.add(trigger_factory(trigger_id=f"{'a' * 128}.b"))  # a valid id, 130 bytes
    assert (result.status, result.reason) == ("dead_lettered", "no_unsubscribe_link")
    (letter,) = rig.letters.letters
    assert letter.reason == "no_unsubscribe_link"
    assert rig.outbox.attempts == 0
    assert rig.add(trigger_factory(trigger_id="t-2")).status == "sent"
    assert rig.outbox.sent[0].list_unsubscribe.startswith(
        "<https://collect.shop.example/v1/unsubscribe?t=1."
    )


def test_a_mailer_without_an_unsubscribe_url_is_not_built(tmp_path) -> None:
    from cdpflow.errors import ConfigError
    from mailer.links import UNSUBSCRIBE_URL_REQUIRED, LinkConfig

    ledger = Ledger(tmp_path / "ledger")
    try:
        for links in (LinkConfig(), LinkConfig(unsubscribe_url=UNSUBSCRIBE_LINKS.unsubscribe_url)):
            config = MailerConfig("shop@example.com", "Shop", PolicyConfig(), Backoff(),
                                  links=links)  # fmt: skip
            with pytest.raises(ConfigError, match=re.escape(UNSUBSCRIBE_URL_REQUIRED)):
                TriggerMailer(config, ledger=ledger, profiles=Profiles(), renderer=Renderer(),
                              delivery=Outbox(), dead_letters=Letters(), codec=default_codec(),
                              now_ms=Clock(), sleep=lambda _s: None)  # fmt: skip
    finally:
        ledger.close()


class Boom(RuntimeError):
    pass


def _boom(*_args, **_kwargs):
    raise Boom("a message that could hold ada@example.com")


@pytest.mark.parametrize(
    ("target", "stage"),
    [("mailer.sink.template_for", "template"), ("mailer.sink.decide", "policy"),
     ("mailer.sink.context_for", "render"), ("mailer.sink.header_text", "message")],
)  # fmt: skip
def test_an_unexpected_error_in_any_stage_dead_letters_that_trigger_only(
    rig_factory, trigger_factory, monkeypatch, target, stage
):
    rig = rig_factory()
    with monkeypatch.context() as patch:
        patch.setattr(target, _boom)
        result = rig.add(trigger_factory(trigger_id="t-p"))
    assert (result.status, result.reason, result.trigger_id) == (
        "dead_lettered", "processing_error", "t-p")  # fmt: skip
    (letter,) = rig.letters.letters
    assert letter.reason == "processing_error"
    assert letter.error_type == "Boom"
    assert letter.error.startswith(f"{stage} failed: Boom at ")
    assert "@" not in letter.error  # the exception's message is not kept
    assert default_codec().decode(letter.raw)[1]["trigger_id"] == "t-p"
    assert rig.ledger.outcome("t-p").reason == "processing_error"
    assert rig.mailer.metrics.processing_errors.labels(stage)._value.get() == 1
    assert rig.add(trigger_factory()).status == "sent"  # the mailer goes on


def test_an_unexpected_error_in_the_profile_store_or_the_delivery_is_a_dead_letter(
    rig_factory, trigger_factory, monkeypatch
):
    rig = rig_factory()
    monkeypatch.setattr(rig.profiles, "get", _boom)
    assert rig.add(trigger_factory()).reason == "processing_error"
    monkeypatch.undo()
    monkeypatch.setattr(rig.outbox, "send", _boom)  # neither transient nor permanent
    result = rig.add(trigger_factory())
    assert result.reason == "processing_error"
    assert [letter.error.split(" at ")[0] for letter in rig.letters.letters] == [
        "profile failed: Boom", "deliver failed: Boom"]  # fmt: skip


def test_when_the_dead_letter_topic_is_unreachable_the_trigger_is_not_given_up(
    rig_factory, trigger_factory, monkeypatch
):
    from mailer.exceptions import Unavailable

    rig = rig_factory()

    def unreachable(_letter):
        raise Unavailable("dead letter to cdp.events.dlq not acknowledged (timeout)")

    monkeypatch.setattr(rig.letters, "send", unreachable)
    monkeypatch.setattr(rig.outbox, "send", _boom)
    with pytest.raises(Unavailable):
        rig.add(trigger_factory(trigger_id="t-u"))
    assert rig.ledger.outcome("t-u") is None  # handled again after a restart


def test_a_poison_deferred_trigger_is_dead_lettered_and_leaves_the_queue(
    rig_factory, trigger_factory, stored_profile_factory
):
    from mailer.ledger import Deferred, Outcome

    rig = rig_factory()
    good = default_codec().encode("cdp.Trigger", trigger_factory(trigger_id="t-ok"))
    for tid, raw in (("t-bad", b"\xc3\x01garbage"), ("t-ok", good)):
        rig.ledger.defer(Deferred(NOW, tid, raw, b"c-1", "cdp.triggers", 0, 7),
                         Outcome("deferred", "quiet_hours", NOW))  # fmt: skip
    results = {r.trigger_id: (r.status, r.reason) for r in rig.mailer.run_due()}
    assert results == {
        "t-bad": ("dead_lettered", "processing_error"),
        "t-ok": ("sent", "category_interest"),
    }
    assert rig.ledger.due(10**15) == []
    (letter,) = rig.letters.letters
    assert (letter.trigger_id, letter.error_type, letter.offset) == (
        "t-bad",
        "CorruptRecordError",
        7,
    )
    assert rig.mailer.run_due() == []
