import pytest

from state import CustomerState, ProfileConfig, apply, view
from state.engagement import Engagement, email_action, fold_email, fold_session
from tests.conftest import T0, H

CFG = ProfileConfig()


def test_email_actions_are_counted_and_unknown_ones_are_other() -> None:
    e = Engagement()
    for action in ("delivered", "opened", "opened", "clicked", "bounced", "forwarded", None):
        fold_email(e, email_action({"action": action}), T0)
    assert e.view()["email"] == {"delivered": 1, "opened": 2, "clicked": 1, "bounced": 1,
                                 "unsubscribed": 0, "other": 2}  # fmt: skip


def test_last_open_and_click_are_the_newest_by_event_time() -> None:
    e = Engagement()
    for t, action in ((T0 + 2 * H, "opened"), (T0, "opened"), (T0 + H, "clicked"),
                      (T0 - H, "clicked")):  # fmt: skip
        fold_email(e, action, t)
    assert (e.last_open, e.last_click) == (T0 + 2 * H, T0 + H)


def test_sessions_count_distinct_ids() -> None:
    e = Engagement()
    for t, sid in ((T0, "s1"), (T0 + 1, "s1"), (T0 + 2, "s2"), (T0 + 3, "s1")):
        fold_session(e, sid, t, T0 + 3, CFG)
    assert e.sessions == 2


def test_a_session_id_back_after_the_memory_counts_again() -> None:
    cfg = ProfileConfig(session_memory_ms=2 * H)
    e = Engagement()
    fold_session(e, "s1", T0, T0, cfg)
    fold_session(e, "s1", T0 + 2 * H, T0 + 2 * H, cfg)  # exactly at the memory's edge
    assert e.sessions == 1
    fold_session(e, "s1", T0 + 4 * H + 1, T0 + 4 * H + 1, cfg)
    assert e.sessions == 2


def test_an_event_older_than_the_session_memory_opens_no_session() -> None:
    cfg = ProfileConfig(session_memory_ms=2 * H)
    e = Engagement()
    fold_session(e, "s-old", T0, T0 + 2 * H + 1, cfg)
    assert e.sessions == 0


@pytest.mark.parametrize("n", [10, 200])
def test_remembered_sessions_are_bounded(n: int) -> None:
    cfg = ProfileConfig(max_sessions=8)
    e = Engagement()
    for k in range(n):
        fold_session(e, f"s{k}", T0 + k, T0 + k, cfg)
    assert e.sessions == n
    assert len(e.recent_sessions) <= 8


def test_page_and_product_views_open_sessions_through_apply(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("page_viewed", T0, payload={"path": "/", "session_id": "s1"}), CFG)
    apply(st, event_factory(t=T0 + 1, payload={"product": {"product_id": "p", "category": "c"},
                                               "session_id": "s1"}), CFG)  # fmt: skip
    apply(st, event_factory("page_viewed", T0 + 2, payload={"session_id": "s2"}), CFG)
    apply(st, event_factory("page_viewed", T0 + 3, payload={"session_id": None}), CFG)
    eng = view(st, CFG)["engagement"]
    assert (eng["sessions"], eng["page_views"], eng["product_views"]) == (2, 3, 1)


def test_passive_email_events_do_not_make_a_customer_active(event_factory) -> None:
    st = CustomerState("c-1")
    apply(st, event_factory("page_viewed", T0), CFG)
    for action in ("delivered", "bounced", "other"):
        apply(st, event_factory("email_event", T0 + H, payload={"action": action}), CFG)
    assert st.last_active == T0
    apply(st, event_factory("email_event", T0 + 2 * H, payload={"action": "opened"}), CFG)
    assert st.last_active == T0 + 2 * H
    v = view(st, CFG)
    assert v["engagement"]["last_email_open_at"] == T0 + 2 * H
    assert v["engagement"]["email"]["delivered"] == 1


def test_dump_round_trips() -> None:
    e = Engagement()
    fold_email(e, "opened", T0)
    fold_session(e, "s1", T0, T0, CFG)
    assert Engagement.load(e.dump()) == e
