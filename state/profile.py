"""One customer's state and :func:`apply`, the pure function that folds an event into it.

``apply(state, event, config) -> outputs`` knows nothing of Bytewax or Kafka: the
dataflow adapts it (``flows/profile_step.py``), tests call it directly. This module is
the dispatcher; each concern folds in its own module: :mod:`state.purchases`,
:mod:`state.engagement`, :mod:`state.preferences`, :mod:`state.cart`,
:mod:`state.counters` (windows), :mod:`state.category_interest` (the first rule),
:mod:`state.traits` (the rules file's declared traits and generic triggers).

Rules of the fold (the README's "Semantics" section says the same):

- *Idempotent*: an ``event_id`` already applied changes nothing.
- *Event time*: the customer's **watermark** is the newest event time applied. An event
  at most ``allowed_lateness_ms`` behind it is placed in its windows (and the cart) as if
  it had come in order; a later one updates lifetime aggregates only and, if some
  window or the cart refused it, is reported **once** as ``late_event`` naming them; one
  beyond the dedupe horizon (or from before ids were forgotten by
  :func:`compact_idle`) is refused (``beyond_dedupe_horizon``).
- *Last write wins by event time* (ties by value, so arrival order never decides) for
  attributes, traits, preferences, subscriptions, consent, the last order.
- *Sums and counts* are order-independent (money is summed in integer units).
- Windows are read at :func:`as_of`: the watermark, or the later time a clock handed to
  :func:`compact_idle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from state import cart, category_interest, counters, engagement, lww, preferences, purchases
from state.cart import Cart
from state.config import CategoryInterestConfig, ProfileConfig
from state.counters import Counters
from state.dedupe import SeenIds, id_digest
from state.engagement import PASSIVE_EMAIL_ACTIONS, Engagement
from state.evaluation_plan import (
    CLEAN_AFTER,
    KEPT,
    NOT_RETAINED,
    STALE_AFTER_TIME,
    TIMEZONE_FACTS,
    WINDOW_LIST,
    WINDOWED,
    WINDOWS,
    EvaluationPlan,
    plan_of,
)
from state.events import DAY_MS, HOUR_MS, NO_TIME, Event
from state.facts import Facts
from state.outputs import Erased, Output, Rejected, Resend, Trigger, stable_id
from state.preferences import Preferences
from state.purchases import Purchases
from state.rules import engine
from state.rules.engine import Derived
from state.rules.model import CategoryViews, Rules
from state.traits import triggers
from state.traits.plan import TraitPlan
from state.traits.state import Trait, TraitStates
from state.trigger_context import (
    ProductDetail,
    describe_product,
    remember_device,
    viewed_items,
)
from state.windows import DayBuckets, RecentTimes, day_window

__all__ = [
    "ERASE_EVENT",
    "ERASE_SOURCES",
    "NO_TIME",
    "CustomerState",
    "advance",
    "apply",
    "as_of",
    "compact",
    "compact_idle",
    "erase",
    "excerpt",
    "facts_of",
    "is_erasure",
    "is_idle",
    "next_deadline",
    "reevaluate",
]

_IDENTITY_FIELDS = ("email", "first_name", "last_name", "signup_date", "age")
_LOCATION_FIELDS = ("country", "region", "city")
_RECENT_PRODUCTS = 5
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(slots=True)
class CustomerState:
    """Everything the dataflow remembers about one key (a customer or an anonymous id).

    ``revision`` counts applied events: it changes exactly when an event changed the
    state. ``clock`` is the latest time handed to :func:`compact_idle` and
    ``forgotten_to`` the watermark when dedupe ids were last dropped for idleness.
    """

    key: str
    watermark: int = NO_TIME
    revision: int = 0
    seen: SeenIds = field(default_factory=SeenIds)
    pruned_at: int = NO_TIME
    attrs: dict[str, tuple[Any, int]] = field(default_factory=dict)
    first_seen: int | None = None
    last_active: int | None = None
    event_counts: dict[str, int] = field(default_factory=dict)
    category_views: dict[str, RecentTimes] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    viewed_products: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    clock: int = NO_TIME
    forgotten_to: int = NO_TIME
    counters: Counters = field(default_factory=Counters)
    purchases: Purchases = field(default_factory=Purchases)
    engagement: Engagement = field(default_factory=Engagement)
    preferences: Preferences = field(default_factory=Preferences)
    cart: Cart = field(default_factory=Cart)
    tags: dict[str, str] = field(default_factory=dict)
    """Custom tags: a free-form map kept for integrations (``custom_tags`` in the view)."""
    derived: Derived = field(default_factory=Derived)
    """The rules' last verdict (tags, lifecycle, segments) and trigger cooldowns."""
    erased_at: int | None = None
    """When the customer was erased: events at or before it are dropped, never applied."""
    merged_into: str | None = None
    """The customer this id joined by an alias (:mod:`state.alias`): its state moved
    there, and its later events are forwarded there."""
    devices: dict[str, int] = field(default_factory=dict)
    """Anonymous ids (browser cookies, app installs) seen on the customer's events, with
    the newest event time of each; at most :data:`MAX_DEVICES`. An erasure unlinks them."""
    traits: TraitStates = field(default_factory=TraitStates)
    """The declared traits' states (:mod:`state.traits`), by their definitions' hashes."""
    products: dict[str, ProductDetail] = field(default_factory=dict)
    """Product id -> its newest description from the views, for the products a category
    trigger would carry (those in ``viewed_products``) whose views named or priced them."""

    @property
    def customer_id(self) -> str | None:
        """The customer this state belongs to; ``None`` for an anonymous visitor."""
        return None if self.key.startswith("anon:") else self.key

    @property
    def unsubscribed(self) -> bool:
        """Withdrew consent to marketing email."""
        return self.preferences.unsubscribed

    def attr(self, name: str) -> Any:
        entry = self.attrs.get(name)
        return None if entry is None else entry[0]


