"""Idempotency: remember which event ids a customer's state has already applied.

Ids are kept as 64-bit BLAKE2b digests (8 bytes instead of a 36-character UUID) with
their event time, for ``horizon`` ms of the customer's event time and at most ``cap``
entries. A duplicate inside the horizon is recognised; an event older than the horizon
cannot be checked, so the profile logic refuses it with a recorded reason rather than
risk counting it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import blake2b

__all__ = ["SeenIds", "id_digest"]


def id_digest(event_id: str) -> int:
    """Stable across processes and restarts, unlike ``hash()``.

    >>> id_digest("e-1") == id_digest("e-1") != id_digest("e-2")
    True
    """
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big")


@dataclass(slots=True)
class SeenIds:
    """Digest -> event time of the applied events still inside the dedupe horizon."""

    ids: dict[int, int] = field(default_factory=dict)

    def __contains__(self, event_id: str) -> bool:
        return id_digest(event_id) in self.ids

    def add(self, event_id: str, event_time: int, cap: int) -> None:
        self.add_digest(id_digest(event_id), event_time, cap)

    def add_digest(self, digest: int, event_time: int, cap: int) -> None:
        """:meth:`add` for an id whose :func:`id_digest` the caller already has."""
        self.ids[digest] = event_time
        if len(self.ids) > cap:
            # Rare (a customer with more than `cap` events in the horizon): forget the oldest.
            oldest = min(self.ids, key=self.ids.__getitem__)
            del self.ids[oldest]

    def overlap(self, other: SeenIds) -> int:
        """How many ids both remember: events applied to both (as far as both can tell)."""
        small, large = sorted((self.ids, other.ids), key=len)
        return sum(1 for d in small if d in large)

    def merge(self, other: SeenIds, cap: int) -> None:
        """Remember ``other``'s ids too; beyond ``cap`` forget the oldest, as :meth:`add`
        does, so an id applied on either side is refused here from now on."""
        for d, t in other.ids.items():
            self.ids[d] = max(t, self.ids.get(d, t))
        if len(self.ids) > cap:
            for d in sorted(self.ids, key=lambda d: (self.ids[d], d))[: len(self.ids) - cap]:
                del self.ids[d]

    def prune(self, before: int) -> None:
        """Forget ids of events strictly before ``before``."""
        stale = [d for d, t in self.ids.items() if t < before]
        for d in stale:
            del self.ids[d]

    def __len__(self) -> int:
        return len(self.ids)
