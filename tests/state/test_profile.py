from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from state import (
    CustomerState,
    Event,
    ProfileConfig,
    Rejected,
    advance,
    apply,
    compact,
    compact_idle,
    is_idle,
    next_deadline,
    view,
)
from state.counters import Counters
from state.evaluation_plan import WINDOWS as _WINDOWS
from state.events import DAY_MS
from state.profile import _window_end
from state.rules.model import parse_rules
from tests.conftest import T0, H

CFG = ProfileConfig()


def identify(eid: str, t: int, **payload) -> Event:
    return Event(eid, "identify", t, t, customer_id="c-1", payload=payload)


def test_attributes_last_write_wins_by_event_time_not_arrival() -> None:
    st = CustomerState("c-1")
    apply(st, identify("e2", T0 + H, first_name="New"), CFG)
    apply(st, identify("e1", T0, first_name="Old", last_name="Kept"), CFG)
    assert st.attr("first_name") == "New"
    assert st.attr("last_name") == "Kept"


def test_location_and_traits_land_in_attributes() -> None:
    st = CustomerState("c-1")
    apply(st, identify("e1", T0, location={"country": "DE", "city": "Berlin"},
                       traits={"plan": '"gold"'}), CFG)  # fmt: skip
    assert view(st, CFG)["attributes"] == {"city": "Berlin", "country": "DE",
                                           "trait:plan": '"gold"'}  # fmt: skip


def test_view_reports_live_window_counts(event_factory) -> None:
    st = CustomerState("c-1")
    for k in range(2):
        apply(st, event_factory(t=T0 + k * H), CFG)
    apply(st, event_factory(t=T0 + 30 * H, category="bags"), CFG)
    v = view(st, CFG)
    assert v["category_views_24h"] == {"bags": 1}
    assert v["event_counts"] == {"product_viewed": 3}
    assert (v["first_seen"], v["last_active"]) == (T0, T0 + 30 * H)


def test_compact_drops_expired_windows_and_ids(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory(t=T0), CFG)
    apply(st, event_factory(t=T0 + 10 * DAY_MS, category="bags"), CFG)
    compact(st, CFG)
    assert sorted(st.category_views) == ["bags"]
    assert len(st.seen) == 1