def as_of(st: CustomerState) -> int:
    """The time windows are read at: the watermark, or a later clock from
    :func:`compact_idle`."""
    return max(st.watermark, st.clock)


def apply(st: CustomerState, ev: Event, cfg: ProfileConfig) -> list[Output]:
    """Fold ``ev`` into ``st`` (in place) and return what it produced."""
    if st.erased_at is not None and ev.event_time <= st.erased_at:
        return []  # erased: a late or replayed event must not bring the profile back
    if is_erasure(ev):
        return erase(st, ev.event_time)
    digest = id_digest(ev.event_id)
    if digest in st.seen.ids:
        return []
    t = ev.event_time
    if ev.anonymous_id and st.customer_id is not None:
        remember_device(st.devices, ev.anonymous_id, t)
    if st.watermark != NO_TIME and (
        t < st.watermark - cfg.dedupe_horizon_ms or t <= st.forgotten_to
    ):
        return [
            Rejected(
                "beyond_dedupe_horizon",
                f"event time is more than {cfg.dedupe_horizon_ms} ms behind the customer's "
                "newest event, or before their event ids were dropped as idle; it cannot be "
                "checked for duplicates, so it was not applied",
                ev.event_id,
                t,
                applied=False,
                origin=ev.origin,
            )
        ]
    late = st.watermark != NO_TIME and t < st.watermark - cfg.allowed_lateness_ms
    outputs: list[Output] = []
    if st.watermark != NO_TIME and t > as_of(st):
        due = next_deadline(st, cfg)
        if due is not None and due < t:
            # Moments between the last event and this one happen first, as a timer would
            # have made them happen live: the result does not depend on whether one fired.
            outputs += advance(st, cfg, t - 1)
    st.seen.add_digest(digest, t, cfg.max_seen_ids)
    st.watermark = max(st.watermark, t)
    st.revision += 1
    if as_of(st) - st.pruned_at > HOUR_MS:
        compact(st, cfg)

    st.first_seen = t if st.first_seen is None else min(st.first_seen, t)
    st.event_counts[ev.event_type] = st.event_counts.get(ev.event_type, 0) + 1
    p = ev.payload
    refused: list[str] = []
    kind = ev.event_type
    action = engagement.email_action(p) if kind == "email_event" else None
    if action not in PASSIVE_EMAIL_ACTIONS:
        st.last_active = t if st.last_active is None else max(st.last_active, t)
        if late:
            refused.append("active days")
        else:
            counters.record_activity(st.counters, t, st.watermark)

    if kind == "identify":
        _apply_identify(st, ev, cfg)
    elif kind == "product_viewed":
        outputs.extend(_product_view(st, ev, late, refused, cfg))
    elif kind == "page_viewed":
        _session(st, ev, cfg)
    elif kind == "order_completed":
        units = purchases.fold_order(st.purchases, p, t, cfg)
        if late:
            refused += ["orders", "revenue", "cart"]
        else:
            counters.record_order(st.counters, t, units, st.watermark)
            cart.order(st.cart, t)
    elif kind in ("cart_item_added", "cart_item_removed"):
        if late:
            refused.append("cart")
        else:
            removed = kind == "cart_item_removed"
            cart.change(st.cart, t, p.get("item") or {}, removed, st.watermark, cfg)
    elif kind == "checkout_started":
        if late:
            refused.append("cart")
        else:
            cart.checkout(st.cart, t)
    elif action is not None:
        engagement.fold_email(st.engagement, action, t)
        if action in ("opened", "clicked"):
            if late:
                refused.append("email engagements")
            else:
                counters.record_email_engagement(st.counters, t, st.watermark)
        if action == "unsubscribed":
            preferences.set_consent(st.preferences, False, t)
    elif kind == "preference_updated":
        preferences.fold_preferences(st.preferences, p, t, cfg)
    if ev.context and ev.context.get("timezone"):
        _set_attr(st, "timezone", ev.context["timezone"], t, cfg)
    plan = trait_plan(cfg.rules)
    if plan.active:  # an event no trait or event trigger lists costs two lookups
        folds = plan.for_event(ev)
        if folds or plan.event_triggers:
            outputs += triggers.fold_traits(st, ev, cfg.rules, plan, folds, late, refused)
    if refused:
        outputs.append(_late(ev, cfg, refused))
    outputs += _evaluate(st, cfg, as_of(st), "event", ev)
    return outputs


