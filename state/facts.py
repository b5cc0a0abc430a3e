"""The built-in facts rules read, each declared once: how it is read from a customer's
state, which events' folds can change it, and how time changes it.

The names and their meanings for rule authors are in :mod:`state.rules.facts` (the rules
language knows them without this machinery); this module is their implementation, and
checks at import that the two agree. What the evaluation may reuse from one evaluation
to the next (:mod:`state.evaluation_plan`) is derived from these declarations, never kept
in a table beside the fold:

- ``changed_by``: the event types whose fold in :func:`state.profile.apply` may change
  the fact (a superset); :data:`EVERY_EVENT` for what every event moves (first seen, last
  active, active days), :data:`WITH_TIMEZONE` for what any event carrying a
  ``context.timezone`` changes (the attributes).
- ``window``: a day-bucket window ``(buckets, days)``: its value also changes with time
  alone, when the window's oldest bucket leaves it (a moment the evaluation computes).
- ``timeless=False``: read at a moment in a way no deadline names (an exact 24 h window):
  never reused.
- ``retained=False``: big and rarely read (the cart's lines, every attribute): dropped
  after each evaluation, read again when needed.

A property test (``tests/state/test_facts.py``) folds random events into random states and
checks each declaration: a fact an event type does not list keeps its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from state.cart import NO_PRICE
from state.config import ProfileConfig
from state.counters import ACTIVE_DAYS, EMAIL_DAYS, ORDERS_DAYS, REVENUE_DAYS, Counters
from state.events import DAY_MS
from state.money import from_units
from state.rules import facts as documented
from state.windows import DayBuckets

if TYPE_CHECKING:
    from state.profile import CustomerState

__all__ = [
    "DECLARED",
    "EVERY_EVENT",
    "FOLDED_TYPES",
    "WITH_TIMEZONE",
    "Fact",
    "Facts",
    "signup_ms",
]

EVERY_EVENT: Final = "*"
WITH_TIMEZONE: Final = "context.timezone"

FOLDED_TYPES: Final = (
    "identify", "page_viewed", "product_viewed", "cart_item_added", "cart_item_removed",
    "checkout_started", "order_completed", "email_event", "preference_updated",
    "form_submitted", "custom",
)  # fmt: skip
"""The event types (``cdp.EventType``) :func:`state.profile.apply` knows. Another type (from
a newer producer) is taken to change every fact."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Fact:
    """One built-in fact: see the module's docstring."""

    name: str
    read: Callable[[Facts], Any]
    changed_by: frozenset[str]
    window: tuple[Callable[[Counters], DayBuckets], int] | None = None
    timeless: bool = True
    retained: bool = True


class Facts(dict[str, Any]):
    """The facts rules read, computed on first use: a rule set that never mentions revenue
    never pays for summing it. Declared traits read by name too (their value at ``at``)."""

    __slots__ = ("at", "cfg", "st")

    def __init__(self, st: CustomerState, cfg: ProfileConfig, at: int) -> None:
        super().__init__()
        self.st, self.cfg, self.at = st, cfg, at

    def __missing__(self, name: str) -> Any:
        fact = _READ.get(name)
        if fact is None:
            trait = self.cfg.rules.compiled_traits.get(name)
            if trait is None:
                raise KeyError(name)
            value = self[name] = self.st.traits.value(trait, self.at)
            return value
        value = self[name] = fact(self)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


def signup_ms(value: Any) -> int | None:
    """``signup_date`` (an ISO date, or days since the epoch) as midnight UTC in ms."""
    if isinstance(value, int):
        return value * DAY_MS
    if isinstance(value, str):
        try:
            return (date.fromisoformat(value).toordinal() - _EPOCH_ORDINAL) * DAY_MS
        except ValueError:
            return None
    if isinstance(value, date):
        return (value.toordinal() - _EPOCH_ORDINAL) * DAY_MS
    return None


def _cart_lines(f: Facts) -> dict[str, tuple[int, int]]:
    cart = f.st.cart
    return cart.current(f.cfg) if cart.pending else cart.lines


def _cart_value(f: Facts) -> float:
    return from_units(sum(q * p for q, p in _cart_lines(f).values() if p != NO_PRICE))


def _category_views(f: Facts) -> dict[str, int]:
    window = f.cfg.category_interest.window_ms
    return {c: n for c, times in f.st.category_views.items() if (n := times.count_in(f.at, window))}


def _facts(*declared: Fact) -> dict[str, Fact]:
    return {d.name: d for d in declared}


