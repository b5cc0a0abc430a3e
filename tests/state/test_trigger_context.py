"""Issue 20: triggers carry what an email needs — the viewed products as their views named
and priced them — in any arrival order, and kept only for the products a trigger carries."""

from __future__ import annotations

import itertools

import orjson

from state import CustomerState, ProfileConfig, Trigger, apply
from state.snapshot import from_snapshot, to_snapshot
from state.trigger_context import dump_products, load_products
from tests.conftest import T0, H

CFG = ProfileConfig()


def _view(event_factory, i: int, t: int, pid: str, name: str | None, price: float | None,
          image: object = None):  # fmt: skip
    product = {"product_id": pid, "name": name, "category": "shoes", "price": price,
               "currency": "EUR", "image_url": image}  # fmt: skip
    return event_factory("product_viewed", t, event_id=f"v{i}", payload={"product": product})


def test_a_category_trigger_carries_the_viewed_products_names_and_prices(event_factory) -> None:
    views = [
        _view(event_factory, 1, T0, "sho-1", "Trail Runner", 89.9),
        _view(event_factory, 2, T0 + H // 3, "sho-2", None, 59.0),  # a price only
        _view(event_factory, 3, T0 + H // 2, "sho-1", "Trail Runner II", 79.9),  # renamed
    ]
    seen = set()
    for order in itertools.permutations(views):  # all within the allowed lateness
        st = CustomerState("c-1")
        out = [o for ev in order for o in apply(st, ev, CFG) if isinstance(o, Trigger)]
        [trigger] = out
        seen.add((trigger.product_ids, orjson.dumps(trigger.items)))
        assert from_snapshot(to_snapshot(st)) == st
    [(pids, items)] = seen  # the same whatever the arrival order
    assert pids == ("sho-2", "sho-1")
    assert orjson.loads(items) == [
        {"product": {"product_id": "sho-2", "name": None, "category": "shoes", "price": 59.0,
                     "currency": "EUR", "image_url": None}, "quantity": 1},
        {"product": {"product_id": "sho-1", "name": "Trail Runner II", "category": "shoes",
                     "price": 79.9, "currency": "EUR", "image_url": None}, "quantity": 1},
    ]  # fmt: skip


def test_descriptions_are_kept_for_the_recent_views_a_trigger_would_carry_and_pruned(
    event_factory,
) -> None:
    st = CustomerState("c-1")
    for i in range(12):  # more products than a category's recent views keep (5)
        apply(st, _view(event_factory, i, T0 + i, f"sho-{i}", f"Shoe {i}", 10.0 + i), CFG)
    recent = {p for views in st.viewed_products.values() for _, p in views}
    assert len(recent) == 5
    # Every recent view described; the others pruned once they outnumber them (twice).
    assert recent <= set(st.products)
    assert len(st.products) <= 2 * len(recent)
    assert set(st.products) - recent  # 12 views: pruned at the 11th, one kept since
    assert set(st.products) == {f"sho-{i}" for i in range(6, 12)}
    assert from_snapshot(to_snapshot(st)[:-1]).products == {}  # a layout before them


IMAGE = "https://cdn.shop.example/p/sho-1.jpg"


def test_a_category_trigger_carries_the_viewed_products_images(event_factory) -> None:
    views = [
        _view(event_factory, 1, T0, "sho-1", "Trail Runner", 89.9, IMAGE),
        _view(event_factory, 2, T0 + 1, "sho-2", None, 59.0, "javascript:alert(1)"),
        _view(event_factory, 3, T0 + 2, "sho-3", None, None, "//cdn.shop.example/3.jpg"),
    ]
    st = CustomerState("c-1")
    [trigger] = [o for ev in views for o in apply(st, ev, CFG) if isinstance(o, Trigger)]
    images = {i["product"]["product_id"]: i["product"]["image_url"] for i in trigger.items}
    assert images == {"sho-1": IMAGE, "sho-2": None, "sho-3": "https://cdn.shop.example/3.jpg"}
    assert from_snapshot(to_snapshot(st)) == st


def test_product_descriptions_dump_as_before_images_unless_one_has_an_image() -> None:
    plain = {"p1": (T0, "Runner", 89.9, "EUR", None), "p2": (T0 + 1, None, 5.0, None, None)}
    flat = dump_products(plain)
    assert flat == ("p1", T0, "Runner", 89.9, "EUR", "p2", T0 + 1, None, 5.0, None)
    assert load_products(flat) == plain  # and the layout before images is this very one
    imaged = {**plain, "p2": (T0 + 1, None, 5.0, None, IMAGE)}
    flat = dump_products(imaged)
    assert flat[0] is None
    assert len(flat) == 1 + 2 * 6
    assert load_products(flat) == imaged
    assert load_products(()) == {}


def test_a_product_seen_only_with_an_image_is_described(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, _view(event_factory, 1, T0, "sho-1", None, None, IMAGE), CFG)
    assert st.products == {"sho-1": (T0, None, None, "EUR", IMAGE)}