ERASE_EVENT = "erase"
"""The name of the custom event that erases a customer (``cdpflow forget``)."""


DEVICE_ERASURE_SOURCE = "cdpflow erasure"
"""The ``source`` of an anonymous id's erasure that an erased customer's state sent."""

ERASE_SOURCES = frozenset({"cdpflow forget", "profile API", DEVICE_ERASURE_SOURCE})
"""The ``source`` of a genuine erasure (``cdpflow forget``, the profile API's erasure
endpoint): the collector never writes these, so an ``erase`` custom event sent through the
tracking API or a webhook is an ordinary event, not an erasure."""


def is_erasure(ev: Event) -> bool:
    return (
        ev.event_type == "custom"
        and ev.source in ERASE_SOURCES
        and ev.payload.get("name") == ERASE_EVENT
    )


def erase(st: CustomerState, at: int) -> list[Output]:
    """Forget everything about the customer; remember only that (and when) they were erased,
    so that events from before then are dropped wherever they come from.

    Each anonymous id the customer used is erased too: an erasure of that id goes back to
    the events topic (a :class:`~state.outputs.Resend`), where the identity router drops
    its link for good and erases the visitor's anonymous profile, so the browser's cookie
    never brings the customer back."""
    key, devices = st.key, sorted(st.devices)
    fresh = CustomerState(key)
    for name in CustomerState.__slots__:
        setattr(st, name, getattr(fresh, name))
    st.erased_at = at
    out: list[Output] = [Erased(key, at)]
    for anon in devices:
        out.append(
            Resend(
                Event(
                    event_id=stable_id("erase-device", key, anon, at),
                    event_type="custom",
                    event_time=at,
                    received_at=at,
                    anonymous_id=anon,
                    source=DEVICE_ERASURE_SOURCE,
                    payload={"name": ERASE_EVENT, "properties": {}},
                )
            )
        )
    return out


def reevaluate(st: CustomerState, cfg: ProfileConfig, cause: str) -> list[Output]:
    """Evaluate every rule afresh at the state's time, trusting nothing cached: for a
    state changed wholesale (a merge of two customers, :mod:`state.alias`)."""
    st.derived.memo = None
    return _evaluate(st, cfg, as_of(st), cause)