_ORDER = frozenset({"order_completed"})
_CART = frozenset({"cart_item_added", "cart_item_removed", "checkout_started", "order_completed"})
_EMAIL = frozenset({"email_event"})
_PREFERENCES = frozenset({"email_event", "preference_updated"})  # an unsubscribe is an email event
_IDENTITY = frozenset({"identify", WITH_TIMEZONE})
_EVERY = frozenset({EVERY_EVENT})

DECLARED: Final = _facts(
    Fact("orders", lambda f: f.st.purchases.orders, _ORDER),
    Fact("revenue", lambda f: from_units(f.st.purchases.revenue), _ORDER),
    Fact(
        "average_order_value",
        lambda f: (
            from_units(f.st.purchases.revenue // f.st.purchases.orders)
            if f.st.purchases.orders
            else None
        ),
        _ORDER,
    ),
    Fact(
        "orders_90d",
        lambda f: f.st.counters.orders.total(f.at, ORDERS_DAYS),
        _ORDER,
        window=(lambda c: c.orders, ORDERS_DAYS),
    ),
    Fact(
        "revenue_180d",
        lambda f: from_units(f.st.counters.revenue.total(f.at, REVENUE_DAYS)),
        _ORDER,
        window=(lambda c: c.revenue, REVENUE_DAYS),
    ),
    Fact("last_order_at", lambda f: f.st.purchases.last_order_at, _ORDER),
    Fact("first_seen", lambda f: f.st.first_seen, _EVERY),
    Fact("last_active", lambda f: f.st.last_active, _EVERY),
    Fact("signup_at", lambda f: signup_ms(f.st.attr("signup_date")), _IDENTITY),
    Fact(
        "active_days_7d",
        lambda f: f.st.counters.active.days_with_any(f.at, 7),
        _EVERY,
        window=(lambda c: c.active, min(ACTIVE_DAYS)),
    ),
    Fact(
        "active_days_30d",
        lambda f: f.st.counters.active.days_with_any(f.at, 30),
        _EVERY,
        window=(lambda c: c.active, max(ACTIVE_DAYS)),
    ),
    Fact(
        "email_engagements_7d",
        lambda f: f.st.counters.emails.total(f.at, EMAIL_DAYS),
        _EMAIL,
        window=(lambda c: c.emails, EMAIL_DAYS),
    ),
    Fact("email_opens", lambda f: f.st.engagement.email.get("opened", 0), _EMAIL),
    Fact("email_clicks", lambda f: f.st.engagement.email.get("clicked", 0), _EMAIL),
    Fact(
        "page_views", lambda f: f.st.event_counts.get("page_viewed", 0), frozenset({"page_viewed"})
    ),
    Fact("cart_items", lambda f: sum(q for q, _ in _cart_lines(f).values()), _CART),
    Fact("cart_value", _cart_value, _CART),
    Fact("cart_updated_at", lambda f: f.st.cart.updated_at if _cart_lines(f) else None, _CART),
    Fact("unsubscribed", lambda f: f.st.unsubscribed, _PREFERENCES),
    Fact("email", lambda f: f.st.attr("email"), _IDENTITY),
    Fact(
        "attributes",
        lambda f: {n: v for n, (v, _) in f.st.attrs.items()},
        _IDENTITY,
        retained=False,
    ),
    Fact(
        "preferences",
        lambda f: {k: v for k, (v, _) in f.st.preferences.values.items()},
        _PREFERENCES,
    ),
    Fact(
        "subscriptions",
        lambda f: {k: v for k, (v, _) in f.st.preferences.subscriptions.items()},
        _PREFERENCES,
        retained=False,
    ),
    Fact(
        "category_views_24h",
        _category_views,
        frozenset({"product_viewed"}),
        timeless=False,
        retained=False,
    ),
    # Not for expressions: context the triggers carry.
    Fact("cart", lambda f: f.st.cart.view(f.cfg), _CART, retained=False),
    Fact(
        "currency",
        lambda f: None if f.st.purchases.currency is None else f.st.purchases.currency[0],
        _ORDER,
    ),
)
"""Every built-in fact, by name."""

_READ: Final = {name: fact.read for name, fact in DECLARED.items()}
_CONTEXT_ONLY: Final = frozenset({"cart", "currency"})

_undeclared = set(documented.FACTS) - set(DECLARED) - {"tags", "segments", "lifecycle"}
_undocumented = set(DECLARED) - set(documented.FACTS) - _CONTEXT_ONLY
if _undeclared or _undocumented:  # pragma: no cover - a mistake in this file or that one
    raise ImportError(
        f"state.facts and state.rules.facts disagree: undeclared {sorted(_undeclared)}, "
        f"undocumented {sorted(_undocumented)}"
    )
