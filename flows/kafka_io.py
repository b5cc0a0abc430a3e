"""Kafka source and sink for the dataflow, configured from :class:`Settings`.

Offsets are Bytewax's: each source partition's next offset is part of the recovery
snapshot, so a restart resumes where the last completed epoch ended (no consumer group
commits).

The sink (:class:`EpochSink`) produces without waiting and flushes when Bytewax closes an
epoch at the sink: Bytewax calls a stateful sink partition's ``snapshot()`` once every item
of the epoch has been written to it, and commits the epoch's offsets and state only after
every snapshot of it is in. So every output of a committed epoch is on the broker
(at-least-once, with deterministic ids), while batches no longer wait for the broker's
acknowledgements (Bytewax's own ``KafkaSink`` flushes after every batch: that capped
throughput and was the latency knee). A delivery that fails for good (message too large,
unknown topic) stops the flow loudly at the next write or flush, never silently.

One guard on top of Bytewax 0.21's source: it sets a partition's resume offset from the
*last* item of a batch, even when that item is a consumer error whose offset is -1001
(``OFFSET_INVALID``); the snapshot would then hold -1000 (``OFFSET_STORED``), and a restart
would resume from the consumer group's stored offset (there is none) and so from the
``auto.offset.reset`` end, skipping the backlog. :class:`_OffsetGuard` keeps the resume
offset at one past the newest real message. ``auto.offset.reset=earliest`` makes any
offset Kafka no longer has (retention) re-read from the oldest kept rather than skip ahead:
re-reads are harmless, events are deduplicated by id.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

from bytewax.connectors.kafka import KafkaError, KafkaSinkMessage, KafkaSource, KafkaSourceMessage
from bytewax.inputs import StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    KafkaException,
    Producer,
    TopicPartition,
)

from cdpflow.kafka_log import LIBRDKAFKA_LOG
from cdpflow.settings import Settings
from flows.stream_clock import PROGRESS

__all__ = ["PROGRESS_HEADER", "EpochSink", "OutputDeliveryError", "kafka_sink", "kafka_source"]

PROGRESS_HEADER = "cdpflow.caught_up"
"""Set on the last message of each batch read: ``b"1"`` if it was the partition's newest
(the partition is caught up), ``b"0"`` if more were queued (:mod:`flows.stream_clock`)."""
_EMPTY_CHECK_S = 0.5  # how often an empty partition asks whether it is caught up

_PRODUCER = {
    "enable.idempotence": "true",  # no duplicates from producer retries
    "acks": "all",
    # Never give up on an output: while the broker is away the sink's flush waits, the epoch
    # cannot close, and the dataflow carries on where it was once the broker is back. (The
    # default, 5 minutes, would drop outputs of a longer outage without a word.)
    "message.timeout.ms": "0",
    "linger.ms": "5",
    "compression.type": "lz4",
    # Delivery reports only for failures: a Python callback per message costs 1-2 µs.
    "delivery.report.only.error": True,
}
SinkMessage = KafkaSinkMessage[bytes | None, bytes | None]
_SINK_PARTS = 8  # outputs are spread by key over this many sink partitions (any worker count)


class _OffsetGuard(StatefulSourcePartition[Any, int | None]):
    """Bytewax's Kafka partition whose resume offset only ever comes from real messages,
    and which says whether it is caught up (stream time's idleness, :mod:`flows.stream_clock`)."""

    def __init__(self, inner: Any, from_end: bool) -> None:
        self._inner = inner
        self._from_end = from_end
        self._part = (inner._topic, inner._part_idx)
        self._tp = TopicPartition(inner._topic, inner._part_idx)
        self._checked = 0.0
        PROGRESS.report(self._part, caught_up=False)  # until it says otherwise

    def next_batch(self) -> list[Any]:
        before = self._inner._offset  # private, but it is the value this guard corrects
        batch: list[Any] = self._inner.next_batch()
        offsets = [
            m.offset
            for item in batch
            for m in (item.msg if isinstance(item, KafkaError) else item,)
            if isinstance(m, KafkaSourceMessage) and m.offset is not None and m.offset >= 0
        ]
        self._inner._offset = max(offsets) + 1 if offsets else before
        if offsets:
            caught_up = self._caught_up(self._inner._offset)
            PROGRESS.report(self._part, caught_up=caught_up)
            last = batch[-1]
            if isinstance(last, KafkaSourceMessage):
                last.headers.append((PROGRESS_HEADER, b"1" if caught_up else b"0"))
        elif (now := time.monotonic()) - self._checked >= _EMPTY_CHECK_S:
            self._checked = now
            PROGRESS.report(self._part, caught_up=self._caught_up(self._inner._offset))
        return batch

    def _caught_up(self, next_offset: int) -> bool:
        """Whether nothing is queued after ``next_offset`` (the high watermark: cached from
        the last fetch, asked of the broker when none came yet)."""
        consumer = self._inner._consumer
        try:
            low, high = consumer.get_watermark_offsets(self._tp, cached=True)
            if high < 0:
                low, high = consumer.get_watermark_offsets(self._tp, timeout=1.0)
            if next_offset < 0:  # a logical offset: nothing read yet
                pos = consumer.position([self._tp])[0].offset
                if pos < 0:
                    return self._from_end or high <= low
                next_offset = pos
        except KafkaException:
            return False  # cannot tell: hold stream time rather than run ahead
        return bool(next_offset >= high)

    def next_awake(self) -> Any:
        return self._inner.next_awake()

    def snapshot(self) -> int | None:
        return self._inner.snapshot()  # type: ignore[no-any-return]

    def close(self) -> None:
        PROGRESS.forget(self._part)
        self._inner.close()


class _GuardedKafkaSource(KafkaSource):
    def list_parts(self) -> list[str]:
        # Bytewax lists partitions with an AdminClient built from the same extra settings;
        # librdkafka warns about a consumer-only one there, so it is left out for that.
        consumer_only = self._add_config
        self._add_config = {k: v for k, v in consumer_only.items() if k != "auto.offset.reset"}
        try:
            return super().list_parts()
        finally:
            self._add_config = consumer_only

    def build_part(  # type: ignore[override]
        self, step_id: str, for_part: str, resume_state: int | None
    ) -> _OffsetGuard:
        inner = super().build_part(step_id, for_part, resume_state)
        return _OffsetGuard(inner, from_end=self._starting_offset == OFFSET_END)


def kafka_source(settings: Settings, *, until_end: bool = False) -> KafkaSource:
    """The events topic. ``until_end``: stop at the end offsets (tests, bounded runs)."""
    return _GuardedKafkaSource(
        brokers=settings.bootstrap_servers.split(","),
        topics=[settings.topics.events],
        tail=not until_end,
        starting_offset=OFFSET_BEGINNING if settings.start_from == "earliest" else OFFSET_END,
        # Consumer errors become dead letters instead of stopping the flow.
        raise_on_errors=False,
        # librdkafka's own log (one line per failed connection) to cdpflow.kafka at debug.
        add_config={"auto.offset.reset": "earliest", "logger": LIBRDKAFKA_LOG},
    )


class OutputDeliveryError(RuntimeError):
    """An output the broker refused for good: the flow stops rather than lose it."""


class _Producer:
    """One producer per process and configuration, shared by this process's sink
    partitions; remembers permanent delivery failures (topic and error, never the bytes)."""

    _shared: ClassVar[dict[tuple[tuple[str, str], ...], _Producer]] = {}

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.failures: list[str] = []
        self.producer = Producer({**config, "on_delivery": self._delivered})

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> _Producer:
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        found = cls._shared.get(key)
        if found is None:
            found = cls._shared[key] = cls(config)
        return found

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:  # only failures are reported (delivery.report.only.error)
            self.failures.append(f"{msg.topic()}: {err.str()}")

    def check(self) -> None:
        if self.failures:
            first, n = self.failures[0], len(self.failures)
            raise OutputDeliveryError(f"{n} output(s) refused by Kafka, first: {first}")


class _EpochSinkPartition(StatefulSinkPartition[SinkMessage, None]):
    def __init__(self, shared: _Producer) -> None:
        self._shared = shared
        self._producer = shared.producer

    def write_batch(self, values: list[SinkMessage]) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        for m in values:
            while True:
                try:
                    if m.timestamp:
                        produce(m.topic, m.value, m.key, headers=m.headers, timestamp=m.timestamp)
                    else:
                        produce(m.topic, m.value, m.key, headers=m.headers)
                    break
                except BufferError:
                    poll(0.05)  # the local queue is full: let the broker catch up
        poll(0)
        self._shared.check()

    def snapshot(self) -> None:
        """The epoch closes at the sink: every output of it must be on the broker before
        Bytewax may commit it (``message.timeout.ms=0``: this waits out a broker outage)."""
        self._producer.flush()
        self._shared.check()

    def close(self) -> None:
        self._producer.flush()
        self._shared.check()


class EpochSink(FixedPartitionedSink[SinkMessage, None]):
    """Kafka outputs flushed per epoch, not per batch (see the module's docstring). Takes
    ``(key, message)`` pairs; :func:`flows.dataflow.build_flow` keys them."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def list_parts(self) -> list[str]:
        return [str(i) for i in range(_SINK_PARTS)]

    def part_fn(self, item_key: str) -> int:
        return zlib.adler32(item_key.encode())

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _EpochSinkPartition:
        return _EpochSinkPartition(_Producer.of(self._config))


def kafka_sink(settings: Settings) -> EpochSink:
    """One producer per process for all outputs; each message names its topic."""
    return EpochSink(
        {**_PRODUCER, "bootstrap.servers": settings.bootstrap_servers, "logger": LIBRDKAFKA_LOG}
    )
