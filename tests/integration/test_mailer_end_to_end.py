"""Events on a real broker -> ``cdpflow run`` -> trigger -> ``cdpflow mailer`` -> a real
SMTP server (aiosmtpd) on loopback. No mocks: the mailer runs as its own process."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cdpflow.codec import default_codec
from cdpflow.settings import Settings
from tests.integration.conftest import read_topic, run_cdpflow, settings_env
from tests.mailer.conftest import UNSUBSCRIBE_ENV
from tests.mailer.smtp_server import RecordingHandler, free_port, smtp_server

MIN = 60_000


def recent() -> int:
    """Event times two hours ago: the customers are active, so no lifecycle trigger
    (win-back) joins in, and triggers are fresh for the mailer."""
    return time.time_ns() // 1_000_000 - 120 * MIN


def _customer(j: Callable[..., dict[str, Any]], name: str, t: int, *, categories=("shoes",),
              unsubscribe: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Identify, optionally unsubscribe, then three views of distinct products per category."""
    events = [j("identify", t, customer=name,
                payload={"email": f"{name}@example.com", "first_name": name.title()})]  # fmt: skip
    if unsubscribe:
        events.append(j("email_event", t + 1, customer=name, payload={"action": "unsubscribed"}))
    for c, category in enumerate(categories):
        for i in range(3):
            product = {"product_id": f"{category[:3]}-{c}{i}", "category": category}
            events.append(j("product_viewed", t + (10 * c + i + 1) * MIN, customer=name,
                            category=category, payload={"product": product}))  # fmt: skip
    return events


def run_mailer(settings: Settings, state_dir: Path, smtp: tuple[str, int], *,
               group: str, **extra: str) -> str:  # fmt: skip
    """``cdpflow mailer --until-idle 3``; returns its summary line."""
    host, port = smtp
    env = settings_env(
        settings,
        CDPFLOW_SMTP_HOST=host,
        CDPFLOW_SMTP_PORT=str(port),
        CDPFLOW_SMTP_SECURITY="none",
        CDPFLOW_SMTP_TIMEOUT_S="5",
        CDPFLOW_MAILER_STATE_DIR=str(state_dir),
        CDPFLOW_MAILER_GROUP=group,
        CDPFLOW_MAILER_QUIET_HOURS="off",
        CDPFLOW_MAILER_FROM="shop@example.com",
        CDPFLOW_MAILER_SHOP_NAME="Test Shop",
        CDPFLOW_MAILER_RETRY_BASE_S="0.05",
        **{**UNSUBSCRIBE_ENV, **extra},  # the mailer does not start without one-click links
    )
    proc = subprocess.run([sys.executable, "-m", "mailer.main", "--until-idle", "3"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, f"mailer failed:\n{proc.stderr[-3000:]}"
    for fragment in ("@example.com", "victim.example", "evil.example"):
        assert fragment not in proc.stderr, "an address reached the logs"
    return proc.stdout.strip().splitlines()[-1]


def _triggers(settings: Settings, rule: str) -> list[tuple[dict[str, Any], Any]]:
    return [(r, m) for name, r, m in read_topic(settings, settings.topics.triggers)
            if name == "cdp.Trigger" and r["rule"] == rule]  # fmt: skip


def _cart_trigger(customer: str) -> dict[str, Any]:
    now = time.time_ns() // 1_000_000
    line = {"product": {"product_id": "bag-7", "name": "Tote", "category": "bags",
                        "price": 49.5, "currency": "EUR"}, "quantity": 1}  # fmt: skip
    excerpt = {"email": None, "first_name": None, "timezone": None, "lifecycle": None,
               "tags": [], "segments": []}  # fmt: skip
    return {"trigger_id": f"cart-{uuid.uuid4().hex}", "rule": "abandoned_cart",
            "customer_id": customer, "items": [line], "amount": 49.5, "currency": "EUR",
            "attributes": {"tag": "abandoned_cart"}, "profile": excerpt,
            "event_time": now, "emitted_at": now}  # fmt: skip


def _produce_trigger(settings: Settings, record: dict[str, Any]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.topics.triggers, default_codec().encode("cdp.Trigger", record),
                     record["customer_id"].encode())  # fmt: skip
    assert producer.flush(30) == 0


def _committed_is_end(settings: Settings, group: str) -> bool:
    topic = settings.topics.triggers
    c = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        committed = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        # A partition that never held a message has nothing to commit.
        return all(tp.offset == ends[tp.partition] or (tp.offset < 0 and ends[tp.partition] == 0)
                   for tp in committed)  # fmt: skip
    finally:
        c.close()


def test_event_to_inbox_once_with_consent_and_the_frequency_cap(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j = json_event_factory
    t0 = recent()
    events = [*_customer(j, "ada", t0), *_customer(j, "ben", t0, unsubscribe=True),
              *_customer(j, "cleo", t0), *_customer(j, "dan", t0)]  # fmt: skip
    produce_events(kafka_settings, events)
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))
    triggers = _triggers(kafka_settings, "category_interest")
    assert sorted(r["customer_id"] for r, _ in triggers if r["customer_id"] != "ben") == [
        "ada", "cleo", "dan"]  # fmt: skip
    (ada_trigger, ada_msg) = next((r, m) for r, m in triggers if r["customer_id"] == "ada")
    # A second rule fires for Cleo within the cap window (the shipped category_interest
    # cooldown keeps the dataflow from firing twice itself): the cap lets one email through.
    _produce_trigger(kafka_settings, _cart_trigger("cleo"))
    # Dan is erased after his trigger fired: the tombstone on cdp.profiles wins.
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    producer.produce(kafka_settings.topics.profiles, None, b"dan")
    assert producer.flush(30) == 0

    handler = RecordingHandler()
    group = f"it-mailer-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "mailer"
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, state, smtp, group=group)
        assert "sent=2" in summary, summary
        assert "skipped=2" in summary, summary  # Cleo's capped one, erased Dan's
        received = sorted(handler.received, key=lambda r: r.to)
        assert [r.to for r in received] == [["ada@example.com"], ["cleo@example.com"]]
        ada = received[0]
        for body in (ada.text(), ada.html()):
            assert "shoes" in body
            for product in ("sho-00", "sho-01", "sho-02"):
                assert product in body
        assert ada.message["Subject"] == "Ada, still looking at shoes?"
        assert ada.message["X-Cdpflow-Trigger"] == ada_trigger["trigger_id"]
        assert _committed_is_end(kafka_settings, group)

        # The same trigger delivered again (a producer retry, a replay): nothing more.
        producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
        producer.produce(kafka_settings.topics.triggers, ada_msg.value(), ada_msg.key())
        assert producer.flush(30) == 0
        summary = run_mailer(kafka_settings, state, smtp, group=group)
        assert summary == "mailer: 1 messages duplicate=1"
        # A new consumer group re-reads every trigger: the ledger still remembers them.
        summary = run_mailer(kafka_settings, state, smtp, group=group + "-again")
        assert "sent=" not in summary, summary
        assert len(handler.received) == 2


