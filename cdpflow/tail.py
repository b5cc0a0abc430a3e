"""``cdpflow tail TOPIC``: what flows through a cdpflow topic, as JSON lines.

One line per record: where it sits (topic, partition, offset, Kafka timestamp), its key,
the schema named by its Avro single-object header, and the record decoded with
:class:`~cdpflow.codec.AvroCodec` (older schema versions resolve to the current one).
Bytes become base64 strings and times ISO 8601 UTC, so every line is plain JSON. A
tombstone (the value ``null`` of an erased customer in ``cdp.profiles``) is shown as
``"tombstone": true``; bytes that do not decode are shown with ``"error"`` (the codec's
message, never the bytes) and the tail goes on.

Without ``--from-beginning`` the last ``-n`` records (default 10) are shown, oldest first;
with it, records from the start of the topic (at most ``-n`` when given). Without
``--follow`` the tail stops at the end offsets measured when it started.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from cdpflow import kafka_log
from cdpflow.codec import AvroCodec, default_codec
from cdpflow.errors import CodecError, ConfigError
from cdpflow.kafka_log import kafka_config
from cdpflow.settings import Settings
from cdpflow.topics import BrokerUnavailableError

__all__ = ["TailOptions", "json_line", "render", "resolve_topic", "tail"]

DEFAULT_LAST = 10


@dataclass(frozen=True, slots=True)
class TailOptions:
    topic: str
    from_beginning: bool = False
    key: str | None = None
    follow: bool = False
    n: int | None = None


def resolve_topic(settings: Settings, name: str) -> str:
    """A topic name, or the short name of a cdpflow topic (``events``, ``dlq``, ...).

    >>> resolve_topic(Settings(), "dlq"), resolve_topic(Settings(), "cdp.profiles")
    ('cdp.events.dlq', 'cdp.profiles')
    """
    return short_names(settings).get(name, name)


def short_names(settings: Settings) -> dict[str, str]:
    t = settings.topics
    return {"events": t.events, "triggers": t.triggers, "profiles": t.profiles,
            "dlq": t.dead_letters, "dead-letters": t.dead_letters,
            "identities": t.identities}  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _json_safe(value: Any) -> Any:
    """orjson's fallback: bytes as base64, times ISO 8601 UTC to the millisecond."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return _iso(round(value.timestamp() * 1000))
    raise TypeError(type(value).__name__)


def _key(key: bytes | None) -> dict[str, Any]:
    if key is None:
        return {"key": None}
    try:
        return {"key": key.decode("utf-8")}
    except UnicodeDecodeError:
        return {"key": None, "key_base64": base64.b64encode(key).decode("ascii")}


def render(
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    codec: AvroCodec,
) -> dict[str, Any]:
    """One record as a JSON-ready dict; never raises for what the bytes contain."""
    line: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": None if timestamp_ms is None else _iso(timestamp_ms),
        **_key(key),
    }
    if value is None:
        line["tombstone"] = True
        line["value"] = None
        return line
    try:
        name, record = codec.decode(value)
    except CodecError as exc:
        line["error"] = f"{type(exc).__name__}: {exc}"
        line["bytes"] = len(value)
        return line
    line["schema"] = name
    line["value"] = record
    return line


def json_line(line: dict[str, Any]) -> str:
    """``line`` as one JSON line: times ISO 8601 with ``Z``, bytes base64.

    >>> json_line({"at": datetime(2026, 12, 1, tzinfo=UTC), "raw": b"\\xc3\\x01"})
    '{"at":"2026-12-01T00:00:00.000Z","raw":"wwE="}\\n'
    """
    opts = orjson.OPT_PASSTHROUGH_DATETIME
    return orjson.dumps(line, default=_json_safe, option=opts).decode() + "\n"


def coords(msg: Message) -> tuple[int, int]:
    """``(partition, offset)`` of a consumed message (never ``None`` for one polled)."""
    return int(msg.partition() or 0), int(msg.offset() or 0)


def _timestamp(msg: Message) -> int | None:
    kind, ms = msg.timestamp()
    return None if kind == 0 else int(ms)  # 0: TIMESTAMP_NOT_AVAILABLE


