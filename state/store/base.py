"""The interface every profile store backend implements.

A store is written by one materializer (a consumer of ``cdp.profiles``) and read by the
profile API and the mailer. Each :meth:`ProfileStore.apply` is atomic: the profiles, their
email and segment indexes and the next source offsets land together or not at all, so a
restart resumes at exactly the offsets whose records are in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from state.store.model import StoredProfile

__all__ = ["EmailMatch", "ProfileChange", "ProfileStore", "SourceOffsets"]

#: ``(customer_id, profile)``; ``None`` is a tombstone: the customer was erased.
ProfileChange = tuple[str, StoredProfile | None]
#: ``{(topic, partition): next offset to read}``
SourceOffsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class EmailMatch:
    """The answer to a look-up by email: the first claimant still holding the address.

    A customer claims an address with the first snapshot that carries it (its claim time
    is that snapshot's ``event_time``) and holds it while its snapshots keep carrying it.
    Of several holders the earliest claim wins (ties: the smaller id), so a later identify
    with someone else's address cannot take it over; ``claimants`` says how many hold it.
    """

    profile: StoredProfile
    claimants: int

    @property
    def shared(self) -> bool:
        return self.claimants > 1


class ProfileStore(Protocol):
    """Latest profile per customer, indexes by email and segment, and source offsets."""

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        """Upsert or erase ``changes`` in order and record ``offsets``, atomically."""
        ...

    def get(self, customer_id: str) -> StoredProfile | None:
        """The customer's latest profile; ``None`` if unknown or erased."""
        ...

    def find_by_email(self, email: str) -> EmailMatch | None:
        """The first claimant still holding ``email`` (compared normalized, see
        :func:`~state.store.model.email_key`); ``None`` if nobody holds it."""
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