@pytest.mark.parametrize(
    ("reply", "attempts", "reason"),
    [("550 5.1.1 mailbox unavailable", 1, "delivery_refused"),
     ("451 4.3.0 try again later", 3, "delivery_failed")],
)  # fmt: skip
def test_smtp_refusal_dead_letters_the_trigger_after_the_retries(
    kafka_settings, produce_events, json_event_factory, tmp_path, reply, attempts, reason
) -> None:
    produce_events(kafka_settings, _customer(json_event_factory, "ada", recent()))
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))
    ((trigger, msg),) = _triggers(kafka_settings, "category_interest")
    dead_before = len(read_topic(kafka_settings, kafka_settings.topics.dead_letters))

    handler = RecordingHandler(refuse_rcpt=reply)
    group = f"it-mailer-{uuid.uuid4().hex[:8]}"
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, tmp_path / "m", smtp, group=group,
                             CDPFLOW_MAILER_MAX_ATTEMPTS="3")  # fmt: skip
    assert "dead_lettered=1" in summary, summary
    assert handler.received == []
    assert handler.rcpt_attempts == attempts
    dead = read_topic(kafka_settings, kafka_settings.topics.dead_letters)[dead_before:]
    ((name, letter, dead_msg),) = dead
    assert name == "cdp.DeadLetter"
    assert letter["reason"] == reason
    assert letter["event_id"] == trigger["trigger_id"]
    assert letter["error"].endswith(f"after {attempts} attempt(s)")
    assert "@" not in letter["error"]
    assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
        kafka_settings.topics.triggers, msg.partition(), msg.offset())  # fmt: skip
    assert letter["raw"] == msg.value()
    assert dead_msg.key() == msg.key()
    assert _committed_is_end(kafka_settings, group)


