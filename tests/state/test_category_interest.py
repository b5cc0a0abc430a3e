"""The case study: N views of one category within 24 hours fire one trigger."""

from collections.abc import Callable

import pytest

from state import CustomerState, Event, ProfileConfig, Rejected, Trigger, apply
from state.rules.model import parse_rules
from tests.conftest import T0, H

CFG = ProfileConfig()


def category_rules(threshold: int = 3, window: str = "24h", cooldown: str = "0m") -> ProfileConfig:
    """The default profile bounds with one ``category_views`` trigger rule."""
    rules = parse_rules(
        f"""version = 1
[triggers.category_interest]
type = "category_views"
threshold = {threshold}
window = "{window}"
cooldown = "{cooldown}"
"""
    )
    return ProfileConfig(rules=rules)


NO_COOLDOWN = category_rules()


def run(events: list[Event], cfg: ProfileConfig = CFG, key: str = "c-1"):
    st = CustomerState(key)
    outs = [o for ev in events for o in apply(st, ev, cfg)]
    return st, outs


def triggers(outs) -> list[Trigger]:
    return [o for o in outs if isinstance(o, Trigger)]


def test_three_views_within_24h_fire_once(event_factory: Callable[..., Event]) -> None:
    evs = [event_factory(t=T0 + d, product_id=f"sku-{i}")
           for i, d in enumerate((0, H, 23 * H))]  # fmt: skip
    _, outs = run(evs)
    [trig] = triggers(outs)
    assert trig.rule == "category_interest"
    assert trig.category == "shoes"
    assert trig.customer_id == "c-1"
    assert trig.event_time == T0 + 23 * H
    assert trig.product_ids == ("sku-0", "sku-1", "sku-2")


def test_first_view_just_outside_the_window_fires_nothing(event_factory) -> None:
    evs = [event_factory(t=T0 + d) for d in (0, 12 * H, 24 * H + 1)]
    _, outs = run(evs)
    assert triggers(outs) == []


def test_views_exactly_24h_apart_are_in_one_window(event_factory) -> None:
    evs = [event_factory(t=T0 + d) for d in (0, 12 * H, 24 * H)]
    _, outs = run(evs)
    assert [t.event_time for t in triggers(outs)] == [T0 + 24 * H]


def test_a_duplicated_event_does_not_count_twice(event_factory) -> None:
    first = event_factory(t=T0)
    second = event_factory(t=T0 + H)
    st, outs = run([first, first, second, second])
    assert triggers(outs) == []
    assert st.event_counts == {"product_viewed": 2}
    _, outs = run([first, first, second, event_factory(t=T0 + 2 * H)])
    assert len(triggers(outs)) == 1


