"""Issue 20: triggers carry what an email needs — the viewed products as their views named
and priced them — in any arrival order, and kept only for the products a trigger carries."""

from __future__ import annotations

import itertools

import orjson

from state import CustomerState, ProfileConfig, Trigger, apply
from state.snapshot import from_snapshot, to_snapshot
from tests.conftest import T0, H

CFG = ProfileConfig()


def _view(event_factory, i: int, t: int, pid: str, name: str | None, price: float | None):
    product = {"product_id": pid, "name": name, "category": "shoes", "price": price,
               "currency": "EUR"}  # fmt: skip
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
                     "currency": "EUR"}, "quantity": 1},
        {"product": {"product_id": "sho-1", "name": "Trail Runner II", "category": "shoes",
                     "price": 79.9, "currency": "EUR"}, "quantity": 1},
    ]  # fmt: skip


def test_descriptions_are_kept_only_for_the_recent_views_a_trigger_would_carry(
    event_factory,
) -> None:
    st = CustomerState("c-1")
    for i in range(12):  # more products than a category's recent views keep (5)
        apply(st, _view(event_factory, i, T0 + i, f"sho-{i}", f"Shoe {i}", 10.0 + i), CFG)
    recent = {p for views in st.viewed_products.values() for _, p in views}
    assert set(st.products) == recent
    assert len(recent) == 5
    assert from_snapshot(to_snapshot(st)[:-1]).products == {}  # a layout before them
