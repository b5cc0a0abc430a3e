"""Kafka source and sink for the dataflow, configured from :class:`Settings`.

Offsets are Bytewax's: each source partition's next offset is part of the recovery
snapshot, so a restart resumes where the last completed epoch ended (no consumer group
commits). The sink flushes the producer at the end of every batch, before the epoch can
close: outputs are at-least-once, with deterministic ids.
"""

from __future__ import annotations

from bytewax.connectors.kafka import KafkaSink, KafkaSource
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from cdpflow.settings import Settings

__all__ = ["kafka_sink", "kafka_source"]

_PRODUCER = {
    "enable.idempotence": "true",  # no duplicates from producer retries
    "acks": "all",
    # Never give up on an output: while the broker is away the sink's flush waits, the epoch
    # cannot close, and the dataflow carries on where it was once the broker is back. (The
    # default, 5 minutes, would drop outputs of a longer outage without a word.)
    "message.timeout.ms": "0",
    "linger.ms": "5",
    "compression.type": "lz4",
}


def kafka_source(settings: Settings, *, until_end: bool = False) -> KafkaSource:
    """The events topic. ``until_end``: stop at the end offsets (tests, bounded runs)."""
    return KafkaSource(
        brokers=settings.bootstrap_servers.split(","),
        topics=[settings.topics.events],
        tail=not until_end,
        starting_offset=OFFSET_BEGINNING if settings.start_from == "earliest" else OFFSET_END,
        # Consumer errors become dead letters instead of stopping the flow.
        raise_on_errors=False,
    )


def kafka_sink(settings: Settings) -> KafkaSink:
    """One producer for all outputs; each message names its topic."""
    return KafkaSink(settings.bootstrap_servers.split(","), topic=None, add_config=_PRODUCER)
