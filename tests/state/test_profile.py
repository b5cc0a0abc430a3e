from hypothesis import given, settings
from hypothesis import strategies as st

from state import CustomerState, Event, ProfileConfig, apply, compact, view
from state.events import DAY_MS
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
