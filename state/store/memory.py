"""The in-memory backend: plain dictionaries, nothing survives the process."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from state.store.base import ProfileChange, SourceOffsets
from state.store.model import StoredProfile, normalize_email

__all__ = ["MemoryProfileStore"]


class MemoryProfileStore:
    """A :class:`~state.store.base.ProfileStore` for tests and throw-away runs."""

    def __init__(self) -> None:
        self._profiles: dict[str, StoredProfile] = {}
        self._emails: dict[str, str] = {}
        self._segments: dict[str, list[str]] = {}
        self._offsets: dict[tuple[str, int], int] = {}

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        for customer_id, profile in changes:
            old = self._profiles.pop(customer_id, None)
            if old is not None:
                self._unindex(old)
            if profile is not None:
                self._profiles[customer_id] = profile
                self._index(profile)
        self._offsets.update(offsets)

    def get(self, customer_id: str) -> StoredProfile | None:
        return self._profiles.get(customer_id)

    def find_by_email(self, email: str) -> StoredProfile | None:
        customer_id = self._emails.get(normalize_email(email))
        return None if customer_id is None else self._profiles.get(customer_id)

    def segment_members(self, segment: str, *, after: str | None, limit: int) -> list[str]:
        members = self._segments.get(segment, [])
        start = 0 if after is None else bisect.bisect_right(members, after)
        return members[start : start + limit]

    def offsets(self, topic: str) -> dict[int, int]:
        return {p: o for (t, p), o in self._offsets.items() if t == topic}

    def close(self) -> None:
        self._profiles.clear()

    def _index(self, profile: StoredProfile) -> None:
        if profile.email:
            self._emails[normalize_email(profile.email)] = profile.customer_id
        for segment in set(profile.segments):
            bisect.insort(self._segments.setdefault(segment, []), profile.customer_id)

    def _unindex(self, profile: StoredProfile) -> None:
        if profile.email:
            key = normalize_email(profile.email)
            if self._emails.get(key) == profile.customer_id:
                del self._emails[key]
        for segment in set(profile.segments):
            members = self._segments[segment]
            members.remove(profile.customer_id)
            if not members:
                del self._segments[segment]
