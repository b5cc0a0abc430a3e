"""Erasure requests: ``cdpflow forget CUSTOMER_ID`` and the profile API's ``DELETE``.

Both write one erasure event (a ``custom`` event named ``erase``) to the events topic, keyed
like the customer's other events, and wait for Kafka's acknowledgement. The dataflow then
wipes the customer's state, keeping only the erasure time, and writes a tombstone to
``cdp.profiles``; the profile API and the mailer delete their copies when they read it.
Events with an event time at or before the erasure — late deliveries, replays of history —
are dropped from then on; new activity after it starts a new profile.

:class:`ErasureProducer` keeps one producer for many requests (the profile API creates it
in its lifespan); :func:`request_erasure` is the one-shot form the CLI uses.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from cdpflow import kafka_log
from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.kafka_log import kafka_config
from cdpflow.settings import Settings
from cdpflow.topics import BrokerUnavailableError
from state.profile import ERASE_EVENT

__all__ = ["ErasureProducer", "erasure_record", "request_erasure"]


def erasure_record(customer_id: str, now_ms: int, event_id: str, source: str) -> dict[str, Any]:
    """The ``cdp.Event`` that asks the dataflow to erase ``customer_id``.

    >>> r = erasure_record("c-1", 1_700_000_000_000, "erase-1", "cdpflow forget")
    >>> r["event_type"], r["payload"][1]["name"], r["event_time"] == r["received_at"]
    ('custom', 'erase', True)
    """
    return {
        "event_id": event_id,
        "event_type": "custom",
        "customer_id": customer_id,
        "anonymous_id": None,
        "event_time": now_ms,
        "sent_at": None,
        "received_at": now_ms,
        "source": source,
        "context": None,
        "payload": ("cdp.CustomEvent", {"name": ERASE_EVENT, "properties": {}}),
    }


class ErasureProducer:
    """Writes erasure events and waits for each one's acknowledgement; thread-safe.

    :meth:`request` blocks for at most about ``timeout_s`` (librdkafka's
    ``message.timeout.ms``): call it from a worker thread in async code.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        events_topic: str,
        *,
        timeout_s: float = 15.0,
        source: str = "cdpflow forget",
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = events_topic
        self._timeout_s = timeout_s
        self._source = source
        self._codec = default_codec()
        self._producer = Producer(
            kafka_config(
                bootstrap_servers,
                {
                    "enable.idempotence": True,
                    "message.timeout.ms": max(1, int(timeout_s * 1000)),
                },
            )
        )

    def request(self, customer_id: str) -> str:
        """Produce the erasure event and wait for Kafka's acknowledgement; return its id.

        :class:`~cdpflow.topics.BrokerUnavailableError` if it was not acknowledged in
        time; the event may still be written later (an erasure is idempotent: retry).
        """
        if not customer_id.strip():
            raise ConfigError("CUSTOMER_ID must not be empty")
        now = time.time_ns() // 1_000_000
        event_id = f"erase-{uuid.uuid4()}"
        value = self._codec.encode(
            "cdp.Event", erasure_record(customer_id, now, event_id, self._source)
        )
        done = threading.Event()
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)
            done.set()

        try:
            self._producer.produce(
                self._topic, value, customer_id.encode(), on_delivery=on_delivery
            )
        except (KafkaException, BufferError) as exc:
            raise BrokerUnavailableError(f"could not write the erasure: {exc}") from exc
        # The delivery report fires by message.timeout.ms at the latest; one second more
        # covers the polling. Any thread's poll may serve it, hence the event.
        deadline = time.monotonic() + self._timeout_s + 1.0
        while not done.is_set() and time.monotonic() < deadline:
            self._producer.poll(0.1)
        if not done.is_set() or errors:
            raise BrokerUnavailableError(self._failure(errors[0] if errors else None))
        return event_id

    def _failure(self, err: KafkaError | None) -> str:
        """The delivery failure in words, naming the broker or the topic to fix."""
        if err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return (
                f"topic {self._topic} does not exist on {self._bootstrap} "
                "(run: cdpflow topics create)"
            )
        if err is None or err.code() == KafkaError._MSG_TIMED_OUT:
            return (
                f"Kafka at {self._bootstrap} did not acknowledge the erasure within "
                f"{self._timeout_s:g} s: is the broker up (KAFKA_BOOTSTRAP_SERVERS) and does "
                f"topic {self._topic} exist? The erasure is idempotent: retry"
            )
        return f"Kafka at {self._bootstrap} refused the erasure: {err.str()}"

    def check_topic(self, timeout_s: float | None = None) -> None:
        """Fail fast, naming what to fix, when the broker does not answer or the events
        topic is missing (a producer would only time out, after ``timeout_s``)."""
        timeout_s = kafka_log.METADATA_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            info = self._producer.list_topics(self._topic, timeout=timeout_s).topics.get(
                self._topic
            )
        except KafkaException as exc:
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {self._bootstrap} within {timeout_s:g} s "
                "(set KAFKA_BOOTSTRAP_SERVERS, or start one: bash docker/kafka-local.sh start)"
            ) from exc
        if info is None or info.error is not None or not info.partitions:
            raise ConfigError(
                f"topic {self._topic} does not exist on {self._bootstrap} (run: cdpflow "
                "topics create, or set CDPFLOW_TOPIC_EVENTS)"
            )

    def close(self, timeout_s: float = 5.0) -> int:
        """Flush what is still queued; return how many messages were not delivered."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining


def request_erasure(settings: Settings, customer_id: str, timeout_s: float = 15.0) -> str:
    """Produce the erasure event and wait for Kafka's acknowledgement; return its id."""
    if not customer_id.strip():
        raise ConfigError("CUSTOMER_ID must not be empty")
    producer = ErasureProducer(
        settings.bootstrap_servers, settings.topics.events, timeout_s=timeout_s
    )
    try:
        producer.check_topic()
        return producer.request(customer_id)
    finally:
        producer.close(0)
