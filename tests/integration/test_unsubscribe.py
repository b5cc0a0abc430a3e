"""One-click unsubscribe end to end, no mocks: an abandoned-cart email reaches a real SMTP
server on loopback with its List-Unsubscribe headers; the test POSTs to that link on the
real collector app (real producer, real broker); the consent event reaches cdp.events; a
``cdpflow run`` folds it; a new trigger for the customer sends no email. A replayed POST
and a forged token change nothing."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

import orjson
from starlette.testclient import TestClient

from cdpflow.secrets import Secret
from collector.app import create_app
from collector.settings import CollectorSettings
from mailer.unsubscribe import event_id_for, sign_token
from tests.integration.conftest import read_topic, run_cdpflow, settings_env
from tests.integration.test_mailer_end_to_end import (
    MIN,
    _cart_trigger,
    _produce_trigger,
    _triggers,
    recent,
    run_mailer,
)
from tests.mailer.smtp_server import RecordingHandler, smtp_server

SECRET = "u" * 40
LINK_BASE = "https://collect.shop.test/v1/unsubscribe"


def _collector(kafka_settings) -> TestClient:
    settings = CollectorSettings(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        topics=kafka_settings.topics,
        write_keys=(Secret("wk-unused"),),
        unsubscribe_secrets=(Secret(SECRET),),
    )
    return TestClient(create_app(settings), base_url="https://collect.shop.test")


def _unsubscribe_events(kafka_settings) -> list[dict]:
    return [r for name, r, _ in read_topic(kafka_settings, kafka_settings.topics.events)
            if name == "cdp.Event" and r["event_type"] == "email_event"
            and r["payload"]["action"] == "unsubscribed"]  # fmt: skip


def _last_view(kafka_settings, customer: str) -> dict:
    snaps = [r for name, r, m in read_topic(kafka_settings, kafka_settings.topics.profiles)
             if name == "cdp.ProfileSnapshot" and m.key() == customer.encode()]  # fmt: skip
    return orjson.loads(snaps[-1]["profile_json"])


def test_email_link_post_unsubscribes_and_the_next_trigger_sends_nothing(
    kafka_settings, produce_events, json_event_factory, tmp_path
) -> None:
    j, t0 = json_event_factory, recent()
    item = {"product": {"product_id": "bag-7", "name": "Tote", "category": "bags",
                        "price": 49.5, "currency": "EUR"}, "quantity": 2}  # fmt: skip
    produce_events(kafka_settings, [
        j("identify", t0, customer="eve", payload={"email": "eve@example.com",
                                                   "first_name": "Eve"}),
        j("cart_item_added", t0 + MIN, customer="eve", payload={"item": item}),
    ])  # fmt: skip
    env = settings_env(kafka_settings, CDPFLOW_SNAPSHOT_INTERVAL_S="0.5")
    recovery = ["--recovery-dir", str(tmp_path / "state")]
    run_cdpflow(["run", "--until-end", *recovery], env)
    ((trigger, _),) = _triggers(kafka_settings, "abandoned_cart")

    handler = RecordingHandler()
    group, mailer_state = f"it-{uuid.uuid4().hex}", tmp_path / "mailer"
    links = {"CDPFLOW_MAILER_UNSUBSCRIBE_URL": LINK_BASE, "CDPFLOW_UNSUBSCRIBE_SECRET": SECRET,
             "CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO": "unsubscribe@shop.test",
             "CDPFLOW_MAILER_SHOP_URL": "https://shop.test/",
             # No cap: only consent can explain a skipped trigger below.
             "CDPFLOW_MAILER_CAP": "100"}  # fmt: skip
    with smtp_server(handler) as smtp:
        summary = run_mailer(kafka_settings, mailer_state, smtp, group=group, **links)
        assert "sent=1" in summary, summary
        (email,) = handler.received
        assert email.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = re.match(r"<(https://[^>]+)>, <mailto:", email.message["List-Unsubscribe"])[1]
        assert url.startswith(f"{LINK_BASE}?t=")
        assert url in email.text()
        token = url.split("?t=", 1)[1]

        # What a mailbox provider does on "unsubscribe": POST the link, one-click body.
        forged = sign_token((Secret("f" * 40),), "eve", trigger["trigger_id"],
                            expires_s=int(time.time()) + 3600)  # fmt: skip
        with _collector(kafka_settings) as collector:
            target = urlsplit(url)
            path = f"{target.path}?{target.query}"
            assert collector.get(path).status_code == 200  # a prefetch changes nothing
            first = collector.post(path, data={"List-Unsubscribe": "One-Click"})
            assert first.status_code == 200, first.text
            replay = collector.post(path, data={"List-Unsubscribe": "One-Click"})
            assert replay.status_code == 200
            bad = collector.post(f"/v1/unsubscribe?t={forged}")
            assert (bad.status_code, bad.json()["reason"]) == (403, "invalid_signature")

        events = _unsubscribe_events(kafka_settings)
        assert [e["event_id"] for e in events] == [event_id_for(token)] * 2  # nothing forged
        assert {(e["customer_id"], e["source"]) for e in events} == {("eve", "unsubscribe")}
        assert events[0]["payload"]["message_id"] == trigger["trigger_id"]

        run_cdpflow(["run", "--until-end", *recovery], env)
        view = _last_view(kafka_settings, "eve")
        assert view["unsubscribed"] is True
        assert view["engagement"]["email"]["unsubscribed"] == 1, view  # replay deduplicated
        assert len(_triggers(kafka_settings, "abandoned_cart")) == 1  # the dataflow: none new

        # A new trigger for Eve (another rule, a replay): the mailer sends nothing.
        _produce_trigger(kafka_settings, _cart_trigger("eve"))
        summary = run_mailer(kafka_settings, mailer_state, smtp, group=group, **links)
        assert "skipped=1" in summary, summary
        assert "sent=" not in summary, summary
        assert len(handler.received) == 1
