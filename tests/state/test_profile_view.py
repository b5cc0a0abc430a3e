"""The profile view: the same content as built section by section by each module's own
view, whether a section takes the shortcut for an empty state or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bench.fold_rules import events, with_traits
from state import CustomerState, Event, ProfileConfig, apply, as_of, view
from state.config import default_rules
from state.rules.model import DEFAULT_RULES
from tests.conftest import T0, H


def reference(st: CustomerState, cfg: ProfileConfig) -> dict[str, Any]:
    """The view as it was built before the shortcuts (commit b5e7e27), every section by
    its own module."""
    at = as_of(st)
    counts = st.event_counts
    declared = cfg.rules.compiled_traits
    return {
        "customer_id": st.customer_id,
        "key": st.key,
        "revision": st.revision,
        "attributes": {name: value for name, (value, _) in sorted(st.attrs.items())},
        "first_seen": st.first_seen,
        "last_active": st.last_active,
        "last_order_at": st.purchases.last_order_at,
        "event_counts": dict(sorted(counts.items())),
        "category_views_24h": {
            c: n
            for c, times in sorted(st.category_views.items())
            if (n := times.count_in(at, cfg.category_interest.window_ms))
        },
        **st.counters.view(at),
        "purchases": st.purchases.view(),
        "engagement": {
            **st.engagement.view(),
            "page_views": counts.get("page_viewed", 0),
            "product_views": counts.get("product_viewed", 0),
        },
        "preferences": st.preferences.view(),
        "unsubscribed": st.unsubscribed,
        "cart": st.cart.view(cfg),
        "tags": list(st.derived.tags),
        "lifecycle": st.derived.lifecycle,
        "segments": list(st.derived.segments),
        "custom_tags": dict(sorted(st.tags.items())),
        **(
            {"traits": {name: st.traits.value(tr, at) for name, tr in declared.items()}}
            if declared
            else {}
        ),
    }


def fold(evs: list[Event], cfg: ProfileConfig) -> list[CustomerState]:
    sts: dict[str, CustomerState] = {}
    for ev in evs:
        key = ev.customer_id or ""
        apply(sts.setdefault(key, CustomerState(key)), ev, cfg)
    return list(sts.values())


WORKLOAD = events(4_000, 600)


@pytest.mark.parametrize("traits", [False, True], ids=["shipped rules", "20 traits"])
def test_the_view_of_every_workload_customer_is_the_section_by_section_view(traits: bool) -> None:
    rules = with_traits(DEFAULT_RULES.read_text(), 20, matched=True) if traits else default_rules()
    cfg = ProfileConfig(rules=rules)
    sts = fold(WORKLOAD, cfg)
    shortcut = {"purchases": 0, "cart": 0, "preferences": 0}
    for st in sts:
        v = view(st, cfg)
        assert orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS) == orjson.dumps(
            reference(st, cfg), option=orjson.OPT_NON_STR_KEYS
        )
        assert ("traits" in v) is traits
        shortcut["purchases"] += v["purchases"]["order_count"] == 0
        shortcut["cart"] += not v["cart"]["items"]
    # Both paths of the empty-section shortcut are taken by this workload.
    assert 0 < shortcut["purchases"] < len(sts)
    assert 0 < shortcut["cart"] < len(sts)


def test_sections_changed_from_empty_show_their_own_view(
    event_factory: Callable[..., Event],
) -> None:
    cfg = ProfileConfig()
    st = CustomerState("c-1")
    apply(st, event_factory("page_viewed", T0, payload={"path": "/"}), cfg)
    before = view(st, cfg)
    line = {"product": {"product_id": "p1", "category": "shoes", "price": 20.0}, "quantity": 2}
    apply(st, event_factory("cart_item_added", T0 + H, payload={"item": line}), cfg)
    apply(st, event_factory("preference_updated", T0 + 2 * H,
                            payload={"preferences": {"size": "42"}}), cfg)  # fmt: skip
    apply(st, event_factory("order_completed", T0 + 3 * H, payload={
        "order_id": "o1", "revenue": 40.0, "items": [line], "currency": "EUR"}), cfg)  # fmt: skip
    after = view(st, cfg)
    assert before["purchases"]["order_count"] == 0
    assert before["cart"]["items"] == []
    assert after["purchases"] == st.purchases.view()
    assert after["purchases"]["order_count"] == 1
    assert after["preferences"] == st.preferences.view()
    assert after["preferences"]["values"] == {"size": "42"}
    assert after["cart"] == st.cart.view(cfg)
    assert after == reference(st, cfg)


def test_a_configuration_with_traits_after_one_without_shows_its_traits() -> None:
    """The per-configuration lookups are per configuration, not the first one seen."""
    plain, traits = (
        ProfileConfig(),
        ProfileConfig(rules=with_traits(DEFAULT_RULES.read_text(), 2, matched=True)),
    )
    st = fold(WORKLOAD[:50], plain)[0]
    assert "traits" not in view(st, plain)
    assert sorted(view(st, traits)["traits"]) == ["bench_0", "bench_1"]
    assert "traits" not in view(st, plain)
