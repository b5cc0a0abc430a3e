"""Identity stitching, pure: the router and the profiles it feeds."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from state import CustomerState, Event, ProfileConfig, Trigger, apply, view
from state.identity import IdentityConfig, IdentityState, expired, is_junk, route
from tests.conftest import T0, H

CFG = ProfileConfig()
ICFG = IdentityConfig()
_n = itertools.count()


def ev(t: int, *, customer: str | None = None, anon: str | None = "a-1",
       kind: str = "product_viewed", category: str = "shoes", eid: str | None = None,
       **payload: Any) -> Event:  # fmt: skip
    if kind == "product_viewed" and not payload:
        payload = {"product": {"product_id": f"sku-{t}", "category": category}}
    return Event(eid or f"e{next(_n)}", kind, t, t, customer_id=customer, anonymous_id=anon,
                 payload=payload)  # fmt: skip


def run(events: list[Event], icfg: IdentityConfig = ICFG):
    """Route every event by its anonymous id, then apply it to the profile it belongs to."""
    routers: dict[str, IdentityState] = {}
    profiles: dict[str, CustomerState] = {}
    outputs, links = [], []
    for e in events:
        if is_junk(e.anonymous_id, icfg.junk):
            routed = [e] if e.customer_id else []
        else:
            routed, new_links = route(routers.setdefault(e.anonymous_id or "", IdentityState()),
                                      e, icfg)  # fmt: skip
            links += new_links
        for r in routed:
            outputs += apply(profiles.setdefault(r.key, CustomerState(r.key)), r, CFG)
    return profiles, outputs, links, routers


def triggers(outputs: list) -> list[Trigger]:
    return [o for o in outputs if isinstance(o, Trigger)]


def test_two_views_before_login_and_one_after_fire_for_the_customer() -> None:
    login = ev(T0 + 2 * H, customer="c-1", kind="identify", email="x@example.com")
    events = [ev(T0), ev(T0 + H), login, ev(T0 + 3 * H)]
    profiles, outputs, links, _ = run(events)
    [trig] = triggers(outputs)
    assert (trig.customer_id, trig.category, trig.event_time) == ("c-1", "shoes", T0 + 3 * H)
    assert trig.profile["email"] == "x@example.com"
    [link] = links
    assert (link.outcome, link.anonymous_id, link.linked_to, link.merged_events) == (
        "linked", "a-1", "c-1", 2,
    )  # fmt: skip
    # The anonymous profile keeps what the visitor did while unknown; nothing after.
    assert view(profiles["anon:a-1"], CFG)["event_counts"] == {"product_viewed": 2}
    assert view(profiles["c-1"], CFG)["event_counts"] == {"identify": 1, "product_viewed": 3}


def test_merged_profile_equals_one_customer_who_did_everything() -> None:
    pre = [ev(T0, kind="cart_item_added", item={"product": {"product_id": "p", "price": 5.0}}),
           ev(T0 + 1), ev(T0 + 2, kind="preference_updated", email_consent=False)]  # fmt: skip
    login = ev(T0 + 3, customer="c-1", kind="identify", first_name="Ann")
    post = [ev(T0 + 4)]
    profiles, *_ = run([*pre, login, *post])
    direct = CustomerState("c-1")
    for e in [*pre, login, *post]:
        apply(direct, Event(e.event_id, e.event_type, e.event_time, e.received_at,
                            customer_id="c-1", payload=e.payload), CFG)  # fmt: skip
    merged = view(profiles["c-1"], CFG)
    assert merged == view(direct, CFG)
    assert merged["unsubscribed"] is True  # consent carried over
    assert merged["cart"]["items"] == [{"product_id": "p", "quantity": 1, "price": 5.0}]


def test_several_devices_link_to_one_customer() -> None:
    events = [ev(T0, anon="phone"), ev(T0 + 1, anon="laptop"),
              ev(T0 + 2, customer="c-1", anon="phone", kind="identify"),
              ev(T0 + 3, customer="c-1", anon="laptop", kind="identify"),
              ev(T0 + 4, anon="laptop")]  # fmt: skip
    _, outputs, links, _ = run(events)
    assert [(li.anonymous_id, li.outcome) for li in links] == [("phone", "linked"),
                                                               ("laptop", "linked")]  # fmt: skip
    assert [t.customer_id for t in triggers(outputs)] == ["c-1"]


def test_a_repeated_identify_merges_nothing_twice() -> None:
    identify = ev(T0 + 2, customer="c-1", kind="identify")
    events = [ev(T0), ev(T0 + 1), identify, identify, ev(T0 + 3, customer="c-1", kind="identify")]
    profiles, _, links, _ = run(events)
    assert [li.outcome for li in links] == ["linked"]
    assert view(profiles["c-1"], CFG)["event_counts"] == {"identify": 2, "product_viewed": 2}


@pytest.mark.parametrize("junk", ["", "null", "undefined", "anonymous", "0", "-1",
                                  "00000000-0000-0000-0000-000000000000", "NULL"])  # fmt: skip
def test_a_junk_identifier_never_links(junk: str) -> None:
    events = [ev(T0, customer="c-1", anon=junk, kind="identify"),
              ev(T0 + 1, customer="c-2", anon=junk, kind="identify"),
              ev(T0 + 2, anon=junk)]  # fmt: skip
    profiles, _, links, routers = run(events)
    assert links == []
    assert routers == {}
    assert sorted(profiles) == ["c-1", "c-2"]  # the anonymous-only event has no home


def test_configured_junk_is_junk_too() -> None:
    icfg = IdentityConfig(junk=frozenset({"guest"}))
    _, _, links, _ = run([ev(T0, customer="c-1", anon="guest", kind="identify")], icfg)
    assert links == []


def test_a_shared_device_stays_with_its_first_customer() -> None:
    events = [ev(T0), ev(T0 + 1, customer="c-1", kind="identify"),
              ev(T0 + 2, customer="c-2", kind="identify"), ev(T0 + 3)]  # fmt: skip
    profiles, _, links, _ = run(events)
    assert [(li.outcome, li.customer_id, li.linked_to) for li in links] == [
        ("linked", "c-1", "c-1"), ("conflict", "c-2", "c-1"),
    ]  # fmt: skip
    assert view(profiles["c-1"], CFG)["event_counts"]["product_viewed"] == 2
    assert view(profiles["c-2"], CFG)["event_counts"] == {"identify": 1}


def test_replaying_the_same_history_stitches_the_same_way() -> None:
    rng = random.Random(5)
    events = []
    for k in range(60):
        anon = rng.choice(["a", "b", "c"])
        customer = rng.choice([None, None, None, "c-1", "c-2"])
        events.append(ev(T0 + k * 60_000, anon=anon, customer=customer,
                         kind="identify" if customer else "product_viewed",
                         category=rng.choice(["shoes", "bags"])))  # fmt: skip
    first = run(events)
    second = run(events)
    assert [li.link_id for li in first[2]] == [li.link_id for li in second[2]]
    assert [t.trigger_id for t in triggers(first[1])] == [t.trigger_id for t in triggers(second[1])]
    assert {k: view(v, CFG) for k, v in first[0].items()} == {
        k: view(v, CFG) for k, v in second[0].items()
    }


def test_never_identified_visitors_are_bounded_and_expire() -> None:
    icfg = IdentityConfig(max_buffer=5, ttl_ms=10 * H)
    st = IdentityState()
    for k in range(20):
        route(st, ev(T0 + k), icfg)
    assert len(st.buffer) == 5
    assert [e.event_time for e in st.buffer] == [T0 + k for k in range(15, 20)]
    assert not expired(st, T0 + 19 + 10 * H, icfg)
    assert expired(st, T0 + 20 + 10 * H, icfg)
    assert IdentityState.load(st.dump()) == st
