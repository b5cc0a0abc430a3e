"""What the store keeps per customer: :class:`StoredProfile`, and its byte form.

A stored value is JSON with a format version (``"v"``); a reader refuses a version it
does not know instead of misreading it. Built from a ``cdp.ProfileSnapshot`` record whose
``profile_json`` is the profile view of ``state.profile.view``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from state.store.exceptions import StoreError

__all__ = ["STORED_VERSION", "StoredProfile", "normalize_email"]

STORED_VERSION = 1


def normalize_email(email: str) -> str:
    """The form emails are indexed under: trimmed, lower case.

    >>> normalize_email("  Ada@Example.COM ")
    'ada@example.com'
    """
    return email.strip().lower()


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
        )

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
        """The JSON shape the profile API answers with."""
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
            "profile": dict(self.profile),
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps({"v": STORED_VERSION, **self.to_json()})

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
        )