def advance(st: CustomerState, cfg: ProfileConfig, until: int) -> list[Output]:
    """Evaluate the rules at every deadline up to ``until`` (inclusive), in order.

    The clock is the caller's: stream time from a timer, or the time of the next event
    when one arrives first. Each evaluation happens *at* its deadline, so ids and reasons
    do not depend on when the caller got round to it.
    """
    out: list[Output] = []
    for _ in range(1_000):  # bounded: each step moves strictly forward in time
        deadline = next_deadline(st, cfg)
        if deadline is None or deadline > until:
            break
        st.clock = max(st.clock, deadline)
        out += _evaluate(st, cfg, deadline, "timer")
    return out


def next_deadline(st: CustomerState, cfg: ProfileConfig) -> int | None:
    """The next moment a rule's verdict can change for ``st`` with no new event.

    Cached in ``st.derived`` after every evaluation (it is derived, not snapshotted).
    """
    if st.watermark == NO_TIME:
        return None
    d = st.derived
    if not d.next_known:
        at = as_of(st)
        d.next_at = _deadline(st, cfg, facts_of(st, cfg, at), at)
        d.next_known = True
    return d.next_at


def _evaluate(
    st: CustomerState, cfg: ProfileConfig, at: int, cause: str, ev: Event | None = None
) -> list[Output]:
    """Evaluate the rules at ``at``; ``ev`` is the event just applied, if that is why.

    The previous evaluation's facts and verdicts (``st.derived.memo``) are reused for
    what cannot have changed since: see :func:`_unchanged`.
    """
    rules = cfg.rules
    derived = st.derived
    memo = derived.memo
    found = None if memo is None else _unchanged(st, memo, cfg, at, ev)
    if found is None:
        facts = Facts(st, cfg, at)
        memo = derived.memo = _Memo(cfg, at, st.revision, facts, plan_of(rules))
        clean = None
    else:
        clean, dirty = found
        facts = memo.facts  # the last evaluation's, less what may have changed since
        facts.at = at
        pop = facts.pop
        for name in dirty:
            pop(name, None)
    plan = memo.plan
    reads = plan.trait_reads
    if reads and clean is not None:
        clean = _clean_traits(st, memo, reads, clean, at, ev)
    try:
        out = engine.evaluate(rules, st, facts, at, cause, memo.verdicts, clean)
    except BaseException:
        derived.memo = None  # half updated: trust nothing of it
        raise
    decay = None
    if plan.reads_windows:
        ends = memo.window_ends
        fresh = clean is None or len(ends) < len(WINDOWS)
        moved = False
        counters = st.counters
        for name, counter, days in WINDOW_LIST:
            if clean is None or fresh or name not in clean:
                ends[name] = _window_end(counter(counters), days, at)
                moved = True
        if moved:  # as st.counters.next_change(at): the first moment a windowed count falls
            known = [t for t in ends.values() if t is not None]
            memo.decay = min(known) if known else None
        decay = memo.decay
    if reads:
        ends = memo.trait_ends
        for name, tr in reads.items():
            if clean is None or name not in clean:
                ends[name] = st.traits.next_change(tr, at)
        known = [t for t in ends.values() if t is not None]
        if known:
            decay = min(known) if decay is None else min(decay, *known)
    pop = facts.pop
    for name in NOT_RETAINED:  # memory: what is never reused, or big and cheap to redo
        pop(name, None)
    memo.at, memo.revision = at, st.revision
    derived.next_at = engine.next_deadline(rules, facts, at, decay)
    derived.next_known = True
    return out


def _deadline(st: CustomerState, cfg: ProfileConfig, facts: Facts, at: int) -> int | None:
    decay = st.counters.next_change(at) if plan_of(cfg.rules).reads_windows else None
    for tr in plan_of(cfg.rules).trait_reads.values():
        t = st.traits.next_change(tr, at)
        if t is not None and (decay is None or t < decay):
            decay = t
    return engine.next_deadline(cfg.rules, facts, at, decay)


