import itertools
import pickle

import pytest

from state import CustomerState, ProfileConfig, Rejected, apply, view
from state.cart import Cart, change, checkout, order
from tests.conftest import T0, H

CFG = ProfileConfig()


def item(pid: str, quantity: int = 1, price: float | None = 10.0) -> dict:
    return {"product": {"product_id": pid, "price": price}, "quantity": quantity}


def items(c: Cart, cfg: ProfileConfig = CFG) -> dict[str, tuple[int, float | None]]:
    return {i["product_id"]: (i["quantity"], i["price"]) for i in c.view(cfg)["items"]}


def test_adds_and_removes_sum_per_product_and_never_go_negative() -> None:
    c = Cart()
    change(c, T0, item("a", 2), False, T0, CFG)
    change(c, T0 + 1, item("b", 1, 5.5), False, T0 + 1, CFG)
    change(c, T0 + 2, item("a", 1), True, T0 + 2, CFG)
    change(c, T0 + 3, item("b", 4), True, T0 + 3, CFG)
    assert items(c) == {"a": (1, 10.0)}
    assert c.view(CFG)["value"] == 10.0
    assert c.view(CFG)["updated_at"] == T0 + 3


def test_the_newest_price_wins() -> None:
    c = Cart()
    change(c, T0 + H, item("a", 1, 12.0), False, T0 + H, CFG)
    change(c, T0, item("a", 1, 10.0), False, T0 + H, CFG)
    change(c, T0 + 2 * H, item("a", 1, None), False, T0 + 2 * H, CFG)
    assert items(c) == {"a": (3, 12.0)}
    assert c.view(CFG)["value"] == 36.0


def test_an_order_voids_the_changes_before_it_in_any_arrival_order() -> None:
    events = [
        ("add", T0, "a"),
        ("add", T0 + 10, "b"),
        ("order", T0 + 20, None),
        ("add", T0 + 30, "c"),
        ("remove", T0 + 40, "c"),
        ("add", T0 + 50, "d"),
    ]
    results = set()
    for perm in itertools.permutations(events):
        c, w = Cart(), T0
        for kind, t, pid in perm:
            w = max(w, t)
            if kind == "order":
                order(c, t)
            else:
                change(c, t, item(pid or ""), kind == "remove", w, CFG)
        results.add(tuple(sorted(items(c))))
    assert results == {("d",)}


def test_changes_are_settled_once_no_order_can_void_them_and_stay_exact() -> None:
    c = Cart()
    change(c, T0, item("a"), False, T0, CFG)
    change(c, T0 + 2 * H, item("a"), False, T0 + 2 * H, CFG)
    assert c.lines == {"a": (1, 100_000)}  # settled: more than the lateness behind
    assert len(c.pending) == 1
    order(c, T0 + H + 1)  # an order inside the allowed lateness of the newest change
    assert items(c) == {"a": (1, 10.0)}


def test_pending_changes_and_products_are_bounded() -> None:
    cfg = ProfileConfig(max_cart_changes=4, max_cart_items=3)
    c = Cart()
    for k in range(20):
        change(c, T0 + k, item(f"p{k % 5}"), False, T0 + k, cfg)
        assert len(c.pending) <= 4
        assert len(c.lines) <= 3
    assert len(items(c, cfg)) <= 3


def test_checkout_is_open_until_an_order_follows_it() -> None:
    c = Cart()
    checkout(c, T0)
    assert c.view(CFG)["checkout_started_at"] == T0
    order(c, T0 + 1)
    assert c.view(CFG)["checkout_started_at"] is None
    checkout(c, T0 + 2)
    assert c.view(CFG)["checkout_started_at"] == T0 + 2


def test_late_cart_events_do_not_touch_the_cart(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("cart_item_added", T0 + 5 * H, payload={"item": item("a")}), CFG)
    outs = apply(st, event_factory("cart_item_removed", T0, payload={"item": item("a")}), CFG)
    [rejected] = outs
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "late_event"
    assert "cart" in rejected.error
    assert view(st, CFG)["cart"]["items"] == [{"product_id": "a", "quantity": 1, "price": 10.0}]
    assert st.event_counts["cart_item_removed"] == 1


def test_cart_through_apply(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("cart_item_added", T0, payload={"cart_id": "k", "item": item("a")}),
          CFG)  # fmt: skip
    apply(st, event_factory("checkout_started", T0 + 1, payload={"items": []}), CFG)
    cart = view(st, CFG)["cart"]
    assert cart["value"] == 10.0
    assert cart["checkout_started_at"] == T0 + 1
    apply(st, event_factory("order_completed", T0 + 2,
                            payload={"order_id": "o", "revenue": 10.0}), CFG)  # fmt: skip
    assert view(st, CFG)["cart"] == {"items": [], "value": 0.0, "updated_at": T0 + 2,
                                     "checkout_started_at": None}  # fmt: skip


def test_dump_round_trips() -> None:
    c = Cart()
    change(c, T0, item("a", 2), False, T0, CFG)
    change(c, T0 + 2 * H, item("b", 1, None), False, T0 + 2 * H, CFG)
    checkout(c, T0 + 2 * H)
    assert Cart.load(c.dump()) == c


def described(pid: str, name: str | None, category: str | None = "bags", currency="EUR") -> dict:
    return {"product": {"product_id": pid, "name": name, "category": category, "price": 120.5,
                        "currency": currency}, "quantity": 2}  # fmt: skip


