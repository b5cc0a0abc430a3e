"""Triggers the mailer cannot deliver, as ``cdp.DeadLetter`` records on the DLQ topic.

``event_id`` carries the trigger id; ``raw``/``key`` the trigger message unchanged and
``source_*`` its coordinates, so a fixed trigger can be re-produced to the triggers topic.
``error`` names codes and attempts, never the provider's reply text (it may repeat the
address).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer

from cdpflow.codec import AvroCodec
from cdpflow.kafka_log import kafka_config
from mailer.exceptions import Unavailable

__all__ = ["DeadLetterSink", "KafkaDeadLetters", "MailerDeadLetter"]


@dataclass(frozen=True, slots=True)
class MailerDeadLetter:
    reason: str
    error: str
    error_type: str
    raw: bytes | None
    key: bytes | None
    trigger_id: str | None
    topic: str
    partition: int
    offset: int
    seen_at: int

    def to_record(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "error": self.error,
            "error_type": self.error_type,
            "raw": self.raw,
            "key": self.key,
            "event_id": self.trigger_id,
            "source_topic": self.topic,
            "source_partition": self.partition,
            "source_offset": self.offset,
            "seen_at": self.seen_at,
        }


class DeadLetterSink(Protocol):
    """Writes a dead letter and returns once it is durable (acknowledged)."""

    def send(self, letter: MailerDeadLetter) -> None:
        """Raises :class:`~mailer.exceptions.Unavailable` when the letter is not durable."""
        ...

    def close(self) -> None: ...


class KafkaDeadLetters:
    """Produces to ``topic`` and waits for the broker's acknowledgement of each letter."""

    def __init__(
        self, bootstrap_servers: str, topic: str, codec: AvroCodec, timeout_s: float = 30.0
    ) -> None:
        self._topic = topic
        self._codec = codec
        self._timeout_s = timeout_s
        self._producer = Producer(
            kafka_config(bootstrap_servers, {"enable.idempotence": True, "acks": "all"})
        )

    def send(self, letter: MailerDeadLetter) -> None:
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err.name()))

        try:
            self._producer.produce(
                self._topic,
                self._codec.encode("cdp.DeadLetter", letter.to_record()),
                letter.key,
                headers=[("cdp.schema", b"cdp.DeadLetter")],
                on_delivery=on_delivery,
            )
        except (KafkaException, BufferError) as exc:
            raise Unavailable(f"cannot produce to {self._topic}: {type(exc).__name__}") from exc
        if self._producer.flush(self._timeout_s) != 0 or failures:
            why = ", ".join(failures) or "timeout"
            raise Unavailable(f"dead letter to {self._topic} not acknowledged ({why})")

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
