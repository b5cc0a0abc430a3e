"""Hostile triggers through the real SMTP delivery to a real SMTP server on loopback
(aiosmtpd): nothing is sent to an injected or second address, the hostile triggers become
dead letters, and a normal customer's email still leaves afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cdpflow.codec import default_codec
from mailer.addresses import InvalidRecipient
from mailer.dead_letters import MailerDeadLetter
from mailer.delivery import Backoff
from mailer.ledger import Ledger
from mailer.message import OutgoingEmail, to_mime
from mailer.policy import PolicyConfig
from mailer.sink import MailerConfig, TriggerMailer, TriggerMessage
from mailer.smtp import SmtpConfig, SmtpDelivery
from mailer.templates import Renderer
from state.store import MemoryProfileStore
from tests.mailer.conftest import NOW, UNSUBSCRIBE_LINKS


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

    def get(self, customer_id):
        return self.store.get(customer_id)

    def refresh(self) -> None:
        pass


def test_hostile_recipients_reach_no_one_and_a_normal_customer_still_gets_email(
    smtp, smtp_handler, tmp_path, trigger_factory, stored_profile_factory
) -> None:
    host, port = smtp
    profiles, letters = Profiles(), Letters()
    crlf = "a@victim.example\r\nBcc: b@evil.example"
    two = "a@victim.example, b@evil.example"
    profiles.store.apply([
        ("crlf", stored_profile_factory("crlf", email=crlf)),
        ("two", stored_profile_factory("two", email=two)),
        ("name", stored_profile_factory("name", email="name@example.com",
                                        first_name="Eve\r\nBcc: b@evil.example")),
        ("ada", stored_profile_factory("ada", email="ada@example.com")),
    ], {})  # fmt: skip
    ledger = Ledger(tmp_path / "ledger")
    delivery = SmtpDelivery(SmtpConfig(host=host, port=port, security="none", timeout_s=5,
                                       sender_name="Shop\r\nBcc: b@evil.example"))  # fmt: skip
    config = MailerConfig("shop@example.com", "Shop", PolicyConfig(quiet_hours=None),
                          Backoff(2, 0.0, 0.0), profile_wait_ms=0,
                          links=UNSUBSCRIBE_LINKS)  # fmt: skip
    mailer = TriggerMailer(config, ledger=ledger, profiles=profiles, renderer=Renderer(),
                           delivery=delivery, dead_letters=letters, codec=default_codec(),
                           now_ms=lambda: NOW, sleep=lambda _s: None)  # fmt: skip

    def trigger(customer: str, **fields: str) -> bytes:
        record = trigger_factory(customer=customer, trigger_id=f"t-{customer}", **fields)
        return default_codec().encode("cdp.Trigger", record)

    messages = [trigger("crlf", email=crlf), trigger("two", email=two), b"\xc3\x01\x00poison",
                trigger("name"), trigger("ada")]  # fmt: skip
    try:
        results = [mailer.add(TriggerMessage(raw, b"k", "cdp.triggers", 0, offset))
                   for offset, raw in enumerate(messages)]  # fmt: skip
    finally:
        ledger.close()
    assert [(r.status, r.reason) for r in results] == [
        ("dead_lettered", "invalid_recipient"),
        ("dead_lettered", "invalid_recipient"),
        ("dead_lettered", "corrupt_avro"),
        ("sent", "category_interest"),
        ("sent", "category_interest"),
    ]
    assert [(d.offset, d.reason, d.error) for d in letters.letters] == [
        (0, "invalid_recipient", "profile.email: contains a control character"),
        (1, "invalid_recipient", "profile.email: not a single bare address"),
        (2, "corrupt_avro", letters.letters[2].error),
    ]
    # The server saw exactly two messages, each to one envelope recipient, no Bcc.
    assert [r.to for r in smtp_handler.received] == [["name@example.com"], ["ada@example.com"]]
    assert smtp_handler.rcpt_attempts == 2
    for got in smtp_handler.received:
        assert got.message["Bcc"] is None
        assert "evil" not in str(got.message.get("To"))
        assert "\n" not in got.message["Subject"]
    name_mail = smtp_handler.received[0].message
    assert name_mail["Subject"] == "Eve Bcc: b@evil.example, still looking at shoes?"
    assert name_mail["From"].addresses[0].addr_spec == "shop@example.com"


@pytest.mark.parametrize(
    "to", ["a@victim.example\r\nBcc: b@evil.example", "a@victim.example, b@evil.example"]
)
def test_the_mime_message_refuses_a_recipient_that_is_not_one_address(to: str) -> None:
    email = OutgoingEmail("t-1", "r", "category_interest", "shop@example.com", to, "s", "t", "h")
    with pytest.raises(InvalidRecipient, match=r"^to: "):
        to_mime(email, "Shop", NOW / 1000)


def test_the_mime_message_keeps_the_subject_and_sender_name_on_one_line() -> None:
    email = OutgoingEmail("t-1", "r", "category_interest", "shop@example.com",
                          "ada@example.com", "Hi\r\nBcc: b@evil.example", "t", "h")  # fmt: skip
    msg = to_mime(email, "Shop\nX-Evil: 1", NOW / 1000)
    assert msg["Subject"] == "Hi Bcc: b@evil.example"
    assert msg["Bcc"] is None
    assert msg["X-Evil"] is None
    assert "\n" not in str(msg["From"])