def test_each_product_keeps_its_newest_description_in_any_arrival_order() -> None:
    changes = [(T0, described("bag-7", "Tote")), (T0 + H, described("bag-7", "Tote Bag")),
               (T0 + 2, described("hat-1", "Cap", "hats", None))]  # fmt: skip
    seen = set()
    for order_of in itertools.permutations(changes):
        c = Cart()
        for t, it in order_of:
            change(c, t, it, False, T0 + H, CFG)
        seen.add(tuple(sorted(c.details.items())))
    assert seen == {(("bag-7", (T0 + H, "Tote Bag", "bags", "EUR", None)),
                     ("hat-1", (T0 + 2, "Cap", "hats", None, None)))}  # fmt: skip
    assert Cart.load(c.dump()) == c
    assert Cart.load(c.dump()[:5]).details == {}  # a snapshot from before descriptions
    order(c, T0 + H)
    assert c.details == {}  # the order voided every change it covered


def test_an_abandoned_cart_trigger_carries_names_categories_and_the_carts_currency(
    event_factory,
) -> None:
    """Issue 20: the cart lines as their events described them; the cart's own currency
    for a first-time buyer (no order yet)."""
    from state import Trigger, advance

    st = CustomerState("c-1")
    bag = described("bag-7", "Tote Bag")
    apply(st, event_factory("cart_item_added", T0, payload={"item": bag}), CFG)
    out = advance(st, CFG, T0 + 2 * H)
    [trigger] = [o for o in out if isinstance(o, Trigger) and o.rule == "abandoned_cart"]
    assert trigger.items == ({"product": {"product_id": "bag-7", "name": "Tote Bag",
                                          "category": "bags", "price": 120.5,
                                          "currency": "EUR", "image_url": None},
                              "quantity": 2},)  # fmt: skip
    assert (trigger.amount, trigger.currency) == (241.0, "EUR")


IMAGE = "https://cdn.shop.example/p/bag-7.jpg"


def imaged(pid: str, url: object, t_name: str = "Tote Bag") -> dict:
    line = described(pid, t_name)
    line["product"]["image_url"] = url
    return line


def test_an_image_url_travels_with_its_description_and_through_a_snapshot() -> None:
    c = Cart()
    change(c, T0, imaged("bag-7", IMAGE), False, T0, CFG)
    change(c, T0 + 1, described("hat-1", "Cap"), False, T0 + 1, CFG)  # no image
    assert c.details["bag-7"][4] == IMAGE
    assert c.details["hat-1"][4] is None
    dumped = c.dump()
    assert dumped[6] == ("bag-7", IMAGE)  # kept apart: only products that have one
    assert Cart.load(dumped) == c
    assert Cart.load(dumped[:6]).details["bag-7"] == (T0, "Tote Bag", "bags", "EUR", None)


def test_a_cart_without_images_dumps_as_before_them_but_one_empty_tuple() -> None:
    c = Cart()
    for k in range(10):
        change(c, T0 + k, described(f"p{k}", f"Thing {k}"), False, T0 + k, CFG)
    dumped = c.dump()
    assert dumped[6] == ()
    # The layout before image URLs (4 values a description) reads the same cart.
    before = Cart.load(dumped[:6])
    assert before == c
    grown = len(pickle.dumps(dumped)) - len(pickle.dumps(dumped[:6]))
    assert grown <= 2, grown  # one empty tuple for the whole cart, nothing a product


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "data:image/png;base64,AAAA", "/p/bag.jpg", "ftp://x.example/a",
     " https://x.example/a.jpg", "java\tscript:alert(1)", 42, {"src": IMAGE}],
)  # fmt: skip
def test_an_image_url_that_is_not_absolute_http_is_not_kept(url: object) -> None:
    c = Cart()
    change(c, T0, imaged("bag-7", url), False, T0, CFG)
    assert c.details["bag-7"] == (T0, "Tote Bag", "bags", "EUR", None)


def test_a_protocol_relative_image_url_is_kept_as_https() -> None:
    c = Cart()
    change(c, T0, imaged("bag-7", "//cdn.shop.example/a.jpg"), False, T0, CFG)
    assert c.details["bag-7"][4] == "https://cdn.shop.example/a.jpg"


def test_the_newest_description_brings_its_image_in_any_arrival_order() -> None:
    changes = [
        (T0, imaged("bag-7", "https://cdn.shop.example/old.jpg")),
        (T0 + H, imaged("bag-7", IMAGE, "Tote Bag II")),
        (T0 + H, imaged("bag-7", None, "Tote Bag II")),
    ]  # a tie: the image wins
    seen = set()
    for order_of in itertools.permutations(changes):
        c = Cart()
        for t, it in order_of:
            change(c, t, it, False, T0 + H, CFG)
        seen.add(c.details["bag-7"])
    assert seen == {(T0 + H, "Tote Bag II", "bags", "EUR", IMAGE)}


def test_an_abandoned_cart_trigger_carries_the_lines_image(event_factory) -> None:
    from state import Trigger, advance

    st = CustomerState("c-1")
    apply(st, event_factory("cart_item_added", T0, payload={"item": imaged("bag-7", IMAGE)}),
          CFG)  # fmt: skip
    [trigger] = [o for o in advance(st, CFG, T0 + 2 * H)
                 if isinstance(o, Trigger) and o.rule == "abandoned_cart"]  # fmt: skip
    assert trigger.items[0]["product"]["image_url"] == IMAGE
