"""The public profile a customer's state shows: what ``cdp.profiles`` and the profile API
carry (:func:`view`). Pure: the dataflow encodes it, the profile API serves it.

A snapshot is paid for almost per event under a Zipf load (most customers' coalescing
window holds one event), so the view is built in one dict display, and the sections
most customers leave empty (purchases, preferences, the cart) are not rebuilt: a
section whose state equals a fresh one shows the view computed once from a fresh one
(per configuration), so what it shows is still decided by its own module.
"""

from __future__ import annotations

from typing import Any

from state.cart import Cart
from state.config import ProfileConfig
from state.preferences import Preferences
from state.profile import CustomerState, as_of
from state.purchases import Purchases
from state.traits.state import Trait

__all__ = ["view"]

_NO_PURCHASES = Purchases()
_NO_PREFERENCES = Preferences()
_NO_CART = Cart()


class _Fixed:
    """What a view under one configuration reads from it, looked up once: the declared
    traits (a pydantic private attribute, slow to reach) and the empty sections' views."""

    __slots__ = ("cart", "cfg", "preferences", "purchases", "traits", "window")

    def __init__(self, cfg: ProfileConfig) -> None:
        self.cfg = cfg  # held, so its id is not reused while this is cached
        self.window = cfg.category_interest.window_ms
        self.traits: tuple[tuple[str, Trait], ...] = tuple(cfg.rules.compiled_traits.items())
        self.purchases = Purchases().view()
        self.preferences = Preferences().view()
        self.cart = Cart().view(cfg)


_FIXED: dict[int, _Fixed] = {}


def _fixed(cfg: ProfileConfig) -> _Fixed:
    f = _FIXED.get(id(cfg))
    if f is None or f.cfg is not cfg:
        if len(_FIXED) > 64:  # configurations built per call (tests): keep the cache small
            _FIXED.clear()
        f = _FIXED[id(cfg)] = _Fixed(cfg)
    return f


def view(st: CustomerState, cfg: ProfileConfig, at: int | None = None) -> dict[str, Any]:
    """The public profile: what ``cdp.profiles`` and the profile API show.

    JSON-friendly (``signup_date`` stays a ``date``), keys sorted where they are data.
    Windowed counts are those of the windows ending at ``at`` (default
    :func:`state.profile.as_of`). Read-only: an empty section's dict is shared between
    views.
    """
    f = _fixed(cfg)
    at = as_of(st) if at is None else at
    counts = st.event_counts
    attrs = st.attrs
    window = f.window
    purchases = st.purchases
    preferences = st.preferences
    cart = st.cart
    derived = st.derived
    tags = st.tags
    v = {
        "customer_id": st.customer_id,
        "key": st.key,
        "revision": st.revision,
        "attributes": {name: attrs[name][0] for name in sorted(attrs)} if attrs else {},
        "first_seen": st.first_seen,
        "last_active": st.last_active,
        "last_order_at": purchases.last_order_at,
        "event_counts": {name: counts[name] for name in sorted(counts)},
        "category_views_24h": {
            c: n
            for c, times in sorted(st.category_views.items())
            if (n := times.count_in(at, window))
        },
        **st.counters.view(at),
        "purchases": f.purchases if purchases == _NO_PURCHASES else purchases.view(),
        "engagement": {
            **st.engagement.view(),
            "page_views": counts.get("page_viewed", 0),
            "product_views": counts.get("product_viewed", 0),
        },
        "preferences": f.preferences if preferences == _NO_PREFERENCES else preferences.view(),
        "unsubscribed": preferences.unsubscribed,
        "cart": f.cart if cart == _NO_CART else cart.view(cfg),
        "tags": list(derived.tags),
        "lifecycle": derived.lifecycle,
        "segments": list(derived.segments),
        "custom_tags": {name: tags[name] for name in sorted(tags)} if tags else {},
    }
    if f.traits:
        # Every declared trait; nothing if none is (the view of a rules file without
        # traits is as it always was).
        value = st.traits.value
        v["traits"] = {name: value(tr, at) for name, tr in f.traits}
    return v
