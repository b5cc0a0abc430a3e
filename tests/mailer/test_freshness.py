"""The freshness rule of the mailer's profile copy: pure cases, then the store wrapper
over the in-memory store and a real ledger (the erasure marks)."""

from __future__ import annotations

import orjson
import pytest

from mailer.freshness import FreshProfileStore, admit
from mailer.ledger import Ledger
from state.store import MemoryProfileStore, StoredProfile


def snap(
    event_time: int,
    revision: int | None = None,
    as_of: int | None = None,
    *,
    view_revision: int | None = None,
    email: str = "ada@example.com",
) -> StoredProfile:
    view = {} if view_revision is None else {"revision": view_revision}
    return StoredProfile.from_snapshot({
        "customer_id": "c-1", "state_version": 1, "email": email,
        "profile_json": orjson.dumps(view).decode(), "event_time": event_time,
        "emitted_at": event_time, "revision": revision, "as_of": as_of})  # fmt: skip


@pytest.mark.parametrize(
    ("incoming", "stored", "kept"),
    [
        (snap(20, 1, 20), snap(10, 9, 99), True),  # event time first
        (snap(10, 9, 99), snap(20, 1, 20), False),
        (snap(10, 3, 10), snap(10, 2, 50), True),  # then revision
        (snap(10, 2, 50), snap(10, 3, 10), False),
        (snap(10, 2, 11), snap(10, 2, 10), True),  # then as_of
        (snap(10, 2, 10), snap(10, 2, 11), False),
        (snap(10, 2, 10), snap(10, 2, 10), True),  # equal replaces: idempotent
        (snap(10), snap(10), True),
    ],
)
def test_a_snapshot_replaces_only_one_that_is_not_fresher(incoming, stored, kept) -> None:
    assert admit(incoming, stored, None) is kept


def test_records_without_revision_or_as_of_fall_back_to_the_view_and_the_event_time() -> None:
    # Written before the fields existed: revision from profile_json, else 0; as_of = event_time.
    old_layout = snap(10, view_revision=5)
    assert old_layout.freshness == (10, 5, 10)
    assert snap(10).freshness == (10, 0, 10)
    assert admit(snap(10, view_revision=5), snap(10, 4, 10), None)
    assert not admit(snap(10, view_revision=3), snap(10, 4, 10), None)
    assert not admit(snap(10), snap(10, 0, 11), None)  # a missing as_of counts as event_time


def test_a_tombstone_always_wins_and_its_mark_stops_older_snapshots() -> None:
    assert admit(None, snap(99, 99, 99), None)
    assert admit(None, None, None)
    assert not admit(snap(10), None, erased_at=10)  # as old as what was erased
    assert not admit(snap(5), None, erased_at=10)
    assert admit(snap(11), None, erased_at=10)  # new activity after the erasure
    assert admit(snap(5), None, erased_at=None)  # never held: nothing to protect


@pytest.fixture
def rig(tmp_path):
    ledger = Ledger(tmp_path / "ledger")
    inner = MemoryProfileStore()
    stale: list[int] = []
    store = FreshProfileStore(inner, ledger, on_stale=lambda: stale.append(1))
    yield store, ledger, stale
    ledger.close()


def test_a_replay_beside_the_live_run_cannot_rewind_the_profile(rig) -> None:
    store, _, stale = rig
    store.apply([("c-1", snap(20, 3, 20, email="new@example.com"))], {("t", 0): 5})
    store.apply([("c-1", snap(10, 1, 10, email="old@example.com"))], {("t", 1): 7})
    assert store.get("c-1").email == "new@example.com"
    assert store.offsets("t") == {0: 5, 1: 7}  # the offsets move on anyway
    assert len(stale) == 1
    store.apply([("c-1", snap(20, 3, 20, email="new@example.com"))], {})  # redelivered
    assert len(stale) == 1


def test_the_rule_holds_between_changes_of_one_batch(rig) -> None:
    store, _, stale = rig
    store.apply([("c-1", snap(20, 2, 20, email="new@example.com")),
                 ("c-1", snap(10, 1, 10, email="old@example.com")),
                 ("c-1", None),
                 ("c-1", snap(15, 9, 30, email="old@example.com"))], {})  # fmt: skip
    assert store.get("c-1") is None  # erased; the snapshot after it is older than the mark
    assert len(stale) == 2


def test_an_erasure_is_remembered_across_restarts_until_newer_activity(tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    try:
        store = FreshProfileStore(MemoryProfileStore(), ledger)
        store.apply([("c-1", snap(20))], {})
        store.apply([("c-1", None)], {})
        assert ledger.erased_at("c-1") == 20
        store.apply([("c-1", snap(20)), ("c-1", snap(19, 50, 90))], {})  # a replay of the past
        assert store.get("c-1") is None
    finally:
        ledger.close()
    reopened = Ledger(tmp_path / "ledger")
    try:
        again = FreshProfileStore(MemoryProfileStore(), reopened)
        again.apply([("c-1", snap(20))], {})
        assert again.get("c-1") is None
        again.apply([("c-1", snap(21, email="back@example.com"))], {})
        assert again.get("c-1").email == "back@example.com"
        reopened.mark_erased("c-1", 5)  # a mark never moves back
        assert reopened.erased_at("c-1") == 20
    finally:
        reopened.close()
