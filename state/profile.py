"""One customer's state and :func:`apply`, the pure function that folds an event into it.

``apply(state, event, config) -> outputs`` knows nothing of Bytewax or Kafka: the
dataflow adapts it (``flows/profile_step.py``), tests call it directly.

Rules of the fold (the README's "Semantics" section says the same):

- *Idempotent*: an ``event_id`` already applied changes nothing.
- *Event time*: the customer's **watermark** is the newest event time applied. An event
  at most ``allowed_lateness_ms`` behind it is placed in its windows as if it had come
  in order; a later one updates lifetime aggregates only and is reported as
  ``late_event``; one beyond the dedupe horizon is refused (``beyond_dedupe_horizon``).
- *Attributes*: last write wins by event time (ties by value), not by arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state import category_interest
from state.config import ProfileConfig
from state.dedupe import SeenIds
from state.events import HOUR_MS, Event
from state.outputs import Output, Rejected, Trigger, stable_id
from state.windows import RecentTimes

__all__ = ["NO_TIME", "CustomerState", "apply", "compact", "excerpt", "view"]

NO_TIME = -(2**62)
"""Watermark of a customer with no event yet."""

_IDENTITY_FIELDS = ("email", "first_name", "last_name", "signup_date", "age")
_LOCATION_FIELDS = ("country", "region", "city")
_RECENT_PRODUCTS = 5


@dataclass(slots=True)
class CustomerState:
    """Everything the dataflow remembers about one key (a customer or an anonymous id)."""

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

    @property
    def customer_id(self) -> str | None:
        """The customer this state belongs to; ``None`` for an anonymous visitor."""
        return None if self.key.startswith("anon:") else self.key

    def attr(self, name: str) -> Any:
        entry = self.attrs.get(name)
        return None if entry is None else entry[0]


def apply(st: CustomerState, ev: Event, cfg: ProfileConfig) -> list[Output]:
    """Fold ``ev`` into ``st`` (in place) and return what it produced."""
    if ev.event_id in st.seen:
        return []
    t = ev.event_time
    if st.watermark != NO_TIME and t < st.watermark - cfg.dedupe_horizon_ms:
        return [
            Rejected(
                "beyond_dedupe_horizon",
                f"event time is more than {cfg.dedupe_horizon_ms} ms behind the customer's "
                "newest event; it cannot be checked for duplicates, so it was not applied",
                ev.event_id,
                t,
                applied=False,
                origin=ev.origin,
            )
        ]
    late = st.watermark != NO_TIME and t < st.watermark - cfg.allowed_lateness_ms
    st.seen.add(ev.event_id, t, cfg.max_seen_ids)
    st.watermark = max(st.watermark, t)
    st.revision += 1
    if st.watermark - st.pruned_at > HOUR_MS:
        compact(st, cfg)

    st.first_seen = t if st.first_seen is None else min(st.first_seen, t)
    st.last_active = t if st.last_active is None else max(st.last_active, t)
    st.event_counts[ev.event_type] = st.event_counts.get(ev.event_type, 0) + 1

    outputs: list[Output] = []
    if ev.event_type == "identify":
        _apply_identify(st, ev)
    elif ev.event_type == "product_viewed":
        category = (ev.payload.get("product") or {}).get("category")
        if category:
            if late:
                outputs.append(_late(ev, cfg, "category view window"))
            else:
                trigger = _category_view(st, ev, category, cfg)
                if trigger is not None:
                    outputs.append(trigger)
    if ev.context and ev.context.get("timezone"):
        _set_attr(st, "timezone", ev.context["timezone"], t)
    return outputs


def compact(st: CustomerState, cfg: ProfileConfig) -> None:
    """Drop what no future event can use: old dedupe ids and expired window entries."""
    st.pruned_at = st.watermark
    st.seen.prune(st.watermark - cfg.dedupe_horizon_ms)
    horizon = st.watermark - cfg.category_interest.window_ms - cfg.allowed_lateness_ms
    for category in list(st.category_views):
        times = st.category_views[category]
        times.prune(horizon)
        if not times:
            del st.category_views[category]
            st.viewed_products.pop(category, None)
    for scope in [s for s, anchor in st.fired.items() if anchor < horizon]:
        del st.fired[scope]


def excerpt(st: CustomerState) -> dict[str, Any]:
    """The slice of the profile a trigger carries for the email template."""
    return {
        "email": st.attr("email"),
        "first_name": st.attr("first_name"),
        "timezone": st.attr("timezone"),
        "lifecycle": None,
        "tags": [],
        "segments": [],
    }


def view(st: CustomerState, cfg: ProfileConfig) -> dict[str, Any]:
    """The public profile: what ``cdp.profiles`` and the profile API show."""
    window = cfg.category_interest.window_ms
    return {
        "customer_id": st.customer_id,
        "key": st.key,
        "attributes": {name: value for name, (value, _) in sorted(st.attrs.items())},
        "first_seen": st.first_seen,
        "last_active": st.last_active,
        "event_counts": dict(sorted(st.event_counts.items())),
        "category_views_24h": {
            c: n
            for c, times in sorted(st.category_views.items())
            if (n := times.count_in(st.watermark, window))
        },
        "revision": st.revision,
    }


def _category_view(
    st: CustomerState, ev: Event, category: str, cfg: ProfileConfig
) -> Trigger | None:
    times = category_interest.record_view(st.category_views, category, ev.event_time, cfg)
    product_id = (ev.payload.get("product") or {}).get("product_id")
    if product_id:
        _remember_product(st.viewed_products.setdefault(category, []), ev.event_time, product_id)
    customer_id = st.customer_id
    if customer_id is None:
        return None  # nobody to email yet; the views stay counted under the anonymous id
    scope = f"{category_interest.RULE}:{category}"
    last = st.fired.get(scope)
    anchor = category_interest.find_anchor(times, ev.event_time, last, cfg.category_interest)
    if anchor is None:
        return None
    st.fired[scope] = anchor
    return Trigger(
        trigger_id=stable_id(category_interest.RULE, customer_id, category, anchor),
        rule=category_interest.RULE,
        customer_id=customer_id,
        event_time=anchor,
        profile=excerpt(st),
        category=category,
        product_ids=tuple(pid for _, pid in st.viewed_products.get(category, ())),
        attributes={"views": str(times.count_in(anchor, cfg.category_interest.window_ms, last))},
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


def _apply_identify(st: CustomerState, ev: Event) -> None:
    p = ev.payload
    for name in _IDENTITY_FIELDS:
        if p.get(name) is not None:
            _set_attr(st, name, p[name], ev.event_time)
    location = p.get("location") or {}
    for name in _LOCATION_FIELDS:
        if location.get(name) is not None:
            _set_attr(st, name, location[name], ev.event_time)
    for name, value in (p.get("traits") or {}).items():
        _set_attr(st, f"trait:{name}", value, ev.event_time)


def _set_attr(st: CustomerState, name: str, value: Any, t: int) -> None:
    """Last write wins by event time; equal times fall back to the value, so arrival order
    never decides."""
    old = st.attrs.get(name)
    if old is None or (t, repr(value)) > (old[1], repr(old[0])):
        st.attrs[name] = (value, t)


def _late(ev: Event, cfg: ProfileConfig, what: str) -> Rejected:
    return Rejected(
        "late_event",
        f"more than {cfg.allowed_lateness_ms} ms behind the customer's newest event: "
        f"lifetime aggregates updated, {what} not",
        ev.event_id,
        ev.event_time,
        applied=True,
        origin=ev.origin,
    )
