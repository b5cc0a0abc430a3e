"""The interface every profile store backend implements.

A store is written by one materializer (a consumer of ``cdp.profiles``) and read by the
profile API and the mailer. Each :meth:`ProfileStore.apply` is atomic: the profiles, their
email and segment indexes and the next source offsets land together or not at all, so a
restart resumes at exactly the offsets whose records are in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from state.store.model import StoredProfile

__all__ = ["ProfileChange", "ProfileStore", "SourceOffsets"]

#: ``(customer_id, profile)``; ``None`` is a tombstone: the customer was erased.
ProfileChange = tuple[str, StoredProfile | None]
#: ``{(topic, partition): next offset to read}``
SourceOffsets = Mapping[tuple[str, int], int]


class ProfileStore(Protocol):
    """Latest profile per customer, indexes by email and segment, and source offsets."""

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        """Upsert or erase ``changes`` in order and record ``offsets``, atomically."""
        ...

    def get(self, customer_id: str) -> StoredProfile | None:
        """The customer's latest profile; ``None`` if unknown or erased."""
        ...

    def find_by_email(self, email: str) -> StoredProfile | None:
        """The profile that most recently carried ``email`` (compared normalized)."""
        ...

    def segment_members(self, segment: str, *, after: str | None, limit: int) -> list[str]:
        """Customer ids in ``segment``, ascending, strictly after ``after``, at most
        ``limit``."""
        ...

    def offsets(self, topic: str) -> dict[int, int]:
        """``{partition: next offset}`` recorded for ``topic``; empty if none."""
        ...

    def close(self) -> None:
        """Release the store; further calls are errors."""
        ...
