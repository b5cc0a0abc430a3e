"""``category_interest``: the N-th view of one category within a trailing window.

The rule fires at an *anchor*: the time of a view whose window ``[anchor - W, anchor]``
holds at least ``threshold`` views made after the previous trigger's anchor. Views up to
an anchor are spent, so one burst of interest yields one trigger, and the next needs
``threshold`` fresh views. A view that arrives out of order (within the allowed
lateness) is inserted where it belongs and may complete a window that ends at a later,
already-seen view: the anchor is then that later view.
"""

from __future__ import annotations

from bisect import bisect_left

from state.config import CategoryInterestConfig, ProfileConfig
from state.windows import RecentTimes

__all__ = ["RULE", "find_anchor", "merge_views", "record_view"]

RULE = "category_interest"


def record_view(
    views: dict[str, RecentTimes], category: str, t: int, cfg: ProfileConfig
) -> RecentTimes:
    """Add a view of ``category`` at ``t``, keeping at most ``max_categories`` categories."""
    times = views.get(category)
    if times is None:
        if len(views) >= cfg.max_categories:
            # Forget the category viewed least recently: it is the least likely to fire.
            stalest = min(views, key=lambda c: views[c].times[-1] if views[c] else -1)
            del views[stalest]
        times = views[category] = RecentTimes()
    times.add(t, cfg.max_tracked_times)
    return times


def merge_views(
    views: dict[str, RecentTimes], other: dict[str, RecentTimes], cfg: ProfileConfig
) -> None:
    """Add another key's views (disjoint events) to ``views``: per category the newest
    ``max_tracked_times`` of both; at most ``max_categories`` categories, those viewed most
    recently (the categories :func:`record_view` would have kept; ties by name)."""
    for category, times in other.items():
        mine = views.get(category)
        if mine is None:
            views[category] = RecentTimes(list(times.times[-cfg.max_tracked_times :]))
        else:
            mine.merge(times, cfg.max_tracked_times)
    while len(views) > cfg.max_categories:
        del views[min(views, key=lambda c: (views[c].times[-1] if views[c] else -1, c))]


def find_anchor(
    times: RecentTimes, t: int, last_anchor: int | None, cfg: CategoryInterestConfig
) -> int | None:
    """The earliest view at or after ``t`` whose window now reaches the threshold.

    Only windows ending in ``[t, t + W]`` can have changed by adding ``t``.
    """
    ends = times.times
    last = t + cfg.window_ms
    for i in range(bisect_left(ends, t), len(ends)):  # the views at or after t, in order
        end = ends[i]
        if end > last:
            break
        if times.count_in(end, cfg.window_ms, after=last_anchor) >= cfg.threshold:
            return end
    return None
