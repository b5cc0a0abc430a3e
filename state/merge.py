"""Merging two customers: Segment's ``alias`` (``previousId`` A joins ``userId`` B).

:func:`merge_into` folds customer A's whole state into customer B's, in place, so that B
ends as **one customer who did all the events of both**: what B would hold had every
event of A been applied to B instead. The dataflow moves A's snapshot to B's key and
calls it there; this module only does the pure part. Every concern merges in its own
module (``merge`` in :mod:`state.counters`, :mod:`state.cart`, :mod:`state.purchases`,
:mod:`state.engagement`, :mod:`state.preferences`, :mod:`state.lww`; ``merge`` methods of
:class:`~state.windows.RecentTimes`, :class:`~state.windows.DayBuckets` and
:class:`~state.dedupe.SeenIds`), with the same bounds as applying events.

How each part merges:

- Event ids: united, so an event of either side replayed to the target later is a
  duplicate there. ``watermark``, ``clock`` and ``forgotten_to`` are the later of both
  (events that either side could no longer check for duplicates are refused).
- Attributes, traits, preferences, subscriptions, consent, currency, last order: last
  write wins by event time with the usual tie rules (withdrawing consent wins a tie).
- ``first_seen`` is the earlier, ``last_active`` the later; event counts, orders,
  revenue, category spend and email counts add up.
- Windows: exact view times are united (the newest ``max_tracked_times`` per counter,
  the ``max_categories``/``max_products`` viewed most recently); day buckets add up and
  are cut to the windows ending at the merged watermark. The recent products of each
  category are the latest distinct ones of both.
- Cart: see :func:`state.cart.merge` (the newest order of either side voids the older
  changes of both; exact while the changes are pending).
- Sessions: see :func:`state.engagement.merge` (a session both sides still remember is
  counted once).
- Trigger history: ``fired`` anchors and rule cooldowns (``derived.last_fired``) are the
  later of both per scope and rule: a view or a cooldown spent on either side stays
  spent, so the merge itself never makes the customer due for an email again.
- Not merged: the rules' verdict (``derived`` tags, lifecycle, segments) stays the
  target's until the caller evaluates the rules on the merged state, which then
  reports what changed; no trigger is derived here for moments in the past (combined
  views count towards the next view's ``category_views`` trigger). Custom ``tags``
  (no times) are united, the target's value winning a clash. ``key`` stays the target's.
- Anonymous ids (``devices``): united, the newest time of each, bounded as when applied.
- Declared traits: each kind's and window's merge (:meth:`TraitStates.merge
  <state.traits.state.TraitStates.merge>`), which equals one state that folded both
  streams within the limits; states of definitions the rules no longer declare go.
- ``revision`` grows by ``other.revision`` (the events it brings), at least by one, so
  the caller always sees that the state changed.

**Erasure belongs to the key that was erased.** An erased side holds nothing from before
its erasure (:func:`state.profile.erase` wiped it), only what happened after, which is
merged like any state: so an erased ``other`` with no later event brings nothing but its
erasure time. ``erased_at`` becomes the later of both, so an event at or before either
erasure, replayed or late and now routed to the target, stays dropped; the price is that
a genuinely new event of the target's own from before ``other``'s erasure is dropped
too. Data of the side that was not erased is kept even if older than the other side's
erasure: the merge neither brings erased data back nor erases data nobody asked to
erase (to forget the person, erase the merged customer).

Guarantees and their limits (``tests/state/test_merge.py`` checks them with hypothesis):

- *Exact* for histories each applied within the allowed lateness on its own key: the
  merged profile (:func:`state.profile_view.view` at the merged watermark or later) equals
  that of one customer who applied all events in event-time order. **The restriction**:
  an event on time for its own key may be more than ``allowed_lateness_ms`` behind the
  *other* key's newest event; one customer receiving it then would have refused it from
  its windows and cart (``late_event``), while the merge keeps it where its key placed
  it. The merge equals the customer who received every event on time.
- Cart and sessions are exact under the conditions their modules state (pending cart
  changes, or cart events on one side only; sessions both sides still remember); beyond
  them they follow the documented rule. Category spend beyond ``max_spend_categories``
  names and entries evicted by the caps may differ in *which* names are kept.
- **Overlap**: an event id applied to both sides cannot be taken out of summed counters
  (they keep no ids). :func:`overlap` counts such ids (as far as both sides still
  remember them: within the dedupe horizon and not dropped as idle); by default
  :func:`merge_into` refuses to merge then (:class:`~state.exceptions.MergeOverlapError`,
  ``target`` untouched). ``on_overlap="count"`` merges anyway, counting those events
  once per side in sums and windows; the parts that take a maximum or last write
  (times, attributes, consent, ids) are exact either way. With routing each event goes
  to one key, so there is no overlap; a replay that later sends one of A's events to B
  is refused there as a duplicate, because the ids were united.
- **Not idempotent**: merging the same ``other`` twice counts its events twice (that is
  exactly an overlap of all its ids, refused by default while they are remembered). The
  caller records which sources it has merged and merges each once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from state import cart, category_interest, counters, engagement, lww, preferences, purchases
from state.config import ProfileConfig
from state.events import NO_TIME
from state.exceptions import MergeOverlapError, StateError
from state.profile import (
    CustomerState,
    _remember_product,
    compact,
    trait_plan,
)
from state.trigger_context import keep_product_detail, remember_device

__all__ = ["OnOverlap", "merge_into", "overlap"]

OnOverlap = Literal["refuse", "count"]
"""What :func:`merge_into` does when both states applied some of the same events."""


def overlap(target: CustomerState, other: CustomerState) -> int:
    """How many event ids both states remember applying.

    Events older than a side's dedupe horizon, or from before it was compacted as idle,
    are no longer remembered and so not counted.
    """
    return target.seen.overlap(other.seen)


def merge_into(
    target: CustomerState,
    other: CustomerState,
    cfg: ProfileConfig,
    *,
    on_overlap: OnOverlap = "refuse",
) -> None:
    """Fold ``other`` (customer A) into ``target`` (customer B), in place; ``other`` is
    left as it was. See the module docstring for the rule of each part.

    Raises :class:`~state.exceptions.MergeOverlapError` before changing anything if both
    applied some of the same events and ``on_overlap`` is ``"refuse"``.

    >>> from state import Event, apply, view
    >>> cfg = ProfileConfig()
    >>> a, b = CustomerState("A"), CustomerState("B")
    >>> _ = apply(a, Event("e1", "page_viewed", 1_000, 1_000, customer_id="A"), cfg)
    >>> _ = apply(b, Event("e2", "page_viewed", 2_000, 2_000, customer_id="B"), cfg)
    >>> merge_into(b, a, cfg)
    >>> v = view(b, cfg); v["key"], v["event_counts"], v["first_seen"], v["last_active"]
    ('B', {'page_viewed': 2}, 1000, 2000)
    >>> apply(b, Event("e1", "page_viewed", 1_000, 1_000, customer_id="B"), cfg)  # replayed
    []
    """
    if target is other:
        raise StateError("a customer state cannot be merged into itself")
    shared = overlap(target, other)
    if shared and on_overlap == "refuse":
        raise MergeOverlapError(
            f"{shared} event ids were applied to both customer states; merging would "
            "count them twice"
        )
    first, other_first = target.first_seen, other.first_seen
    target.watermark = max(target.watermark, other.watermark)
    target.clock = max(target.clock, other.clock)
    target.forgotten_to = max(target.forgotten_to, other.forgotten_to)
    target.seen.merge(other.seen, cfg.max_seen_ids)

    lww.merge(target.attrs, other.attrs, cfg.max_attributes)
    target.first_seen = _pick(min, first, other_first)
    target.last_active = _pick(max, target.last_active, other.last_active)
    for kind, n in other.event_counts.items():
        target.event_counts[kind] = target.event_counts.get(kind, 0) + n

    category_interest.merge_views(target.category_views, other.category_views, cfg)
    for category, recent in other.viewed_products.items():
        mine = target.viewed_products.setdefault(category, [])
        for t, product_id in recent:
            # The very rule the profile applies to each view (latest distinct products).
            _remember_product(mine, t, product_id)
    _merge_latest(target.fired, other.fired)
    counters.merge(target.counters, other.counters, target.watermark, cfg)
    purchases.merge(target.purchases, other.purchases, cfg)
    engagement.merge(target.engagement, other.engagement, target.watermark, cfg)
    preferences.merge(target.preferences, other.preferences, cfg)
    cart.merge(
        target.cart,
        other.cart,
        cfg,
        watermark=target.watermark,
        first=first,
        other_first=other_first,
    )
    for name, value in other.tags.items():
        target.tags.setdefault(name, value)
    for anon, t in other.devices.items():
        remember_device(target.devices, anon, t)
    viewed = {p for views in target.viewed_products.values() for _, p in views}
    for pid in sorted(other.products):
        keep_product_detail(target.products, pid, other.products[pid])
    target.products = {p: d for p, d in target.products.items() if p in viewed}
    if other.traits:
        target.traits.merge(other.traits, trait_plan(cfg.rules).by_digest, target.watermark)

    _merge_latest(target.derived.last_fired, other.derived.last_fired)
    target.derived.next_known = False  # the cached deadline is the old state's
    target.erased_at = _pick(max, target.erased_at, other.erased_at)
    target.revision += max(other.revision, 1)
    if target.watermark != NO_TIME:
        compact(target, cfg)  # prune to the merged watermark: memory stays bounded


def _merge_latest(mine: dict[str, int], other: dict[str, int]) -> None:
    for name, t in other.items():
        mine[name] = max(t, mine.get(name, t))


def _pick(choose: Callable[[int, int], int], a: int | None, b: int | None) -> int | None:
    """``choose`` of the times that are known."""
    return b if a is None else a if b is None else choose(a, b)
