"""Recipient addresses and other header-bound values that come from profile data.

A customer's email is data anyone can set (an ``identify`` with the public write key), so
it is parsed strictly before it goes near a header or an SMTP envelope
(:func:`recipient`): exactly one bare ``addr-spec`` (no display name, comment, group or
list), at most 254 characters, ASCII only, no control character anywhere; a dot-atom
local part of at most 64 characters (no quoted string); a domain of at least two
dot-separated labels of letters, digits and inner hyphens (no address literal). The
standard library's :class:`email.headerregistry.Address` must parse it and give back the
same text. Anything else raises :class:`InvalidRecipient`, whose message names the
field and the rule broken, never the value.

Free text bound for a header (a subject with a first name in it) goes through
:func:`header_text`: control and line-separator characters become spaces, whitespace is
collapsed and the length bounded, so it can neither end the header nor start another.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import HeaderParseError
from email.headerregistry import Address

from mailer.exceptions import MailerError

__all__ = ["MAX_HEADER_TEXT", "InvalidRecipient", "header_text", "recipient"]

MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3: a path holds 256 octets, brackets included
MAX_LOCAL = 64
MAX_HEADER_TEXT = 200
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: Characters that must never reach a header: C0/C1 controls (CR, LF, NUL, ...), DEL,
#: format characters, and the Unicode line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class InvalidRecipient(MailerError):
    """A recipient address that cannot be sent to; ``field`` names where it came from."""

    reason = "invalid_recipient"

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


def recipient(value: object, field: str) -> str:
    """The address in ``value`` (surrounding spaces removed), or :class:`InvalidRecipient`.

    >>> recipient(" ada@example.com ", "profile.email")
    'ada@example.com'
    >>> recipient("a@victim.example\\r\\nBcc: b@evil.example", "profile.email")
    Traceback (most recent call last):
    ...
    mailer.addresses.InvalidRecipient: profile.email: contains a control character
    >>> recipient("a@victim.example, b@evil.example", "trigger.email")
    Traceback (most recent call last):
    ...
    mailer.addresses.InvalidRecipient: trigger.email: not a single bare address
    """
    if not isinstance(value, str):
        raise InvalidRecipient(field, "not a string")
    if any(_unsafe(ch) for ch in value):
        raise InvalidRecipient(field, "contains a control character")
    text = value.strip(" ")
    if not text:
        raise InvalidRecipient(field, "empty")
    if not text.isascii():
        raise InvalidRecipient(field, "not ASCII (internationalized addresses are not sent)")
    if len(text) > MAX_ADDRESS:
        raise InvalidRecipient(field, f"longer than {MAX_ADDRESS} characters")
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or not _domain_ok(domain):
        raise InvalidRecipient(field, "not a single bare address")
    if len(local) > MAX_LOCAL:
        raise InvalidRecipient(field, f"local part longer than {MAX_LOCAL} characters")
    try:
        parsed = Address(addr_spec=text)
    except (ValueError, HeaderParseError, IndexError) as exc:
        raise InvalidRecipient(field, "not a single bare address") from exc
    if parsed.addr_spec != text or parsed.display_name:
        raise InvalidRecipient(field, "not a single bare address")
    return text


def _domain_ok(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """``value`` made safe for one header line: unsafe characters become spaces, runs of
    whitespace one space, at most ``limit`` characters.

    >>> header_text("Ada\\r\\nBcc: evil@example.com\\x00, still looking?")
    'Ada Bcc: evil@example.com , still looking?'
    """
    cleaned = "".join(" " if _unsafe(ch) else ch for ch in value)
    return " ".join(cleaned.split())[:limit].rstrip()
