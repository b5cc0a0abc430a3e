"""The materializer's failure boundary and freshness rule, with a stand-in consumer.

The real consumer is replaced by a list of messages, so each test says exactly which
records arrive in which batch; the broker-backed path is in
``tests/integration/test_profile_api_end_to_end.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdpflow.codec import default_codec
from profile_api.materializer import Materializer, MaterializerError
from state.store import MemoryProfileStore, RocksProfileStore

TOPIC = "cdp.profiles"
UNREACHABLE = "127.0.0.1:1"
CODEC = default_codec()


@dataclass
class Msg:
    _key: bytes | None
    _value: bytes | None
    _offset: int
    _partition: int = 0

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


class FakeConsumer:
    """Hands out one prepared batch per ``consume``."""

    def __init__(self, batches: list[list[Msg]]) -> None:
        self.batches = batches

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def snapshot(customer_id: str, *, email: str | None = None, event_time: int = 1_000,
             revision: int = 1, view: Any = None, view_json: str | None = None,
             as_of: int | None = None) -> bytes:  # fmt: skip
    profile = {"revision": revision} if view is None else view
    text = orjson.dumps(profile).decode() if view_json is None else view_json
    return CODEC.encode("cdp.ProfileSnapshot", {
        "customer_id": customer_id, "state_version": 1, "email": email, "first_name": None,
        "last_name": None, "lifecycle": None, "tags": [], "segments": [],
        "profile_json": text, "event_time": event_time,
        "emitted_at": event_time, "revision": revision, "as_of": as_of,
    })  # fmt: skip


def feed_with(store, batches: list[list[Msg]]) -> Materializer:
    feed = Materializer(store, UNREACHABLE, TOPIC)
    feed._consumer.close()
    feed._consumer = FakeConsumer(batches)  # type: ignore[assignment]
    return feed


def run(feed: Materializer, batches: int) -> None:
    try:
        for _ in range(batches):
            feed.poll_once(0)
    finally:
        feed.close()


def _deep(levels: int) -> str:
    return '{"revision": 1, "nested": ' + "[" * levels + "]" * levels + "}"


def _poison() -> list[tuple[str, bytes | None, bytes | None]]:
    """One of each kind of record the materializer cannot apply, between good ones."""
    dead_letter = CODEC.encode("cdp.DeadLetter", {
        "reason": "x", "error": "x", "error_type": "x", "raw": None, "key": None,
        "event_id": None, "source_topic": None, "source_partition": None,
        "source_offset": None, "seen_at": 0})  # fmt: skip
    return [
        ("undecodable", b"bad-1", b"\xc3\x01 not a snapshot"),
        ("undecodable", b"bad-2", b"garbage without a marker"),
        ("wrong_schema", b"bad-3", dead_letter),
        ("invalid_snapshot", b"bad-4", snapshot("bad-4", view=[1, 2])),
        ("no_key", None, None),
        # Decodes, but orjson cannot write it back (nesting deeper than 254): the store fails.
        ("processing_error", b"bad-5", snapshot("bad-5", view_json=_deep(300))),
    ]


def test_poison_records_are_skipped_counted_and_their_offsets_consumed(
    tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    store = RocksProfileStore(tmp_path / "db")
    poison = _poison()
    records = [(b"ada", snapshot("ada", email="ada@example.com"))]
    records += [(k, v) for _, k, v in poison]
    records += [(b"ben", snapshot("ben", email="ben@example.com"))]
    feed = feed_with(store, [[Msg(k, v, i) for i, (k, v) in enumerate(records)]])
    try:
        run(feed, 1)
        assert store.get("ada") is not None
        assert store.get("ben") is not None  # the neighbour after the poison too
        for i in range(1, 6):
            assert store.get(f"bad-{i}") is None
        assert store.offsets(TOPIC) == {0: len(records)}
        expected: dict[str, int] = {}
        for reason, _, _ in poison:
            expected[reason] = expected.get(reason, 0) + 1
        assert dict(feed.skipped) == expected
        assert feed.applied == 2
    finally:
        store.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "processing_error (TypeError)" in logged
    for secret in ("ada", "ben", "example.com", "bad-"):
        assert secret not in logged


def test_a_restart_never_meets_the_poison_again(tmp_path: Path) -> None:
    """The batch's offsets are stored with its good records: no crash loop."""
    store = RocksProfileStore(tmp_path / "db")
    try:
        records = [(k, v) for _, k, v in _poison()]
        run(feed_with(store, [[Msg(k, v, i) for i, (k, v) in enumerate(records)]]), 1)
        assert store.offsets(TOPIC) == {0: len(records)}
    finally:
        store.close()
    store = RocksProfileStore(tmp_path / "db")
    try:  # a new materializer starts at the stored offsets: after the poison
        assert store.offsets(TOPIC) == {0: len(records)}
    finally:
        store.close()


