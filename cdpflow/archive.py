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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from confluent_kafka import Consumer, TopicPartition
from fastavro import writer as avro_writer

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.history_plan import plan_offsets

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
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cdpflow-archive-unused",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        for p, end in plan.ends.items():
            done = manifest["partitions"].get(str(p), {})
            start = max(plan.starts[p], done.get("next_offset", 0))
            written[p] = 0
            if start >= end:
                continue
            consumer.assign([TopicPartition(topic, p, start)])
            offset = start
            while offset < end:
                buckets: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for msg in consumer.consume(batch, 5.0):
                    if msg.error() is not None or msg.offset() >= end:
                        continue
                    ts = msg.timestamp()[1]
                    name = datetime.fromtimestamp(ts / 1000, UTC).strftime(_FORMAT[granularity])
                    buckets[name].append({"topic": topic, "partition": p, "offset": msg.offset(),
                                          "timestamp": ts, "key": msg.key(),
                                          "value": msg.value()})  # fmt: skip
                    offset = msg.offset() + 1
                for name, records in sorted(buckets.items()):
                    _append(topic_dir / f"p{p}" / f"{name}.avro", schema, records)
                    written[p] += len(records)
            entry = manifest["partitions"].setdefault(str(p), {"count": 0})
            entry["next_offset"] = end
            entry["count"] = entry["count"] + written[p]
            entry.setdefault("first_offset", start)
            # The manifest after each partition: an interrupted run loses at most one.
            _write_manifest(topic_dir, manifest, granularity)
    finally:
        consumer.close()
    return written


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
