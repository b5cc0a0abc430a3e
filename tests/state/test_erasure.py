"""Erasure in the operator state: everything goes, and nothing from before comes back."""

from state import CustomerState, Erased, Event, ProfileConfig, apply, from_snapshot, to_snapshot
from state import view as profile_view
from state.profile import ERASE_EVENT
from tests.conftest import T0, H

CFG = ProfileConfig()


def erase(t: int) -> Event:
    return Event(f"erase-{t}", "custom", t, t, customer_id="c-1", source="cdpflow forget",
                 payload={"name": ERASE_EVENT, "properties": {}})  # fmt: skip


def identify(eid: str, t: int) -> Event:
    return Event(eid, "identify", t, t, customer_id="c-1",
                 payload={"email": "gone@example.com", "first_name": "Gone"})  # fmt: skip


def test_erasure_wipes_the_profile_and_keeps_only_when() -> None:
    st = CustomerState("c-1")
    apply(st, identify("e1", T0), CFG)
    out = apply(st, erase(T0 + H), CFG)
    assert out == [Erased("c-1", T0 + H)]
    assert st.attrs == {}
    assert st.revision == 0
    assert len(st.seen) == 0
    assert st.erased_at == T0 + H
    restored = from_snapshot(to_snapshot(st))
    assert restored.erased_at == T0 + H
    assert "gone@example.com" not in repr(to_snapshot(st))


def test_events_from_before_the_erasure_never_come_back() -> None:
    st = CustomerState("c-1")
    apply(st, identify("e1", T0), CFG)
    apply(st, erase(T0 + H), CFG)
    assert apply(st, identify("e1", T0), CFG) == []  # redelivered
    assert apply(st, identify("e2", T0 + H), CFG) == []  # late, at the erasure's moment
    assert st.attrs == {}
    # New activity after the erasure starts a new profile.
    apply(st, identify("e3", T0 + 2 * H), CFG)
    assert profile_view(st, CFG)["attributes"]["first_name"] == "Gone"


def test_an_erase_event_from_the_tracking_api_is_an_ordinary_custom_event() -> None:
    st = CustomerState("c-1")
    apply(st, identify("e1", T0), CFG)
    forged = Event("x1", "custom", T0 + H, T0 + H, customer_id="c-1", source="web",
                   payload={"name": ERASE_EVENT, "properties": {}})  # fmt: skip
    out = apply(st, forged, CFG)
    assert not any(isinstance(o, Erased) for o in out)
    assert st.attr("email") == "gone@example.com"
    assert st.erased_at is None
    assert st.event_counts["custom"] == 1


def test_erasure_unlinks_every_anonymous_id_and_the_id_never_links_again(event_factory) -> None:
    from state.identity import IdentityConfig, IdentityState, route
    from state.outputs import Resend

    cfg_id = IdentityConfig()
    router = IdentityState()
    login = event_factory("identify", T0, customer="c-1", anonymous="cookie-1")
    route(router, event_factory("page_viewed", T0 - 1, customer=None,
                                anonymous="cookie-1"), cfg_id)  # fmt: skip
    events2, links = route(router, login, cfg_id)
    assert [lk.outcome for lk in links] == ["linked"]
    st = CustomerState("c-1")
    for ev in events2:
        apply(st, ev, CFG)
    assert st.devices == {"cookie-1": T0}
    out = apply(st, erase(T0 + H), CFG)
    resent = [o.event for o in out if isinstance(o, Resend)]
    assert [(e.anonymous_id, e.customer_id, e.source) for e in resent] == [
        ("cookie-1", None, "cdpflow erasure")
    ]
    # Back through the events topic to the router: the link goes, the visitor's own
    # anonymous profile is erased too, and the cookie never links again.
    onward, _ = route(router, resent[0], cfg_id)
    assert onward == resent
    assert router.linked_to is None
    anon = CustomerState("anon:cookie-1")
    assert [type(o).__name__ for o in apply(anon, onward[0], CFG)] == ["Erased"]
    later = event_factory("page_viewed", T0 + 2 * H, customer=None, anonymous="cookie-1")
    assert route(router, later, cfg_id) == ([later], [])  # stays anonymous, not c-1's
    relogin = event_factory("identify", T0 + 3 * H, customer="c-2", anonymous="cookie-1")
    assert route(router, relogin, cfg_id) == ([relogin], [])  # no link, no history handed
    assert IdentityState.load(router.dump()) == router