def trait_plan(rules: Rules) -> TraitPlan:
    """Which declared traits each event type folds (:mod:`state.traits.plan`)."""
    return plan_of(rules).traits


def _clean_traits(
    st: CustomerState,
    memo: _Memo,
    reads: Mapping[str, Trait],
    clean: frozenset[str],
    at: int,
    ev: Event | None,
) -> frozenset[str]:
    """``clean`` with the traits ``memo`` still holds the values of: a trait changes
    only when an event its plan lists is applied (the one more revision, ``ev``) or, for
    a windowed trait, at its next change (``memo.trait_ends``). The others are dropped
    from ``memo.facts`` to be read again."""
    changed: tuple[Trait, ...] = ()
    if ev is not None and st.revision != memo.revision:
        changed = memo.plan.traits.for_event(ev)
    ends = memo.trait_ends
    kept = []
    pop = memo.facts.pop
    for name, tr in reads.items():
        end = ends.get(name, False)
        if tr in changed or end is False or (end is not None and at >= end):
            pop(name, None)
        else:
            kept.append(name)
    return clean | frozenset(kept) if kept else clean


@dataclass(slots=True)
class _Memo:
    """What the last evaluation found (in ``st.derived.memo``; never dumped).

    ``facts``: the facts it read, at ``at``, with the ``revision`` of the state then;
    ``verdicts``: see :data:`engine.Verdicts`; ``window_ends``: each windowed
    fact keeps its value before this moment (``None``: for ever) unless an event changes
    its counter; ``decay``: the first of them.
    """

    cfg: ProfileConfig
    at: int
    revision: int
    facts: Facts
    plan: EvaluationPlan
    """``cfg.rules``' plan, looked up once per memo, not per evaluation."""
    verdicts: engine.Verdicts = field(default_factory=dict)
    window_ends: dict[str, int | None] = field(default_factory=dict)
    decay: int | None = None
    trait_ends: dict[str, int | None] = field(default_factory=dict)
    """Declared trait read by a rule -> when its value can next change with no event."""


def _unchanged(
    st: CustomerState, memo: _Memo, cfg: ProfileConfig, at: int, ev: Event | None
) -> tuple[frozenset[str], frozenset[str]] | None:
    """The facts that still have the values ``memo`` holds, and those that may not (to
    drop from it), or ``None`` if unknown.

    Known only when nothing happened since but time passing (the same ``revision``), or
    exactly one event, ``ev`` (one more): then every fact but those its type can touch
    (:data:`TOUCHES`). Anything else that changes the state (a merge, a restore,
    erasure) or another configuration makes the next evaluation start afresh.
    Facts read at a time: windowed counts keep their values until their
    ``memo.window_ends`` (their counter's next change); other time-dependent facts are
    never reused.

    A compaction (:func:`compact`, also from :func:`compact_idle`) changes no kept fact,
    so it does not count: it drops dedupe ids, session ids, cooldowns and category views
    (none of them a kept fact), day buckets before every window ending at or after the
    evaluation (a windowed count that loses one has passed its ``window_ends`` already,
    and is recomputed), and settles cart changes (the cart with its pending changes is
    the same). Most customers' events are more than an hour apart, and each compacts.
    """
    if memo.cfg is not cfg or memo.facts.st is not st or at < memo.at:
        return None
    if st.revision == memo.revision:
        clean, dirty = KEPT, STALE_AFTER_TIME
    elif st.revision == memo.revision + 1 and ev is not None:
        found = CLEAN_AFTER.get(ev.event_type)
        if found is None:
            return None
        clean, dirty = found
        if ev.context and ev.context.get("timezone"):
            clean, dirty = clean - TIMEZONE_FACTS, dirty | TIMEZONE_FACTS
    else:
        return None
    ends = memo.window_ends
    if len(ends) < len(WINDOWS):  # not computed: the rules read no windowed fact
        return clean - WINDOWED, dirty | WINDOWED
    if memo.decay is not None and at >= memo.decay:
        expired = frozenset(n for n, end in ends.items() if end is not None and at >= end)
        return clean - expired, dirty | expired
    return clean, dirty


