from state import CustomerState, ProfileConfig, apply, view
from state.preferences import Preferences, fold_preferences, set_consent
from tests.conftest import T0, H

CFG = ProfileConfig()


def update(p: Preferences, t: int, **payload) -> None:
    fold_preferences(p, payload, t, CFG)


def test_each_key_is_last_write_wins_by_event_time() -> None:
    p = Preferences()
    update(p, T0 + H, preferences={"lang": "de"}, subscriptions={"news": False})
    update(p, T0, preferences={"lang": "en", "size": "M"}, subscriptions={"news": True})
    v = p.view()
    assert v["values"] == {"lang": "de", "size": "M"}
    assert v["subscriptions"] == {"news": False}


def test_absent_and_null_fields_leave_things_unchanged() -> None:
    p = Preferences()
    update(p, T0, preferences={"lang": "en"}, email_consent=False)
    update(p, T0 + H, preferences={}, subscriptions={}, email_consent=None)
    assert p.view()["values"] == {"lang": "en"}
    assert p.unsubscribed


def test_withdrawal_wins_a_tie() -> None:
    for first, second in ((True, False), (False, True)):
        p = Preferences()
        set_consent(p, first, T0)
        set_consent(p, second, T0)
        update(p, T0, subscriptions={"news": first})
        update(p, T0, subscriptions={"news": second})
        assert p.unsubscribed
        assert p.view()["subscriptions"] == {"news": False}


def test_consent_given_later_resubscribes() -> None:
    p = Preferences()
    set_consent(p, False, T0)
    set_consent(p, True, T0 + 1)
    assert not p.unsubscribed
    assert p.view()["email_consent"] is True


def test_keys_are_bounded() -> None:
    cfg = ProfileConfig(max_preferences=3)
    p = Preferences()
    for k in range(10):
        fold_preferences(p, {"preferences": {f"k{k}": "v"}}, T0 + k, cfg)
    assert sorted(p.values) == ["k7", "k8", "k9"]


def test_email_unsubscribe_event_sets_the_flag(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("preference_updated", T0, payload={"email_consent": True}), CFG)
    apply(st, event_factory("email_event", T0 + H, payload={"action": "unsubscribed"}), CFG)
    v = view(st, CFG)
    assert v["unsubscribed"] is True
    assert v["preferences"]["unsubscribed"] is True
    assert v["engagement"]["email"]["unsubscribed"] == 1
    # An older consent arriving later does not undo it.
    apply(st, event_factory("preference_updated", T0 + 1, payload={"email_consent": True}), CFG)
    assert st.unsubscribed


def test_dump_round_trips() -> None:
    p = Preferences()
    update(p, T0, preferences={"a": "b"}, subscriptions={"n": True}, email_consent=False)
    assert Preferences.load(p.dump()) == p
