"""The dataflow's Kafka sink: produces without waiting per batch, and an epoch's ``snapshot``
(Bytewax's epoch close at the sink) returns only once every output is on the broker; a
permanent delivery failure stops the flow loudly."""

from __future__ import annotations

from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage

from flows.kafka_io import OutputDeliveryError, _Producer, kafka_sink
from tests.integration.conftest import read_raw


def test_snapshot_returns_once_every_output_of_the_epoch_is_on_the_broker(kafka_settings) -> None:
    sink = kafka_sink(kafka_settings)
    assert len(sink.list_parts()) == 8
    part = sink.build_part("out", "0", None)
    topic = kafka_settings.topics.triggers
    msgs = [KafkaSinkMessage(f"k{i}".encode(), f"v{i}".encode(), topic=topic) for i in range(500)]
    part.write_batch(msgs[:250])
    part.write_batch(msgs[250:])
    part.snapshot()
    assert len(part._producer) == 0  # nothing left in flight once the epoch closed
    got = sorted(m.value() for m in read_raw(kafka_settings, topic))
    assert got == sorted(m.value for m in msgs)
    part.close()


class _Err:
    def str(self) -> str:
        return "Broker: Message size too large"


class _Msg:
    def topic(self) -> str:
        return "cdp.profiles"

    def value(self) -> Any:  # never read: the error must not carry the payload
        raise AssertionError("the payload was read")


def test_a_permanent_delivery_failure_stops_the_flow_naming_topic_and_error() -> None:
    shared = _Producer({"bootstrap.servers": "127.0.0.1:1"})
    shared.check()  # no failure yet
    shared._delivered(None, _Msg())  # a success report (not sent, but harmless)
    shared.check()
    shared._delivered(_Err(), _Msg())
    with pytest.raises(OutputDeliveryError, match=r"^1 output\(s\) refused by Kafka, first: "
                       r"cdp.profiles: Broker: Message size too large$"):  # fmt: skip
        shared.check()
