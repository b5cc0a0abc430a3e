"""What applying an event produces: plain records the edges encode and route.

Ids are derived from the inputs only (rule, customer, the moment that fired), never
from a clock or a counter, so a replay of the same history yields the same ids and
consumers can dedupe on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

__all__ = [
    "CustomerMerge",
    "Erased",
    "Output",
    "ProfileChanged",
    "Rejected",
    "Resend",
    "TagChange",
    "Trigger",
    "stable_id",
]


def stable_id(*parts: object) -> str:
    """A 128-bit hex id from the parts; the same parts always give the same id.

    >>> a = stable_id("category_interest", "c1", "shoes", 0)
    >>> len(a), a == stable_id("category_interest", "c1", "shoes", 0)
    (32, True)
    >>> a == stable_id("category_interest", "c1", "shoes", 1)
    False
    """
    return sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Trigger:
    """A moment email automation may act on (``cdp.Trigger``)."""

    trigger_id: str
    rule: str
    customer_id: str
    event_time: int
    profile: dict[str, Any]
    category: str | None = None
    product_ids: tuple[str, ...] = ()
    items: tuple[dict[str, Any], ...] = ()
    amount: float | None = None
    currency: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TagChange:
    """A tag, lifecycle stage or segment membership changed (``cdp.TagChange``)."""

    change_id: str
    customer_id: str
    tag: str
    added: bool
    reason: str
    event_time: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event the logic would not (fully) apply, with the reason; it becomes a dead letter.

    ``applied`` says whether lifetime aggregates still took the event (a late event does;
    one beyond the dedupe horizon does not). ``event_id`` is empty for a failure with no
    event (a timer's); ``error_type`` is the exception type of a ``processing_error``.
    """

    reason: str
    error: str
    event_id: str
    event_time: int
    applied: bool
    origin: Any = field(default=None, compare=False)
    error_type: str = "ProfileRule"


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """The profile of ``key`` changed; carries the public view for ``cdp.profiles``.
    ``event_time`` is the customer's watermark, ``as_of`` the stream time the view was
    evaluated at (readers order snapshots by watermark, revision, then ``as_of``)."""

    key: str
    view: dict[str, Any]
    event_time: int
    as_of: int | None = None


@dataclass(frozen=True, slots=True)
class Erased:
    """The customer ``key`` was erased at ``event_time``: every place that keeps their
    profile must drop it (``cdp.profiles`` gets a tombstone)."""

    key: str
    event_time: int


@dataclass(frozen=True, slots=True)
class Resend:
    """An event for another key, written back to the events topic (keyed by
    ``event.key``): a merged customer's state on its way to the customer it joined, or an
    event of a merged-away id forwarded to that customer. ``event`` keeps its id, so the
    receiving profile applies it once however often it arrives."""

    event: Any  # state.events.Event; Any keeps this module free of an import cycle


@dataclass(frozen=True, slots=True)
class CustomerMerge:
    """Audit record of an alias (``cdp.CustomerMerge`` on ``cdp.identities``): customer
    ``previous_id`` joined ``customer_id`` (``merged``), or could not because it had
    already joined ``merged_into`` (``conflict``)."""

    merge_id: str
    previous_id: str
    customer_id: str
    outcome: str
    merged_into: str
    merged_events: int
    event_time: int


Output = Trigger | TagChange | Rejected | ProfileChanged | Erased | Resend | CustomerMerge
