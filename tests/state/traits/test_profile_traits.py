"""Declared traits in the profile: folded by apply (only those the plan lists), shown in
the view, read by rules (with timers when a window decays), late events, snapshots,
merges, erasure, and the rules memo."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from state import CustomerState, Event, ProfileConfig, apply, view
from state.merge import merge_into
from state.outputs import Rejected, TagChange
from state.profile import ERASE_EVENT, advance, erase, facts_of, next_deadline, reevaluate
from state.rules import engine
from state.rules.model import DEFAULT_RULES, parse_rules
from state.snapshot import from_snapshot, to_snapshot
from state.traits.state import SKIPPED
from tests.conftest import T0, H

TRAITS = """
[traits.category_views_24h_t]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[traits.revenue_180d_t]
kind = "sum"
event = "order_completed"
value = "revenue"
window = "180d"
granularity = "day"

[traits.favourite_category]
kind = "most_frequent"
event = "product_viewed"
value = "product.category"
window = "30d"
granularity = "day"

[traits.last_checkout]
kind = "last_time"
event = "checkout_started"

[traits.webinar_topics]
kind = "unique_list"
event = "custom:webinar_attended"
value = "properties.topic"
where = "properties.minutes >= 10"

[traits.orders_lifetime]
kind = "count"
event = "order_completed"

[tags.shoe_fan]
when = "category_views_24h_t.shoes >= 3"

[tags.big_spender]
when = "revenue_180d_t >= 100"

