"""The email about to leave: :class:`OutgoingEmail`, and its MIME form."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate

__all__ = ["OutgoingEmail", "to_mime"]


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One rendered email. ``repr`` leaves out the address and the bodies (personal data)."""

    trigger_id: str
    rule: str
    template: str
    sender: str
    to: str = field(repr=False)
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)


def to_mime(email: OutgoingEmail, sender_name: str, sent_at_s: float) -> EmailMessage:
    """A multipart/alternative message; the ``Message-ID`` is derived from the trigger id,
    so a provider that dedupes on it sees a redelivery as the same message."""
    msg = EmailMessage()
    msg["From"] = formataddr((sender_name, email.sender))
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(sent_at_s, usegmt=True)
    domain = email.sender.rpartition("@")[2] or "cdpflow.invalid"
    msg["Message-ID"] = f"<{email.trigger_id}@{domain}>"
    msg["X-Cdpflow-Trigger"] = email.trigger_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg
