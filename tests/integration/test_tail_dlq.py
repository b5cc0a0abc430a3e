"""``cdpflow tail`` and ``cdpflow dlq`` on the real broker."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings
from tests.integration.conftest import read_topic, run_cdpflow, settings_env

QUICK = {"CDPFLOW_SNAPSHOT_INTERVAL_S": "0.5", "CDPFLOW_PROFILE_FLUSH_MS": "200"}
DAY = 86_400_000


def cdpflow(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", *args], env=settings_env(settings, **QUICK, **env),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def event(eid: str, customer: str, t: int, received: int | None = None) -> dict:
    return {"event_id": eid, "type": "page_viewed", "customer_id": customer,
            "timestamp": iso(t), "received_at": iso(received or t),
            "payload": {"path": "/p"}}  # fmt: skip


def test_tail_decodes_every_topic_and_stops_at_its_end(
    kafka_settings: Settings, produce_events, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    produce_events(kafka_settings, [event("e-1", "ada", now - 5000),
                                    event("e-2", "ben", now - 4000),
                                    b"not avro at all"])  # fmt: skip
    env = settings_env(kafka_settings, **QUICK)
    rdir = str(tmp_path / "rec")
    run_cdpflow(["run", "--until-end", "--recovery-dir", rdir], env)
    forget = cdpflow(kafka_settings, "forget", "ada")
    assert forget.returncode == 0, forget.stderr
    run_cdpflow(["run", "--until-end", "--recovery-dir", rdir], env)

    events = lines(cdpflow(kafka_settings, "tail", "events", "--from-beginning"))
    assert len(events) == 4  # stopped at the end: the command returned
    good = [e for e in events if e.get("schema") == "cdp.Event"]
    assert sorted(e["value"]["event_id"] for e in good)[:2] == ["e-1", "e-2"]
    assert all(e["value"]["event_time"].endswith("Z") for e in good)
    [bad] = [e for e in events if "error" in e]
    assert bad["error"].startswith("CorruptRecordError: not Avro single-object encoding")
    assert bad["key"] == "poison"

    profiles = lines(cdpflow(kafka_settings, "tail", "profiles", "--from-beginning"))
    assert {p["schema"] for p in profiles if "schema" in p} == {"cdp.ProfileSnapshot"}
    tombstones = [p for p in profiles if p.get("tombstone")]
    assert [t["key"] for t in tombstones] == ["ada"]
    assert tombstones[0]["value"] is None

    [letter] = lines(cdpflow(kafka_settings, "tail", "dlq", "--from-beginning"))
    assert letter["schema"] == "cdp.DeadLetter"
    assert letter["value"]["reason"] == "corrupt_avro"
    assert letter["value"]["raw"] == "bm90IGF2cm8gYXQgYWxs"  # base64 of the bytes

    by_name = lines(cdpflow(kafka_settings, "tail", kafka_settings.topics.triggers,
                            "--from-beginning"))  # fmt: skip
    assert by_name
    assert {t["schema"] for t in by_name} <= {"cdp.TagChange", "cdp.Trigger"}
    identities = cdpflow(kafka_settings, "tail", "identities", "--from-beginning")
    assert identities.returncode == 0, identities.stderr


def test_tail_last_n_by_key_and_follow(kafka_settings: Settings, produce_events) -> None:
    now = int(time.time() * 1000)
    codec = default_codec()
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for i in range(10):  # "the last 3" across partitions goes by Kafka timestamp
        record = record_from_json(event(f"e-{i}", "ada" if i % 2 else "ben", now + i), codec)
        producer.produce(kafka_settings.topics.events, codec.encode("cdp.Event", record),
                         record["customer_id"].encode(), timestamp=now + i)  # fmt: skip
    assert producer.flush(30) == 0
    last = lines(cdpflow(kafka_settings, "tail", "events", "-n", "3"))
    assert [e["value"]["event_id"] for e in last] == ["e-7", "e-8", "e-9"]
    bens = lines(cdpflow(kafka_settings, "tail", "events", "--key", "ben", "-n", "2"))
    assert [e["value"]["event_id"] for e in bens] == ["e-6", "e-8"]
    first = lines(cdpflow(kafka_settings, "tail", "events", "--from-beginning", "-n", "1",
                          "--key", "ada"))  # fmt: skip
    assert [e["value"]["event_id"] for e in first] == ["e-1"]

    follow = subprocess.Popen(
        [sys.executable, "-m", "cdpflow.cli", "tail", "events", "-n", "0", "--follow"],
        env=settings_env(kafka_settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # it has reached the end and waits
        produce_events(kafka_settings, [event("e-new", "cleo", now + 100)])
        assert follow.stdout is not None
        line = orjson.loads(follow.stdout.readline())
        assert line["value"]["event_id"] == "e-new"
    finally:
        follow.terminate()
        follow.wait(10)


def test_tail_of_a_missing_topic_names_it(kafka_settings: Settings) -> None:
    proc = cdpflow(kafka_settings, "tail", "no-such-topic.x")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("cdpflow: error: topic no-such-topic.x does not exist on ")


def test_too_old_events_are_redriven_once_after_the_limit_is_widened(
    kafka_settings: Settings, produce_events, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    old = [event(f"old-{i}", f"c-{i}", now - 3 * DAY, received=now) for i in range(4)]
    originals = produce_events(kafka_settings, [*old, event("ok", "c-ok", now),
                                                b"corrupt"])  # fmt: skip
    env = settings_env(kafka_settings, CDPFLOW_MAX_AGE_MS=str(DAY), **QUICK)
    rdir = str(tmp_path / "rec")
    run_cdpflow(["run", "--until-end", "--recovery-dir", rdir], env)

    listed = cdpflow(kafka_settings, "dlq", "list")
    letters = lines(listed)
    assert sorted(x["reason"] for x in letters) == ["corrupt_avro"] + ["event_time_too_old"] * 4
    assert all("raw" not in x and "key" not in x for x in letters)  # no payload, no customer id
    assert {x["event_id"] for x in letters} == {None, *(f"old-{i}" for i in range(4))}
    sources = {(x["source"]["partition"], x["source"]["offset"]) for x in letters}
    assert sources == set(originals[:4]) | {originals[5]}
    assert "5 dead letters in " in listed.stderr
    assert "4 fixable" in listed.stderr
    only = lines(cdpflow(kafka_settings, "dlq", "list", "--reason", "corrupt_avro"))
    assert [x["reason"] for x in only] == ["corrupt_avro"]

    dry = cdpflow(kafka_settings, "dlq", "redrive", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would send 4 dead letters" in dry.stdout
    assert len(raw_messages(kafka_settings)) == 6

    first = cdpflow(kafka_settings, "dlq", "redrive")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:2] == [
        f"sent 4 dead letters to {kafka_settings.topics.events} (event_time_too_old: 4)",
        "skipped: 1 of unfixable reasons (corrupt_avro: 1)",
    ]
    events = raw_messages(kafka_settings)
    assert len(events) == 10
    sent = events_after(events, originals)
    original_bytes = [m.value() for m in events if (m.partition(), m.offset()) in
                      set(originals[:4])]  # fmt: skip
    assert sorted(m.value() for m in sent) == sorted(original_bytes)  # the bytes, unchanged
    codec = default_codec()
    assert sorted(codec.decode(m.value())[1]["event_id"] for m in sent) == [
        f"old-{i}" for i in range(4)
    ]

    again = cdpflow(kafka_settings, "dlq", "redrive")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("sent 0 dead letters")
    assert len(raw_messages(kafka_settings)) == 10

    # With the limit widened, the dataflow takes the redriven events.
    wide = settings_env(kafka_settings, CDPFLOW_MAX_AGE_MS=str(30 * DAY), **QUICK)
    run_cdpflow(["run", "--until-end", "--recovery-dir", rdir], wide)
    profiles = {m.key() for n, _, m in read_topic(kafka_settings, kafka_settings.topics.profiles)}
    assert {f"c-{i}".encode() for i in range(4)} <= profiles


def raw_messages(settings: Settings) -> list:
    """Every message of the events topic, undecoded (one of them is not Avro)."""
    topic = settings.topics.events
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"it-raw-{uuid.uuid4().hex}",
                         "enable.partition.eof": True, "enable.auto.commit": False})  # fmt: skip
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pending, out = set(parts), []
    try:
        while pending:
            msg = consumer.poll(10)
            assert msg is not None, f"timed out reading {topic}"
            if msg.error():
                pending.discard(msg.partition())
            else:
                out.append(msg)
    finally:
        consumer.close()
    return out


def events_after(events: list, originals: list[tuple[int, int]]) -> list:
    ends: dict[int, int] = {}
    for p, o in originals:
        ends[p] = max(ends.get(p, -1), o)
    return [m for m in events if m.offset() > ends.get(m.partition(), -1)]


def letter(reason: str, eid: str, settings: Settings) -> bytes:
    codec = default_codec()
    raw = codec.encode("cdp.Event", {
        "event_id": eid, "event_type": "custom", "customer_id": "c-1", "anonymous_id": None,
        "event_time": 0, "sent_at": None, "received_at": 0, "source": "t", "context": None,
        "payload": ("cdp.CustomEvent", {"name": "x", "properties": {}})})  # fmt: skip
    return codec.encode("cdp.DeadLetter", {
        "reason": reason, "error": "e", "error_type": "T", "raw": raw, "key": b"c-1",
        "event_id": eid, "source_topic": settings.topics.events, "source_partition": 0,
        "source_offset": 0, "seen_at": 0})  # fmt: skip


def put_letters(settings: Settings, letters: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for value in letters:
        producer.produce(settings.topics.dead_letters, value, b"c-1")
    assert producer.flush(30) == 0


def test_a_redrive_by_reason_then_of_all_sends_each_letter_once(kafka_settings: Settings) -> None:
    put_letters(kafka_settings, [letter("unknown_schema", "u-1", kafka_settings),
                                 letter("processing_error", "p-1", kafka_settings)])  # fmt: skip
    one = cdpflow(kafka_settings, "dlq", "redrive", "--reason", "unknown_schema")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("sent 1 dead letters to ")
    rest = cdpflow(kafka_settings, "dlq", "redrive")
    assert rest.stdout.startswith(f"sent 1 dead letters to {kafka_settings.topics.events} "
                                  "(processing_error: 1)")  # fmt: skip
    put_letters(kafka_settings, [letter("unknown_schema", "u-2", kafka_settings)])
    new = cdpflow(kafka_settings, "dlq", "redrive")
    assert new.stdout.startswith(f"sent 1 dead letters to {kafka_settings.topics.events} "
                                 "(unknown_schema: 1)")  # fmt: skip
    codec = default_codec()
    ids = [codec.decode(m.value())[1]["event_id"]
           for _, _, m in read_topic(kafka_settings, kafka_settings.topics.events)]  # fmt: skip
    assert sorted(ids) == ["p-1", "u-1", "u-2"]
