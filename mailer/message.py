"""The email about to leave: :class:`OutgoingEmail`, and its MIME form.

Every header value is checked or cleaned here once more, whatever the caller did: the
recipient must be one valid address (:func:`~mailer.addresses.recipient`), the subject
and the sender's name are reduced to one safe line (:func:`~mailer.addresses.header_text`).

A marketing email carries ``List-Unsubscribe`` (its one-click URL, and a ``mailto:`` when
configured) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058). That
header is stored raw and folded at its commas, so a long URL stays one token on a line
of at most 998 characters (the folding policy would turn it into encoded words that no
mail client follows); every other header is folded as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from mailer.addresses import header_text, recipient

__all__ = ["ONE_CLICK", "OutgoingEmail", "to_mime"]

#: The ``List-Unsubscribe-Post`` value of RFC 8058.
ONE_CLICK = "List-Unsubscribe=One-Click"
#: Raw values (only List-Unsubscribe here) are written as given, not refolded.
_POLICY = policy.default.clone(refold_source="none")


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
    #: The ``List-Unsubscribe`` value (``<https://...>[, <mailto:...>]``); ``None``: none.
    list_unsubscribe: str | None = field(default=None, repr=False)


def to_mime(email: OutgoingEmail, sender_name: str, sent_at_s: float) -> EmailMessage:
    """A multipart/alternative message; the ``Message-ID`` is derived from the trigger id,
    so a provider that dedupes on it sees a redelivery as the same message.

    Raises :class:`~mailer.addresses.InvalidRecipient` for a recipient that is not one
    valid address."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = formataddr((header_text(sender_name), recipient(email.sender, "sender")))
    msg["To"] = recipient(email.to, "to")
    msg["Subject"] = header_text(email.subject)
    msg["Date"] = formatdate(sent_at_s, usegmt=True)
    domain = email.sender.rpartition("@")[2] or "cdpflow.invalid"
    msg["Message-ID"] = f"<{email.trigger_id}@{domain}>"
    msg["X-Cdpflow-Trigger"] = email.trigger_id
    msg["Auto-Submitted"] = "auto-generated"
    if email.list_unsubscribe:
        parts = [header_text(part, 960) for part in email.list_unsubscribe.split(", ")]
        msg.set_raw("List-Unsubscribe", ",\n ".join(parts))
        msg["List-Unsubscribe-Post"] = ONE_CLICK
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    return msg
