"""Fold the compacted ``cdp.profiles`` topic into a :class:`~state.store.ProfileStore`.

The consumer is assigned every partition of the topic (no consumer group offsets): it
starts at the offsets the store recorded, or at the beginning, and each batch of
snapshots is written to the store *together with* the next offsets in one atomic
:meth:`~state.store.ProfileStore.apply`. A restart therefore resumes exactly after the
last applied record; a crash can never leave offsets ahead of the data.

A null value (tombstone) erases the customer. Readers never go back in time: a snapshot
older than the stored one (:func:`~state.store.is_fresher`: ``(event_time, revision,
as_of)``) is skipped, so a replay writing beside the live run cannot rewind a profile.

**Failure boundary.** A record that cannot be decoded or applied (corrupt bytes, another
schema, a snapshot the store cannot index) is skipped, counted in :attr:`skipped` by reason
and logged with its partition, offset and the exception type only; its offset is consumed
with its batch, so a restart never meets it again. No dead letter: the record stays at its
source offset on ``cdp.profiles`` for whoever looks, and the API and the mailer each run a
materializer, so both would write one. Only a store that cannot write at all (a batch with
no records failing too) stops a batch; the thread then rewinds to the stored offsets and
retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from cdpflow.codec import AvroCodec, default_codec
from cdpflow.errors import CdpflowError, CodecError
from cdpflow.kafka_log import LIBRDKAFKA_LOG
from state.store import ProfileChange, ProfileStore, StoredProfile, is_fresher
from state.store.exceptions import StoreError

__all__ = ["Materializer", "MaterializerError", "topic_partitions"]

log = logging.getLogger("cdpflow.materializer")


class MaterializerError(CdpflowError):
    """The profiles topic is missing or the broker does not answer."""

    reason = "materializer"


def topic_partitions(client: Consumer, topic: str, timeout_s: float = 10.0) -> list[int]:
    """The partitions of ``topic``; :class:`MaterializerError` if it is missing or the
    broker does not answer (a one-line error for ``main``)."""
    try:
        meta = client.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        raise MaterializerError(f"cannot list topic {topic}: broker unreachable") from exc
    found = meta.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise MaterializerError(f"topic {topic} does not exist (run: cdpflow topics create)")
    return sorted(found.partitions)


class Materializer:
    """Keeps ``store`` current with ``topic``; :meth:`catch_up` for bounded runs,
    :meth:`start`/:meth:`stop` for a background thread."""

    def __init__(
        self,
        store: ProfileStore,
        bootstrap_servers: str,
        topic: str,
        *,
        codec: AvroCodec | None = None,
        batch_size: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
        on_erase: Callable[[str], None] | None = None,
    ) -> None:
        """``on_erase(customer_id)`` runs after a tombstone is applied, so a caller keeping
        more about the customer (the mailer's send times) can forget it too."""
        self._store = store
        self._topic = topic
        self._codec = codec or default_codec()
        self._batch_size = batch_size
        self._monotonic = monotonic
        self._on_erase = on_erase
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "logger": LIBRDKAFKA_LOG,  # librdkafka's lines to the log at debug level
                "group.id": "cdpflow-profile-materializer",  # required; never committed
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # A stored offset that retention removed restarts at the oldest record.
                "auto.offset.reset": "earliest",
                # Reaching the end is reported even when compaction left a gap before it.
                "enable.partition.eof": True,
            }
        )
        self._positions: dict[int, int] = {}
        self._at_end: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        #: Serializes writes to the store: the poll loop's batches and :meth:`erase`.
        self._write_lock = threading.Lock()
        self.applied = 0
        """Records (snapshots and tombstones) applied since this object was made."""
        self.skipped: Counter[str] = Counter()
        """Records not applied since this object was made, by reason: ``no_key``,
        ``undecodable``, ``wrong_schema``, ``invalid_snapshot``, ``processing_error``,
        ``stale_snapshot``."""
        self.failed_batches = 0
        """Batches the store could not write at all (then re-read from stored offsets)."""

    @property
    def ready(self) -> bool:
        """Whether the store has caught up with the topic's end once since start-up."""
        return self._ready.is_set()

    def assign(self, timeout_s: float = 10.0) -> None:
        """Assign every partition at the store's offsets (or the beginning)."""
        partitions = topic_partitions(self._consumer, self._topic, timeout_s)
        stored = self._store.offsets(self._topic)
        self._positions = {p: stored.get(p, OFFSET_BEGINNING) for p in partitions}
        self._consumer.assign(
            [TopicPartition(self._topic, p, o) for p, o in sorted(self._positions.items())]
        )

    def poll_once(self, timeout_s: float = 0.5) -> int:
        """Apply one batch of records; return how many were read."""
        messages = self._consumer.consume(self._batch_size, timeout_s)
        read = 0
        changes: list[ProfileChange] = []
        offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            err, at = msg.error(), msg.partition()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF and at is not None:
                    self._at_end.add(at)
                else:
                    log.warning("profiles consumer error: %s", err.name())
                continue
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:  # pragma: no cover - only on errors
                continue
            self._at_end.discard(partition)
            read += 1
            change = self._change(msg.key(), msg.value(), partition, offset)
            if change is not None:
                changes.append(change)
            offsets[(self._topic, partition)] = offset + 1
            self._positions[partition] = offset + 1
        if offsets:
            with self._write_lock:
                changes = self._fresh(changes)
                changes = self._write(changes, offsets)
            self.applied += len(changes)
            if self._on_erase is not None:
                for customer_id, profile in changes:
                    if profile is None:
                        self._on_erase(customer_id)
        return read

    def _fresh(self, changes: Sequence[ProfileChange]) -> list[ProfileChange]:
        """``changes`` without the snapshots older than what the store (or an earlier
        change of the batch) holds; a tombstone always deletes."""
        latest: dict[str, StoredProfile | None] = {}
        kept: list[ProfileChange] = []
        for customer_id, profile in changes:
            if profile is not None:
                current = latest[customer_id] if customer_id in latest else self._get(customer_id)
                if not is_fresher(profile, current):
                    self._skip("stale_snapshot", None, None, None)
                    continue
            latest[customer_id] = profile
            kept.append((customer_id, profile))
        return kept

    def _get(self, customer_id: str) -> StoredProfile | None:
        try:
            return self._store.get(customer_id)
        except StoreError:  # an unreadable stored value: the snapshot replaces it
            return None

    def _write(
        self, changes: list[ProfileChange], offsets: dict[tuple[str, int], int]
    ) -> list[ProfileChange]:
        """Apply ``changes`` and ``offsets`` in one batch; if that fails, each change on
        its own, skipping those that fail, then the offsets. Returns what was applied."""
        try:
            self._store.apply(changes, offsets)
        except Exception as exc:  # noqa: BLE001 - the failure boundary: find the record at fault
            log.warning("%s batch of %d changes not written (%s); writing them one by one",
                        self._topic, len(changes), type(exc).__name__)  # fmt: skip
        else:
            return changes
        applied: list[ProfileChange] = []
        for change in changes:
            try:
                self._store.apply([change], {})
            except Exception as exc:  # noqa: BLE001 - the failure boundary: skip this record
                self._skip("processing_error", type(exc).__name__, None, None)
            else:
                applied.append(change)
        try:
            self._store.apply([], offsets)
        except Exception as exc:
            raise MaterializerError(
                f"the profile store cannot write ({type(exc).__name__})"
            ) from exc
        return applied

    def _skip(
        self, reason: str, error_type: str | None, partition: int | None, offset: int | None
    ) -> None:
        """Count and log a record not applied: coordinates and types, never values."""
        self.skipped[reason] += 1
        where = "" if partition is None else f" at {partition}:{offset}"
        why = "" if error_type is None else f" ({error_type})"
        level = logging.DEBUG if reason == "stale_snapshot" else logging.WARNING
        log.log(level, "%s record skipped%s: %s%s", self._topic, where, reason, why)

    def erase(self, customer_id: str) -> None:
        """Delete ``customer_id`` from the store now, as its tombstone will (idempotent).

        Thread-safe against the poll loop: a store update reads the old profile to drop
        its index entries, so two writers at once could leave an email index behind.
        """
        with self._write_lock:
            self._store.apply([(customer_id, None)], {})
        if self._on_erase is not None:
            self._on_erase(customer_id)

    def _change(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int
    ) -> ProfileChange | None:
        """The record as a change, or ``None`` (skipped, counted and logged)."""
        try:
            return self._decoded(key, value)
        except _Skipped as skipped:
            reason, error_type = skipped.reason, skipped.error_type
        except Exception as exc:  # noqa: BLE001 - the failure boundary: one record never
            # stops the materializer
            reason, error_type = "processing_error", type(exc).__name__
        self._skip(reason, error_type, partition, offset)
        return None

    def _decoded(self, key: bytes | None, value: bytes | None) -> ProfileChange:
        if value is None:
            if not key:
                raise _Skipped("no_key")
            return (key.decode(), None)
        try:
            name, record = self._codec.decode(value, logical=False)
        except CodecError as exc:
            raise _Skipped("undecodable", type(exc).__name__) from exc
        if name != "cdp.ProfileSnapshot":
            raise _Skipped("wrong_schema")
        try:
            profile = StoredProfile.from_snapshot(record)
        except StoreError as exc:
            raise _Skipped("invalid_snapshot", type(exc).__name__) from exc
        return (profile.customer_id, profile)

    def end_offsets(self, timeout_s: float = 10.0) -> dict[int, int]:
        """The current end (high watermark) of every assigned partition."""
        ends: dict[int, int] = {}
        for p in self._positions:
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), timeout=timeout_s
                )
            except KafkaException as exc:
                raise MaterializerError(f"cannot read the end of {self._topic}") from exc
            ends[p] = high
        return ends

    def caught_up(self, ends: dict[int, int]) -> bool:
        """Every partition is at ``ends``, or the consumer reported reaching its end."""
        return all(self._position(p) >= end or p in self._at_end for p, end in ends.items())

    def _position(self, partition: int) -> int:
        pos = self._positions.get(partition, OFFSET_BEGINNING)
        return 0 if pos < 0 else pos

    def catch_up(self, timeout_s: float = 30.0) -> int:
        """Apply records until every partition reaches the end it had when called.

        Returns the number of records read; raises :class:`MaterializerError` on timeout.
        """
        ends = self.end_offsets()
        self._at_end.clear()  # only an end reached from now on counts
        deadline = self._monotonic() + timeout_s
        read = 0
        while not self.caught_up(ends):
            if self._monotonic() > deadline:
                raise MaterializerError(
                    f"did not reach the end of {self._topic} within {timeout_s:g} s"
                )
            read += self.poll_once(0.2)
        self._ready.set()
        return read

    def start(self) -> None:
        """Assign and follow the topic in a daemon thread until :meth:`stop`."""
        self.assign()
        self._thread = threading.Thread(target=self._run, name="materializer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ends = self.end_offsets()
        while not self._stop.is_set():
            try:
                self.poll_once(0.5)
            except Exception as exc:  # noqa: BLE001 - the thread outlives a failed batch
                self.failed_batches += 1
                log.error("%s batch not written (%s); re-reading from the stored offsets",
                          self._topic, type(exc).__name__)  # fmt: skip
                self._stop.wait(1.0)
                self._rewind()
                continue
            if not self.ready and self.caught_up(ends):
                self._ready.set()
                log.info("profile store caught up with %s", self._topic)

    def _rewind(self) -> None:
        """Back to the offsets the store holds (a failed batch is read again)."""
        try:
            stored = self._store.offsets(self._topic)
            self._positions = {p: stored.get(p, OFFSET_BEGINNING) for p in self._positions}
            self._consumer.assign(
                [TopicPartition(self._topic, p, o) for p, o in sorted(self._positions.items())]
            )
        except Exception as exc:  # noqa: BLE001 - tried again after the next failure
            log.error("%s: cannot rewind (%s)", self._topic, type(exc).__name__)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def close(self) -> None:
        """Stop the thread, if any, and close the consumer (not the store)."""
        self.stop()
        self._consumer.close()


class _Skipped(Exception):
    """A record the materializer does not apply, with the reason it is counted under."""

    def __init__(self, reason: str, error_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
