"""Timers fire on time live, on a real broker with four partitions in field conditions: one
partition whose newest event is an hour old, an offline batch of old events arriving
mid-run, a partition that never receives anything; and a backlog still never fires a
timer ahead of the events queued before its moment.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import replace
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings, Topics
from cdpflow.topics import topic_specs
from tests.integration.conftest import BOOTSTRAP, read_topic, settings_env

MIN = 60_000
GRACE_MS = 1_000


def _topics(admin: AdminClient, partitions: int = 4) -> Settings:
    tag = uuid.uuid4().hex[:10]
    topics = Topics(f"lt-{tag}.events", f"lt-{tag}.triggers", f"lt-{tag}.profiles",
                    f"lt-{tag}.dlq", f"lt-{tag}.identities")  # fmt: skip
    settings = replace(Settings(), bootstrap_servers=BOOTSTRAP, topics=topics,
                       partitions=partitions)  # fmt: skip
    for future in admin.create_topics(topic_specs(settings)).values():
        future.result(timeout=30)
    return settings


def _event(i: str, kind: str, customer: str, t: int, payload: dict[str, Any]) -> bytes:
    codec = default_codec()
    obj = {"event_id": i, "type": kind, "customer_id": customer, "timestamp": t,
           "received_at": int(time.time() * 1000), "source": "test",
           "payload": payload}  # fmt: skip
    return codec.encode("cdp.Event", record_from_json(obj, codec))


def _produce(settings: Settings, items: list[tuple[int, str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    for partition, key, value in items:
        producer.produce(settings.topics.events, value, key.encode(), partition=partition)
    assert producer.flush(30) == 0


def _cart(customer: str, t: int) -> bytes:
    item = {"product": {"product_id": "bag-7", "price": 120.5}, "quantity": 1}
    return _event(f"cart-{customer}", "cart_item_added", customer, t, {"item": item})


def _page(i: int, customer: str, t: int) -> bytes:
    return _event(f"page-{customer}-{i}", "page_viewed", customer, t, {"path": "/"})


def _start(settings: Settings) -> subprocess.Popen[bytes]:
    env = settings_env(
        settings,
        CDPFLOW_TIMER_GRACE_MS=str(GRACE_MS),
        CDPFLOW_PROFILE_FLUSH_MS="200",
        CDPFLOW_PARTITIONS="4",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "run", "--no-recovery"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_trigger(settings: Settings, rule: str, customer: str, limit_s: float) -> float:
    """Wall time (s) at which ``rule``'s trigger for ``customer`` reached the topic."""
    codec = default_codec()
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"lt-{uuid.uuid4().hex}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.assign([TopicPartition(settings.topics.triggers, p) for p in range(4)])
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is None or msg.error() or msg.value() is None:
                continue
            name, record = codec.decode(msg.value())
            if name == "cdp.Trigger" and (record["rule"], record["customer_id"]) == (
                rule,
                customer,
            ):
                return msg.timestamp()[1] / 1000  # the broker's append time
    finally:
        consumer.close()
    raise AssertionError(f"no {rule} trigger for {customer} within {limit_s} s")


def test_abandoned_cart_fires_on_time_with_an_old_partition_a_late_batch_and_an_empty_one(
    kafka_admin,
) -> None:
    settings = _topics(kafka_admin)
    now = int(time.time() * 1000)
    # Partition 0: its newest event an hour old. Partition 2: nothing, ever.
    _produce(settings, [(0, "olga", _page(1, "olga", now - 60 * MIN))])
    proc = _start(settings)
    try:
        time.sleep(4)
        # Partition 1: a cart whose hour of silence ends 25 s from now.
        added = int(time.time() * 1000) - 60 * MIN + 25_000
        _produce(settings, [(1, "bea", _cart("bea", added))])
        time.sleep(3)
        # Partition 3: an SDK's offline batch, 50 minutes old, arriving mid-run.
        late = int(time.time() * 1000) - 50 * MIN
        _produce(settings, [(3, "carl", _page(i, "carl", late + i)) for i in range(20)])
        deadline_s = (added + 60 * MIN) / 1000
        fired = _wait_for_trigger(settings, "abandoned_cart", "bea", limit_s=60)
    finally:
        _stop(proc)
    assert fired >= deadline_s - 0.5, "fired before the cart's hour was up"
    assert fired - deadline_s <= GRACE_MS / 1000 + 2, f"{fired - deadline_s:.1f} s late"
    kafka_admin.delete_topics([s.topic for s in topic_specs(settings)])


def test_a_backlog_never_fires_a_timer_ahead_of_the_events_queued_before_its_moment(
    kafka_admin,
) -> None:
    """Dana's cart and, 30 minutes later, her order sit behind 6,000 other events on one
    partition; the other partitions are empty and caught up at once. If stream time ran
    ahead to the wall clock before her order was read, she would get an abandoned cart."""
    settings = _topics(kafka_admin)
    now = int(time.time() * 1000)
    t0 = now - 5 * 60 * MIN
    filler = [(0, f"f{i % 50}", _page(i, f"f{i % 50}", t0 + 1_000 + i)) for i in range(6_000)]
    order = {"order_id": "o-1", "revenue": 120.5, "items": []}
    _produce(settings, [
        (0, "dana", _cart("dana", t0)),
        *filler,
        (0, "dana", _event("order-dana", "order_completed", "dana", t0 + 30 * MIN, order)),
        (0, "eve", _cart("eve", t0 + 30 * MIN)),  # Eve's cart stays abandoned
    ])  # fmt: skip
    proc = _start(settings)
    try:
        _wait_for_trigger(settings, "abandoned_cart", "eve", limit_s=90)
        time.sleep(2)
    finally:
        _stop(proc)
    out = read_topic(settings, settings.topics.triggers)
    carts = sorted(r["customer_id"] for n, r, _ in out
                   if n == "cdp.Trigger" and r["rule"] == "abandoned_cart")  # fmt: skip
    assert carts == ["eve"]
    kafka_admin.delete_topics([s.topic for s in topic_specs(settings)])