def _window_end(buckets: DayBuckets, days: int, at: int) -> int | None:
    """When the ``days``-day window of ``buckets`` ending at ``at`` or later first loses a
    bucket (its count can change with no event), as in :meth:`Counters.next_change`."""
    first = day_window(at, days)[0]
    inside = [d for d in buckets.buckets if d >= first]
    return (min(inside) + days) * DAY_MS if inside else None


def facts_of(st: CustomerState, cfg: ProfileConfig, at: int) -> Facts:
    """The facts of ``st`` with windows read at ``at``."""
    return Facts(st, cfg, at)


def compact(st: CustomerState, cfg: ProfileConfig) -> None:
    """Drop what no future event can use: old dedupe ids, expired window entries and
    buckets, forgotten sessions; settle cart changes no order can void any more."""
    at = as_of(st)
    st.pruned_at = at
    st.seen.prune(st.watermark - cfg.dedupe_horizon_ms)
    horizon = at - cfg.category_window_ms - cfg.allowed_lateness_ms
    for category in list(st.category_views):
        times = st.category_views[category]
        times.prune(horizon)
        if not times:
            del st.category_views[category]
            st.viewed_products.pop(category, None)
    for scope in [s for s, anchor in st.fired.items() if anchor < horizon]:
        del st.fired[scope]
    _prune_cooldowns(st.derived, cfg.rules, at)
    st.counters.compact(at, cfg)
    st.engagement.prune(st.watermark - cfg.session_memory_ms)
    st.cart.settle(st.watermark - cfg.allowed_lateness_ms, cfg)
    if st.traits:
        st.traits.expire(trait_plan(cfg.rules).by_digest, at)


def _prune_cooldowns(derived: Derived, rules: Rules, at: int) -> None:
    for rule, fired_at in list(derived.last_fired.items()):
        trig = rules.triggers.get(rule)
        if trig is None or at - fired_at >= trig.cooldown:
            del derived.last_fired[rule]


def is_idle(st: CustomerState, now_ms: int, cfg: ProfileConfig) -> bool:
    """Whether the customer's newest event is more than ``idle_ttl_ms`` before ``now_ms``."""
    return st.watermark != NO_TIME and now_ms - st.watermark > cfg.idle_ttl_ms


def compact_idle(st: CustomerState, now_ms: int, cfg: ProfileConfig) -> bool:
    """Shrink the state of a customer idle past ``idle_ttl_ms``; ``False`` if not idle.

    ``now_ms`` is the caller's clock: wall-clock time when live, stream (event) time
    when replaying. An idle customer loses every dedupe id (an event at or before the
    current watermark is refused from then on as ``beyond_dedupe_horizon``, so no event
    can be counted twice), the remembered session ids, and every window entry and day
    bucket that no window ending at ``now_ms`` counts; windows are read at ``now_ms``
    from then on. Lifetime aggregates, attributes, preferences and the cart stay.
    ``revision`` does not change: no event was applied.
    """
    if not is_idle(st, now_ms, cfg) or st.forgotten_to == st.watermark:
        return False  # not idle, or already compacted since the last event
    st.clock = max(st.clock, now_ms)
    st.derived.next_known = False
    st.seen.ids.clear()
    st.forgotten_to = st.watermark
    st.engagement.recent_sessions.clear()
    compact(st, cfg)
    return True


def excerpt(st: CustomerState) -> dict[str, Any]:
    """The slice of the profile a trigger carries for the email template."""
    return {
        "email": st.attr("email"),
        "first_name": st.attr("first_name"),
        "timezone": st.attr("timezone"),
        "lifecycle": st.derived.lifecycle,
        "tags": list(st.derived.tags),
        "segments": list(st.derived.segments),
    }


def _product_view(
    st: CustomerState, ev: Event, late: bool, refused: list[str], cfg: ProfileConfig
) -> list[Output]:
    product = ev.payload.get("product") or {}
    category, product_id = product.get("category"), product.get("product_id")
    _session(st, ev, cfg)
    if late:
        if category:
            refused.append("category views")
        if product_id:
            refused.append("product views")
        return []
    if product_id:
        counters.record_product_view(st.counters, product_id, ev.event_time, cfg)
    if category:
        return _category_view(st, ev, category, product_id, cfg)
    return []


