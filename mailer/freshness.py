"""Readers never go back in time: the mailer's copy of ``cdp.profiles`` keeps the newer
of two snapshots of one customer, so a replay writing beside the live run cannot rewind
it (and so cannot bring back an address or a consent the customer has since changed).

The rule, :func:`admit`, one pure function:

- **Snapshots** compare by freshness ``(event_time, revision, as_of)`` as a tuple
  (:attr:`~state.store.StoredProfile.freshness`): the incoming one replaces the stored one
  only if it is at least as fresh; equal replaces, so a redelivered snapshot is idempotent.
  A record written before ``revision`` and ``as_of`` existed takes the view's
  ``"revision"`` (else 0) and ``as_of = event_time``.
- **A tombstone always wins**, and is remembered as an *erasure mark*: the event time of
  the newest snapshot the mailer held when it came (``event_time`` of the erased profile;
  none held: no mark). After it, a snapshot brings the customer back only if its
  ``event_time`` is later than the mark: new activity after the erasure, not a replay of
  what was erased. A customer the mailer never held a snapshot of is not protected this
  way (the dataflow itself drops events dated at or before an erasure).

:class:`FreshProfileStore` applies the rule below the materializer, at
:meth:`~state.store.ProfileStore.apply`: it wraps the store, keeps the marks in the
mailer's ledger, and counts what it keeps out in ``cdpflow_mailer_stale_snapshots``.
A mark is written before the store's batch (with its offsets), so a crash between the two
re-reads the tombstone, which changes nothing the second time. Marks hold a customer id
and a time, like the dataflow's own erasure record, and are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from state.store import EmailMatch, ProfileChange, ProfileStore, SourceOffsets, StoredProfile

__all__ = ["ErasureMarks", "FreshProfileStore", "admit"]

log = logging.getLogger("cdpflow.mailer")


def admit(incoming: StoredProfile | None, stored: StoredProfile | None,
          erased_at: int | None) -> bool:  # fmt: skip
    """Whether ``incoming`` (``None``: a tombstone) may replace ``stored`` (``None``:
    no profile held), given the customer's erasure mark ``erased_at`` (ms, if any).

    >>> new, old = StoredProfile("c", event_time=20), StoredProfile("c", event_time=10)
    >>> admit(old, new, None), admit(new, old, None), admit(new, new, None)
    (False, True, True)
    >>> admit(None, new, None)  # a tombstone always wins
    True
    >>> admit(old, None, erased_at=10), admit(new, None, erased_at=10)
    (False, True)
    """
    if incoming is None:
        return True
    if stored is not None:
        return incoming.freshness >= stored.freshness
    return erased_at is None or incoming.event_time > erased_at


class ErasureMarks(Protocol):
    """Where erasure marks live (the mailer's :class:`~mailer.ledger.Ledger`)."""

    def erased_at(self, customer_id: str) -> int | None: ...

    def mark_erased(self, customer_id: str, event_time: int) -> None: ...


class FreshProfileStore:
    """A :class:`~state.store.ProfileStore` that applies only what :func:`admit` lets
    through; reads go straight to ``inner``."""

    def __init__(
        self,
        inner: ProfileStore,
        marks: ErasureMarks,
        on_stale: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self._marks = marks
        self._on_stale = on_stale

    def apply(self, changes: Sequence[ProfileChange], offsets: SourceOffsets) -> None:
        held: dict[str, StoredProfile | None] = {}  # earlier changes of this batch
        marks: dict[str, int | None] = {}
        kept: list[ProfileChange] = []
        for customer_id, incoming in changes:
            stored = held[customer_id] if customer_id in held else self._inner.get(customer_id)
            if customer_id not in marks:
                marks[customer_id] = self._marks.erased_at(customer_id)
            if not admit(incoming, stored, marks[customer_id]):
                self._on_stale()
                log.debug("older snapshot kept out of the mailer's profile store")
                continue
            if incoming is None and stored is not None:
                self._marks.mark_erased(customer_id, stored.event_time)
                marks[customer_id] = max(stored.event_time, marks[customer_id] or 0)
            held[customer_id] = incoming
            kept.append((customer_id, incoming))
        self._inner.apply(kept, offsets)

    def get(self, customer_id: str) -> StoredProfile | None:
        return self._inner.get(customer_id)

    def find_by_email(self, email: str) -> EmailMatch | None:
        return self._inner.find_by_email(email)

    def segment_members(self, segment: str, *, after: str | None, limit: int) -> list[str]:
        return self._inner.segment_members(segment, after=after, limit=limit)

    def offsets(self, topic: str) -> dict[int, int]:
        return self._inner.offsets(topic)

    def close(self) -> None:
        self._inner.close()
