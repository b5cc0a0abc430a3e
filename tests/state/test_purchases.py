from state import CustomerState, ProfileConfig, apply, view
from state.purchases import OTHER, Purchases, fold_order
from tests.conftest import T0, H

CFG = ProfileConfig()


def line(pid: str, category: str | None, price: float | None, quantity: int = 1) -> dict:
    return {"product": {"product_id": pid, "category": category, "price": price},
            "quantity": quantity}  # fmt: skip


def order(order_id: str, revenue: float, items: list[dict] | None = None,
          currency: str | None = "EUR") -> dict:  # fmt: skip
    return {"order_id": order_id, "items": items or [], "revenue": revenue,
            "currency": currency, "discount": None}  # fmt: skip


def test_order_counts_revenue_and_average() -> None:
    p = Purchases()
    fold_order(p, order("o1", 10.0), T0, CFG)
    fold_order(p, order("o2", 25.5), T0 + H, CFG)
    v = p.view()
    assert (v["order_count"], v["lifetime_revenue"], v["average_order_value"]) == (2, 35.5, 17.75)
    assert (v["last_order_id"], v["last_order_at"], v["currency"]) == ("o2", T0 + H, "EUR")


def test_revenue_sums_are_exact_in_any_order() -> None:
    amounts = [0.1, 0.2, 0.3, 1e-4, 19.99]
    a, b = Purchases(), Purchases()
    for i, x in enumerate(amounts):
        fold_order(a, order(f"o{i}", x), T0, CFG)
    for i, x in reversed(list(enumerate(amounts))):
        fold_order(b, order(f"o{i}", x), T0, CFG)
    assert a == b
    assert a.view()["lifetime_revenue"] == 20.5901


def test_last_order_is_the_newest_by_event_time_then_order_id() -> None:
    p = Purchases()
    fold_order(p, order("o-b", 1.0, currency="USD"), T0 + H, CFG)
    fold_order(p, order("o-old", 1.0, currency="GBP"), T0, CFG)
    fold_order(p, order("o-a", 1.0), T0 + H, CFG)
    assert p.last_order == (T0 + H, "o-b")
    assert p.currency == ("USD", T0 + H)


def test_category_spend_from_line_items() -> None:
    p = Purchases()
    fold_order(p, order("o1", 50.0, [line("a", "shoes", 20.0, 2), line("b", "bags", 5.25),
                                     line("c", None, 99.0), line("d", "hats", None)]),
               T0, CFG)  # fmt: skip
    assert p.view()["category_spend"] == {"bags": 5.25, "shoes": 40.0}


def test_spend_categories_are_bounded_and_keep_the_total() -> None:
    cfg = ProfileConfig(max_spend_categories=3)
    p = Purchases()
    fold_order(p, order("o1", 1.0, [line(f"p{i}", f"cat-{i}", 1.0) for i in range(6)]), T0, cfg)
    assert len(p.category_spend) == 3
    assert p.view()["category_spend"] == {OTHER: 4.0, "cat-0": 1.0, "cat-1": 1.0}


def test_purchases_through_apply_and_view(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("order_completed", T0, payload=order("o1", 12.0)), CFG)
    v = view(st, CFG)
    assert v["last_order_at"] == T0
    assert v["purchases"]["order_count"] == 1
    assert v["orders_90d"] == 1
    assert v["revenue_180d"] == 12.0


def test_snapshot_dump_round_trips() -> None:
    p = Purchases()
    fold_order(p, order("o1", 3.0, [line("a", "shoes", 3.0)]), T0, CFG)
    assert Purchases.load(p.dump()) == p
    assert Purchases.load(Purchases().dump()) == Purchases()