def open_topic(settings: Settings, topic: str, group: str) -> tuple[Consumer, list[int]]:
    """A consumer (no group membership, nothing committed) and the topic's partitions;
    one-line errors for an unreachable broker and a missing topic."""
    consumer = Consumer(
        kafka_config(
            settings.bootstrap_servers,
            {"group.id": group, "enable.auto.commit": False, "enable.partition.eof": True},
        )
    )
    try:
        info = consumer.list_topics(topic, timeout=kafka_log.METADATA_TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        consumer.close()
        raise BrokerUnavailableError(
            f"no Kafka broker answered at {settings.bootstrap_servers} "
            "(set KAFKA_BOOTSTRAP_SERVERS, or start one: bash docker/kafka-local.sh start)"
        ) from exc
    if info is None or info.error is not None or not info.partitions:
        consumer.close()
        known = ", ".join(sorted(short_names(settings)))
        raise ConfigError(
            f"topic {topic} does not exist on {settings.bootstrap_servers} "
            f"(a topic name, or one of: {known}; create them with: cdpflow topics create)"
        )
    return consumer, sorted(info.partitions)


def read_range(
    consumer: Consumer,
    topic: str,
    starts: dict[int, int],
    ends: dict[int, int],
    *,
    follow: bool = False,
) -> Iterator[Message]:
    """Messages of ``topic`` from ``starts``; without ``follow`` until ``ends`` (measured
    by the caller) or each partition's end, whichever comes first."""
    consumer.assign([TopicPartition(topic, p, o) for p, o in starts.items()])
    pending = {p for p in starts if starts[p] < ends[p]}
    while follow or pending:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                pending.discard(coords(msg)[0])
                continue
            raise BrokerUnavailableError(f"reading {topic}: {err.str()}")
        p, _ = coords(msg)
        if not follow and coords(msg)[1] >= ends[p]:
            pending.discard(p)
            continue
        if coords(msg)[1] + 1 >= ends[p]:
            pending.discard(p)
        yield msg


def watermarks(consumer: Consumer, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in partitions
        }
    except KafkaException as exc:
        raise BrokerUnavailableError(f"reading the offsets of {topic}: {exc}") from exc


def tail(settings: Settings, opts: TailOptions, out: TextIO) -> int:
    if opts.n is not None and opts.n < 0:
        raise ConfigError("-n must be 0 or more")
    topic = resolve_topic(settings, opts.topic)
    codec = default_codec()
    consumer, partitions = open_topic(settings, topic, "cdpflow-tail-unused")
    key = None if opts.key is None else opts.key.encode()
    try:
        marks = watermarks(consumer, topic, partitions)
        ends = {p: high for p, (_, high) in marks.items()}
        last = DEFAULT_LAST if opts.n is None else opts.n
        if opts.from_beginning or key is not None:
            # A key's records may lie anywhere in its partition: scan it all.
            starts = {p: low for p, (low, _) in marks.items()}
        else:
            starts = {p: max(low, high - last) for p, (low, high) in marks.items()}

        def line(msg: Message) -> dict[str, Any]:
            p, o = coords(msg)
            return render(topic, p, o, _timestamp(msg), msg.key(), msg.value(), codec)

        def wanted(msg: Message) -> bool:
            return key is None or msg.key() == key

        shown = 0
        if opts.from_beginning:
            if opts.n == 0:
                return 0
            for msg in read_range(consumer, topic, starts, ends, follow=opts.follow):
                if wanted(msg):
                    out.write(json_line(line(msg)))
                    out.flush()
                    shown += 1
                    if shown == opts.n:
                        break
            return 0
        # The last N across partitions, by Kafka timestamp: a bounded heap keeps N.
        heap: list[tuple[int, ...]] = []
        seq = 0
        kept: dict[int, Message] = {}
        for msg in read_range(consumer, topic, starts, ends):
            if not wanted(msg) or last == 0:
                continue
            seq += 1
            item = (_timestamp(msg) or 0, *coords(msg), seq)
            kept[seq] = msg
            heapq.heappush(heap, item)
            if len(heap) > last:
                kept.pop(heapq.heappop(heap)[3])
        for *_, s in sorted(heap):
            out.write(json_line(line(kept[s])))
        out.flush()
        if opts.follow:
            resume = {p: ends[p] for p in partitions}
            for msg in read_range(consumer, topic, resume, ends, follow=True):
                if wanted(msg):
                    out.write(json_line(line(msg)))
                    out.flush()
        return 0
    finally:
        consumer.close()
