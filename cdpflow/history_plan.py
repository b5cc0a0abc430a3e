"""Which offsets of a topic hold a time range: shared by ``replay`` and ``archive``.

Times are Kafka message timestamps (when the producer wrote them). The end offsets are
captured when the plan is made, so messages arriving meanwhile belong to the live
dataflow, not to the replay or the archive.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from cdpflow import kafka_log
from cdpflow.errors import ConfigError
from cdpflow.kafka_log import kafka_config
from cdpflow.topics import BrokerUnavailableError

__all__ = ["OffsetPlan", "plan_offsets"]


@dataclass(frozen=True, slots=True)
class OffsetPlan:
    """Per partition: the first offset to read and the offset to stop before."""

    topic: str
    starts: dict[int, int]
    ends: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.ends[p] - self.starts[p] for p in self.ends)


def plan_offsets(
    bootstrap: str, topic: str, since_ms: int | None = None, until_ms: int | None = None
) -> OffsetPlan:
    """The offsets of ``topic`` with timestamps in ``[since_ms, until_ms)`` (open ends: the
    earliest retained message, and the end of the topic now)."""
    consumer = Consumer(kafka_config(bootstrap, {"group.id": "cdpflow-plan-unused",
                                                 "enable.auto.commit": False}))  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=kafka_log.METADATA_TIMEOUT_S)
        info = meta.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise ConfigError(
                f"topic {topic} does not exist on {bootstrap} (run: cdpflow topics create, "
                "or set CDPFLOW_TOPIC_EVENTS)"
            )
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for p in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            starts[p] = _offset_at(consumer, topic, p, since_ms, low, high)
            ends[p] = _offset_at(consumer, topic, p, until_ms, high, high)
            starts[p] = min(starts[p], ends[p])
    except KafkaException as exc:
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {bootstrap} "
            "(set KAFKA_BOOTSTRAP_SERVERS, or start one: bash docker/kafka-local.sh start)"
        ) from exc
    finally:
        consumer.close()
    return OffsetPlan(topic, starts, ends)


def _offset_at(
    consumer: Consumer, topic: str, p: int, ms: int | None, default: int, high: int
) -> int:
    if ms is None:
        return default
    [tp] = consumer.offsets_for_times([TopicPartition(topic, p, ms)], timeout=10)
    return high if tp.offset < 0 else tp.offset  # -1: no message at or after that time
