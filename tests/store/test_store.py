"""The ProfileStore contract; every test runs on the in-memory and the RocksDB backend."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from rocksdict import Options, Rdict

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
    assert store.find_by_email("  ada@EXAMPLE.com").profile.customer_id == "c-1"
    store.apply([("c-1", profile_factory(email="ada@new.example"))], {})
    assert store.find_by_email("ada@example.com") is None
    assert store.find_by_email("ada@new.example").profile.customer_id == "c-1"


def test_an_email_moving_to_another_customer_is_not_lost_when_the_first_changes(
    store, profile_factory
) -> None:
    store.apply([("c-1", profile_factory("c-1", email="shared@example.com"))], {})
    store.apply([("c-2", profile_factory("c-2", email="shared@example.com"))], {})
    store.apply([("c-1", profile_factory("c-1", email="own@example.com"))], {})
    assert store.find_by_email("shared@example.com").profile.customer_id == "c-2"


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
    assert store.find_by_email("b@example.com").profile.customer_id == "c-1"
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


def _at(profile: StoredProfile, event_time: int) -> StoredProfile:
    return replace(profile, event_time=event_time)


def test_a_later_claim_in_another_case_does_not_take_the_address_over(
    store, profile_factory
) -> None:
    """Issue 16, repro 10: the attacker's identify with the victim's address in upper case."""
    store.apply([("victim", _at(profile_factory("victim", email="ada@example.com"), 1_000))], {})
    attacker = profile_factory("attacker", email="ADA@EXAMPLE.COM")
    store.apply([("attacker", _at(attacker, 5_000))], {})
    for asked in ("ada@example.com", "ADA@Example.com", " ada@example.com. "):
        match = store.find_by_email(asked)
        assert match.profile.customer_id == "victim"
        assert (match.claimants, match.shared) == (2, True)
    # The victim's later snapshots keep its first claim, however late their event time.
    store.apply([("victim", _at(profile_factory("victim", email="Ada@example.com"), 9_000))], {})
    assert store.find_by_email("ada@example.com").profile.customer_id == "victim"


def test_the_next_claimant_gets_the_address_once_the_first_lets_go(store, profile_factory) -> None:
    store.apply([("a", _at(profile_factory("a", email="x@example.com"), 1_000)),
                 ("b", _at(profile_factory("b", email="x@example.com"), 2_000))], {})  # fmt: skip
    store.apply([("a", _at(profile_factory("a", email="new@example.com"), 3_000))], {})
    match = store.find_by_email("x@example.com")
    assert (match.profile.customer_id, match.shared) == ("b", False)
    # Coming back is a new claim, later than b's.
    store.apply([("a", _at(profile_factory("a", email="x@example.com"), 4_000))], {})
    assert store.find_by_email("x@example.com").profile.customer_id == "b"
    store.apply([("b", None)], {})
    assert store.find_by_email("x@example.com").profile.customer_id == "a"


def test_equal_claim_times_answer_the_smaller_id(store, profile_factory) -> None:
    store.apply([(c, _at(profile_factory(c, email="x@example.com"), 7)) for c in ("c-9", "c-1")],
                {})  # fmt: skip
    match = store.find_by_email("x@example.com")
    assert (match.profile.customer_id, match.claimants) == ("c-1", 2)


@pytest.mark.parametrize(
    "email",
    ["a@victim.example\r\nBcc: b@evil.example", "a@victim.example, b@evil.example",
     "no-at-sign", "@example.com", "ada@", "a\x00@example.com", "x" * 400 + "@example.com"],
)  # fmt: skip
def test_a_value_that_is_no_address_is_kept_but_never_found(store, profile_factory, email) -> None:
    store.apply([("c-1", profile_factory(email=email))], {})
    assert store.get("c-1").email == email
    assert store.find_by_email(email) is None


def test_rocksdb_keeps_claim_order_across_reopen(tmp_path: Path, profile_factory) -> None:
    store = RocksProfileStore(tmp_path / "db")
    late = _at(profile_factory("late", email="x@example.com"), 9)
    early = _at(profile_factory("early", email="X@example.com"), 3)
    store.apply([("late", late), ("early", early)], {})
    store.close()
    store = RocksProfileStore(tmp_path / "db")
    try:
        match = store.find_by_email("x@example.com")
        assert (match.profile.customer_id, match.claimants) == ("early", 2)
    finally:
        store.close()


def test_rocksdb_reindexes_a_layout_1_store(tmp_path: Path, profile_factory) -> None:
    """A store written before claims: one ``e`` key per address (the last claimant)."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    db = Rdict(str(tmp_path / "db"), options)
    db.put(b"m\x00layout", bytes([1]))
    for cid, t in (("first", 1_000), ("last", 5_000)):
        db.put(b"p\x00" + cid.encode(), _at(profile_factory(cid), t).to_bytes())
    db.put(b"e\x00ada@example.com", b"last")
    db.close()
    store = RocksProfileStore(tmp_path / "db")
    try:
        match = store.find_by_email("ada@example.com")
        assert (match.profile.customer_id, match.claimants) == ("first", 2)
        store.apply([("first", None)], {})
        assert store.find_by_email("ada@example.com").profile.customer_id == "last"
    finally:
        store.close()
    store = RocksProfileStore(tmp_path / "db")  # upgraded once: opens as layout 2
    store.close()
