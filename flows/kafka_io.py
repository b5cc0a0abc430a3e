"""Kafka source and sink for the dataflow, configured from :class:`Settings`.

Offsets are Bytewax's: each source partition's next offset is part of the recovery
snapshot, so a restart resumes where the last completed epoch ended (no consumer group
commits). The sink flushes the producer at the end of every batch, before the epoch can
close: outputs are at-least-once, with deterministic ids.

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
from typing import Any

from bytewax.connectors.kafka import KafkaError, KafkaSink, KafkaSource, KafkaSourceMessage
from bytewax.inputs import StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

from cdpflow.kafka_log import LIBRDKAFKA_LOG
from cdpflow.settings import Settings
from flows.stream_clock import PROGRESS

__all__ = ["PROGRESS_HEADER", "kafka_sink", "kafka_source"]

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
}


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


def kafka_sink(settings: Settings) -> KafkaSink:
    """One producer for all outputs; each message names its topic."""
    config = {**_PRODUCER, "logger": LIBRDKAFKA_LOG}
    return KafkaSink(settings.bootstrap_servers.split(","), topic=None, add_config=config)
