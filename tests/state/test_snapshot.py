import pickle
import random
from dataclasses import replace
from datetime import date

import pytest

from state import (
    STATE_VERSION,
    CustomerState,
    Event,
    ProfileConfig,
    apply,
    compact_idle,
    from_snapshot,
    to_snapshot,
    view,
)
from state.events import DAY_MS
from state.exceptions import SnapshotVersionError
from state.snapshot import from_portable, to_portable
from tests.conftest import T0, H

CFG = ProfileConfig()


def test_snapshot_round_trips_and_is_a_copy(event_factory) -> None:
    st = CustomerState("c-1")
    for k in range(3):
        apply(st, event_factory(t=T0 + k * H, product_id=f"p{k}"), CFG)
    snap = to_snapshot(st)
    restored = from_snapshot(pickle.loads(pickle.dumps(snap)))
    assert restored == st
    apply(st, event_factory(t=T0 + 4 * H), CFG)
    assert from_snapshot(snap) == restored  # later changes did not leak into the snapshot


def test_snapshot_carries_its_version() -> None:
    snap = to_snapshot(CustomerState("c-1"))
    assert snap[0] == STATE_VERSION == 3
    with pytest.raises(SnapshotVersionError, match="layout version 999"):
        from_snapshot((999, *snap[1:]))
    with pytest.raises(SnapshotVersionError):
        from_snapshot(())


def test_every_part_of_a_typical_customer_round_trips() -> None:
    st = typical_customer()
    for part in (st.purchases.orders, st.engagement.sessions, view(st, CFG)["cart"]["items"],
                 st.counters.active.buckets, st.preferences.values, st.category_views):  # fmt: skip
        assert part  # every part is exercised
    st.tags["vip"] = "true"  # the placeholder map travels too
    restored = from_snapshot(pickle.loads(pickle.dumps(to_snapshot(st))))
    assert restored == st
    assert view(restored, CFG) == view(st, CFG)
    # The restored state goes on exactly like the original.
    ev = Event("next", "order_completed", st.watermark + H, st.watermark + H, customer_id="c-1",
               payload={"order_id": "o-next", "revenue": 1.0})  # fmt: skip
    assert apply(restored, ev, CFG) == apply(st, ev, CFG)
    assert restored == st


def test_a_version_1_snapshot_is_upgraded() -> None:
    v1 = (1, "c-1", T0, 3, T0, {123: T0}, {"first_name": ("Ada", T0)}, T0, T0,
          {"product_viewed": 3}, {"shoes": (T0,)}, {}, {"shoes": ((T0, "p1"),)})  # fmt: skip
    st = from_snapshot(v1)
    assert (st.key, st.watermark, st.revision, st.attr("first_name")) == ("c-1", T0, 3, "Ada")
    assert st.seen.ids == {123: T0}
    assert view(st, CFG)["category_views_24h"] == {"shoes": 1}
    assert st.purchases.orders == 0
    assert from_snapshot(to_snapshot(st)) == st


def typical_customer(seed: int = 7) -> CustomerState:
    """60 events over 30 days: an identify, 3 carts that became orders, 40 product views
    across 4 categories, 10 email events, a preference update, page views."""
    rnd = random.Random(seed)
    events = []

    def add(kind: str, t: int, payload: dict, context: dict | None = None) -> None:
        eid = f"0f8fad5b-d9cb-469f-a165-{len(events):012d}"  # uuid-sized ids
        events.append(Event(eid, kind, t, t, customer_id="c-1001", source="web",
                            payload=payload, context=context))  # fmt: skip

    add("identify", T0, {"email": "ada.lovelace@example.com", "first_name": "Ada",
                         "last_name": "Lovelace", "signup_date": date(2026, 10, 1), "age": 36,
                         "location": {"country": "GB", "region": None, "city": "London"},
                         "traits": {"plan": '"gold"'}},
        {"timezone": "Europe/London"})  # fmt: skip
    categories = ["shoes", "bags", "jackets", "hats"]
    for i in range(40):
        t = T0 + rnd.randrange(30 * DAY_MS)
        c = categories[i % 4]
        product = {"product_id": f"{c[:3]}-{rnd.randrange(40):03d}", "name": f"{c} {i}",
                   "category": c, "price": 49.99, "currency": "GBP"}  # fmt: skip
        add("product_viewed", t, {"product": product, "session_id": f"s-{t // (2 * H)}"})
    for i in range(3):
        t = T0 + (i * 10 + 5) * DAY_MS
        shoe = {"product_id": f"sho-{i:03d}", "category": "shoes", "price": 89.0}
        add("cart_item_added", t - H, {"cart_id": "k", "item": {"product": shoe, "quantity": 1}})
        add("order_completed", t, {"order_id": f"ord-{1000 + i}", "revenue": 118.0,
                                   "currency": "GBP", "discount": 10.0,
                                   "items": [{"product": shoe, "quantity": 1},
                                             {"product": {"product_id": "hat-001",
                                                          "category": "hats", "price": 19.5},
                                              "quantity": 2}]})  # fmt: skip
    for i in range(10):
        t = T0 + rnd.randrange(30 * DAY_MS)
        add("email_event", t, {"action": ["delivered", "opened", "clicked"][i % 3],
                               "campaign_id": "cmp-1"})  # fmt: skip
    add("preference_updated", T0 + 3 * DAY_MS, {"preferences": {"language": "en"},
                                                "subscriptions": {"newsletter": True},
                                                "email_consent": True})  # fmt: skip
    last = T0 + 30 * DAY_MS
    add("cart_item_added", last - 2 * H, {"item": {"product": {"product_id": "bag-007",
                                                               "price": 120.0}}})  # fmt: skip
    while len(events) < 60:
        t = T0 + rnd.randrange(30 * DAY_MS)
        add("page_viewed", t, {"path": "/", "session_id": f"s-{t // (2 * H)}"})
    st = CustomerState("c-1001")
    for ev in sorted(events, key=lambda e: e.event_time):
        apply(st, ev, CFG)
    return st


