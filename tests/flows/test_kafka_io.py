"""The Kafka source's resume offset never comes from a consumer error (unit test: a fake
consumer stands in for librdkafka behind Bytewax's real partition)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from confluent_kafka import KafkaError as ConfluentKafkaError

from cdpflow.settings import Settings
from flows.kafka_io import PROGRESS_HEADER, kafka_source
from flows.stream_clock import PROGRESS


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
    def __init__(self, batches: list[list[_Msg]], high: int = 0) -> None:
        self.batches = batches
        self.high = high  # the partition's high watermark: the next offset to be written

    def get_watermark_offsets(self, _tp: Any, **_kw: Any) -> tuple[int, int]:
        return 0, self.high

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


def test_each_batch_says_whether_its_partition_is_caught_up() -> None:
    """The last message of a batch carries the news; the process registry hears it too, and
    of an empty partition as well (stream time's idleness, flows/stream_clock.py)."""
    settings = replace(Settings(), bootstrap_servers="127.0.0.1:1")
    part = kafka_source(settings).build_part("in", "0-cdp.events", 10)
    assert PROGRESS.caught_up(("cdp.events", 0)) is False  # until it says otherwise
    consumer = _Consumer([[_Msg(10), _Msg(11)], [_Msg(12)]], high=13)
    part._inner._consumer = consumer  # type: ignore[attr-defined]
    first = part.next_batch()
    assert [m.headers for m in first] == [[], [(PROGRESS_HEADER, b"0")]]  # 12 still queued
    assert PROGRESS.caught_up(("cdp.events", 0)) is False
    assert part.next_batch()[-1].headers == [(PROGRESS_HEADER, b"1")]
    assert PROGRESS.caught_up(("cdp.events", 0)) is True
    consumer.high = 20  # more arrived, not fetched yet: an empty poll says behind
    part._checked = 0.0  # type: ignore[attr-defined]
    assert part.next_batch() == []
    assert PROGRESS.caught_up(("cdp.events", 0)) is False
    part.close()
    assert PROGRESS.caught_up(("cdp.events", 0)) is None  # a closed reader holds nothing back
