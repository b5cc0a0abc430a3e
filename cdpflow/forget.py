"""``cdpflow forget CUSTOMER_ID``: erase a customer everywhere their profile is kept.

It writes one erasure event (a ``custom`` event named ``erase``) to the events topic, keyed
like the customer's other events. The dataflow then wipes the customer's state, keeping
only the erasure time, and writes a tombstone to ``cdp.profiles``; the profile API and the
mailer delete their copies when they read it. Events with an event time at or before the
erasure — late deliveries, replays of history — are dropped from then on; new activity
after it starts a new profile.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaException, Producer

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.settings import Settings
from cdpflow.topics import BrokerUnavailableError
from state.profile import ERASE_EVENT

__all__ = ["request_erasure"]


def request_erasure(settings: Settings, customer_id: str, timeout_s: float = 15.0) -> str:
    """Produce the erasure event and wait for Kafka's acknowledgement; return its id."""
    if not customer_id.strip():
        raise ConfigError("CUSTOMER_ID must not be empty")
    now = time.time_ns() // 1_000_000
    event_id = f"erase-{uuid.uuid4()}"
    record = {
        "event_id": event_id,
        "event_type": "custom",
        "customer_id": customer_id,
        "anonymous_id": None,
        "event_time": now,
        "sent_at": None,
        "received_at": now,
        "source": "cdpflow forget",
        "context": None,
        "payload": ("cdp.CustomEvent", {"name": ERASE_EVENT, "properties": {}}),
    }
    value = default_codec().encode("cdp.Event", record)
    errors: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "message.timeout.ms": int(timeout_s * 1000),
        }
    )
    try:
        producer.produce(
            settings.topics.events,
            value,
            customer_id.encode(),
            on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
        )
        remaining = producer.flush(timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailableError(f"could not write the erasure: {exc}") from exc
    if remaining or errors:
        raise BrokerUnavailableError(
            f"Kafka at {settings.bootstrap_servers} did not acknowledge the erasure"
            + (f": {errors[0]}" if errors else "")
        )
    return event_id
