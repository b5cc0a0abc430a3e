"""The one Kafka producer of a collector process, awaited per request.

``confluent_kafka`` reports each delivery from ``poll()``, on the thread that calls it. The
event loop itself polls (a task started with the sink: every millisecond while a request
waits for deliveries, else every 50 ms for the client's error reports), so delivery
callbacks run on the loop's thread with no lock and no thread hand-off. (A separate poll
thread must take the GIL back for every single callback; with the loop busy encoding the
next request, each of those waits for Python's switch interval, and acknowledgements took
tens of milliseconds.) Every request waits on one future that the callback of its last
message resolves. So a request learns that *all* its messages were acknowledged by the
in-sync replicas (idempotent producer, ``acks=all``) or that one failed, within
``message.timeout.ms``.

When Kafka is unreachable the sink fails fast: after a failed delivery or librdkafka's
"all brokers down" it answers :class:`~collector.exceptions.BrokerUnavailable` at once
for ``broker_retry_after_s``, then lets requests try again; a successful readiness probe
or delivery closes the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from cdpflow.kafka_log import LIBRDKAFKA_LOG
from collector.exceptions import BrokerUnavailable, Overloaded
from collector.settings import CollectorSettings

__all__ = ["EventSink", "KafkaSink", "OutMessage", "producer_config"]

_ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA


class OutMessage(NamedTuple):
    """One Kafka message to produce (a tuple: one is made per event, cheaply)."""

    topic: str
    key: bytes | None
    value: bytes


class EventSink(Protocol):
    """Where accepted events and dead letters go; ``send`` returns once all are stored."""

    def start(self) -> None: ...

    async def send(self, messages: Sequence[OutMessage]) -> None: ...

    def ready(self, timeout_s: float) -> bool: ...

    def close(self, timeout_s: float) -> int: ...


def producer_config(settings: CollectorSettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "enable.idempotence": True,  # implies acks=all and ordered, duplicate-free retries
        "acks": "all",
        "message.timeout.ms": settings.produce_timeout_ms,
        "linger.ms": 5,
        "compression.type": "lz4",
        "reconnect.backoff.max.ms": 1000,
        # librdkafka's own queue may hold twice what the in-flight gate admits.
        "queue.buffering.max.kbytes": max(1024, 2 * settings.max_in_flight_bytes // 1024),
        "queue.buffering.max.messages": 1_000_000,
        "logger": LIBRDKAFKA_LOG,  # librdkafka's lines to the log at debug level
    }


class _Pending:
    """The deliveries one request waits for; callbacks come on the loop's thread."""

    __slots__ = ("error", "future", "remaining")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self.remaining = count
        self.error: KafkaError | None = None
        self.future: asyncio.Future[KafkaError | None] = loop.create_future()

    def on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None and self.error is None:
            self.error = err
        self.remaining -= 1
        # Not done: the request was cancelled (client went away) or the loop is closed
        # (the flush at shutdown); nobody waits any more.
        if self.remaining == 0 and not self.future.done():
            with contextlib.suppress(RuntimeError):
                self.future.set_result(self.error)


class KafkaSink:
    """An :class:`EventSink` over one idempotent ``confluent_kafka.Producer``."""

    def __init__(
        self,
        settings: CollectorSettings,
        *,
        on_broker_down: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._overrides = dict(overrides or {})
        self._clock = clock
        self._on_broker_down = on_broker_down or (lambda _code: None)
        self._producer: Producer | None = None
        self._poller: asyncio.Task[None] | None = None
        self._waiting = 0  # requests waiting for deliveries
        self._wake: asyncio.Event | None = None
        self._down_until = 0.0
        self._fatal: str | None = None

    def start(self) -> None:
        """Create the producer and its poll task; call it on the event loop (the lifespan)."""
        config = producer_config(self._settings) | self._overrides | {"error_cb": self._on_error}
        self._producer = Producer(config)
        self._wake = asyncio.Event()
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(self._producer, self._wake), name="kafka-poll"
        )

    async def _poll(self, producer: Producer, wake: asyncio.Event) -> None:
        """Serve delivery and error callbacks on the loop: each millisecond while a
        request waits, else every 50 ms or as soon as one starts waiting."""
        while True:
            producer.poll(0)
            if self._waiting:
                await asyncio.sleep(0.001)
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 0.05)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            # The idempotent producer cannot go on (e.g. fenced, or sequence lost): refuse
            # requests and report not ready, so the process is restarted.
            self._fatal = err.name()
            self._on_broker_down(f"fatal:{err.name()}")
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._trip(err.name())

    def _trip(self, code: str) -> None:
        self._down_until = self._clock() + self._settings.broker_retry_after_s
        self._on_broker_down(code)

    @property
    def broker_down(self) -> bool:
        return self._clock() < self._down_until

    async def send(self, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("producer not started", retry_after=1)
        retry_after = self._settings.broker_retry_after_s
        if self._fatal is not None:
            raise BrokerUnavailable(f"producer failed ({self._fatal})", retry_after=retry_after)
        if self.broker_down:
            raise BrokerUnavailable("Kafka is unreachable", retry_after=retry_after)
        pending = _Pending(len(messages), asyncio.get_running_loop())
        produce, delivered = producer.produce, pending.on_delivery
        for i, m in enumerate(messages):
            try:
                # Positional (partition -1: the partitioner's choice by key): confluent_kafka
                # parses keyword arguments at twice the cost of the call itself.
                produce(m.topic, m.value, m.key, _ANY_PARTITION, delivered)
            except BufferError:
                # Messages before this one may still be delivered: the client's retry can
                # repeat them, which event_id dedupe downstream absorbs.
                self._abandon(pending, len(messages) - i)
                raise Overloaded("producer queue is full", retry_after=1) from None
            except KafkaException as exc:
                self._abandon(pending, len(messages) - i)
                raise BrokerUnavailable(
                    "Kafka refused the message", retry_after=retry_after
                ) from exc
        # Deliveries come back within message.timeout.ms; the margin covers a stalled poll.
        timeout = self._settings.produce_timeout_ms / 1000 + 5
        self._waiting += 1
        if self._wake is not None:
            self._wake.set()
        try:
            error = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except TimeoutError:
            raise BrokerUnavailable("no acknowledgement in time", retry_after=retry_after) from None
        finally:
            self._waiting -= 1
        if error is not None:
            self._trip(error.name())
            raise BrokerUnavailable(
                f"Kafka did not acknowledge ({error.name()})", retry_after=retry_after
            )
        self._down_until = 0.0

    def _abandon(self, pending: _Pending, unsent: int) -> None:
        """No callback will come for the ``unsent`` messages: count them off as failed."""
        for _ in range(unsent):
            pending.on_delivery(KafkaError(KafkaError._FAIL), None)

    def ready(self, timeout_s: float) -> bool:
        """True if the broker answers a metadata request for the events topic in time."""
        producer = self._producer
        if producer is None or self._fatal is not None:
            return False
        topic = self._settings.topics.events
        try:
            meta = producer.list_topics(topic, timeout=timeout_s)
        except KafkaException:
            return False
        found = meta.topics.get(topic)
        ok = found is not None and found.error is None
        if ok:
            self._down_until = 0.0
        return ok

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush what is queued, stop polling; return how many messages were left unsent."""
        producer = self._producer
        if producer is None:
            return 0
        if self._poller is not None:
            self._poller.cancel()  # flush() serves the last callbacks on this thread
            self._poller = None
        left = producer.flush(timeout_s)
        self._producer = None
        return left