def test_abandoned_cart_email_lists_the_items_with_prices(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j, t0 = json_event_factory, recent()
    image = "https://cdn.shop.example/p/bag-7.jpg"
    item = {"product": {"product_id": "bag-7", "name": "Tote", "category": "bags",
                        "price": 49.5, "currency": "EUR", "image_url": image},
            "quantity": 2}  # fmt: skip
    produce_events(kafka_settings, [
        j("identify", t0, customer="eve", payload={"email": "eve@example.com",
                                                   "first_name": "Eve"}),
        j("cart_item_added", t0 + MIN, customer="eve", payload={"item": item}),
    ])  # fmt: skip
    # A bounded run lets every moment up to now happen: the cart is 60 min old by then.
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))
    ((trigger, _),) = _triggers(kafka_settings, "abandoned_cart")
    # Issue 20: the line as its cart event described it (its image too), in the cart's own
    # currency.
    assert trigger["items"][0]["product"] == {"product_id": "bag-7", "name": "Tote",
                                              "category": "bags", "price": 49.5,
                                              "currency": "EUR", "image_url": image}  # fmt: skip
    assert (trigger["amount"], trigger["currency"]) == (99.0, "EUR")

    handler = RecordingHandler()
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, tmp_path / "m", smtp, group=f"it-{uuid.uuid4().hex}")
    assert "sent=1" in summary, summary
    (email,) = handler.received
    assert email.to == ["eve@example.com"]
    assert email.message["Subject"] == "Eve, you left something in your cart"
    assert "Tote x 2: 49.50 EUR each, 99.00 EUR" in email.text()
    assert "Total: 99.00 EUR" in email.text()
    assert "bag-7 x" not in email.text()  # a name, not the product id
    assert "Tote" in email.html()
    assert "99.00 EUR" in email.html()
    assert f'<img src="{image}" alt="Tote" width="64"' in email.html()
    assert image not in email.text()


def test_hostile_addresses_and_poison_records_never_stop_the_mailer(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    """Issue 16, repro 3: an identify with a CRLF header injection, one with two
    addresses, a poison trigger and a poison profile snapshot; the mailer dead-letters the
    first three, still emails the normal customer, and a restart finds nothing to redo."""
    j, t0 = json_event_factory, recent()
    events = [*_customer(j, "ada", t0), *_customer(j, "mal", t0), *_customer(j, "duo", t0)]
    hostile = {"mal": "a@victim.example\r\nBcc: b@evil.example",
               "duo": "a@victim.example, b@evil.example"}  # fmt: skip
    for event in events:
        if event["type"] == "identify" and event["customer_id"] in hostile:
            event["payload"]["email"] = hostile[event["customer_id"]]
    produce_events(kafka_settings, events)
    run_cdpflow(["run", "--until-end", "--no-recovery"], settings_env(kafka_settings))
    triggers = {r["customer_id"]: r for r, _ in _triggers(kafka_settings, "category_interest")}
    assert sorted(triggers) == ["ada", "duo", "mal"]

    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    poison_trigger = b"\xc3\x01" + b"\x00" * 8 + b"not a trigger"
    producer.produce(kafka_settings.topics.triggers, poison_trigger, b"poison")
    # Poison on the profiles topic: bytes that are no snapshot, a null-keyed tombstone and
    # one whose key is not UTF-8.
    producer.produce(kafka_settings.topics.profiles, b"\xc3\x01garbage", b"ada")
    producer.produce(kafka_settings.topics.profiles, None, None)
    producer.produce(kafka_settings.topics.profiles, None, b"\xff\xfe")
    assert producer.flush(30) == 0
    dead_before = len(read_topic(kafka_settings, kafka_settings.topics.dead_letters))

    handler = RecordingHandler()
    group = f"it-mailer-{uuid.uuid4().hex[:8]}"
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, tmp_path / "m", smtp, group=group)
        # 3 triggers, the poison one and 3 tag changes (ignored).
        assert summary == "mailer: 7 messages dead_lettered=3 ignored=3 sent=1", summary
        assert [r.to for r in handler.received] == [["ada@example.com"]]
        assert handler.rcpt_attempts == 1  # no envelope to the victim or the attacker
        assert _committed_is_end(kafka_settings, group)
        # Restarted, the mailer does not meet the poison again: it is committed past.
        assert run_mailer(kafka_settings, tmp_path / "m", smtp, group=group) == (
            "mailer: 0 messages")  # fmt: skip
        assert len(handler.received) == 1

    dead = [(r, m) for name, r, m in read_topic(kafka_settings,
                                                kafka_settings.topics.dead_letters)[dead_before:]
            if name == "cdp.DeadLetter"]  # fmt: skip
    by_reason = sorted((r["reason"], r["event_id"], r["error"]) for r, _ in dead)
    assert by_reason == sorted([
        ("invalid_recipient", triggers["mal"]["trigger_id"],
         "profile.email: contains a control character"),
        ("invalid_recipient", triggers["duo"]["trigger_id"],
         "profile.email: not a single bare address"),
        ("unknown_schema", None, next(r["error"] for r, _ in dead
                                      if r["reason"] == "unknown_schema")),
    ])  # fmt: skip
    for letter, _ in dead:
        assert letter["source_topic"] == kafka_settings.topics.triggers
        assert "victim" not in letter["error"]
        assert "evil" not in letter["error"]


