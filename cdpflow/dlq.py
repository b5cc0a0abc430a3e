"""``cdpflow dlq list`` and ``cdpflow dlq redrive``: inspect dead letters, send fixable
ones back to the events topic.

``list`` prints one JSON line per dead letter: reason, error, error type, the source
coordinates, the event id and the size of the kept bytes, never the bytes or the key
(a customer id): dead letters hold personal data.

``redrive`` sends the original bytes (``raw``) of the *fixable* letters back to the events
topic, unchanged, so each event keeps its event id and the dataflow's dedupe on it makes a
repeat harmless. A letter is fixable when the same bytes can succeed once the operator
has fixed the cause (:data:`FIXABLE`): a schema the reader did not know yet, a processing
bug since fixed, a time limit since widened, a consumer error. The others (corrupt or
wrong-type bytes, missing ids, a late event whose lifetime aggregates were applied
already) would only fail again or count twice. Letters rejected by the collector (their
source is an HTTP endpoint, their bytes JSON) are for the sender to fix, not redriven.

How far a redrive got is kept per reason, as the committed offsets of the consumer group
``cdpflow-dlq-redrive.<reason>`` on the dead-letter topic: a second run starts where the
first stopped, so nothing is sent twice, and ``--reason`` today and all reasons tomorrow
send each letter once. Offsets are committed only after Kafka acknowledged every
letter sent; a run that fails midway is simply run again (a letter sent twice then is
dropped by the dedupe on its event id).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from cdpflow.codec import MARKER, default_codec
from cdpflow.errors import CodecError, ConfigError
from cdpflow.kafka_log import kafka_config
from cdpflow.settings import Settings
from cdpflow.tail import coords, json_line, open_topic, read_range, watermarks
from cdpflow.topics import BrokerUnavailableError

__all__ = [
    "FIXABLE",
    "RedriveReport",
    "group_for",
    "list_letters",
    "redrivable",
    "redrive",
    "select",
]

FIXABLE = frozenset(
    {
        "unknown_schema",  # deploy the reader that knows the schema, then redrive
        "processing_error",  # a bug in a stage, fixed since
        "consumer_error",  # a transient read error
        "event_time_in_future",  # CDPFLOW_MAX_FUTURE_MS widened
        "event_time_too_old",  # CDPFLOW_MAX_AGE_MS widened
        "beyond_dedupe_horizon",  # CDPFLOW_DEDUPE_HORIZON_MS widened
    }
)
"""Reasons whose original bytes may succeed once the cause is fixed."""

_GROUP = "cdpflow-dlq-redrive"


def group_for(reason: str) -> str:
    """The consumer group that remembers how far redrives of ``reason`` got.

    >>> group_for("unknown_schema")
    'cdpflow-dlq-redrive.unknown_schema'
    """
    return f"{_GROUP}.{reason}"


def _letters(
    settings: Settings, starts: dict[int, int] | None = None
) -> tuple[Iterable[tuple[int, int, dict[str, Any] | None]], dict[int, int], Any]:
    topic = settings.topics.dead_letters
    consumer, partitions = open_topic(settings, topic, "cdpflow-dlq-unused")
    marks = watermarks(consumer, topic, partitions)
    ends = {p: high for p, (_, high) in marks.items()}
    begin = {p: max(low, (starts or {}).get(p, low)) for p, (low, _) in marks.items()}
    codec = default_codec()

    def decoded() -> Iterable[tuple[int, int, dict[str, Any] | None]]:
        for msg in read_range(consumer, topic, begin, ends):
            p, o = coords(msg)
            try:
                name, record = codec.decode(msg.value())
            except CodecError:
                yield p, o, None
                continue
            yield p, o, record if name == "cdp.DeadLetter" else None

    return decoded(), ends, consumer


def redrivable(letter: dict[str, Any], events_topic: str) -> bool:
    """Whether ``redrive`` would send ``letter`` (earlier redrives aside).

    >>> redrivable({"reason": "unknown_schema", "source_topic": "cdp.events",
    ...             "raw": MARKER + bytes(9)}, "cdp.events")
    True
    """
    raw = letter["raw"]
    return (
        letter["reason"] in FIXABLE
        and letter["source_topic"] == events_topic
        and raw is not None
        and raw[: len(MARKER)] == MARKER
    )


def _summary(letter: dict[str, Any], p: int, o: int, events_topic: str) -> dict[str, Any]:
    raw = letter["raw"]
    return {
        "partition": p,
        "offset": o,
        "seen_at": letter["seen_at"],
        "reason": letter["reason"],
        "error": letter["error"],
        "error_type": letter["error_type"],
        "event_id": letter["event_id"],
        "source": {
            "topic": letter["source_topic"],
            "partition": letter["source_partition"],
            "offset": letter["source_offset"],
        },
        "raw_bytes": None if raw is None else len(raw),
        "fixable": redrivable(letter, events_topic),
    }


def list_letters(
    settings: Settings, out: TextIO, err: TextIO, *, reason: str | None = None, n: int | None = None
) -> int:
    """Print the letters (the last ``n`` when given) and a count by reason on ``err``."""
    if n is not None and n < 0:
        raise ConfigError("-n must be 0 or more")
    letters, _, consumer = _letters(settings)
    shown: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    unreadable = 0
    try:
        for p, o, letter in letters:
            if letter is None:
                unreadable += 1
                continue
            if reason is not None and letter["reason"] != reason:
                continue
            counts[letter["reason"]] += 1
            shown.append(_summary(letter, p, o, settings.topics.events))
    finally:
        consumer.close()
    shown.sort(key=lambda s: (s["seen_at"], s["partition"], s["offset"]))
    for line in shown if n is None else shown[len(shown) - n :] if n else []:
        out.write(json_line(line))
    total = sum(counts.values())
    by_reason = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"
    fixable = sum(1 for line in shown if line["fixable"])
    err.write(f"{total} dead letters in {settings.topics.dead_letters} ({by_reason}); "
              f"{fixable} fixable (cdpflow dlq redrive)"
              + (f"; {unreadable} not readable as cdp.DeadLetter" if unreadable else "")
              + "\n")  # fmt: skip
    return 0


@dataclass
class RedriveReport:
    sent: Counter[str] = field(default_factory=Counter)
    unfixable: Counter[str] = field(default_factory=Counter)
    no_raw: int = 0
    not_from_events: int = 0
    not_avro: int = 0


def _committed(
    admin: AdminClient, topic: str, partitions: list[int], reasons: set[str]
) -> dict[str, dict[int, int]]:
    parts = [TopicPartition(topic, p) for p in partitions]
    requests = {r: ConsumerGroupTopicPartitions(group_for(r), parts) for r in reasons}
    out: dict[str, dict[int, int]] = {}
    try:
        for r, req in requests.items():
            [future] = admin.list_consumer_group_offsets([req]).values()
            result = future.result(timeout=15)
            out[r] = {tp.partition: max(tp.offset, 0) for tp in result.topic_partitions}
    except KafkaException as exc:
        raise BrokerUnavailableError(f"reading the redrive offsets on {topic}: {exc}") from exc
    return out


def _commit(admin: AdminClient, topic: str, ends: dict[int, int], reasons: set[str]) -> None:
    parts = [TopicPartition(topic, p, o) for p, o in sorted(ends.items())]
    try:
        for r in sorted(reasons):
            req = ConsumerGroupTopicPartitions(group_for(r), parts)
            [future] = admin.alter_consumer_group_offsets([req]).values()
            future.result(timeout=15)
    except KafkaException as exc:
        raise BrokerUnavailableError(
            f"the letters were sent, but recording how far the redrive got failed: {exc}; "
            "running it again resends them (the dataflow drops repeats by event id)"
        ) from exc


def select(
    letters: Iterable[tuple[int, int, dict[str, Any] | None]],
    reasons: set[str],
    done: dict[str, dict[int, int]],
    events_topic: str,
) -> tuple[RedriveReport, list[tuple[bytes, bytes | None]]]:
    """Which letters to send: ``(value, key)`` of each, and what was skipped, and why.

    ``letters`` are ``(partition, offset, record)`` of the dead-letter topic (``None``:
    not a ``cdp.DeadLetter``); ``done[reason][partition]`` the first offset an earlier
    redrive of ``reason`` has not covered.
    """
    report = RedriveReport()
    to_send: list[tuple[bytes, bytes | None]] = []
    for p, o, letter in letters:
        if letter is None:
            continue
        r = letter["reason"]
        if r not in FIXABLE:
            report.unfixable[r] += 1
            continue
        if r not in reasons or o < done.get(r, {}).get(p, 0):
            continue  # another reason's, or redriven by an earlier run
        raw = letter["raw"]
        if letter["source_topic"] != events_topic:
            report.not_from_events += 1
        elif raw is None:
            report.no_raw += 1
        elif raw[: len(MARKER)] != MARKER:
            report.not_avro += 1
        else:
            to_send.append((raw, letter["key"]))
            report.sent[r] += 1
    return report, to_send


def redrive(
    settings: Settings, out: TextIO, *, reason: str | None = None, dry_run: bool = False
) -> int:
    if reason is not None and reason not in FIXABLE:
        raise ConfigError(
            f"--reason {reason} is not a fixable reason (fixable: {', '.join(sorted(FIXABLE))})"
        )
    reasons = {reason} if reason else set(FIXABLE)
    topic, events = settings.topics.dead_letters, settings.topics.events
    admin = AdminClient(kafka_config(settings.bootstrap_servers))
    probe, partitions = open_topic(settings, topic, "cdpflow-dlq-unused")
    probe.close()
    if not dry_run:  # where the letters go must exist too (a producer would only time out)
        probe, _ = open_topic(settings, events, "cdpflow-dlq-unused")
        probe.close()
    done = _committed(admin, topic, partitions, reasons)
    starts = {p: min(done[r].get(p, 0) for r in reasons) for p in partitions}
    letters, ends, consumer = _letters(settings, starts)
    try:
        report, to_send = select(letters, reasons, done, events)
    finally:
        consumer.close()
    if not dry_run:
        _send(settings, to_send)
        _commit(admin, topic, ends, reasons)
    _print(report, settings, out, dry_run)
    return 0


def _send(settings: Settings, messages: list[tuple[bytes, bytes | None]]) -> None:
    if not messages:
        return
    failed: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(err.name())

    producer = Producer(
        kafka_config(
            settings.bootstrap_servers,
            {"enable.idempotence": True, "acks": "all", "message.timeout.ms": 30_000},
        )
    )
    topic = settings.topics.events
    try:
        for value, key in messages:
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.5)  # the local queue is full: let it drain
            producer.poll(0)
        left = producer.flush(35)
    except KafkaException as exc:
        raise BrokerUnavailableError(f"sending to {topic}: {exc}") from exc
    if left or failed:
        reasons = ", ".join(sorted(set(failed))) or "timed out"
        raise BrokerUnavailableError(
            f"Kafka at {settings.bootstrap_servers} did not acknowledge {left + len(failed)} "
            f"of {len(messages)} letters sent to {topic} ({reasons}); nothing was recorded: "
            "run the redrive again"
        )


def _print(r: RedriveReport, settings: Settings, out: TextIO, dry_run: bool) -> None:
    n = sum(r.sent.values())
    verb = "would send" if dry_run else "sent"
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(r.sent.items()))
    out.write(f"{verb} {n} dead letters to {settings.topics.events}"
              + (f" ({detail})" if detail else "") + "\n")  # fmt: skip
    unfixable = sum(r.unfixable.values())
    skipped = [
        (unfixable, "of unfixable reasons ("
         + ", ".join(f"{k}: {v}" for k, v in sorted(r.unfixable.items())) + ")"),
        (r.no_raw, "without the original bytes"),
        (r.not_from_events, f"not from {settings.topics.events} (the collector's rejections, "
         "for the sender to fix, and the mailer's)"),
        (r.not_avro, "whose bytes are not Avro"),
    ]  # fmt: skip
    parts = [f"{k} {what}" for k, what in skipped if k]
    out.write("skipped: " + ("; ".join(parts) if parts else "none") + "\n")
    if dry_run:
        out.write("dry run: nothing sent, nothing recorded\n")
