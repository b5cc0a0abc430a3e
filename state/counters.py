"""Event-time windowed counters beyond category views, each with bounded memory.

=====================  ==========================  =====================================
view key               window (see state.windows)  memory per customer
=====================  ==========================  =====================================
``product_views_24h``  exact, ``[t - 24 h, t]``    ``max_products`` x ``max_tracked_times``
``active_days_7d``     7 UTC days                  30 day buckets (shared with 30 d)
``active_days_30d``    30 UTC days                 (same buckets)
``orders_90d``         90 UTC days                 90 day buckets
``revenue_180d``       180 UTC days                180 day buckets
``email_engagements    7 UTC days                  7 day buckets
_7d``                  (opens + clicks)
=====================  ==========================  =====================================

Windows are read *at* a time (the customer's newest event time, or later if a clock
said so): they are the trailing windows ending then. A day counts as *active* if the
customer did anything that day (every event but email ``delivered``/``bounced``/
``other``). Only events inside the allowed lateness enter these windows; the profile
logic reports a later one once, as ``late_event``, and still folds it into the lifetime
aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from state.config import ProfileConfig
from state.events import DAY_MS
from state.money import from_units
from state.windows import DayBuckets, RecentTimes, day_window

__all__ = [
    "ACTIVE_DAYS",
    "ORDERS_DAYS",
    "PRODUCT_WINDOW_MS",
    "REVENUE_DAYS",
    "VERSIONS",
    "Counters",
    "merge",
    "record_activity",
    "record_email_engagement",
    "record_order",
    "record_product_view",
]

PRODUCT_WINDOW_MS: Final = DAY_MS
ACTIVE_DAYS: Final = (7, 30)
ORDERS_DAYS: Final = 90
REVENUE_DAYS: Final = 180
EMAIL_DAYS: Final = 7

VERSIONS: Final = (1, 1, 1, 1, 1)
"""Definition version of each counter (product views, active days, orders, revenue, email
engagements), kept
in the snapshot: bump one when its meaning or layout changes, and old state for that
counter is dropped on load instead of misread."""


_ACTIVE_KEYS = tuple((f"active_days_{d}d", d) for d in ACTIVE_DAYS)
_ORDERS_KEY = f"orders_{ORDERS_DAYS}d"
_REVENUE_KEY = f"revenue_{REVENUE_DAYS}d"
_EMAILS_KEY = f"email_engagements_{EMAIL_DAYS}d"


@dataclass(slots=True)
class Counters:
    """The windowed counters of one customer (category views live with their rule)."""

    product_views: dict[str, RecentTimes] = field(default_factory=dict)
    active: DayBuckets = field(default_factory=DayBuckets)
    """Day -> how many customer-initiated events that day."""
    orders: DayBuckets = field(default_factory=DayBuckets)
    revenue: DayBuckets = field(default_factory=DayBuckets)
    """Day -> revenue in :mod:`state.money` units."""
    emails: DayBuckets = field(default_factory=DayBuckets)
    """Day -> email opens and clicks."""

    def view(self, at: int) -> dict[str, Any]:
        """The counts of the windows ending at ``at``."""
        return {
            "product_views_24h": {
                p: n
                for p, times in sorted(self.product_views.items())
                if (n := times.count_in(at, PRODUCT_WINDOW_MS))
            },
            **{key: self.active.days_with_any(at, d) for key, d in _ACTIVE_KEYS},
            _ORDERS_KEY: self.orders.total(at, ORDERS_DAYS),
            _REVENUE_KEY: from_units(self.revenue.total(at, REVENUE_DAYS)),
            _EMAILS_KEY: self.emails.total(at, EMAIL_DAYS),
        }

    def compact(self, at: int, cfg: ProfileConfig) -> None:
        """Drop what no window ending at or after ``at`` can count, allowing for events
        up to the allowed lateness behind ``at`` in the exact windows."""
        horizon = at - PRODUCT_WINDOW_MS - cfg.allowed_lateness_ms
        for pid in list(self.product_views):
            times = self.product_views[pid]
            times.prune(horizon)
            if not times:
                del self.product_views[pid]
        self.active.prune(day_window(at, max(ACTIVE_DAYS))[0])
        self.orders.prune(day_window(at, ORDERS_DAYS)[0])
        self.revenue.prune(day_window(at, REVENUE_DAYS)[0])
        self.emails.prune(day_window(at, EMAIL_DAYS)[0])

    def next_change(self, at: int) -> int | None:
        """The first moment after ``at`` when a day window ending then loses a bucket: with
        no new event, a windowed count can only fall at such a moment.

        >>> c = Counters()
        >>> record_order(c, 0, 1, 0)
        >>> c.next_change(0) == ORDERS_DAYS * DAY_MS
        True
        """
        ends = []
        for b, days in (
            (self.active, max(ACTIVE_DAYS)),
            (self.active, min(ACTIVE_DAYS)),
            (self.orders, ORDERS_DAYS),
            (self.revenue, REVENUE_DAYS),
            (self.emails, EMAIL_DAYS),
        ):
            first = day_window(at, days)[0]
            inside = [d for d in b.buckets if d >= first]
            if inside:
                ends.append((min(inside) + days) * DAY_MS)
        return min(ends) if ends else None

    def dump(self) -> tuple[Any, ...]:
        """``(versions, product views, active days, orders, revenue, emails)``; see
        :data:`VERSIONS`."""
        return (
            VERSIONS,
            tuple(x for p, w in self.product_views.items() for x in (p, tuple(w.times))),
            self.active.dump(),
            self.orders.dump(),
            self.revenue.dump(),
            self.emails.dump(),
        )

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Counters:
        """Restore from :meth:`dump`; a counter dumped under another definition (version)
        starts empty rather than be misread."""
        versions, products, active, orders, revenue, *rest = snap
        # A dump from before a counter existed has fewer entries: that counter starts empty.
        same = [i < len(versions) and versions[i] == v for i, v in enumerate(VERSIONS)]
        emails = rest[0] if rest else ()
        return cls(
            {p: RecentTimes(list(ts)) for p, ts in zip(products[::2], products[1::2], strict=True)}
            if same[0]
            else {},
            DayBuckets.load(active if same[1] else ()),
            DayBuckets.load(orders if same[2] else ()),
            DayBuckets.load(revenue if same[3] else ()),
            DayBuckets.load(emails if same[4] else ()),
        )


def record_activity(c: Counters, t: int, now: int) -> None:
    """The customer did something at ``t``; ``now`` is their newest event time."""
    c.active.add(t, 1, max(ACTIVE_DAYS), now)


def record_order(c: Counters, t: int, revenue_units: int, now: int) -> None:
    """An order at ``t`` worth ``revenue_units``."""
    c.orders.add(t, 1, ORDERS_DAYS, now)
    c.revenue.add(t, revenue_units, REVENUE_DAYS, now)


def record_email_engagement(c: Counters, t: int, now: int) -> None:
    """An email open or click at ``t``."""
    c.emails.add(t, 1, EMAIL_DAYS, now)


def record_product_view(c: Counters, product_id: str, t: int, cfg: ProfileConfig) -> None:
    """A view of ``product_id`` at ``t``; at most ``max_products`` products are tracked
    (the one viewed least recently is forgotten first).

    >>> c, cfg = Counters(), ProfileConfig(max_products=2)
    >>> for i, p in enumerate("abac"):
    ...     record_product_view(c, p, i, cfg)
    >>> c.view(3)["product_views_24h"]
    {'a': 2, 'c': 1}
    """
    views = c.product_views
    times = views.get(product_id)
    if times is None:
        if len(views) >= cfg.max_products:
            # min over (newest view, product id): a comprehension, no call per product.
            del views[min([(w.times[-1], p) for p, w in views.items()])[1]]
        times = views[product_id] = RecentTimes()
    times.add(t, cfg.max_tracked_times)


def merge(c: Counters, other: Counters, now: int, cfg: ProfileConfig) -> None:
    """Add ``other``'s counters (another key's, disjoint events) to ``c``; ``now`` is the
    newest event time of both.

    Exact timestamps are united (the newest ``max_tracked_times`` per product, the
    ``max_products`` products viewed most recently); day buckets are summed day by day and
    cut to the window ending at ``now``: the same counts as one customer with both
    histories, read at ``now`` or later.

    >>> a, b, cfg = Counters(), Counters(), ProfileConfig()
    >>> record_order(a, 0, 5, 0); record_order(b, DAY_MS, 7, DAY_MS)
    >>> merge(a, b, DAY_MS, cfg); a.view(DAY_MS)["orders_90d"], a.revenue.total(DAY_MS, 180)
    (2, 12)
    """
    for pid, times in other.product_views.items():
        mine = c.product_views.get(pid)
        if mine is None:
            c.product_views[pid] = RecentTimes(list(times.times[-cfg.max_tracked_times :]))
        else:
            mine.merge(times, cfg.max_tracked_times)
    views = c.product_views
    while len(views) > cfg.max_products:
        # The rule of record_product_view: the product viewed least recently goes first.
        del views[min(views, key=lambda p: (views[p].times[-1] if views[p] else -1, p))]
    c.active.merge(other.active, max(ACTIVE_DAYS), now)
    c.orders.merge(other.orders, ORDERS_DAYS, now)
    c.revenue.merge(other.revenue, REVENUE_DAYS, now)
    c.emails.merge(other.emails, EMAIL_DAYS, now)
