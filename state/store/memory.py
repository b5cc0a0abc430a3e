"""The in-memory backend: plain dictionaries, nothing survives the process."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from state.store.base import EmailMatch, ProfileChange, SourceOffsets
from state.store.model import StoredProfile, email_key

__all__ = ["MemoryProfileStore"]


class MemoryProfileStore:
    """A :class:`~state.store.base.ProfileStore` for tests and throw-away runs."""

    def __init__(self) -> None:
        self._profiles: dict[str, StoredProfile] = {}
        #: normalized email -> sorted ``(claim time, customer id)`` of its holders
        self._emails: dict[str, list[tuple[int, str]]] = {}
        #: customer id -> ``(normalized email, claim time)``
        self._claims: dict[str, tuple[str, int]] = {}
        self._segments: dict[str, list[str]] = {}
        self._offsets: dict[tuple[str, int], int] = {}

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        for customer_id, profile in changes:
            old = self._profiles.pop(customer_id, None)
            if old is not None:
                self._unindex_segments(old)
            self._claim(customer_id, None if profile is None else email_key(profile.email),
                        0 if profile is None else profile.event_time)  # fmt: skip
            if profile is not None:
                self._profiles[customer_id] = profile
                for segment in set(profile.segments):
                    bisect.insort(self._segments.setdefault(segment, []), customer_id)
        self._offsets.update(offsets)

    def get(self, customer_id: str) -> StoredProfile | None:
        return self._profiles.get(customer_id)

    def find_by_email(self, email: str) -> EmailMatch | None:
        key = email_key(email)
        holders = self._emails.get(key) if key else None
        if not holders:
            return None
        return EmailMatch(self._profiles[holders[0][1]], len(holders))

    def segment_members(self, segment: str, *, after: str | None, limit: int) -> list[str]:
        members = self._segments.get(segment, [])
        start = 0 if after is None else bisect.bisect_right(members, after)
        return members[start : start + limit]

    def offsets(self, topic: str) -> dict[int, int]:
        return {p: o for (t, p), o in self._offsets.items() if t == topic}

    def close(self) -> None:
        self._profiles.clear()

    def _claim(self, customer_id: str, key: str | None, at: int) -> None:
        """Keep the customer's claim if it still carries the same address, else move it."""
        old = self._claims.get(customer_id)
        if old is not None and old[0] == key:
            return
        if old is not None:
            holders = self._emails[old[0]]
            holders.remove((old[1], customer_id))
            if not holders:
                del self._emails[old[0]]
            del self._claims[customer_id]
        if key is not None:
            self._claims[customer_id] = (key, at)
            bisect.insort(self._emails.setdefault(key, []), (at, customer_id))

    def _unindex_segments(self, profile: StoredProfile) -> None:
        for segment in set(profile.segments):
            members = self._segments[segment]
            members.remove(profile.customer_id)
            if not members:
                del self._segments[segment]
