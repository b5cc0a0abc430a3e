"""What a customer's state keeps only so that its outputs can say more: the products a
category trigger carries, described as their views described them (name, price,
currency and an absolute http(s) image URL, :mod:`state.image_url`), and the anonymous
ids an erasure must unlink. Pure, bounded, and independent of arrival order.

>>> known: dict[str, ProductDetail] = {}
>>> views = {"shoes": [(10, "p1")]}
>>> describe_product(known, views, "p1", {"name": "Runner", "price": 89.9}, 10)
>>> describe_product(known, views, "p1", {"name": "Old name"}, 5)  # older: ignored
>>> viewed_items(known, ("p1",), "shoes")[0]["product"]["name"]
'Runner'
"""

from __future__ import annotations

from typing import Any, Final

from state.image_url import safe_image_url

__all__ = [
    "MAX_DEVICES",
    "ProductDetail",
    "describe_product",
    "dump_products",
    "keep_product_detail",
    "load_products",
    "remember_device",
    "viewed_items",
]

ProductDetail = tuple[int, str | None, float | None, str | None, str | None]
"""``(event time, name, price, currency, image URL)`` of a viewed product."""

MAX_DEVICES: Final = 16
"""Anonymous ids remembered per customer (the newest by event time, ties by id)."""


def describe_product(
    known: dict[str, ProductDetail],
    viewed: dict[str, list[tuple[int, str]]],
    pid: str,
    product: dict[str, Any],
    t: int,
) -> None:
    """Keep the newest description of ``pid`` (ties by value: arrival order never
    decides), for the products of the recent views (``viewed``: a customer's
    ``viewed_products``, whose products a category trigger carries): never more than
    twice as many entries, so a description may outlive its product's view until pruned."""
    name, price, currency = product.get("name"), product.get("price"), product.get("currency")
    detail: ProductDetail = (
        t,
        name if isinstance(name, str) and name else None,
        float(price) if isinstance(price, int | float) and not isinstance(price, bool) else None,
        currency if isinstance(currency, str) and currency else None,
        safe_image_url(product.get("image_url")),
    )
    if detail[1] is not None or detail[2] is not None or detail[4] is not None:
        keep_product_detail(known, pid, detail)
    # Descriptions outnumber the recent views only once described products left them.
    # Pruned when there are twice as many: a heavy viewer builds the set of recent ids once
    # per as many views as it keeps, not on every view (it was a tenth of the fold's time).
    if len(known) > 2 * sum(len(views) for views in viewed.values()):
        recent = {p for views in viewed.values() for _, p in views}
        for gone in [p for p in known if p not in recent]:
            del known[gone]


def keep_product_detail(known: dict[str, ProductDetail], pid: str, detail: ProductDetail) -> None:
    """``detail`` if it is newer than what ``known`` holds of ``pid`` (ties by value)."""
    old = known.get(pid)
    if old is None or _rank(detail) > _rank(old):
        known[pid] = detail


def _rank(d: ProductDetail) -> tuple[int, str, float, str, str]:
    return d[0], d[1] or "", -1.0 if d[2] is None else d[2], d[3] or "", d[4] or ""


def dump_products(known: dict[str, ProductDetail]) -> tuple[Any, ...]:
    """``known`` flat for a snapshot: ``(id, time, name, price, currency, ...)`` as before
    image URLs, and when any product has one, ``None`` first and six values a product
    (the URL last). Without images a snapshot takes no byte more than before them.

    >>> dump_products({"p1": (5, "Runner", 89.9, "EUR", None)})
    ('p1', 5, 'Runner', 89.9, 'EUR')
    >>> load_products(dump_products({"p1": (5, None, 1.0, None, "https://x.example/a.png")}))
    {'p1': (5, None, 1.0, None, 'https://x.example/a.png')}
    """
    if all(d[4] is None for d in known.values()):
        return tuple(x for pid, d in known.items() for x in (pid, *d[:4]))
    return (None, *(x for pid, d in known.items() for x in (pid, *d)))


def load_products(flat: tuple[Any, ...] | list[Any]) -> dict[str, ProductDetail]:
    """What :func:`dump_products` wrote (or the layout before image URLs: no ``None``
    first, as no product id is ``None``)."""
    if flat and flat[0] is None:
        return {flat[i]: tuple(flat[i + 1 : i + 6]) for i in range(1, len(flat), 6)}
    return {flat[i]: (*flat[i + 1 : i + 5], None) for i in range(0, len(flat), 5)}


def viewed_items(
    known: dict[str, ProductDetail], product_ids: tuple[str, ...], category: str | None
) -> tuple[dict[str, Any], ...]:
    """The viewed products as trigger lines (quantity 1), as their views described them."""
    lines = []
    for pid in product_ids:
        _, name, price, currency, image = known.get(pid) or (0, None, None, None, None)
        product = {"product_id": pid, "name": name, "category": category, "price": price,
                   "currency": currency, "image_url": image}  # fmt: skip
        lines.append({"product": product, "quantity": 1})
    return tuple(lines)


def remember_device(devices: dict[str, int], anon: str, t: int) -> None:
    """Keep ``anon``'s newest time; beyond :data:`MAX_DEVICES` the oldest (then the
    smallest id) goes, so the set does not depend on arrival order when it holds."""
    devices[anon] = max(t, devices.get(anon, t))
    if len(devices) > MAX_DEVICES:
        del devices[min(devices, key=lambda a: (devices[a], a))]
