"""KafkaSink with a real confluent_kafka producer and no broker: what a request sees when
Kafka cannot take its events. (The broker-backed behaviour is in tests/integration.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from collector.exceptions import BrokerUnavailable, Overloaded
from collector.producer import KafkaSink, OutMessage, producer_config
from collector.settings import CollectorSettings

NOWHERE = CollectorSettings(
    bootstrap_servers="127.0.0.1:1", produce_timeout_ms=500, broker_retry_after_s=3
)


def messages(n: int) -> list[OutMessage]:
    return [OutMessage("cdp.events", b"k", b"v%d" % i) for i in range(n)]


@pytest.fixture
def sink_factory() -> Iterator[type[KafkaSink]]:
    sinks: list[KafkaSink] = []

    class Tracked(KafkaSink):
        def start(self) -> None:
            super().start()
            sinks.append(self)

    yield Tracked
    for sink in sinks:
        sink.close(0)


def test_producer_is_idempotent_with_acks_all() -> None:
    config = producer_config(NOWHERE)
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["message.timeout.ms"] == 500


def leaping_clock() -> Callable[[], float]:
    """A clock that jumps 60 s at every reading: the breaker's window is always over."""
    ticks = itertools.count()
    return lambda: 60.0 * next(ticks)


def test_all_brokers_down_trips_the_breaker_and_requests_fail_fast(
    sink_factory: type[KafkaSink],
) -> None:
    downs: list[str] = []
    sink = sink_factory(NOWHERE, on_broker_down=downs.append)

    async def scenario() -> float:
        sink.start()  # its poll task serves librdkafka's error reports on this loop
        deadline = time.monotonic() + 10
        while not sink.broker_down and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "_ALL_BROKERS_DOWN" in downs
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="unreachable") as info:
            await sink.send(messages(1))
        assert info.value.retry_after == 3
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 0.1
    assert sink.ready(0.5) is False


def test_events_not_acknowledged_in_time_are_503(sink_factory: type[KafkaSink]) -> None:
    sink = sink_factory(NOWHERE, clock=leaping_clock())

    async def scenario() -> float:
        sink.start()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="did not acknowledge"):
            await sink.send(messages(3))
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert 0.3 < waited < 5  # message.timeout.ms (0.5 s), not the 5 s safety margin


def test_a_full_producer_queue_is_429_and_the_request_does_not_hang(
    sink_factory: type[KafkaSink],
) -> None:
    sink = sink_factory(
        NOWHERE, clock=leaping_clock(), overrides={"queue.buffering.max.messages": 2}
    )

    async def scenario() -> None:
        sink.start()
        with pytest.raises(Overloaded) as info:
            await asyncio.wait_for(sink.send(messages(5)), timeout=5)
        assert info.value.retry_after == 1

    asyncio.run(scenario())


def test_send_before_start_is_503() -> None:
    with pytest.raises(BrokerUnavailable):
        asyncio.run(KafkaSink(NOWHERE).send(messages(1)))


def test_an_empty_request_needs_no_broker() -> None:
    asyncio.run(KafkaSink(NOWHERE).send([]))