def snapshot_bytes(st: CustomerState) -> int:
    return len(pickle.dumps(to_snapshot(st)))


def test_a_typical_customer_snapshot_is_at_most_2_kib() -> None:
    sizes = [snapshot_bytes(typical_customer(seed)) for seed in range(5)]
    assert max(sizes) <= 2048, sizes


def test_an_idle_customers_snapshot_shrinks() -> None:
    st = typical_customer()
    before = snapshot_bytes(st)
    lifetime = view(st, CFG)["purchases"]
    assert compact_idle(st, st.watermark + CFG.idle_ttl_ms + 1, CFG)
    after = snapshot_bytes(st)
    assert after < before * 0.75, (before, after)
    assert len(st.seen) == 0
    assert view(st, CFG)["purchases"] == lifetime
    assert from_snapshot(to_snapshot(st)) == st


def test_a_version_2_snapshot_reads_with_an_empty_rules_verdict(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory(t=T0), CFG)
    assert st.derived.lifecycle == "active"
    # v2 had neither the verdict nor the erasure time nor the merge target nor devices
    # nor the traits
    v2 = (2, *to_snapshot(st)[1:-6])
    restored = from_snapshot(v2)
    assert restored.derived.lifecycle is None
    assert restored.watermark == st.watermark


def test_a_merged_away_id_keeps_its_target_and_older_snapshots_read_without_one(
    event_factory,
) -> None:
    st = CustomerState("c-1", merged_into="c-2")
    assert from_snapshot(to_snapshot(st)).merged_into == "c-2"
    apply(st := CustomerState("c-1"), event_factory(t=T0), CFG)
    before_merges = to_snapshot(st)[:-4]  # written before the merge target was appended
    assert from_snapshot(before_merges) == st


def test_devices_survive_a_snapshot_and_older_snapshots_read_without_them(event_factory) -> None:
    st = CustomerState("c-1")
    ev = event_factory(t=T0)
    apply(st, replace(ev, anonymous_id="cookie-1"), CFG)
    assert st.devices == {"cookie-1": T0}
    assert from_snapshot(to_snapshot(st)) == st
    assert from_snapshot(to_snapshot(st)[:-3]).devices == {}  # before devices, traits, products


def test_a_snapshot_travels_as_portable_json_and_reads_back_equal(event_factory) -> None:
    st = CustomerState("c-1")
    for i in range(5):
        apply(st, event_factory(t=T0 + i * H, event_id=f"e{i}"), CFG)
    text = to_portable(to_snapshot(st))
    assert text.startswith("[3,")  # JSON text: a reader never unpickles it
    assert from_snapshot(from_portable(text)) == st


def test_peek_reads_the_times_a_timer_needs_without_restoring(event_factory) -> None:
    from state import next_deadline
    from state.profile import as_of
    from state.snapshot import peek

    st = CustomerState("c-1")
    apply(st, event_factory(t=T0), CFG)
    p = peek(to_snapshot(st))
    assert p is not None
    assert (p.watermark, p.as_of, p.next_deadline) == (
        st.watermark,
        as_of(st),
        next_deadline(st, CFG),
    )
    assert peek((2, *to_snapshot(st)[1:-2])) is None  # an older layout must be restored


def test_seen_ids_pack_as_the_documented_bytes() -> None:
    # Per id: the 8-byte digest (unsigned) then the 8-byte event time (signed), big-endian,
    # in the order remembered: the layout existing recovery stores hold.
    st = CustomerState("c-1")
    st.seen.ids = {2**64 - 1: -(2**62), 5: T0}
    packed = to_snapshot(st)[7]
    assert packed == (
        (2**64 - 1).to_bytes(8, "big") + (-(2**62)).to_bytes(8, "big", signed=True)
        + (5).to_bytes(8, "big") + T0.to_bytes(8, "big", signed=True)
    )  # fmt: skip
    assert list(from_snapshot(to_snapshot(st)).seen.ids.items()) == list(st.seen.ids.items())