def test_out_of_order_within_lateness_is_placed_correctly(event_factory) -> None:
    # Arrival order: t+2h, t+30min (late by 1.5 h, allowed lateness 2 h), t+1h.
    cfg = ProfileConfig(allowed_lateness_ms=2 * H)
    evs = [event_factory(t=T0 + 2 * H), event_factory(t=T0 + H // 2), event_factory(t=T0 + H)]
    _, outs = run(evs, cfg)
    [trig] = triggers(outs)
    # The window ending at the latest view now holds all three.
    assert trig.event_time == T0 + 2 * H
    assert not [o for o in outs if isinstance(o, Rejected)]


def test_view_later_than_allowed_lateness_is_recorded_not_counted(event_factory) -> None:
    cfg = ProfileConfig(allowed_lateness_ms=H)
    evs = [event_factory(t=T0 + 10 * H), event_factory(t=T0 + 9 * H),
           event_factory(t=T0 + 5 * H)]  # fmt: skip
    st, outs = run(evs, cfg)
    [rejected] = [o for o in outs if isinstance(o, Rejected)]
    assert rejected.reason == "late_event"
    assert rejected.applied is True
    assert rejected.event_id == evs[2].event_id
    assert triggers(outs) == []
    # Lifetime aggregates still took it.
    assert st.event_counts["product_viewed"] == 3
    assert st.first_seen == T0 + 5 * H


def test_event_beyond_the_dedupe_horizon_is_refused(event_factory) -> None:
    cfg = ProfileConfig(dedupe_horizon_ms=48 * H)
    evs = [event_factory(t=T0 + 100 * H), event_factory(t=T0)]
    st, outs = run(evs, cfg)
    [rejected] = [o for o in outs if isinstance(o, Rejected)]
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "beyond_dedupe_horizon"
    assert rejected.applied is False
    assert st.event_counts == {"product_viewed": 1}


def test_spent_views_need_a_fresh_threshold(event_factory) -> None:
    evs = [event_factory(t=T0 + k * H) for k in range(6)]
    _, outs = run(evs, NO_COOLDOWN)
    assert [t.event_time for t in triggers(outs)] == [T0 + 2 * H, T0 + 5 * H]


def test_cooldown_holds_one_trigger_per_customer_across_categories(event_factory) -> None:
    cfg = category_rules(cooldown="72h")
    evs = [event_factory(t=T0 + k * H) for k in range(6)]
    evs += [event_factory(t=T0 + (10 + k) * H, category="bags") for k in range(3)]
    evs += [event_factory(t=T0 + 80 * H + k, category="bags") for k in range(3)]
    _, outs = run(evs, cfg)
    assert [(t.category, t.event_time) for t in triggers(outs)] == [
        ("shoes", T0 + 2 * H),
        ("bags", T0 + 80 * H + 2),
    ]


@pytest.mark.parametrize(("end", "fires"), [(74 * H, True), (74 * H - 1, False)])
def test_cooldown_boundary(event_factory, end: int, fires: bool) -> None:
    cfg = category_rules(cooldown="72h")
    evs = [event_factory(t=T0 + k * H) for k in range(3)]  # fires at T0 + 2h
    evs += [event_factory(t=T0 + end - 2 + k, category="bags") for k in range(3)]
    _, outs = run(evs, cfg)
    assert [t.category for t in triggers(outs)] == ["shoes", "bags"][: 1 + fires]


def test_an_unsubscribed_customer_gets_no_trigger(event_factory) -> None:
    optout = event_factory("preference_updated", T0, payload={"email_consent": False})
    _, outs = run([optout, *(event_factory(t=T0 + k * H) for k in range(1, 4))], NO_COOLDOWN)
    assert triggers(outs) == []


def test_categories_are_counted_apart(event_factory) -> None:
    evs = [event_factory(t=T0, category="shoes"), event_factory(t=T0 + 1, category="bags"),
           event_factory(t=T0 + 2, category="shoes")]  # fmt: skip
    _, outs = run(evs)
    assert triggers(outs) == []


def test_threshold_is_configurable(event_factory) -> None:
    cfg = category_rules(threshold=2, window="1h")
    _, outs = run([event_factory(t=T0), event_factory(t=T0 + H)], cfg)
    assert len(triggers(outs)) == 1
    _, outs = run([event_factory(t=T0), event_factory(t=T0 + H + 1)], cfg)
    assert triggers(outs) == []


def test_trigger_ids_are_deterministic_and_distinct(event_factory) -> None:
    def ids(customer: str) -> list[str]:
        evs = [event_factory(t=T0 + k * H, customer=customer, event_id=f"{customer}-{k}")
               for k in range(6)]  # fmt: skip
        return [t.trigger_id for t in triggers(run(evs, NO_COOLDOWN, key=customer)[1])]

    assert ids("c-1") == ids("c-1")
    assert len(set(ids("c-1"))) == 2
    assert not set(ids("c-1")) & set(ids("c-2"))


def test_anonymous_visitors_are_counted_but_not_triggered(event_factory) -> None:
    evs = [event_factory(t=T0 + k, customer=None, anonymous="a-1") for k in range(3)]
    st, outs = run(evs, key="anon:a-1")
    assert triggers(outs) == []
    assert st.category_views["shoes"].count_in(T0 + 2, 24 * H) == 3


@pytest.mark.parametrize("views", [40, 500])
def test_memory_per_counter_is_bounded(event_factory, views: int) -> None:
    st, _ = run([event_factory(t=T0 + k) for k in range(views)])
    assert len(st.category_views["shoes"]) <= CFG.max_tracked_times


def test_categories_per_customer_are_bounded(event_factory) -> None:
    cfg = ProfileConfig(max_categories=4)
    st, _ = run([event_factory(t=T0 + k, category=f"cat-{k}") for k in range(10)], cfg)
    assert sorted(st.category_views) == ["cat-6", "cat-7", "cat-8", "cat-9"]
