"""What the store keeps per customer: :class:`StoredProfile`, and its byte form.

A stored value is JSON with a format version (``"v"``); a reader refuses a version it
does not know instead of misreading it. Built from a ``cdp.ProfileSnapshot`` record whose
``profile_json`` is the profile view of ``state.profile_view.view``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from state.store.exceptions import StoreError

__all__ = [
    "MAX_EMAIL_BYTES",
    "STORED_VERSION",
    "Freshness",
    "StoredProfile",
    "email_key",
    "is_fresher",
    "iso_ms",
    "normalize_email",
]

STORED_VERSION = 1


#: Longest address indexed (RFC 5321 allows 254 octets in a path; leave room for junk).
MAX_EMAIL_BYTES = 320


def normalize_email(email: str) -> str:
    """The form emails are compared in: trimmed, NFC, lower case (local part and domain),
    the domain without a trailing dot.

    The local part is case-folded too: RFC 5321 lets a server tell ``Ada@`` from ``ada@``,
    but mailbox providers do not, and an index that did would let ``ADA@victim.example``
    be a second address. Dots and ``+tags`` are kept: what they mean is provider-specific.

    >>> normalize_email("  Ada@Example.COM. ")
    'ada@example.com'
    """
    text = unicodedata.normalize("NFC", email.strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{domain.casefold().rstrip('.')}"


def email_key(email: str | None) -> str | None:
    """The normalized address an email is indexed under, or ``None`` when it cannot be one
    (no ``@`` between a local part and a domain, a control or space character, too long):
    such a value is kept in the profile but never found by a look-up.

    >>> email_key("Ada@Example.com"), email_key("a@x.example, b@y.example")
    ('ada@example.com', None)
    """
    if not email:
        return None
    key = normalize_email(email)
    local, at, domain = key.rpartition("@")
    if not (at and local and domain) or len(key.encode()) > MAX_EMAIL_BYTES:
        return None
    if any(c.isspace() or not c.isprintable() for c in key):
        return None
    return key


def iso_ms(ms: int) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC (``Z``); ``None`` outside the years
    ``datetime`` can show.

    >>> iso_ms(1_700_000_000_123)
    '2023-11-14T22:13:20.123Z'
    """
    try:
        at = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return None
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: How fresh a snapshot is: ``(event_time, revision, as_of)``, compared as a tuple.
Freshness = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """The latest snapshot of one customer, as the profile API serves it."""

    customer_id: str
    profile: Mapping[str, Any] = field(default_factory=dict)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    lifecycle: str | None = None
    tags: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    event_time: int = 0
    emitted_at: int = 0
    state_version: int = 0
    #: The customer's state revision; ``None``: the snapshot did not say (see
    #: :attr:`freshness`).
    revision: int | None = None
    #: The stream time the view was evaluated at; ``None``: not said (older records).
    as_of: int | None = None

    @classmethod
    def from_snapshot(cls, record: Mapping[str, Any]) -> StoredProfile:
        """From a decoded ``cdp.ProfileSnapshot`` (times as integer milliseconds).

        Raises :class:`StoreError` when ``profile_json`` is not a JSON object.
        """
        try:
            profile = orjson.loads(record["profile_json"])
        except orjson.JSONDecodeError as exc:
            raise StoreError("profile_json is not valid JSON") from exc
        if not isinstance(profile, dict):
            raise StoreError("profile_json is not a JSON object")
        revision, as_of = record.get("revision"), record.get("as_of")
        return cls(
            customer_id=record["customer_id"],
            profile=profile,
            email=record.get("email"),
            first_name=record.get("first_name"),
            last_name=record.get("last_name"),
            lifecycle=record.get("lifecycle"),
            tags=tuple(record.get("tags") or ()),
            segments=tuple(record.get("segments") or ()),
            event_time=int(record.get("event_time") or 0),
            emitted_at=int(record.get("emitted_at") or 0),
            state_version=int(record.get("state_version") or 0),
            revision=None if revision is None else int(revision),
            as_of=None if as_of is None else int(as_of),
        )

    @property
    def freshness(self) -> Freshness:
        """``(event_time, revision, as_of)``; a record without ``revision`` takes the
        view's ``"revision"`` (else 0), one without ``as_of`` its ``event_time``."""
        revision = self.revision
        if revision is None:
            view_revision = self.profile.get("revision")
            revision = 0
            if isinstance(view_revision, int) and not isinstance(view_revision, bool):
                revision = view_revision
        as_of = self.event_time if self.as_of is None else self.as_of
        return (self.event_time, revision, as_of)

    @property
    def unsubscribed(self) -> bool:
        """Withdrew consent to marketing email (the view's ``unsubscribed``)."""
        return self.profile.get("unsubscribed") is True

    @property
    def timezone(self) -> str | None:
        """The customer's IANA time zone, if an event told it."""
        attrs = self.profile.get("attributes")
        tz = attrs.get("timezone") if isinstance(attrs, dict) else None
        return tz if isinstance(tz, str) and tz else None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape the profile API answers with: times as ISO 8601 UTC; ``profile``
        is the view unchanged (its times stay milliseconds since the epoch)."""
        return {
            **self._fields(),
            "event_time": iso_ms(self.event_time),
            "emitted_at": iso_ms(self.emitted_at),
            "as_of": None if self.as_of is None else iso_ms(self.as_of),
            "profile": dict(self.profile),
        }

    def _fields(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "lifecycle": self.lifecycle,
            "tags": list(self.tags),
            "segments": list(self.segments),
            "event_time": self.event_time,
            "emitted_at": self.emitted_at,
            "state_version": self.state_version,
            "revision": self.revision,
            "as_of": self.as_of,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps({"v": STORED_VERSION, **self._fields(), "profile": self.profile})

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredProfile:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("v") != STORED_VERSION:
            raise StoreError(f"stored profile has an unknown format (expected v{STORED_VERSION})")
        return cls(
            customer_id=raw["customer_id"],
            profile=raw["profile"],
            email=raw["email"],
            first_name=raw["first_name"],
            last_name=raw["last_name"],
            lifecycle=raw["lifecycle"],
            tags=tuple(raw["tags"]),
            segments=tuple(raw["segments"]),
            event_time=raw["event_time"],
            emitted_at=raw["emitted_at"],
            state_version=raw["state_version"],
            # Added later, with defaults: values written before them still read as v1.
            revision=raw.get("revision"),
            as_of=raw.get("as_of"),
        )


def is_fresher(incoming: StoredProfile, stored: StoredProfile | None) -> bool:
    """Whether ``incoming`` may replace ``stored``: it is at least as fresh (equal
    replaces, so a re-delivered snapshot still lands). Readers never go back in time.

    >>> old = StoredProfile("c-1", event_time=5, revision=2)
    >>> is_fresher(StoredProfile("c-1", event_time=5, revision=1), old)
    False
    """
    return stored is None or incoming.freshness >= stored.freshness
