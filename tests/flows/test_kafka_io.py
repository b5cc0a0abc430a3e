"""The Kafka source's resume offset never comes from a consumer error (unit test: a fake
consumer stands in for librdkafka behind Bytewax's real partition)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from confluent_kafka import KafkaError as ConfluentKafkaError

from cdpflow.settings import Settings
from flows.kafka_io import kafka_source


class _Msg:
    def __init__(self, offset: int, error: Any = None) -> None:
        self._offset, self._error = offset, error

    def error(self) -> Any:
        return self._error

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def topic(self) -> str:
        return "cdp.events"

    def partition(self) -> int:
        return 0

    def headers(self) -> None:
        return None

    def latency(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


class _Consumer:
    def __init__(self, batches: list[list[_Msg]]) -> None:
        self.batches = batches

    def consume(self, _n: int, _timeout: float) -> list[_Msg]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def test_a_consumer_error_never_moves_the_resume_offset() -> None:
    settings = replace(Settings(), bootstrap_servers="127.0.0.1:1")
    part = kafka_source(settings).build_part("in", "0-cdp.events", 40)
    transport = ConfluentKafkaError(ConfluentKafkaError._TRANSPORT)
    part._inner._consumer = _Consumer([  # type: ignore[attr-defined]
        [_Msg(40), _Msg(41), _Msg(-1001, transport)],  # an error last: Bytewax would store -1000
        [_Msg(-1001, transport)],
        [_Msg(42)],
    ])  # fmt: skip
    assert len(part.next_batch()) == 3  # the error is passed on, to be dead-lettered
    assert part.snapshot() == 42
    part.next_batch()
    assert part.snapshot() == 42
    part.next_batch()
    assert part.snapshot() == 43
    part.close()
