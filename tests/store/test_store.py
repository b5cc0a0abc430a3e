"""The ProfileStore contract; every test runs on the in-memory and the RocksDB backend."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from state.store import RocksProfileStore, StoredProfile
from state.store.exceptions import StoreError

TOPIC = "cdp.profiles"


def test_get_returns_the_latest_profile_and_none_for_unknown(store, profile_factory) -> None:
    store.apply([("c-1", profile_factory(revision=1))], {})
    store.apply([("c-1", profile_factory(revision=2))], {})
    assert store.get("c-1") == profile_factory(revision=2)
    assert store.get("nobody") is None


def test_a_tombstone_erases_the_profile_and_its_indexes(store, profile_factory) -> None:
    store.apply([("c-1", profile_factory(segments=("vip",)))], {})
    store.apply([("c-1", None)], {})
    assert store.get("c-1") is None
    assert store.find_by_email("ada@example.com") is None
    assert store.segment_members("vip", after=None, limit=10) == []


def test_email_lookup_is_normalized_and_follows_changes(store, profile_factory) -> None:
    store.apply([("c-1", profile_factory(email="Ada@Example.com"))], {})
    assert store.find_by_email("  ada@EXAMPLE.com").customer_id == "c-1"
    store.apply([("c-1", profile_factory(email="ada@new.example"))], {})
    assert store.find_by_email("ada@example.com") is None
    assert store.find_by_email("ada@new.example").customer_id == "c-1"


def test_an_email_moving_to_another_customer_is_not_lost_when_the_first_changes(
    store, profile_factory
) -> None:
    store.apply([("c-1", profile_factory("c-1", email="shared@example.com"))], {})
    store.apply([("c-2", profile_factory("c-2", email="shared@example.com"))], {})
    store.apply([("c-1", profile_factory("c-1", email="own@example.com"))], {})
    assert store.find_by_email("shared@example.com").customer_id == "c-2"


def test_changes_within_one_batch_apply_in_order(store, profile_factory) -> None:
    store.apply(
        [
            ("c-1", profile_factory(email="a@example.com", segments=("vip",))),
            ("c-1", profile_factory(email="b@example.com", segments=("new",))),
            ("c-2", profile_factory("c-2", email="a@example.com")),
            ("c-2", None),
        ],
        {},
    )
    assert store.find_by_email("a@example.com") is None
    assert store.find_by_email("b@example.com").customer_id == "c-1"
    assert store.segment_members("vip", after=None, limit=10) == []
    assert store.segment_members("new", after=None, limit=10) == ["c-1"]


def test_segment_members_page_in_id_order(store, profile_factory) -> None:
    ids = ["c-10", "c-2", "c-1", "c-3", "ü-1"]
    store.apply([(c, profile_factory(c, email=None, segments=("vip",))) for c in ids], {})
    store.apply([("x", profile_factory("x", email=None, segments=("other",)))], {})
    first = store.segment_members("vip", after=None, limit=2)
    second = store.segment_members("vip", after=first[-1], limit=2)
    third = store.segment_members("vip", after=second[-1], limit=2)
    assert first + second + third == sorted(ids)
    assert store.segment_members("vip", after=third[-1], limit=2) == []
    assert store.segment_members("vi", after=None, limit=10) == []


def test_offsets_are_kept_per_topic_and_partition(store) -> None:
    assert store.offsets(TOPIC) == {}
    store.apply([], {(TOPIC, 0): 5, (TOPIC, 1): 7, ("other", 0): 1})
    store.apply([], {(TOPIC, 0): 9})
    assert store.offsets(TOPIC) == {0: 9, 1: 7}
    assert store.offsets("other") == {0: 1}


def test_rocksdb_keeps_profiles_and_offsets_across_reopen(tmp_path: Path, profile_factory) -> None:
    store = RocksProfileStore(tmp_path / "db")
    store.apply([("c-1", profile_factory(segments=("vip",)))], {(TOPIC, 0): 42})
    store.close()
    store = RocksProfileStore(tmp_path / "db")
    try:
        assert store.get("c-1") == profile_factory(segments=("vip",))
        assert store.offsets(TOPIC) == {0: 42}
        assert store.segment_members("vip", after=None, limit=5) == ["c-1"]
    finally:
        store.close()


def test_rocksdb_refuses_a_second_open_of_the_same_directory(tmp_path: Path) -> None:
    store = RocksProfileStore(tmp_path / "db")
    try:
        with pytest.raises(StoreError, match="cannot open"):
            RocksProfileStore(tmp_path / "db")
    finally:
        store.close()


def test_from_snapshot_reads_the_profile_view() -> None:
    view = {"attributes": {"timezone": "Europe/Berlin"}, "unsubscribed": True}
    record = {"customer_id": "c-1", "state_version": 3, "email": None, "tags": ["a"],
              "segments": [], "profile_json": orjson.dumps(view).decode(),
              "event_time": 5, "emitted_at": 6}  # fmt: skip
    profile = StoredProfile.from_snapshot(record)
    assert profile.unsubscribed is True
    assert profile.timezone == "Europe/Berlin"
    assert profile.tags == ("a",)
    assert StoredProfile.from_bytes(profile.to_bytes()) == profile


@pytest.mark.parametrize("profile_json", ["not json", "[1, 2]"])
def test_from_snapshot_refuses_a_profile_json_that_is_not_an_object(profile_json) -> None:
    with pytest.raises(StoreError, match="profile_json"):
        StoredProfile.from_snapshot({"customer_id": "c-1", "profile_json": profile_json})


def test_from_bytes_refuses_an_unknown_format_version() -> None:
    with pytest.raises(StoreError, match="unknown format"):
        StoredProfile.from_bytes(b'{"v": 99}')
