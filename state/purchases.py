"""Purchase history, folded from ``order_completed`` (``avro/cdp.OrderCompleted.avsc``).

Lifetime figures (every applied order counts, late or not):

- ``orders``: how many ``order_completed`` events (the event id is the idempotency key).
- ``revenue``: the sum of the orders' ``revenue`` (after discount), in :mod:`state.money`
  units, so the sum is exact in any order; average order value = revenue / orders.
- ``last_order``: ``(event time, order_id)`` of the newest order; equal times are decided
  by the order id.
- ``currency``: the newest order's currency (last write wins by event time); amounts are
  not converted.
- ``category_spend``: category -> sum of ``price * quantity`` over line items that have a
  category and a price (before the order discount). At most ``max_spend_categories``
  keys: once ``max_spend_categories - 1`` categories are named, spend in any new one is
  added to ``"(other)"``, so the total is kept.

The 90- and 180-day windows over orders live in :mod:`state.counters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from state import lww
from state.config import ProfileConfig
from state.money import from_units, to_units

__all__ = ["OTHER", "Purchases", "fold_order", "merge"]

OTHER: Final = "(other)"


@dataclass(slots=True)
class Purchases:
    """Lifetime purchase aggregates of one customer."""

    orders: int = 0
    revenue: int = 0
    last_order: tuple[int, str] | None = None
    currency: tuple[str, int] | None = None
    category_spend: dict[str, int] = field(default_factory=dict)

    @property
    def last_order_at(self) -> int | None:
        return None if self.last_order is None else self.last_order[0]

    def view(self) -> dict[str, Any]:
        """JSON-friendly; money as floats in the currency's unit."""
        return {
            "order_count": self.orders,
            "lifetime_revenue": from_units(self.revenue),
            "average_order_value": (
                from_units(self.revenue // self.orders) if self.orders else None
            ),
            "currency": None if self.currency is None else self.currency[0],
            "last_order_at": self.last_order_at,
            "last_order_id": None if self.last_order is None else self.last_order[1],
            "category_spend": {c: from_units(u) for c, u in sorted(self.category_spend.items())},
        }

    def dump(self) -> tuple[Any, ...]:
        return (
            self.orders,
            self.revenue,
            self.last_order,
            self.currency,
            tuple(x for c in sorted(self.category_spend) for x in (c, self.category_spend[c])),
        )

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Purchases:
        orders, revenue, last_order, currency, spend = snap
        return cls(
            orders,
            revenue,
            None if last_order is None else (last_order[0], last_order[1]),
            None if currency is None else (currency[0], currency[1]),
            dict(zip(spend[::2], spend[1::2], strict=True)),
        )


def fold_order(p: Purchases, payload: dict[str, Any], t: int, cfg: ProfileConfig) -> int:
    """Add one order at event time ``t``; returns its revenue in units.

    >>> p = Purchases()
    >>> fold_order(p, {"order_id": "o1", "revenue": 30.5, "items": [
    ...     {"product": {"product_id": "a", "category": "shoes", "price": 20.0},
    ...      "quantity": 2}]}, 10, ProfileConfig())
    305000
    >>> p.view()["category_spend"], p.view()["average_order_value"]
    ({'shoes': 40.0}, 30.5)
    """
    units = to_units(payload.get("revenue"))
    p.orders += 1
    p.revenue += units
    order_id = str(payload.get("order_id") or "")
    if p.last_order is None or (t, order_id) > p.last_order:
        p.last_order = (t, order_id)
    currency = payload.get("currency")
    if currency and lww.wins(t, currency, p.currency):
        p.currency = (currency, t)
    for item in payload.get("items") or ():
        product = item.get("product") or {}
        category, price = product.get("category"), product.get("price")
        if not category or price is None:
            continue
        quantity = item.get("quantity")
        spend = to_units(price) * (1 if quantity is None else int(quantity))
        named = len(p.category_spend) - (OTHER in p.category_spend)
        if category not in p.category_spend and named >= cfg.max_spend_categories - 1:
            category = OTHER  # one key is kept for the overflow
        p.category_spend[category] = p.category_spend.get(category, 0) + spend
    return units


def merge(p: Purchases, other: Purchases, cfg: ProfileConfig) -> None:
    """Add another key's purchases (disjoint orders) to ``p``.

    Counts and revenue add up; the last order and the currency are the newer (same tie
    rules as :func:`fold_order`). Category spend adds up per category; only when both
    sides together name more than ``max_spend_categories - 1`` categories can the result
    differ from one customer's: ``p``'s names are kept, ``other``'s new ones are named in
    alphabetical order while room remains, the rest goes to ``"(other)"`` (which of them
    came first in time is not known). The total is always kept.

    >>> a, b = Purchases(1, 10, (5, "o1"), ("EUR", 5), {"shoes": 10}), Purchases()
    >>> b.orders, b.revenue, b.last_order, b.category_spend = 1, 4, (9, "o2"), {"shoes": 4}
    >>> merge(a, b, ProfileConfig()); a.orders, a.revenue, a.last_order, a.category_spend
    (2, 14, (9, 'o2'), {'shoes': 14})
    """
    p.orders += other.orders
    p.revenue += other.revenue
    if other.last_order is not None and (p.last_order is None or other.last_order > p.last_order):
        p.last_order = other.last_order
    if other.currency is not None and lww.wins(other.currency[1], other.currency[0], p.currency):
        p.currency = other.currency
    spend = p.category_spend
    for category in sorted(other.category_spend):
        key = category
        named = len(spend) - (OTHER in spend)
        if key not in spend and key != OTHER and named >= cfg.max_spend_categories - 1:
            key = OTHER
        spend[key] = spend.get(key, 0) + other.category_spend[category]