class FailsFor(MemoryProfileStore):
    """Raises while applying one customer, as an indexing bug would; or always."""

    def __init__(self, customer_id: str | None) -> None:
        super().__init__()
        self.customer_id = customer_id

    def apply(self, changes, offsets) -> None:
        if self.customer_id is None or any(c == self.customer_id for c, _ in changes):
            raise RuntimeError("index exploded")
        super().apply(changes, offsets)


def test_an_exception_applying_one_record_costs_only_that_record() -> None:
    store = FailsFor("boom")
    batch = [Msg(c.encode(), snapshot(c), i) for i, c in enumerate(["a", "boom", "b"])]
    feed = feed_with(store, [batch])
    run(feed, 1)
    assert store.get("a") is not None
    assert store.get("b") is not None
    assert store.get("boom") is None
    assert store.offsets(TOPIC) == {0: 3}
    assert feed.skipped["processing_error"] == 1


def test_a_store_that_cannot_write_at_all_stops_the_batch() -> None:
    feed = feed_with(FailsFor(None), [[Msg(b"a", snapshot("a"), 0)]])
    with pytest.raises(MaterializerError, match="cannot write"):
        run(feed, 1)


# Freshness: readers never go back in time (issue 17, defect 2).


def test_an_older_snapshot_does_not_rewind_the_stored_one() -> None:
    store = MemoryProfileStore()
    live = snapshot("c-1", event_time=5_000, revision=7)
    replayed = snapshot("c-1", event_time=4_000, revision=9)
    feed = feed_with(store, [[Msg(b"c-1", live, 0)], [Msg(b"c-1", replayed, 1)]])
    run(feed, 2)
    assert store.get("c-1").event_time == 5_000
    assert feed.skipped["stale_snapshot"] == 1
    assert store.offsets(TOPIC) == {0: 2}


def test_the_same_event_time_is_ordered_by_revision_and_an_equal_one_replaces() -> None:
    store = MemoryProfileStore()
    batches = [
        [Msg(b"c-1", snapshot("c-1", event_time=5_000, revision=3, email="a@example.com"), 0)],
        [Msg(b"c-1", snapshot("c-1", event_time=5_000, revision=2, email="b@example.com"), 1)],
        [Msg(b"c-1", snapshot("c-1", event_time=5_000, revision=3, email="c@example.com"), 2)],
    ]
    run(feed_with(store, batches), 3)
    assert store.get("c-1").email == "c@example.com"


def test_freshness_holds_within_one_batch_and_a_tombstone_always_deletes() -> None:
    store = MemoryProfileStore()
    batch = [
        Msg(b"c-1", snapshot("c-1", event_time=9_000), 0),
        Msg(b"c-1", snapshot("c-1", event_time=1_000), 1),  # older: skipped
        Msg(b"c-2", snapshot("c-2", event_time=9_000), 2),
        Msg(b"c-2", None, 3),  # a tombstone has no time: it always deletes
    ]
    feed = feed_with(store, [batch])
    run(feed, 1)
    assert store.get("c-1").event_time == 9_000
    assert store.get("c-2") is None
    assert feed.skipped["stale_snapshot"] == 1


def test_the_snapshots_own_revision_and_as_of_decide_when_present() -> None:
    """A timer re-evaluates a customer without an event: same event time and revision,
    later ``as_of`` — it replaces; a replay's earlier ``as_of`` does not."""
    store = MemoryProfileStore()
    at = {"event_time": 5_000, "revision": 4}
    batches = [
        [Msg(b"c-1", snapshot("c-1", **at, email="a@example.com", as_of=6_000), 0)],
        [Msg(b"c-1", snapshot("c-1", **at, email="b@example.com", as_of=9_000), 1)],  # timer
        [Msg(b"c-1", snapshot("c-1", **at, email="c@example.com", as_of=7_000), 2)],  # replay
    ]
    feed = feed_with(store, batches)
    run(feed, 3)
    assert (store.get("c-1").email, store.get("c-1").as_of) == ("b@example.com", 9_000)
    assert feed.skipped["stale_snapshot"] == 1


def test_after_a_failed_batch_the_thread_rewinds_to_the_stored_offsets() -> None:
    assigned: list[list[tuple[int, int]]] = []

    class Rewindable(FakeConsumer):
        def assign(self, partitions) -> None:
            assigned.append([(tp.partition, tp.offset) for tp in partitions])

    store = MemoryProfileStore()
    store.apply([], {(TOPIC, 0): 5, (TOPIC, 1): 2})
    feed = Materializer(store, UNREACHABLE, TOPIC)
    feed._consumer.close()
    feed._consumer = Rewindable([])  # type: ignore[assignment]
    feed._positions = {0: 9, 1: 4}  # read past what the store holds, then the write failed
    try:
        feed._rewind()
    finally:
        feed.close()
    assert feed._positions == {0: 5, 1: 2}
    assert assigned == [[(0, 5), (1, 2)]]
