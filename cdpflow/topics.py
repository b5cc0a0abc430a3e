"""``cdpflow topics create``: the default topics, with the right settings.

``cdp.profiles`` is compacted (one record per customer: the latest snapshot; a
tombstone erases). The others keep the broker's retention.
"""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from cdpflow import kafka_log
from cdpflow.errors import CdpflowError
from cdpflow.kafka_log import kafka_config
from cdpflow.settings import Settings

__all__ = ["BrokerUnavailableError", "create_topics", "topic_specs"]


class BrokerUnavailableError(CdpflowError):
    reason = "broker_unavailable"


def topic_specs(settings: Settings, replication: int = 1) -> list[NewTopic]:
    t = settings.topics
    n = settings.partitions
    return [
        NewTopic(t.events, n, replication),
        NewTopic(t.triggers, n, replication),
        NewTopic(t.profiles, n, replication,
                 config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"}),
        NewTopic(t.dead_letters, n, replication),
        NewTopic(t.identities, n, replication),
    ]  # fmt: skip


def admin(settings: Settings, timeout_s: float | None = None) -> AdminClient:
    """An admin client that has proved the broker answers, else ``BrokerUnavailableError``."""
    timeout_s = kafka_log.METADATA_TIMEOUT_S if timeout_s is None else timeout_s
    client = AdminClient(kafka_config(settings.bootstrap_servers))
    try:
        client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {settings.bootstrap_servers} within {timeout_s:g} s "
            "(set KAFKA_BOOTSTRAP_SERVERS, or start one: bash docker/kafka-local.sh start)"
        ) from exc
    return client


def create_topics(settings: Settings, replication: int = 1) -> dict[str, str]:
    """Create missing topics; return ``{topic: "created" | "exists"}``."""
    client = admin(settings)
    result: dict[str, str] = {}
    for topic, future in client.create_topics(topic_specs(settings, replication)).items():
        try:
            future.result()
            result[topic] = "created"
        except KafkaException as exc:
            if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                result[topic] = "exists"
            else:
                raise BrokerUnavailableError(f"creating {topic}: {exc.args[0].str()}") from exc
    return result