def _session(st: CustomerState, ev: Event, cfg: ProfileConfig) -> None:
    session_id = ev.payload.get("session_id")
    if session_id:
        engagement.fold_session(st.engagement, session_id, ev.event_time, st.watermark, cfg)


def _category_view(
    st: CustomerState, ev: Event, category: str, product_id: str | None, cfg: ProfileConfig
) -> list[Output]:
    times = category_interest.record_view(st.category_views, category, ev.event_time, cfg)
    if product_id:
        _remember_product(st.viewed_products.setdefault(category, []), ev.event_time, product_id)
        describe_product(st.products, st.viewed_products, str(product_id),
                         ev.payload.get("product") or {}, ev.event_time)  # fmt: skip
    customer_id = st.customer_id
    if customer_id is None:
        return []  # nobody to email yet; the views stay counted under the anonymous id
    out: list[Output] = []
    for rule, trig, spec in _category_rules(cfg.rules):
        scope = f"{rule}:{category}"
        last = st.fired.get(scope)
        anchor = category_interest.find_anchor(times, ev.event_time, last, spec)
        if anchor is None:
            continue
        # The views are spent whether or not consent and cooldown let a trigger out.
        st.fired[scope] = anchor
        if st.unsubscribed or not engine.cooled_down(st, rule, trig.cooldown, anchor):
            continue
        st.derived.last_fired[rule] = anchor
        out.append(Trigger(
            trigger_id=stable_id(rule, customer_id, category, anchor),
            rule=rule,
            customer_id=customer_id,
            event_time=anchor,
            profile=excerpt(st),
            category=category,
            product_ids=(pids := tuple(pid for _, pid in st.viewed_products.get(category, ()))),
            items=viewed_items(st.products, pids, category),
            attributes={"views": str(times.count_in(anchor, trig.window, last)),
                        **(triggers.carried(st, cfg.rules, trig.traits, anchor)
                           if trig.traits else {})},
        ))  # fmt: skip
    return out


_CategoryRules = tuple[tuple[str, CategoryViews, CategoryInterestConfig], ...]


@engine.once_per_rules
def _category_rules(rules: Rules) -> _CategoryRules:
    """The ``category_views`` triggers of ``rules`` with their window specs, in file order."""
    return tuple(
        (rule, trig, CategoryInterestConfig(trig.threshold, trig.window))
        for rule, trig in rules.triggers.items()
        if isinstance(trig, CategoryViews)
    )


def _remember_product(recent: list[tuple[int, str]], t: int, product_id: str) -> None:
    """Keep the latest views of distinct products, newest last, by event time."""
    for i, (_, pid) in enumerate(recent):
        if pid == product_id:
            if recent[i][0] >= t:
                return
            del recent[i]
            break
    recent.append((t, product_id))
    recent.sort()
    del recent[:-_RECENT_PRODUCTS]


def _apply_identify(st: CustomerState, ev: Event, cfg: ProfileConfig) -> None:
    p = ev.payload
    for name in _IDENTITY_FIELDS:
        if p.get(name) is not None:
            _set_attr(st, name, p[name], ev.event_time, cfg)
    location = p.get("location") or {}
    for name in _LOCATION_FIELDS:
        if location.get(name) is not None:
            _set_attr(st, name, location[name], ev.event_time, cfg)
    for name, value in (p.get("traits") or {}).items():
        _set_attr(st, f"trait:{name}", value, ev.event_time, cfg)


def _set_attr(st: CustomerState, name: str, value: Any, t: int, cfg: ProfileConfig) -> None:
    """Last write wins by event time; equal times fall back to the value, so arrival order
    never decides. At most ``max_attributes`` names."""
    lww.put(st.attrs, name, value, t, cfg.max_attributes)


def _late(ev: Event, cfg: ProfileConfig, refused: list[str]) -> Rejected:
    return Rejected(
        "late_event",
        f"more than {cfg.allowed_lateness_ms} ms behind the customer's newest event: "
        f"lifetime aggregates updated, not counted in {', '.join(refused)}",
        ev.event_id,
        ev.event_time,
        applied=True,
        origin=ev.origin,
    )
