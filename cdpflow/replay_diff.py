"""``cdpflow replay --diff``: compare a shadow replay's profiles with the live ones.

Reported: how many customers have the same final profile in both, how many differ and in
which fields (counted per field), and who exists on one side only — with a few example
customer ids per kind. Values are never printed: profiles hold personal data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TextIO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from cdpflow.codec import default_codec
from cdpflow.kafka_log import kafka_config
from cdpflow.settings import Settings
from flows.encode import SinkMessage

__all__ = ["compare", "diff_against_live", "latest_live_profiles"]

EXAMPLES = 5


def latest_live_profiles(settings: Settings) -> dict[str, dict[str, Any]]:
    """The newest ``cdp.profiles`` record of each customer (a tombstone removes one)."""
    codec = default_codec()
    topic = settings.topics.profiles
    consumer = Consumer(kafka_config(settings.bootstrap_servers, {
        "group.id": "cdpflow-diff-unused", "enable.auto.commit": False,
        "enable.partition.eof": True}))  # fmt: skip
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending, latest = set(parts), {}
        while pending:
            msg = consumer.poll(10)
            if msg is None:
                break
            if msg.error() is not None:
                pending.discard(msg.partition())
                continue
            key = (msg.key() or b"").decode()
            if msg.value() is None:
                latest.pop(key, None)
                continue
            _, record = codec.decode(msg.value())
            latest[key] = orjson.loads(record["profile_json"])
    finally:
        consumer.close()
    return latest


def _replayed(items: list[SinkMessage], topic: str) -> dict[str, dict[str, Any]]:
    codec = default_codec()
    out: dict[str, dict[str, Any]] = {}
    for msg in items:
        if msg.topic == topic and msg.value is not None:
            _, record = codec.decode(msg.value)
            out[record["customer_id"]] = orjson.loads(record["profile_json"])
    return out


def compare(replayed: dict[str, dict[str, Any]], live: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Counts and examples; ``fields`` counts the top-level profile fields that differ."""
    same, differ, fields = [], [], Counter[str]()
    for key in sorted(replayed.keys() & live.keys()):
        a, b = replayed[key], live[key]
        changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if changed:
            differ.append(key)
            fields.update(changed)
        else:
            same.append(key)
    return {
        "same": len(same),
        "different": len(differ),
        "fields": dict(fields.most_common()),
        "only_replayed": sorted(replayed.keys() - live.keys()),
        "only_live": sorted(live.keys() - replayed.keys()),
        "examples_different": differ[:EXAMPLES],
    }


def diff_against_live(settings: Settings, items: list[SinkMessage], out: TextIO) -> int:
    """Print the comparison; exit status 0 when every profile agrees, 1 otherwise."""
    report = compare(_replayed(items, settings.topics.profiles), latest_live_profiles(settings))
    w = out.write
    w(f"diff against live {settings.topics.profiles}: {report['same']} same, "
      f"{report['different']} different, {len(report['only_replayed'])} only in the replay, "
      f"{len(report['only_live'])} only live\n")  # fmt: skip
    if report["fields"]:
        w("  differing fields: " + ", ".join(f"{k} ({n})" for k, n in report["fields"].items())
          + "\n")  # fmt: skip
    for label, keys in (("different", report["examples_different"]),
                        ("only in the replay", report["only_replayed"][:EXAMPLES]),
                        ("only live", report["only_live"][:EXAMPLES])):  # fmt: skip
        if keys:
            w(f"  e.g. {label}: {', '.join(keys)}\n")
    clean = not (report["different"] or report["only_replayed"] or report["only_live"])
    return 0 if clean else 1