[tags.pricing_curious]
when = "'pricing' in webinar_topics"
"""
RULES = parse_rules(DEFAULT_RULES.read_text() + TRAITS, "test.toml")
CFG = ProfileConfig(rules=RULES)


def view_(cid: str = "c-1", t: int = T0, **payload: Any) -> Event:
    return Event(f"v-{cid}-{t}-{payload}", "product_viewed", t, t, cid,
                 payload={"product": {"product_id": "p", **payload}})  # fmt: skip


def order(t: int, revenue: float, cid: str = "c-1") -> Event:
    return Event(f"o-{cid}-{t}", "order_completed", t, t, cid,
                 payload={"order_id": f"o{t}", "items": [], "revenue": revenue})  # fmt: skip


def webinar(t: int, topic: Any, minutes: Any, cid: str = "c-1") -> Event:
    props = {"topic": orjson.dumps(topic).decode(), "minutes": orjson.dumps(minutes).decode()}
    return Event(f"w-{cid}-{t}-{topic}", "custom", t, t, cid,
                 payload={"name": "webinar_attended", "properties": props})  # fmt: skip


def test_the_view_shows_every_trait_and_without_traits_is_unchanged() -> None:
    st_ = CustomerState("c-1")
    for i in range(3):
        apply(st_, view_(t=T0 + i * H, category="shoes"), CFG)
    apply(st_, order(T0 + 3 * H, 120.0), CFG)
    apply(st_, webinar(T0 + 4 * H, "pricing", 30), CFG)
    apply(st_, webinar(T0 + 4 * H + 1, "api", 3), CFG)  # where: too short, not folded
    traits = view(st_, CFG)["traits"]
    assert traits == {
        "category_views_24h_t": {"shoes": 3},
        "revenue_180d_t": 120.0,
        "favourite_category": "shoes",
        "last_checkout": None,
        "webinar_topics": ["pricing"],
        "orders_lifetime": 1,
    }
    assert {"shoe_fan", "big_spender", "pricing_curious"} <= set(st_.derived.tags)
    plain = CustomerState("c-1")
    apply(plain, view_(category="shoes"), ProfileConfig())
    assert "traits" not in view(plain, ProfileConfig())


def test_a_windowed_trait_decays_on_a_timer_at_its_moment() -> None:
    st_ = CustomerState("c-1")
    for i in range(3):
        apply(st_, view_(t=T0 + i * H, category="shoes"), CFG)
    assert "shoe_fan" in st_.derived.tags
    # The oldest view leaves [t - 24h, t] the millisecond after T0 + 24 h.
    assert next_deadline(st_, CFG) == T0 + 24 * H + 1
    assert advance(st_, CFG, T0 + 24 * H) == []
    out = advance(st_, CFG, T0 + 24 * H + 1)
    removed = [o for o in out if isinstance(o, TagChange) and o.tag == "shoe_fan"]
    assert len(removed) == 1
    assert not removed[0].added
    assert removed[0].event_time == T0 + 24 * H + 1


def test_late_event_folds_lifetime_traits_and_names_the_windowed_ones() -> None:
    st_ = CustomerState("c-1")
    apply(st_, order(T0 + 10 * H, 10.0), CFG)
    out = apply(st_, order(T0, 20.0), CFG)  # 10 h late; the allowed lateness is 1 h
    late = [o for o in out if isinstance(o, Rejected)]
    assert len(late) == 1
    assert late[0].reason == "late_event"
    assert "trait revenue_180d_t" in late[0].error
    assert "trait orders_lifetime" not in late[0].error
    traits = view(st_, CFG)["traits"]
    assert traits["orders_lifetime"] == 2
    assert traits["revenue_180d_t"] == 10.0


def test_only_the_traits_the_plan_lists_are_folded() -> None:
    from state.profile import trait_plan

    plan = trait_plan(RULES)
    names = lambda ev: [t.name for t in plan.for_event(ev)]  # noqa: E731
    assert names(view_(category="x")) == ["category_views_24h_t", "favourite_category"]
    assert names(webinar(T0, "x", 1)) == ["webinar_topics"]
    other = Event("x", "custom", T0, T0, "c-1", payload={"name": "other", "properties": {}})
    assert names(other) == []
    assert plan.for_event(Event("p", "page_viewed", T0, T0, "c-1")) == ()


def test_ill_typed_property_is_skipped_and_counted() -> None:
    st_ = CustomerState("c-1")
    before = SKIPPED["webinar_topics", "value"]
    apply(st_, webinar(T0, 42, 30), CFG)  # a number where a string is declared
    assert view(st_, CFG)["traits"]["webinar_topics"] == []
    assert SKIPPED["webinar_topics", "value"] == before + 1


def test_snapshots_keep_traits_and_older_ones_read_with_none() -> None:
    st_ = CustomerState("c-1")
    apply(st_, view_(category="shoes"), CFG)
    apply(st_, webinar(T0 + 1, "pricing", 30), CFG)
    restored = from_snapshot(to_snapshot(st_))
    assert view(restored, CFG) == view(st_, CFG)
    assert to_snapshot(restored) == to_snapshot(st_)
    older = from_snapshot(to_snapshot(st_)[:-2])  # a layout before traits (and products)
    assert not older.traits
    assert view(older, CFG)["traits"]["webinar_topics"] == []


def test_a_changed_definition_starts_empty() -> None:
    st_ = CustomerState("c-1")
    apply(st_, webinar(T0, "pricing", 30), CFG)
    changed = parse_rules(DEFAULT_RULES.read_text() + TRAITS.replace(">= 10", ">= 11"))
    cfg2 = ProfileConfig(rules=changed)
    restored = from_snapshot(to_snapshot(st_))
    assert view(restored, cfg2)["traits"]["webinar_topics"] == []
    assert view(restored, cfg2)["traits"]["orders_lifetime"] == 0
    apply(restored, webinar(T0 + 2 * H, "api", 30), cfg2)  # compacts: the stale state goes
    assert view(restored, cfg2)["traits"]["webinar_topics"] == ["api"]
    assert len(restored.traits.dump()) == 2  # one definition kept


def test_erasure_forgets_traits() -> None:
    st_ = CustomerState("c-1")
    apply(st_, webinar(T0, "pricing", 30), CFG)
    erase(st_, T0 + 1)
    assert not st_.traits
    assert ERASE_EVENT == "erase"


def test_merge_of_two_customers_equals_one_who_did_both() -> None:
    a, b, one = CustomerState("A"), CustomerState("B"), CustomerState("B")
    evs_a = [view_("A", T0, category="shoes"), order(T0 + H, 50.0, "A"),
             webinar(T0 + 2 * H, "pricing", 20, "A")]  # fmt: skip
    evs_b = [view_("B", T0 + 30 * 60_000, category="shoes"), order(T0 + 2 * H, 60.0, "B"),
             view_("B", T0 + 2 * H, category="hats")]  # fmt: skip
    for ev in evs_a:
        apply(a, ev, CFG)
    for ev in evs_b:
        apply(b, ev, CFG)
    both = [replace(ev, customer_id="B") for ev in evs_a] + evs_b
    for ev in sorted(both, key=lambda e: e.event_time):
        apply(one, ev, CFG)
    merge_into(b, a, CFG)
    reevaluate(b, CFG, "merge")
    assert view(b, CFG)["traits"] == view(one, CFG)["traits"]
    assert b.derived.tags == one.derived.tags


def _fresh_tags(st_: CustomerState) -> tuple[str, ...]:
    at = max(st_.watermark, st_.clock)
    return engine.derive(RULES, facts_of(st_, CFG, at), at).tags


_ops = st.lists(
    st.tuples(st.sampled_from(["view", "order", "webinar", "page", "timer"]),
              st.integers(0, 40 * H), st.sampled_from(["shoes", "hats"])),
    min_size=1, max_size=30,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(_ops)
def test_the_memo_gives_the_verdicts_a_fresh_evaluation_gives(ops: list[Any]) -> None:
    """After every event or timer, the cached evaluation's tags equal those derived from
    scratch: a trait is dirty when an event its plan lists arrives or its window moves."""
    st_ = CustomerState("c-1")
    t = T0
    for i, (op, dt, cat) in enumerate(ops):
        t += dt // 10
        if op == "view":
            apply(st_, view_(t=t, category=cat), CFG)
        elif op == "order":
            apply(st_, order(t, 40.0), CFG)
        elif op == "webinar":
            apply(st_, webinar(t, cat, 30), CFG)
        elif op == "page":
            apply(st_, Event(f"p{i}", "page_viewed", t, t, "c-1"), CFG)
        else:
            t += dt
            advance(st_, CFG, t)
        assert st_.derived.tags == _fresh_tags(st_)


_batch = st.lists(
    st.tuples(st.integers(0, 50 * 60_000), st.sampled_from(["shoes", "hats", "bags"]),
              st.sampled_from(["view", "order", "webinar"])),
    min_size=1, max_size=20,
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(_batch, st.randoms(use_true_random=False), st.data())
def test_any_order_within_the_lateness_with_duplicates_gives_the_same_traits(
    rows: list[Any], rng: Any, data: Any
) -> None:
    events = []
    for i, (dt, cat, kind) in enumerate(rows):
        t = T0 + dt
        if kind == "view":
            ev = view_(t=t, category=cat)
        elif kind == "order":
            ev = order(t, 10.25 * (i % 3 + 1))
        else:
            ev = webinar(t, cat, 15)
        events.append(replace(ev, event_id=f"x{i}"))
    dups = data.draw(st.lists(st.sampled_from(events), max_size=5))
    shuffled = events + dups
    rng.shuffle(shuffled)
    a, b = CustomerState("c-1"), CustomerState("c-1")
    for ev in sorted(events, key=lambda e: e.event_time):
        apply(a, ev, CFG)
    for ev in shuffled:
        out = apply(b, ev, CFG)
        assert not [o for o in out if isinstance(o, Rejected)]
    assert view(a, CFG)["traits"] == view(b, CFG)["traits"]


def test_portable_snapshots_carry_traits() -> None:
    """A merge handover sends the snapshot as JSON (state.snapshot.to_portable)."""
    from state.snapshot import from_portable, to_portable

    st_ = CustomerState("c-1")
    for i, cat in enumerate(["shoes", "hats", "shoes"]):
        apply(st_, view_(t=T0 + i * H, category=cat), CFG)
    apply(st_, order(T0 + 3 * H, 80.5), CFG)
    apply(st_, webinar(T0 + 4 * H, "pricing", 30), CFG)
    apply(st_, Event("k", "checkout_started", T0 + 5 * H, T0 + 5 * H, "c-1"), CFG)
    back = from_snapshot(from_portable(to_portable(to_snapshot(st_))))
    assert view(back, CFG) == view(st_, CFG)
    assert view(back, CFG)["traits"]["last_checkout"] == T0 + 5 * H


def test_idle_compaction_keeps_trait_values_and_drops_expired_entries() -> None:
    from state.profile import compact_idle

    st_ = CustomerState("c-1")
    apply(st_, view_(t=T0, category="shoes"), CFG)
    apply(st_, order(T0 + H, 80.0), CFG)
    now = T0 + CFG.idle_ttl_ms + 2 * H
    expected = view(st_, CFG, at=now)["traits"]
    assert compact_idle(st_, now, CFG)
    assert view(st_, CFG)["traits"] == expected
    assert expected["category_views_24h_t"] == {}
    assert expected["revenue_180d_t"] == 80.0
    grouped = RULES.compiled_traits["category_views_24h_t"]
    assert st_.traits.live.get(grouped.digest, {}) == {}


_HOSTILE = """
[traits.h_sum]
kind = "sum"
event = "custom"
value = "properties.v"
by = "properties.k"
window = "2d"
granularity = "day"

