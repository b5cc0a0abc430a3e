"""Hostile input, end to end on the real broker: every class of issue 16 sent through the
real collector (public and server keys) and straight onto the events topic, while
``cdpflow run`` runs live. Afterwards the dataflow is still running, the mailer and the
profile API still work, and a normal customer's trigger, email and profile are right.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer
from starlette.testclient import TestClient

from cdpflow.codec import default_codec
from cdpflow.json_events import record_from_json
from cdpflow.secrets import Secret
from cdpflow.settings import Settings
from collector.app import create_app
from collector.settings import CollectorSettings
from tests.collector.conftest import SERVER_KEY, WRITE_KEY, basic
from tests.integration.conftest import _free_port, read_topic, settings_env
from tests.integration.serve_process import serve, stop, wait_ready
from tests.integration.test_mailer_end_to_end import run_mailer
from tests.mailer.smtp_server import RecordingHandler, smtp_server

pytestmark = pytest.mark.timeout(240)

H = 3_600_000


def _now() -> int:
    return int(time.time() * 1000)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _track(user: str, event: str, props: dict[str, Any], at: int, mid: str | None = None) -> dict:
    return {"type": "track", "userId": user, "event": event, "properties": props,
            "timestamp": _iso(at),
            "messageId": mid or uuid.uuid4().hex}  # fmt: skip


def _identify(user: str, traits: dict[str, Any], at: int) -> dict:
    return {"userId": user, "traits": traits, "timestamp": _iso(at), "messageId": uuid.uuid4().hex}


def _views(user: str, at: int) -> list[dict]:
    """Three views of one category within 24 hours: a category-interest trigger."""
    return [_track(user, "Product Viewed", {"product_id": f"sku-{i}", "category": "shoes",
                                            "price": 49.0}, at + i * 60_000)
            for i in range(3)]  # fmt: skip


def _rogue(settings: Settings, now: int) -> list[bytes]:
    """What a producer with write access to cdp.events could send past the collector."""
    codec = default_codec()
    schema = codec.schema("cdp.Event")

    def event(kind: str, payload: dict, **changes: Any) -> bytes:
        record = record_from_json({"event_id": uuid.uuid4().hex, "type": kind,
                                   "customer_id": "rogue", "timestamp": now,
                                   "received_at": now, "source": "rogue",
                                   "payload": payload}, codec)  # fmt: skip
        fields = changes.pop("fields", None)
        record.update(changes)
        if fields:
            branch, values = record["payload"]
            record["payload"] = (branch, {**values, **fields})
        return codec.encode_with(schema, record)

    order = {"order_id": "o-r", "revenue": 1.0, "items": []}
    return [
        event("identify", {"email": "r@x.example"}, fields={"signup_date": 10**8}),
        event("page_viewed", {"path": "/"}, event_time=3 * 10**14, received_at=3 * 10**14),
        event("order_completed", order, fields={"revenue": float("inf")}),
        event("order_completed", order, fields={"revenue": float("nan")}),
        b"\xc3\x01 not avro at all",
        b"",
    ]


def test_hostile_input_never_stops_a_part_and_a_normal_customer_is_served(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings
    now = int(time.time() * 1000)
    env = settings_env(settings, CDPFLOW_PROFILE_FLUSH_MS="200", CDPFLOW_TIMER_GRACE_MS="1000")
    flow = subprocess.Popen([sys.executable, "-m", "cdpflow.cli", "run", "--no-recovery"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    collector = CollectorSettings(
        bootstrap_servers=settings.bootstrap_servers,
        topics=settings.topics,
        write_keys=(Secret(WRITE_KEY),),
        server_write_keys=(Secret(SERVER_KEY),),
    )
    public, server = basic(WRITE_KEY), basic(SERVER_KEY)
    answers: dict[str, int] = {}
    try:
        with TestClient(create_app(collector)) as c:
            # 1. Non-finite and huge amounts, at every edge of the mapper.
            for name, total in (("huge", 1e305), ("nan", "NaN"), ("inf", "Infinity")):
                r = c.post(
                    "/v1/track",
                    headers=public,
                    json=_track(
                        "u-p", "Order Completed", {"order_id": f"o-{name}", "total": total}, now
                    ),
                )
                answers[f"amount_{name}"] = r.status_code
                assert "total" in r.text
            # 3. Header injection and two addresses in one trait; both customers then view
            # one category three times (their triggers reach the mailer).
            for user, email in (("crlf", "a@victim.example\r\nBcc: b@evil.example"),
                                ("two", "a@victim.example, b@evil.example")):  # fmt: skip
                assert (
                    c.post(
                        "/v1/identify",
                        headers=public,
                        json=_identify(user, {"email": email}, now - H),
                    ).status_code
                    == 200
                )
                for m in _views(user, now - H + 1):
                    assert c.post("/v1/track", headers=public, json=m).status_code == 200
            # 2. Forty identifies of one user, each with a 30,000-character trait.
            for i in range(40):
                big = _identify("fat", {f"t{i}": "x" * 30_000}, now - H + i)
                assert c.post("/v1/identify", headers=public, json=big).status_code == 200
            # 5. The public key may not take over or erase a customer; a future identify is
            # clamped to its receipt and does not make the victim's next events late.
            answers["alias_public"] = c.post("/v1/alias", headers=public, json={
                "userId": "attacker", "previousId": "norma",
                "messageId": uuid.uuid4().hex}).status_code  # fmt: skip
            r = c.post("/v1/batch", headers=public, json={"batch": [
                {"type": "alias", "userId": "attacker", "previousId": "norma",
                 "messageId": uuid.uuid4().hex},
                _track("attacker", "erase", {}, now),
            ]})  # fmt: skip
            assert r.status_code == 200
            assert {x["reason"] for x in r.json()["rejected"]} == {"forbidden_for_public_key"}
            future = _identify("norma", {"email": "evil@attacker.example"}, now + 23 * H)
            assert c.post("/v1/identify", headers=public, json=future).status_code == 200
            # 6/7. Too many items, gzip with trailing garbage.
            answers["too_many"] = c.post(
                "/v1/batch", headers=public, json={"batch": [{}] * 160_000}
            ).status_code
            body = gzip.compress(orjson.dumps({"batch": _views("g", now)})) + b"garbage"
            answers["gzip_garbage"] = c.post("/v1/batch", content=body, headers={
                **public, "Content-Encoding": "gzip", "Content-Type": "application/json"},
            ).status_code  # fmt: skip
            # 8. Edge dates with offsets, and nesting deeper than JSON is written.
            for i, stamp in enumerate(("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")):
                m = {**_track("u-d", "Page Viewed", {}, now), "timestamp": stamp}
                answers[f"edge_date_{i}"] = c.post("/v1/track", headers=public, json=m).status_code
            deep: Any = {}
            for _ in range(300):
                deep = {"d": deep}
            r = c.post(
                "/v1/batch",
                headers=public,
                json={
                    "batch": [
                        _track("u-deep", "Deep", {"x": deep}, now),
                        *_views("ok-neighbour", now),
                    ]
                },
            )
            answers["deep"] = r.status_code
            assert r.json()["accepted"] == 3, r.json()
            # The normal customer, through a server key (a backend's identify) and the
            # browser's public key (her views), after all of that. Unclamped, the identify
            # dated 23 hours ahead would have won over hers (last write wins by event time)
            # and made her views late.
            time.sleep(0.05)
            assert c.post("/v1/identify", headers=server, json=_identify(
                "norma", {"email": "norma@example.com", "first_name": "Norma"},
                _now())).status_code == 200  # fmt: skip
            for i in range(3):
                view = _track("norma", "Product Viewed", {"product_id": f"sku-{i}",
                              "category": "shoes"}, _now())  # fmt: skip
                assert c.post("/v1/track", headers=public, json=view).status_code == 200
                time.sleep(0.01)
        # 4. A rogue producer on the events topic.
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
        for value in _rogue(settings, now):
            producer.produce(settings.topics.events, value, b"rogue")
        assert producer.flush(30) == 0
        time.sleep(8)
        assert flow.poll() is None, flow.communicate()[1][-3000:].decode()
    finally:
        flow.terminate()
        _, err = flow.communicate(timeout=60)
    assert b"Traceback" not in err, err[-3000:].decode()

    assert answers == {
        "amount_huge": 400, "amount_nan": 400, "amount_inf": 400, "alias_public": 403,
        "too_many": 400, "gzip_garbage": 400, "edge_date_0": 400, "edge_date_1": 400,
        "deep": 200,
    }  # fmt: skip
    triggers = read_topic(settings, settings.topics.triggers)
    interest = sorted(r["customer_id"] for n, r, _ in triggers
                      if n == "cdp.Trigger" and r["rule"] == "category_interest")  # fmt: skip
    assert interest == ["crlf", "norma", "ok-neighbour", "two"]
    letters = [r for _, r, _ in read_topic(settings, settings.topics.dead_letters)]
    reasons = sorted(d["reason"] for d in letters if d["source_topic"] == settings.topics.events)
    assert reasons == sorted(["corrupt_avro", "unknown_schema", "invalid_field", "invalid_field",
                              "invalid_field", "invalid_time"]
                             + ["field_too_large"] * 40)  # fmt: skip
    assert not [d for d in letters if d["reason"] in ("late_event", "processing_error")]
    profiles = {m.key(): r for n, r, m in read_topic(settings, settings.topics.profiles)
                if n == "cdp.ProfileSnapshot"}  # fmt: skip
    assert profiles[b"norma"]["email"] == "norma@example.com"  # no takeover, nothing late
    assert b"attacker" not in profiles

    # The mailer: Norma's email goes out; the hostile addresses are dead letters, not mail.
    handler = RecordingHandler()
    with smtp_server(handler) as smtp:
        summary = run_mailer(settings, tmp_path / "mailer", smtp, group=uuid.uuid4().hex)
    recipients = sorted(r for got in handler.received for r in got.to)
    assert recipients == ["norma@example.com"], summary
    assert "dead_lettered=2" in summary

    # The profile API serves her, and the look-up by address is hers.
    port = _free_port()
    api = serve(settings, tmp_path / "store", port, CDPFLOW_API_TOKENS="read-token-0123456789")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, api)
        auth = {"Authorization": "Bearer read-token-0123456789"}
        got = httpx.get(f"{base}/v1/profiles/norma", headers=auth, timeout=5)
        assert got.status_code == 200
        assert got.json()["profile"]["attributes"]["first_name"] == "Norma"
        found = httpx.post(f"{base}/v1/profiles/lookup", headers=auth, timeout=5,
                           json={"email": "NORMA@example.com"})  # fmt: skip
        assert found.status_code == 200
        assert found.json()["customer_id"] == "norma"
    finally:
        stop(api)
