"""Tunable bounds of the profile logic, with the defaults the README documents."""

from __future__ import annotations

from dataclasses import dataclass

from state.events import DAY_MS, HOUR_MS

__all__ = ["CategoryInterestConfig", "ProfileConfig"]


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
    - ``max_seen_ids``: at most this many remembered ids per customer.
    - ``max_tracked_times``: exact timestamps kept per windowed counter (counts saturate).
    - ``max_categories``: categories tracked per customer (least recently viewed dropped).
    """

    allowed_lateness_ms: int = HOUR_MS
    dedupe_horizon_ms: int = 7 * DAY_MS
    max_seen_ids: int = 20_000
    max_tracked_times: int = 32
    max_categories: int = 64
    category_interest: CategoryInterestConfig = CategoryInterestConfig()
