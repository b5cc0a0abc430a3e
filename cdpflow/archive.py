"""``cdpflow archive``: a topic (or a time range of it) into Avro object container files.

Layout, one folder per topic and partition, one file per hour (or day) of message time::

    DIR/<topic>/p<partition>/<YYYY-MM-DDTHH>.avro      (or <YYYY-MM-DD>.avro)
    DIR/<topic>/manifest.json                          archived offsets and counts

Each record is a ``cdp.ArchivedMessage`` (``avro/cdp.ArchivedMessage.avsc``): the original
key and value bytes with topic, partition, offset and timestamp, deflate-compressed. The
files are plain Avro, readable by any Avro tool; ``cdpflow replay --from-archive DIR``
replays them through the same dataflow when Kafka's retention has dropped the messages.

Re-running continues where the manifest says the last run stopped, so an archive can be
topped up by a nightly job without duplicates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition
from fastavro import writer as avro_writer

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.history_plan import plan_offsets
from cdpflow.kafka_log import kafka_config

__all__ = ["archive_topic", "read_manifest"]

Granularity = Literal["hour", "day"]
_FORMAT = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d"}


def read_manifest(topic_dir: Path) -> dict[str, Any]:
    path = topic_dir / "manifest.json"
    if not path.is_file():
        return {"topic": topic_dir.name, "partitions": {}}
    return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]


def archive_topic(
    bootstrap: str,
    topic: str,
    out_dir: Path,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    granularity: Granularity = "hour",
    batch: int = 5_000,
) -> dict[int, int]:
    """Archive ``topic``; return the number of messages written per partition."""
    if granularity not in _FORMAT:
        raise ConfigError(f"--per must be 'hour' or 'day', got {granularity!r}")
    topic_dir = out_dir / topic
    manifest = read_manifest(topic_dir)
    plan = plan_offsets(bootstrap, topic, since_ms, until_ms)
    schema = default_codec().schema("cdp.ArchivedMessage")
    written: dict[int, int] = {}
    consumer = Consumer(kafka_config(bootstrap, {"group.id": "cdpflow-archive-unused",
                                                 "enable.auto.commit": False,
                                                 "enable.partition.eof": True}))  # fmt: skip
    try:
        for p, end in plan.ends.items():
            done = manifest["partitions"].get(str(p), {})
            start = max(plan.starts[p], done.get("next_offset", 0))
            written[p] = 0
            if start >= end:
                continue
            consumer.assign([TopicPartition(topic, p, start)])
            for records in _batches(consumer, p, start, end, batch, granularity):
                for name, chunk in sorted(records.items()):
                    _append(topic_dir / f"p{p}" / f"{name}.avro", schema, chunk)
                    written[p] += len(chunk)
            entry = manifest["partitions"].setdefault(str(p), {"count": 0})
            entry["next_offset"] = end
            entry["count"] = entry["count"] + written[p]
            entry.setdefault("first_offset", start)
            # The manifest after each partition: an interrupted run loses at most one.
            _write_manifest(topic_dir, manifest, granularity)
    finally:
        consumer.close()
    return written


def _batches(
    consumer: Consumer, partition: int, start: int, end: int, batch: int, granularity: Granularity
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The assigned ``partition``'s messages in ``[start, end)``, bucketed by file name.

    Stops at ``end`` (measured when the plan was made) or at the partition's end,
    whichever comes first: asking for no more than what is left means ``consume``
    returns as soon as it has it, instead of waiting out its timeout for a full batch,
    and the end-of-partition event ends a range whose last offsets are not messages
    (transaction markers, compacted away).
    """
    offset = start - 1
    while offset + 1 < end:
        buckets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        at_end = False
        for msg in consumer.consume(max(1, min(batch, end - offset - 1)), 1.0):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF and msg.partition() == partition:
                    at_end = True
                continue
            if msg.offset() >= end:
                at_end = True
                continue
            ts = msg.timestamp()[1]
            name = datetime.fromtimestamp(ts / 1000, UTC).strftime(_FORMAT[granularity])
            buckets[name].append({"topic": msg.topic(), "partition": msg.partition(),
                                  "offset": msg.offset(), "timestamp": ts, "key": msg.key(),
                                  "value": msg.value()})  # fmt: skip
            offset = msg.offset()
        if buckets:
            yield buckets
        if at_end:
            return


def _append(path: Path, schema: Any, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        with path.open("a+b") as f:
            avro_writer(f, schema, records, codec="deflate")
    else:
        with path.open("wb") as f:
            avro_writer(f, schema, records, codec="deflate")


def _write_manifest(topic_dir: Path, manifest: dict[str, Any], granularity: str) -> None:
    manifest["granularity"] = granularity
    tmp = topic_dir / "manifest.json.tmp"
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    tmp.replace(topic_dir / "manifest.json")
