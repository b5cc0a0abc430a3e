"""The current cart, from ``cart_item_added`` / ``cart_item_removed`` / ``checkout_started``
/ ``order_completed``.

Each cart event adds (``added``) or takes away (``removed``) the line item's quantity of
its product, at the item's price (the latest price, by event time, is the line's
price); a quantity never goes below zero. The cart's **value** is the sum of quantity x
price over lines with a known price; **updated_at** is the newest event time of any cart
event, checkout or order; **checkout_started_at** is the newest checkout not followed by
an order.

**An order empties the cart.** Changes at or before the newest order's event time belong
to that order and are void, whatever order they arrive in. To get that right without
remembering every change, changes are kept *pending*, in event-time order, while an
order inside the allowed lateness could still come before them; older ones are
*settled* into per-product lines (quantity, price). Every order inside the allowed
lateness is newer than every settled change, so it simply empties the settled lines and
voids the pending changes at or before it: any arrival order of the same events within
the allowed lateness gives the same cart. Late events (beyond the allowed lateness) do
not touch the cart; the profile logic reports them.

Each product's **description** (name, category, currency, image URL), for the emails a
cart leads to, is the newest its cart events gave (by event time, ties by value, so
arrival order never decides); an order drops the descriptions it voided. Only an
absolute http(s) image URL is kept (:mod:`state.image_url`; the collector refuses
others, this drops any that came another way).

Bounds: at most ``max_cart_items`` products (a change to a further product is not
tracked; so many descriptions) and ``max_cart_changes`` pending changes (beyond it the
oldest is settled early, and only then could an order arriving later than a newer change
empty too much).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from state.config import ProfileConfig
from state.events import NO_TIME
from state.image_url import safe_image_url
from state.money import from_units, to_units

__all__ = ["Cart", "change", "checkout", "merge", "order"]

NO_PRICE = -1
"""Stored price of a line whose price was never given."""

Pending = tuple[int, str, int, int]
"""``(event time, product id, quantity delta, price units or NO_PRICE)``."""

Detail = tuple[int, str | None, str | None, str | None, str | None]
"""``(event time, name, category, currency, image URL)`` of a product in the cart."""


@dataclass(slots=True)
class Cart:
    """One customer's current cart."""

    cleared_at: int = NO_TIME
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Settled: product id -> (quantity, price units or ``NO_PRICE``)."""
    pending: list[Pending] = field(default_factory=list)
    updated_at: int | None = None
    checkout_at: int | None = None
    details: dict[str, Detail] = field(default_factory=dict)
    """Product id -> its newest description from the cart events (see the module)."""

    def current(self, cfg: ProfileConfig) -> dict[str, tuple[int, int]]:
        """Product id -> (quantity, price): the settled lines with the pending changes."""
        lines = dict(self.lines)
        for _, pid, delta, price in self.pending:
            _fold(lines, pid, delta, price, cfg.max_cart_items)
        return lines

    def view(self, cfg: ProfileConfig) -> dict[str, Any]:
        lines = self.current(cfg)
        return {
            "items": [
                {
                    "product_id": pid,
                    "quantity": qty,
                    "price": None if price == NO_PRICE else from_units(price),
                }
                for pid, (qty, price) in sorted(lines.items())
            ],
            "value": from_units(sum(q * p for q, p in lines.values() if p != NO_PRICE)),
            "updated_at": self.updated_at,
            "checkout_started_at": (
                self.checkout_at
                if self.checkout_at is not None and self.checkout_at > self.cleared_at
                else None
            ),
        }

    def settle(self, before: int, cfg: ProfileConfig) -> None:
        """Fold the pending changes strictly before ``before`` (and any beyond
        ``max_cart_changes``) into the settled lines."""
        n = 0
        while n < len(self.pending) and self.pending[n][0] < before:
            n += 1
        n = max(n, len(self.pending) - cfg.max_cart_changes)
        for _, pid, delta, price in self.pending[:n]:
            _fold(self.lines, pid, delta, price, cfg.max_cart_items)
        del self.pending[:n]

    def dump(self) -> tuple[Any, ...]:
        """The details as ``(id, time, name, category, currency, ...)``, then the image URLs
        apart (``(id, url, ...)``, only the products that have one): a cart without images
        takes no byte more than before them, and the layout before them reads it."""
        return (
            self.cleared_at,
            tuple(x for pid, (q, p) in self.lines.items() for x in (pid, q, p)),
            tuple(x for entry in self.pending for x in entry),
            self.updated_at,
            self.checkout_at,
            tuple(x for pid, d in self.details.items() for x in (pid, *d[:4])),
            tuple(x for pid, d in self.details.items() if d[4] is not None for x in (pid, d[4])),
        )

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Cart:
        # The details, then their image URLs, came later: shorter snapshots have none.
        cleared_at, lines, pending, updated_at, checkout_at, *rest = snap
        flat = rest[0] if rest else ()
        images = rest[1] if len(rest) > 1 else ()
        image = dict(zip(images[::2], images[1::2], strict=True))
        details = {
            flat[i]: (flat[i + 1], flat[i + 2], flat[i + 3], flat[i + 4], image.get(flat[i]))
            for i in range(0, len(flat), 5)
        }
        return cls(
            cleared_at,
            {pid: (q, p) for pid, q, p in zip(lines[::3], lines[1::3], lines[2::3], strict=True)},
            [
                (pending[i], pending[i + 1], pending[i + 2], pending[i + 3])
                for i in range(0, len(pending), 4)
            ],
            updated_at,
            checkout_at,
            details,
        )


def change(
    c: Cart, t: int, item: dict[str, Any], removed: bool, watermark: int, cfg: ProfileConfig
) -> None:
    """Apply a ``CartItemChanged.item`` added (or ``removed``) at event time ``t``.

    ``watermark`` is the customer's newest event time, including ``t``.

    >>> c, cfg = Cart(), ProfileConfig()
    >>> item = {"product": {"product_id": "p1", "price": 9.5}, "quantity": 2}
    >>> change(c, 10, item, False, 10, cfg)
    >>> order(c, 5)  # an older order does not void a newer change
    >>> c.view(cfg)["items"], c.view(cfg)["value"]
    ([{'product_id': 'p1', 'quantity': 2, 'price': 9.5}], 19.0)
    >>> order(c, 10); c.view(cfg)["items"]
    []
    """
    _touch(c, t)
    product = item.get("product") or {}
    pid = product.get("product_id")
    if t <= c.cleared_at or not pid:
        return
    quantity = item.get("quantity")
    quantity = 1 if quantity is None else max(int(quantity), 0)  # the schema's default: 1
    price = product.get("price")
    insort(c.pending, (t, str(pid), -quantity if removed else quantity,
                       NO_PRICE if price is None else to_units(price)))  # fmt: skip
    _describe(c.details, str(pid), (t, _text(product.get("name")),
              _text(product.get("category")), _text(product.get("currency")),
              safe_image_url(product.get("image_url"))), cfg)  # fmt: skip
    c.settle(watermark - cfg.allowed_lateness_ms, cfg)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _rank(d: Detail) -> tuple[int, str, str, str, str]:
    return d[0], d[1] or "", d[2] or "", d[3] or "", d[4] or ""


def _describe(details: dict[str, Detail], pid: str, d: Detail, cfg: ProfileConfig) -> None:
    """Keep the newer description of ``pid`` (ties by value); beyond ``max_cart_items``
    products, the oldest description (then the smallest id) goes."""
    old = details.get(pid)
    if old is None or _rank(d) > _rank(old):
        details[pid] = d
    if len(details) > cfg.max_cart_items:
        del details[min(details, key=lambda p: (details[p][0], p))]


def checkout(c: Cart, t: int) -> None:
    """A checkout started at event time ``t``."""
    _touch(c, t)
    c.checkout_at = t if c.checkout_at is None else max(c.checkout_at, t)


def order(c: Cart, t: int) -> None:
    """An order completed at event time ``t``: every change at or before ``t`` is void."""
    _touch(c, t)
    if t <= c.cleared_at:
        return
    c.cleared_at = t
    c.lines.clear()
    c.pending = [p for p in c.pending if p[0] > t]
    c.details = {pid: d for pid, d in c.details.items() if d[0] > t}


def _touch(c: Cart, t: int) -> None:
    c.updated_at = t if c.updated_at is None else max(c.updated_at, t)


def _fold(lines: dict[str, tuple[int, int]], pid: str, delta: int, price: int, cap: int) -> None:
    qty, old_price = lines.get(pid, (0, NO_PRICE))
    qty = max(qty + delta, 0)
    if qty == 0:
        lines.pop(pid, None)
    elif pid in lines or len(lines) < cap:
        lines[pid] = (qty, old_price if price == NO_PRICE else price)


def merge(
    c: Cart,
    other: Cart,
    cfg: ProfileConfig,
    *,
    watermark: int,
    first: int | None,
    other_first: int | None,
) -> None:
    """Merge another key's cart into ``c``, as one customer's cart across both keys.

    ``watermark`` is the newest event time of both sides; ``first`` and ``other_first``
    are each side's earliest event time (``first_seen``): no change of that side is older.

    - The newest order of either side empties the cart: ``cleared_at`` is the later one,
      and pending changes of both sides at or before it are void (exact: they carry
      their times).
    - A side's *settled* lines survive if that side holds the newest order, or if its
      first event is newer than that order (every change of it came after). Otherwise
      they are void: settled lines keep no times, and an order that may have covered
      them empties the cart (an order on one key voids the other key's older cart,
      and also, when the two interleave beyond the allowed lateness, changes made on
      the other key after it: the cart errs towards empty, not towards items bought).
    - Surviving settled lines add up per product; the price is that of the side whose
      cart was touched last (if it knows one). A removal on one key does not take away
      an item settled on the other key's cart (it was folded at zero there).
    - ``updated_at`` and ``checkout_at`` are the later of both.

    When every change that survives is still pending (within the allowed lateness of
    its side's newest event), or only one side had cart events, the result is exactly
    one customer's cart.

    >>> cfg = ProfileConfig()
    >>> a, b = Cart(), Cart()
    >>> change(a, 10, {"product": {"product_id": "p1", "price": 2.0}}, False, 10, cfg)
    >>> change(b, 20, {"product": {"product_id": "p2", "price": 3.0}}, False, 20, cfg)
    >>> merge(a, b, cfg, watermark=20, first=10, other_first=20)
    >>> [i["product_id"] for i in a.view(cfg)["items"]], a.view(cfg)["updated_at"]
    (['p1', 'p2'], 20)
    >>> order(b, 15)  # an order on b, newer than a2's change, older than b's
    >>> a2 = Cart(); change(a2, 10, {"product": {"product_id": "p1"}}, False, 10, cfg)
    >>> merge(a2, b, cfg, watermark=20, first=10, other_first=15)
    >>> [i["product_id"] for i in a2.view(cfg)["items"]]
    ['p2']
    """
    cleared = max(c.cleared_at, other.cleared_at)
    other_newer = (other.updated_at is not None) and (
        c.updated_at is None or other.updated_at > c.updated_at
    )
    mine = c.lines if _lines_survive(c, first, cleared) else {}
    theirs = other.lines if _lines_survive(other, other_first, cleared) else {}
    lines = dict(mine)
    for pid in sorted(theirs):
        qty, price = theirs[pid]
        if pid in lines:
            old_qty, old_price = lines[pid]
            keep_old = old_price != NO_PRICE and (price == NO_PRICE or not other_newer)
            lines[pid] = (old_qty + qty, old_price if keep_old else price)
        elif len(lines) < cfg.max_cart_items:
            lines[pid] = (qty, price)
    c.lines = lines
    c.pending = sorted(p for p in (*c.pending, *other.pending) if p[0] > cleared)
    for pid in sorted(other.details):
        _describe(c.details, pid, other.details[pid], cfg)
    c.details = {pid: d for pid, d in c.details.items() if d[0] > cleared}
    c.cleared_at = cleared
    if other.updated_at is not None:
        _touch(c, other.updated_at)
    if other.checkout_at is not None:
        checkout(c, other.checkout_at)
    c.settle(watermark - cfg.allowed_lateness_ms, cfg)


def _lines_survive(c: Cart, first: int | None, cleared: int) -> bool:
    """Whether no order at ``cleared`` can have voided any settled line of ``c``."""
    return not c.lines or c.cleared_at >= cleared or (first is not None and first > cleared)