def _snapshot(customer: str, event_time: int, revision: int | None, *,
              unsubscribed: bool = False) -> bytes:  # fmt: skip
    view = {"customer_id": customer, "revision": revision or 0, "unsubscribed": unsubscribed,
            "attributes": {"email": f"{customer}@example.com"}}  # fmt: skip
    return default_codec().encode("cdp.ProfileSnapshot", {
        "customer_id": customer, "state_version": 1, "email": f"{customer}@example.com",
        "first_name": customer.title(), "last_name": None, "lifecycle": None, "tags": [],
        "segments": [], "profile_json": orjson.dumps(view).decode(), "event_time": event_time,
        "emitted_at": event_time, "revision": revision, "as_of": event_time})  # fmt: skip


def test_a_replay_beside_the_live_run_cannot_rewind_the_mailers_profiles(
    kafka_settings, tmp_path
) -> None:
    """Issue 17, defect 2, for the mailer: the live run wrote Kim's newest snapshot (she
    unsubscribed) and Lou's erasure; a replay then writes their older snapshots to the same
    topic. The mailer keeps the newer state: no email to either; Max still gets his."""
    now = time.time_ns() // 1_000_000
    hour = 60 * MIN
    profiles = kafka_settings.topics.profiles
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for key, value in [
        (b"kim", _snapshot("kim", now - hour, 7, unsubscribed=True)),  # live
        (b"lou", _snapshot("lou", now - hour, 4)),  # live ...
        (b"lou", None),  # ... then erased
        (b"max", _snapshot("max", now - hour, 3)),
        (b"kim", _snapshot("kim", now - 2 * hour, 2)),  # the replay's older snapshots
        (b"lou", _snapshot("lou", now - hour, 4)),
        (b"kim", _snapshot("kim", now - hour, None)),  # old layout: revision 0 < 7
    ]:  # fmt: skip
        producer.produce(profiles, value, key)
    assert producer.flush(30) == 0
    for customer in ("kim", "lou", "max"):
        _produce_trigger(kafka_settings, _cart_trigger(customer))

    handler = RecordingHandler()
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, tmp_path / "m", smtp, group=f"it-{uuid.uuid4().hex}",
                             CDPFLOW_MAILER_PROFILE_WAIT_MS="0")  # fmt: skip
    assert summary == "mailer: 3 messages sent=1 skipped=2", summary
    assert [r.to for r in handler.received] == [["max@example.com"]]


def test_a_running_mailer_serves_its_metrics(kafka_settings, tmp_path) -> None:
    now = time.time_ns() // 1_000_000
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    producer.produce(kafka_settings.topics.profiles, _snapshot("max", now - MIN, 3), b"max")
    producer.produce(kafka_settings.topics.triggers, b"\xc3\x01poison", b"poison")
    assert producer.flush(30) == 0
    _produce_trigger(kafka_settings, _cart_trigger("max"))
    port = free_port()
    handler = RecordingHandler()
    with smtp_server(handler) as (host, smtp_port):
        env = settings_env(
            kafka_settings, CDPFLOW_SMTP_HOST=host, CDPFLOW_SMTP_PORT=str(smtp_port),
            CDPFLOW_SMTP_SECURITY="none", CDPFLOW_MAILER_STATE_DIR=str(tmp_path / "m"),
            CDPFLOW_MAILER_GROUP=f"it-{uuid.uuid4().hex}", CDPFLOW_MAILER_QUIET_HOURS="off",
            CDPFLOW_MAILER_FROM="shop@example.com", CDPFLOW_MAILER_METRICS_PORT=str(port),
            **UNSUBSCRIBE_ENV,
        )  # fmt: skip
        args = [sys.executable, "-m", "mailer.main", "--until-idle", "20"]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            text, deadline = "", time.monotonic() + 60
            while 'status="sent"} 1.0' not in text and time.monotonic() < deadline:
                time.sleep(0.3)
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except httpx.TransportError:
                    continue
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=60)
    assert 'cdpflow_mailer_triggers_total{status="sent"} 1.0' in text, err.decode()[-2000:]
    assert 'cdpflow_mailer_dead_letters_total{reason="corrupt_avro"} 1.0' in text
    assert proc.returncode == 0, err.decode()[-2000:]
    assert len(handler.received) == 1
    for line in err.decode().splitlines():  # JSON logs by default, no librdkafka lines
        assert orjson.loads(line)["logger"].startswith("cdpflow"), line