# Events within the allowed lateness of each other, so no permutation makes one late.
_events = st.lists(
    st.tuples(
        st.integers(0, CFG.allowed_lateness_ms),
        st.sampled_from(["shoes", "bags"]),
        st.sampled_from(["identify", "product_viewed"]),
        st.sampled_from(["Ada", "Ben", "Cleo"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(_events, st.randoms(use_true_random=False), st.lists(st.integers(0, 11), max_size=4))
def test_permutations_with_duplicates_give_the_same_profile(specs, rnd, dup_idx) -> None:
    events = []
    for i, (dt, category, kind, name) in enumerate(specs):
        payload = ({"first_name": name} if kind == "identify"
                   else {"product": {"product_id": f"p{i}", "category": category}})  # fmt: skip
        events.append(Event(f"e{i}", kind, T0 + dt, T0 + dt, customer_id="c-1", payload=payload))
    reference = CustomerState("c-1")
    for ev in sorted(events, key=lambda e: (e.event_time, e.event_id)):
        apply(reference, ev, CFG)
    shuffled = events + [events[i % len(events)] for i in dup_idx]
    rnd.shuffle(shuffled)
    other = CustomerState("c-1")
    for ev in shuffled:
        apply(other, ev, CFG)
    assert view(other, CFG) == view(reference, CFG)
    assert other.seen == reference.seen


def test_view_keeps_its_keys(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory(t=T0), CFG)
    v = view(st, CFG)
    assert {"attributes", "first_seen", "last_active", "event_counts", "category_views_24h",
            "revision", "customer_id", "key"} <= v.keys()  # fmt: skip
    assert {"last_order_at", "product_views_24h", "active_days_7d", "active_days_30d",
            "orders_90d", "revenue_180d", "purchases", "engagement", "preferences",
            "unsubscribed", "cart", "tags"} <= v.keys()  # fmt: skip


def test_attributes_are_bounded() -> None:
    cfg = ProfileConfig(max_attributes=4)
    st = CustomerState("c-1")
    for k in range(10):
        apply(st, identify(f"e{k}", T0 + k, traits={f"t{k}": "1"}), cfg)
    assert sorted(st.attrs) == ["trait:t6", "trait:t7", "trait:t8", "trait:t9"]


# --- Idle time to live -------------------------------------------------------------


def test_compact_idle_waits_for_the_ttl(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory(t=T0), CFG)
    assert not is_idle(st, T0 + CFG.idle_ttl_ms, CFG)
    assert not compact_idle(st, T0 + CFG.idle_ttl_ms, CFG)
    assert len(st.seen) == 1
    assert is_idle(st, T0 + CFG.idle_ttl_ms + 1, CFG)
    assert compact_idle(st, T0 + CFG.idle_ttl_ms + 1, CFG)
    assert len(st.seen) == 0


def test_compact_idle_keeps_the_lifetime_profile_and_live_long_windows(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, identify("e0", T0, first_name="Ada"), CFG)
    apply(st, event_factory("order_completed", T0 + H,
                            payload={"order_id": "o", "revenue": 5.0}), CFG)  # fmt: skip
    viewed = {"product": {"product_id": "p", "category": "shoes"}, "session_id": "s"}
    apply(st, event_factory(t=T0 + 2 * H, payload=viewed), CFG)
    before = view(st, CFG)
    now = T0 + 2 * H + 31 * DAY_MS
    assert compact_idle(st, now, CFG)
    after = view(st, CFG)
    lifetime = ["attributes", "first_seen", "last_active", "last_order_at", "event_counts",
                "purchases", "engagement", "preferences", "cart", "tags", "revision"]  # fmt: skip
    assert {k: after[k] for k in lifetime} == {k: before[k] for k in lifetime}
    # Windows are now those ending at `now`: the 24-hour and 30-day ones are empty, the
    # order is still within 90 and 180 days.
    assert (after["category_views_24h"], after["product_views_24h"]) == ({}, {})
    assert (after["active_days_7d"], after["active_days_30d"]) == (0, 0)
    assert (after["orders_90d"], after["revenue_180d"]) == (1, 5.0)
    assert view(st, CFG) == view(st, CFG, at=now)
    assert not st.category_views
    assert not st.counters.product_views
    assert not st.engagement.recent_sessions


def test_after_idle_compaction_an_old_event_is_refused_not_double_counted(event_factory) -> None:
    st = CustomerState("c-1")
    first = event_factory(t=T0)
    apply(st, first, CFG)
    compact_idle(st, T0 + 40 * DAY_MS, CFG)
    [rejected] = apply(st, first, CFG)  # re-delivered: its id is forgotten
    assert rejected.reason == "beyond_dedupe_horizon"
    assert st.event_counts == {"product_viewed": 1}
    assert apply(st, event_factory(t=T0 + 40 * DAY_MS), CFG) == []
    assert st.event_counts == {"product_viewed": 2}
    assert view(st, CFG)["category_views_24h"] == {"shoes": 1}


# --- Any arrival order within the allowed lateness, with duplicates: the same profile ---

_KINDS = [
    "identify", "product_viewed", "page_viewed", "order_completed", "cart_item_added",
    "cart_item_removed", "checkout_started", "email_event", "preference_updated", "custom",
]  # fmt: skip


def _payload(kind: str, i: int, t: int, pick: int, amount: int, flag: bool | None) -> dict:
    """A payload of ``kind``; ``pick`` chooses among a few names, ``amount`` is in cents."""
    product = {"product_id": f"p{pick % 5}", "category": ["shoes", "bags", "hats"][pick % 3],
               "price": amount / 100}  # fmt: skip
    session = f"s{t // (6 * H)}-{pick % 2}"  # a session lasts less than the session memory
    if kind == "identify":
        return {"first_name": ["Ada", "Ben", "Cleo"][pick % 3], "age": 20 + pick,
                "traits": {"plan": str(flag)}}  # fmt: skip
    if kind == "product_viewed":
        return {"product": product, "session_id": session}
    if kind == "page_viewed":
        return {"path": "/", "session_id": session if flag is not False else None}
    if kind == "order_completed":
        return {"order_id": f"o{i}", "revenue": amount / 100, "currency": ["EUR", "USD"][pick % 2],
                "items": [{"product": product, "quantity": 1 + pick % 3}]}  # fmt: skip
    if kind in ("cart_item_added", "cart_item_removed"):
        return {"cart_id": "k", "item": {"product": product, "quantity": 1 + pick % 2}}
    if kind == "email_event":
        return {"action": ["delivered", "opened", "clicked", "bounced", "unsubscribed"][pick % 5]}
    if kind == "preference_updated":
        return {"preferences": {f"k{pick % 2}": str(amount)},
                "subscriptions": {f"t{pick % 2}": bool(flag)}, "email_consent": flag}  # fmt: skip
    return {}


_specs = st.lists(
    st.tuples(
        st.integers(0, 3 * DAY_MS),  # event time offset: spans days, so windows move
        st.sampled_from(_KINDS),
        st.integers(0, 7),
        st.integers(1, 20_000),
        st.sampled_from([True, False, None]),
        st.integers(0, CFG.allowed_lateness_ms),  # arrival jitter, at most the lateness
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_specs, st.lists(st.tuples(st.integers(0, 29), st.integers(0, 2 * H)), max_size=6))
def test_every_event_type_in_any_order_within_lateness_gives_the_same_profile(specs, dups) -> None:
    # Arrival order is by event time plus a jitter of at most the allowed lateness, so
    # each event arrives at most that far behind any event that arrived before it:
    # every such order is one the logic must place exactly. Duplicates arrive anywhere.
    events = []
    arrival = []
    for i, (dt, kind, pick, amount, flag, jitter) in enumerate(specs):
        t = T0 + dt
        ev = Event(f"e{i}", kind, t, t, customer_id="c-1",
                   payload=_payload(kind, i, t, pick, amount, flag))  # fmt: skip
        events.append(ev)
        arrival.append((t + jitter, i, ev))
    for j, (i, delay) in enumerate(dups):
        ev = events[i % len(events)]
        arrival.append((ev.event_time + delay, len(events) + j, ev))
    reference = CustomerState("c-1")
    ref_outs = []
    for ev in sorted(events, key=lambda e: (e.event_time, e.event_id)):
        ref_outs += apply(reference, ev, CFG)
    other = CustomerState("c-1")
    outs = []
    for _, _, ev in sorted(arrival, key=lambda a: a[:2]):
        outs += apply(other, ev, CFG)
    assert view(other, CFG) == view(reference, CFG)
    assert other.seen == reference.seen
    # Nothing was late: no event is reported, in either order.
    assert not [o for o in ref_outs + outs if isinstance(o, Rejected)]


# --- Rules evaluation reuses what cannot have changed: the same as evaluating everything ---

_MANY_FACTS_RULES = parse_rules("""
version = 1
[tags.buyer]
when = "orders >= 1 and revenue > 10"
[tags.big_basket]
when = "cart_value >= 100 or cart_items >= 3"
[tags.cart_waiting]
when = "cart_items > 0 and since(cart_updated_at) >= 2h"
[tags.engaged]
when = "email_engagements_7d >= 1 or active_days_7d >= 2 or active_days_30d >= 3"
[tags.spender]
when = "revenue_180d >= 100 and orders_90d >= 1"
[tags.browser]
when = "count(category_views_24h) >= 2 or page_views >= 3"
[tags.reader]
when = "email_opens + email_clicks >= 1 and not unsubscribed and exists(email)"
[tags.local]
when = "exists(attributes.timezone) and 'buyer' in tags"
[tags.odd_clock]
when = "since(last_active) * 2 > 1d"
[tags.aov]
when = "average_order_value > 50"
[preference_tags]
k0 = "pref:"
[[lifecycle]]
name = "new"
when = "since(signup_at) < 2d and orders == 0"
[[lifecycle]]
name = "fresh"
when = "since(first_seen) <= 1d and 'browser' in tags"
[[lifecycle]]
name = "active"
when = "since(last_active) < 12h"
[[lifecycle]]
name = "lapsed"
when = "since(last_active) <= 2d and 'engaged' in tags"
[[lifecycle]]
name = "gone"
when = "true"
[segments.vip]
when = "'buyer' in tags and lifecycle == 'active' and since(last_order_at) <= 1d"
[segments.subscribed]
when = "subscriptions.t0 == true or exists(preferences)"
[segments.both]
when = "'vip' in segments and 'pref:1' in tags"
[triggers.cart]
type = "tag_added"
tag = "cart_waiting"
[triggers.lapsed]
type = "lifecycle_entered"
stage = "lapsed"
cooldown = "1d"
[triggers.vip]
type = "segment_entered"
segments = ["vip", "both"]
[triggers.views]
type = "category_views"
threshold = 2
window = "6h"
""")


def _memo_payload(kind: str, i: int, t: int, pick: int, amount: int, flag: bool | None) -> dict:
    if kind == "identify" and pick % 2:
        return {"email": f"p{pick}@example.com", "signup_date": "2026-10-26"}
    if kind == "preference_updated":
        return {"preferences": {"k0": f"{pick % 3},{amount % 2}"},
                "subscriptions": {f"t{pick % 2}": bool(flag)}, "email_consent": flag}  # fmt: skip
    return _payload(kind, i, t, pick, amount, flag)


_histories = st.lists(
    st.tuples(
        st.integers(0, 4 * DAY_MS),  # event time offset
        st.sampled_from([*_KINDS, "app_opened"]),  # and a type the rules know nothing of
        st.integers(0, 7),
        st.integers(1, 20_000),
        st.sampled_from([True, False, None]),
        st.sampled_from([None, "clock", "idle", "timezone", "again"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_histories, st.sampled_from(["default", "many"]))
def test_reusing_the_last_evaluation_equals_evaluating_every_rule(history, which) -> None:
    # Events in any order (some late, some beyond the horizon, some repeated), timers
    # at arbitrary moments, idle compaction: the state that reuses the last evaluation's
    # facts and verdicts gives exactly the outputs, deadlines and profile of one that
    # forgets them before every step and so evaluates every rule from scratch.
    cfg = CFG if which == "default" else ProfileConfig(rules=_MANY_FACTS_RULES)
    fast, full = CustomerState("c-1"), CustomerState("c-1")

    def both(step: Callable[[CustomerState], object]) -> None:
        full.derived.memo = None
        assert step(fast) == step(full)
        full.derived.memo = None
        assert next_deadline(fast, cfg) == next_deadline(full, cfg)
        assert view(fast, cfg) == view(full, cfg)
        assert fast.derived == full.derived

    previous: Event | None = None
    for i, (dt, kind, pick, amount, flag, then) in enumerate(history):
        t = T0 + dt
        context = {"timezone": f"Europe/Z{pick % 2}"} if then == "timezone" else None
        ev = Event(f"e{i}", kind, t, t, customer_id="c-1", context=context,
                   payload=_memo_payload(kind, i, t, pick, amount, flag))  # fmt: skip
        both(lambda s, ev=ev: apply(s, ev, cfg))
        if then == "again" and previous is not None:
            both(lambda s, ev=previous: apply(s, ev, cfg))
        elif then == "clock":
            until = t + (pick + 1) * amount * 1_000
            both(lambda s, until=until: advance(s, cfg, until))
        elif then == "idle":
            now = t + cfg.idle_ttl_ms + amount
            both(lambda s, now=now: (advance(s, cfg, now), compact_idle(s, now, cfg)))
        previous = ev
    end = T0 + 40 * DAY_MS
    both(lambda s: advance(s, cfg, end))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["active", "orders", "revenue", "emails"]),
            st.integers(0, 200),
            st.integers(0, 3),
        ),
        max_size=12,
    ),
    st.integers(0, 400 * DAY_MS),
)
def test_the_window_ends_the_evaluation_keeps_are_the_counters_next_change(buckets, at) -> None:
    counters = Counters()
    for name, day, amount in buckets:
        getattr(counters, name).buckets[day] = amount
    ends = [_window_end(counter(counters), days, at) for counter, days in _WINDOWS.values()]
    assert min((t for t in ends if t is not None), default=None) == counters.next_change(at)
