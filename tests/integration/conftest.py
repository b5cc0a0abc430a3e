"""A real Kafka broker for the integration tests, and uuid-named topics per test.

The broker is the one ``docker/kafka-local.sh`` starts (``make test`` does it). Without
one these tests skip on a laptop, and fail under ``CI=true``: CI must never go green by
skipping them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings, Topics
from cdpflow.topics import topic_specs

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_admin() -> AdminClient:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    try:
        admin.list_topics(timeout=10)
    except KafkaException as exc:
        msg = f"no Kafka broker at {BOOTSTRAP} (start one: bash docker/kafka-local.sh start)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}; CI=true, so this fails instead of skipping: {exc}")
        pytest.skip(msg)
    return admin


@pytest.fixture
def kafka_settings(kafka_admin: AdminClient) -> Iterator[Settings]:
    """Settings whose topics are fresh, uuid-named, 2 partitions each."""
    tag = uuid.uuid4().hex[:10]
    topics = Topics(f"it-{tag}.events", f"it-{tag}.triggers", f"it-{tag}.profiles",
                    f"it-{tag}.dlq", f"it-{tag}.identities")  # fmt: skip
    settings = create_fresh_topics(kafka_admin, BOOTSTRAP, topics)
    yield settings
    kafka_admin.delete_topics([s.topic for s in topic_specs(settings)])


def create_fresh_topics(admin: AdminClient, bootstrap: str, topics: Topics) -> Settings:
    """Create ``topics`` as ``cdpflow topics create`` would, 2 partitions each, and return
    the settings that point at them."""
    settings = replace(Settings(), bootstrap_servers=bootstrap, topics=topics, partitions=2)
    for future in admin.create_topics(topic_specs(settings)).values():
        future.result(timeout=30)
    return settings


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a ``cdpflow`` subprocess use ``settings``."""
    return {**os.environ, **settings.topics_env(), **extra}


@pytest.fixture
def produce_events() -> Callable[..., list[tuple[int, int]]]:
    """Produce JSON events (Avro-encoded, keyed by customer) or raw bytes; return
    ``(partition, offset)`` of each, in order."""

    def produce(settings: Settings, items: list[dict[str, Any] | bytes]) -> list[tuple[int, int]]:
        codec = default_codec()
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers,
                             "enable.idempotence": True})  # fmt: skip
        delivered: dict[int, tuple[int, int]] = {}

        def on_delivery(i: int) -> Callable[[Any, Any], None]:
            def cb(err: Any, msg: Any) -> None:
                assert err is None, err
                delivered[i] = (msg.partition(), msg.offset())

            return cb

        for i, item in enumerate(items):
            if isinstance(item, bytes):
                key, value = b"poison", item
            else:
                record = record_from_json(item, codec)
                key = (record["customer_id"] or record["anonymous_id"]).encode()
                value = codec.encode("cdp.Event", record)
            producer.produce(settings.topics.events, value, key, on_delivery=on_delivery(i))
            producer.poll(0)
        assert producer.flush(30) == 0
        return [delivered[i] for i in range(len(items))]

    return produce


def read_raw(settings: Settings, topic: str) -> list[Any]:
    """Every message of ``topic`` from the beginning, undecoded."""
    return [m for _, _, m in read_topic(settings, topic, decode=False)]


def read_topic(
    settings: Settings, topic: str, *, decode: bool = True
) -> list[tuple[str, dict[str, Any], Any]]:
    """Every record of ``topic`` from the beginning: ``(schema name, record, message)``."""
    codec = default_codec()
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"it-read-{uuid.uuid4().hex}",
                         "enable.partition.eof": True, "enable.auto.commit": False})  # fmt: skip
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pending = set(parts)
    out = []
    try:
        while pending:
            msg = consumer.poll(10)
            assert msg is not None, f"timed out reading {topic}"
            if msg.error():
                assert msg.error().code() == msg.error()._PARTITION_EOF, msg.error()
                pending.discard(msg.partition())
                continue
            if msg.value() is None:
                out.append(("tombstone", {}, msg))
                continue
            if not decode:
                out.append(("", {}, msg))
                continue
            name, record = codec.decode(msg.value())
            out.append((name, record, msg))
    finally:
        consumer.close()
    return out


def run_cdpflow(args: list[str], env: dict[str, str], timeout: float = 180) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", *args], env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"cdpflow {' '.join(args)} failed:\n{proc.stderr[-3000:]}"


def produce_messages(settings: Settings, msgs: list, per_second: float | None = None) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    for i, m in enumerate(msgs):
        producer.produce(settings.topics.events, m.value, m.key)
        producer.poll(0)
        if per_second and i % 50 == 49:
            time.sleep(50 / per_second)
    assert producer.flush(30) == 0


def fresh_outputs(admin, settings: Settings) -> Settings:
    """Same events topic, new output topics: a second run's results stay apart."""
    tag = uuid.uuid4().hex[:8]
    topics = replace(
        settings.topics,
        triggers=f"{settings.topics.triggers}.{tag}",
        profiles=f"{settings.topics.profiles}.{tag}",
        dead_letters=f"{settings.topics.dead_letters}.{tag}",
        identities=f"{settings.topics.identities}.{tag}",
    )
    specs = [NewTopic(t, 2, 1) for t in (topics.triggers, topics.profiles, topics.dead_letters,
                                          topics.identities)]  # fmt: skip
    for future in admin.create_topics(specs).values():
        future.result(timeout=30)
    return replace(settings, topics=topics)


def final_outputs(settings: Settings) -> tuple[dict[bytes, str], list[str]]:
    profiles = {}
    for name, record, msg in read_topic(settings, settings.topics.profiles):
        assert name == "cdp.ProfileSnapshot"
        profiles[msg.key()] = record["profile_json"]  # per-partition order: the last wins
    triggers = [r["trigger_id"] for n, r, _ in read_topic(settings, settings.topics.triggers)
                if n == "cdp.Trigger"]  # fmt: skip
    return profiles, triggers


SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "kafka-local.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnBroker:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "KAFKA_LOCAL_DIR": str(directory),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(_free_port()),
            "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, action: str) -> None:
        proc = subprocess.run(
            ["bash", str(SCRIPT), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"kafka-local.sh {action}: {proc.stdout}{proc.stderr}"

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture
def own_broker(kafka_admin: AdminClient, tmp_path: Path) -> Iterator[OwnBroker]:
    """Requires the shared broker too, so that CI fails (not skips) without Kafka set up."""
    broker = OwnBroker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
