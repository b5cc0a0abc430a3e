"""Windowed counters through ``apply``: edges, bounds and late events."""

import pytest

from state import CustomerState, ProfileConfig, Rejected, apply, view
from state.counters import VERSIONS, Counters
from state.events import DAY_MS
from tests.conftest import T0, H

CFG = ProfileConfig()
DAY0 = (T0 // DAY_MS) * DAY_MS  # midnight UTC of T0's day


def run(events, cfg: ProfileConfig = CFG) -> tuple[CustomerState, list]:
    st = CustomerState("c-1")
    outs = [o for ev in events for o in apply(st, ev, cfg)]
    return st, outs


def order(event_factory, t: int, revenue: float = 10.0):
    return event_factory("order_completed", t, payload={"order_id": f"o{t}", "revenue": revenue})


@pytest.mark.parametrize(
    ("first_order", "counted"),
    [
        (DAY0 - 89 * DAY_MS, 2),  # 00:00 of day - 89: inside the 90-day window
        (DAY0 - 89 * DAY_MS - 1, 1),  # 23:59:59.999 of day - 90: outside
    ],
)
def test_orders_in_90_days_edges(event_factory, first_order: int, counted: int) -> None:
    st, _ = run([order(event_factory, first_order), order(event_factory, DAY0 + DAY_MS - 1)])
    assert view(st, CFG)["orders_90d"] == counted
    assert view(st, CFG)["purchases"]["order_count"] == 2


def test_revenue_in_180_days(event_factory) -> None:
    st, _ = run([order(event_factory, DAY0 - 180 * DAY_MS, 1.0),
                 order(event_factory, DAY0 - 179 * DAY_MS, 2.0),
                 order(event_factory, DAY0, 4.25)])  # fmt: skip
    v = view(st, CFG)
    assert v["revenue_180d"] == 6.25
    assert v["purchases"]["lifetime_revenue"] == 7.25
    assert len(st.counters.revenue) <= 180


def test_active_days_in_7_and_30_days(event_factory) -> None:
    days = [0, 1, 1, 5, 20, 29, 30, 35]  # days before DAY0's day
    st, _ = run([event_factory("page_viewed", DAY0 - d * DAY_MS + H) for d in reversed(days)])
    v = view(st, CFG)
    assert v["active_days_7d"] == 3  # days 0, 1, 5
    assert v["active_days_30d"] == 5  # + 20, 29; day 30 is out
    assert len(st.counters.active) <= 30


def test_windows_can_be_read_at_a_later_time(event_factory) -> None:
    st, _ = run([event_factory("page_viewed", DAY0), order(event_factory, DAY0 + 1)])
    later = view(st, CFG, at=DAY0 + 8 * DAY_MS)
    assert (later["active_days_7d"], later["active_days_30d"], later["orders_90d"]) == (0, 1, 1)


def test_product_views_in_24h_are_exact_and_bounded(event_factory) -> None:
    evs = [event_factory(t=T0, product_id="a"), event_factory(t=T0 + 24 * H, product_id="a"),
           event_factory(t=T0 + 24 * H, product_id="b")]  # fmt: skip
    st, _ = run(evs)
    assert view(st, CFG)["product_views_24h"] == {"a": 2, "b": 1}
    st, _ = run([*evs, event_factory(t=T0 + 24 * H + 1, product_id="c")])
    assert view(st, CFG)["product_views_24h"] == {"a": 1, "b": 1, "c": 1}
    cfg = ProfileConfig(max_products=4)
    st, _ = run([event_factory(t=T0 + k, product_id=f"p{k}") for k in range(50)], cfg)
    assert sorted(st.counters.product_views) == ["p46", "p47", "p48", "p49"]


@pytest.mark.parametrize(
    ("kind", "payload", "refused"),
    [
        ("product_viewed", {"product": {"product_id": "p", "category": "shoes"}},
         ["active days", "category views", "product views"]),
        ("order_completed", {"order_id": "o", "revenue": 5.0},
         ["active days", "orders", "revenue", "cart"]),
        ("identify", {"first_name": "Ada"}, ["active days"]),
        ("cart_item_added", {"item": {"product": {"product_id": "p"}, "quantity": 1}},
         ["active days", "cart"]),
    ],
)  # fmt: skip
def test_a_late_event_is_rejected_exactly_once_and_updates_lifetime(
    event_factory, kind: str, payload: dict, refused: list[str]
) -> None:
    st, _ = run([event_factory("page_viewed", T0 + 10 * H)])
    before = view(st, CFG)
    outs = apply(st, event_factory(kind, T0, payload=payload), CFG)
    [rejected] = outs
    assert isinstance(rejected, Rejected)
    assert (rejected.reason, rejected.applied) == ("late_event", True)
    assert rejected.error.endswith("not counted in " + ", ".join(refused))
    after = view(st, CFG)
    windowed = ["category_views_24h", "product_views_24h", "active_days_7d", "active_days_30d",
                "orders_90d", "revenue_180d", "cart"]  # fmt: skip
    assert {k: after[k] for k in windowed if k != "cart"} == {
        k: before[k] for k in windowed if k != "cart"
    }
    assert after["cart"]["items"] == before["cart"]["items"]
    assert after["first_seen"] == T0
    assert after["event_counts"][kind] == 1 + before["event_counts"].get(kind, 0)


def test_late_order_still_counts_in_lifetime_purchases(event_factory) -> None:
    st, _ = run([event_factory("page_viewed", T0 + 10 * H), order(event_factory, T0, 7.0)])
    v = view(st, CFG)
    assert (v["purchases"]["order_count"], v["purchases"]["lifetime_revenue"]) == (1, 7.0)
    assert (v["orders_90d"], v["revenue_180d"], v["last_order_at"]) == (0, 0.0, T0)


def test_a_late_passive_email_event_refuses_nothing(event_factory) -> None:
    st, _ = run([event_factory("page_viewed", T0 + 10 * H)])
    assert apply(st, event_factory("email_event", T0, payload={"action": "delivered"}), CFG) == []
    assert st.engagement.email == {"delivered": 1}


def test_late_events_recorded_equal_late_events_refused(event_factory) -> None:
    evs = [event_factory("page_viewed", T0 + 10 * H)]
    evs += [event_factory(kind, T0 + k, payload=p) for k, (kind, p) in enumerate(
        [("page_viewed", {}), ("identify", {}), ("product_viewed", {"product": {}}),
         ("preference_updated", {}), ("custom", {})])]  # fmt: skip
    _, outs = run(evs)
    late = [o for o in outs if isinstance(o, Rejected)]
    assert len(late) == 5
    assert {o.event_id for o in late} == {e.event_id for e in evs[1:]}


def test_a_counter_dumped_under_another_definition_starts_empty(event_factory) -> None:
    st, _ = run([event_factory(t=T0, product_id="a"), order(event_factory, T0 + 1)])
    versions, *rest = st.counters.dump()
    assert versions == VERSIONS
    assert Counters.load((versions, *rest)) == st.counters
    changed = Counters.load(((VERSIONS[0], VERSIONS[1], VERSIONS[2] + 1, *VERSIONS[3:]), *rest))
    assert changed.orders.buckets == {}
    assert changed.revenue == st.counters.revenue
    assert changed.product_views == st.counters.product_views
