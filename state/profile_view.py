"""The public profile a customer's state shows: what ``cdp.profiles`` and the profile API
carry (:func:`view`). Pure: the dataflow encodes it, the profile API serves it."""

from __future__ import annotations

from typing import Any

from state.config import ProfileConfig
from state.profile import CustomerState, as_of

__all__ = ["view"]


def view(st: CustomerState, cfg: ProfileConfig, at: int | None = None) -> dict[str, Any]:
    """The public profile: what ``cdp.profiles`` and the profile API show.

    JSON-friendly (``signup_date`` stays a ``date``), keys sorted where they are data.
    Windowed counts are those of the windows ending at ``at`` (default :func:`as_of`).
    """
    at = as_of(st) if at is None else at
    window = cfg.category_interest.window_ms
    counts = st.event_counts
    return {
        "customer_id": st.customer_id,
        "key": st.key,
        "revision": st.revision,
        "attributes": {name: value for name, (value, _) in sorted(st.attrs.items())},
        "first_seen": st.first_seen,
        "last_active": st.last_active,
        "last_order_at": st.purchases.last_order_at,
        "event_counts": dict(sorted(counts.items())),
        "category_views_24h": {
            c: n
            for c, times in sorted(st.category_views.items())
            if (n := times.count_in(at, window))
        },
        **st.counters.view(at),
        "purchases": st.purchases.view(),
        "engagement": {
            **st.engagement.view(),
            "page_views": counts.get("page_viewed", 0),
            "product_views": counts.get("product_viewed", 0),
        },
        "preferences": st.preferences.view(),
        "unsubscribed": st.unsubscribed,
        "cart": st.cart.view(cfg),
        "tags": list(st.derived.tags),
        "lifecycle": st.derived.lifecycle,
        "segments": list(st.derived.segments),
        "custom_tags": dict(sorted(st.tags.items())),
        **_traits_view(st, cfg, at),
    }


def _traits_view(st: CustomerState, cfg: ProfileConfig, at: int) -> dict[str, Any]:
    """``{"traits": {name: value}}`` of every declared trait; nothing if none is declared
    (the view of a rules file without traits is as it always was)."""
    declared = cfg.rules.compiled_traits
    if not declared:
        return {}
    return {"traits": {name: st.traits.value(tr, at) for name, tr in declared.items()}}