[traits.h_avg]
kind = "avg"
event = "custom"
value = "properties.v"

[traits.h_list]
kind = "unique_list"
event = "custom"
value = "properties.v"
where = "properties.v != 'skip' and properties.v * 2 > 1"
"""
_HCFG = ProfileConfig(rules=parse_rules(DEFAULT_RULES.read_text() + _HOSTILE))
_json_text = st.one_of(
    st.text(max_size=80),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**80), 2**80).map(str),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=10),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                    max_size=3),
                 max_leaves=6).map(lambda v: orjson.dumps(v).decode()),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_json_text, _json_text), min_size=1, max_size=12))
def test_hostile_properties_never_raise_and_the_view_encodes(rows: list[Any]) -> None:
    """Properties are not bounded at the edge: whatever they hold, folding never raises,
    and the view (with every trait) still encodes as JSON."""
    st_ = CustomerState("c-1")
    for i, (v, k) in enumerate(rows):
        ev = Event(f"h{i}", "custom", T0 + i, T0 + i, "c-1",
                   payload={"name": "x", "properties": {"v": v, "k": k}})  # fmt: skip
        apply(st_, ev, _HCFG)
    orjson.dumps(view(st_, _HCFG))
    assert from_snapshot(to_snapshot(st_)).traits.dump() == st_.traits.dump()


def test_the_lateness_edge() -> None:
    """An event exactly ``allowed_lateness_ms`` behind the newest still enters windowed
    traits; one more millisecond behind enters only the lifetime ones."""
    lateness = CFG.allowed_lateness_ms
    on_edge, past = CustomerState("c-1"), CustomerState("c-1")
    for st_ in (on_edge, past):
        apply(st_, order(T0 + 10 * H, 10.0), CFG)
    assert not [o for o in apply(on_edge, order(T0 + 10 * H - lateness, 5.0), CFG)
                if isinstance(o, Rejected)]  # fmt: skip
    out = apply(past, order(T0 + 10 * H - lateness - 1, 5.0), CFG)
    assert [o.reason for o in out if isinstance(o, Rejected)] == ["late_event"]
    assert view(on_edge, CFG)["traits"]["revenue_180d_t"] == 15.0
    assert view(past, CFG)["traits"]["revenue_180d_t"] == 10.0
    assert view(on_edge, CFG)["traits"]["orders_lifetime"] == 2
    assert view(past, CFG)["traits"]["orders_lifetime"] == 2
