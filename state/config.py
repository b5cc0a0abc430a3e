"""Tunable bounds of the profile logic, with the defaults the README documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from state.events import DAY_MS, HOUR_MS
from state.rules.model import CategoryViews, Rules, load_rules

__all__ = ["CategoryInterestConfig", "ProfileConfig", "default_rules"]


@cache
def default_rules() -> Rules:
    """The shipped rules, parsed once per process."""
    return load_rules()


@dataclass(frozen=True, slots=True)
class CategoryInterestConfig:
    """``category_interest``: ``threshold`` views of one category within ``window_ms``."""

    threshold: int = 3
    window_ms: int = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """Bounds that keep each customer's state small and its answers exact.

    - ``allowed_lateness_ms``: an event at most this far behind the customer's newest
      event time is placed in its windows; a later one only updates lifetime aggregates
      and is recorded as ``late_event``.
    - ``dedupe_horizon_ms``: event ids are remembered this long (event time); an event
      further behind than this is refused as ``beyond_dedupe_horizon``, because applying
      it could count it twice.
    - ``idle_ttl_ms``: a customer with no event for this long (measured by the clock
      handed to :func:`state.compact_idle`) loses their dedupe ids and expired window
      buckets; the lifetime profile is kept. Default 30 days.
    - ``max_seen_ids``: at most this many remembered ids per customer.
    - ``max_tracked_times``: exact timestamps kept per windowed counter (counts saturate).
    - ``max_categories``: categories tracked for 24-hour views (least recently viewed
      dropped); ``max_products``: the same for products.
    - ``max_spend_categories``: categories in the lifetime spend table; spend in further
      categories is added to ``"(other)"``.
    - ``max_attributes``, ``max_preferences``: identity attributes and traits; preference
      keys and topic subscriptions (each); beyond it the key written longest ago goes.
    - ``session_memory_ms``, ``max_sessions``: how long and how many recent session ids
      are remembered to count distinct sessions.
    - ``max_cart_items``: distinct products in the current cart; ``max_cart_changes``:
      cart changes kept unsettled (in event-time order) within the allowed lateness.
    """

    allowed_lateness_ms: int = HOUR_MS
    dedupe_horizon_ms: int = 7 * DAY_MS
    idle_ttl_ms: int = 30 * DAY_MS
    max_seen_ids: int = 20_000
    max_tracked_times: int = 32
    max_categories: int = 64
    max_products: int = 32
    max_spend_categories: int = 32
    max_attributes: int = 64
    max_preferences: int = 64
    session_memory_ms: int = DAY_MS
    max_sessions: int = 32
    max_cart_items: int = 50
    max_cart_changes: int = 64
    category_interest: CategoryInterestConfig = CategoryInterestConfig()
    """Tracking of category views: ``window_ms`` is how long views are kept for
    ``category_views_24h``; the triggers' own thresholds and windows come from ``rules``."""
    rules: Rules = field(default_factory=default_rules)
    """Tags, lifecycle, segments and triggers (``state/rules/default.toml`` by default)."""

    @property
    def category_window_ms(self) -> int:
        """Views are kept long enough for the widest ``category_views`` rule."""
        windows = [t.window for t in self.rules.triggers.values() if isinstance(t, CategoryViews)]
        return max([self.category_interest.window_ms, *windows])
