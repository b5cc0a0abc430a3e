"""Issue 20: product images, from a Segment cart event to the HTML of the email a real SMTP
server (aiosmtpd, loopback) receives; and a ``javascript:`` or ``data:`` image URL never
reaches any HTML, whichever way it comes.

The chain is the real one, in process: the collector app (a recording sink instead of
Kafka), the Bytewax dataflow over its messages (testing source and sink), and the mailer
over the dataflow's triggers and profile snapshots, delivering over SMTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main
from starlette.testclient import TestClient

from cdpflow.codec import default_codec
from cdpflow.secrets import Secret
from cdpflow.settings import Settings
from collector.app import create_app
from collector.settings import CollectorSettings
from flows.dataflow import build_flow
from mailer.delivery import Backoff
from mailer.ledger import Ledger
from mailer.links import LinkConfig
from mailer.policy import PolicyConfig
from mailer.sink import MailerConfig, TriggerMailer, TriggerMessage
from mailer.smtp import SmtpConfig, SmtpDelivery
from mailer.templates import Renderer
from state.store import StoredProfile
from tests.collector.conftest import RecordingSink, basic
from tests.mailer.conftest import UNSUBSCRIBE_LINKS
from tests.mailer.test_sink import Letters, Profiles

CODEC = default_codec()
NOW_MS = 1_790_000_000_000
HOUR_MS = 3_600_000
IMAGE = "https://cdn.shop.example/p/bag-7.jpg?w=200&v=2"
LINKS = LinkConfig(
    shop_url="https://shop.example/",
    product_url="https://shop.example/p/{product_id}",
    unsubscribe_url=UNSUBSCRIBE_LINKS.unsubscribe_url,
    secrets=UNSUBSCRIBE_LINKS.secrets,
)
HOSTILE = ["javascript:alert(document.cookie)", "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
           "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
           "vbscript:msgbox(1)", "/relative/bag.jpg"]  # fmt: skip


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def collector() -> Iterator[tuple[TestClient, RecordingSink]]:
    sink = RecordingSink()
    app = create_app(CollectorSettings(write_keys=(Secret("wk-test"),)), sink,
                     now_ms=lambda: NOW_MS, now_s=lambda: NOW_MS / 1000)  # fmt: skip
    with TestClient(app) as client:
        yield client, sink


def _cart_batch(image_url: Any) -> dict[str, Any]:
    added = {"product_id": "bag-7", "name": "Tote Bag", "price": 49.5, "currency": "EUR",
             "quantity": 2, "category": "bags"}  # fmt: skip
    if image_url is not None:
        added["image_url"] = image_url
    return {"batch": [
        {"type": "identify", "messageId": "m-1", "userId": "c-42",
         "timestamp": _iso(NOW_MS - 3 * HOUR_MS),
         "traits": {"email": "ada@example.com", "firstName": "Ada"}},
        {"type": "track", "event": "Product Added", "messageId": "m-2", "userId": "c-42",
         "timestamp": _iso(NOW_MS - 2 * HOUR_MS), "properties": added},
    ]}  # fmt: skip


def _dataflow(messages: list[bytes]) -> list[Any]:
    """The dataflow over the collector's messages; its clock is NOW_MS, two hours after
    the cart event, so the abandoned-cart timer has fired."""
    source = [KafkaSourceMessage(b"c-42", value, topic="cdp.events", partition=0, offset=i)
              for i, value in enumerate(messages)]  # fmt: skip
    out: list[Any] = []
    run_main(build_flow(TestingSource(source), TestingSink(out), Settings(),
                        clock=lambda: NOW_MS))  # fmt: skip
    return out


def _mail(out: list[Any], smtp: tuple[str, int], tmp_path: Any) -> list[str]:
    """Feed the dataflow's profiles and triggers to a mailer that delivers over SMTP."""
    profiles = Profiles()
    triggers = []
    for i, msg in enumerate(out):
        name, record = CODEC.decode(msg.value, logical=False)
        if name == "cdp.ProfileSnapshot":
            profiles.store.apply([(record["customer_id"], StoredProfile.from_snapshot(record))],
                                 {})  # fmt: skip
        elif name == "cdp.Trigger":
            triggers.append(TriggerMessage(msg.value, msg.key, "cdp.triggers", 0, i))
    ledger = Ledger(tmp_path / "ledger")
    config = MailerConfig("shop@example.com", "Shop", PolicyConfig(quiet_hours=None),
                          Backoff(1, 0, 0), 0, LINKS)  # fmt: skip
    mailer = TriggerMailer(
        config, ledger=ledger, profiles=profiles, renderer=Renderer(),
        delivery=SmtpDelivery(SmtpConfig(*smtp, "none", sender_name="Shop")),
        dead_letters=Letters(), codec=CODEC, now_ms=lambda: NOW_MS, sleep=lambda _s: None,
    )  # fmt: skip
    try:
        return [f"{r.status}:{r.reason}" for r in map(mailer.add, triggers)]
    finally:
        ledger.close()


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"], ids=["compiled", "python"])
def test_an_abandoned_cart_email_shows_the_image_its_cart_event_had(
    collector, smtp, smtp_handler, tmp_path, path
) -> None:
    client, sink = collector
    batch = _cart_batch(IMAGE)
    if path == "/v1/batch":  # the compiled fast path maps a batch
        response = client.post(path, json=batch, headers=basic())
        assert response.status_code == 200, response.text
    else:  # the Python mapper, one call at a time
        for call in batch["batch"]:
            call_path = "/v1/identify" if call["type"] == "identify" else path
            assert client.post(call_path, json=call, headers=basic()).status_code == 200
    [added] = [r for r in sink.decoded("cdp.events") if r["event_type"] == "cart_item_added"]
    assert added["payload"]["item"]["product"]["image_url"] == IMAGE

    results = _mail(_dataflow([m.value for m in sink.sent]), smtp, tmp_path)
    assert results == ["sent:abandoned_cart"]
    [received] = smtp_handler.received
    html, text = received.html(), received.text()
    escaped = IMAGE.replace("&", "&amp;")
    assert f'<img src="{escaped}" alt="Tote Bag" width="64"' in html
    assert html.count("<img ") == 1
    assert "cdn.shop.example" not in text  # the text part says nothing more
    assert "Tote Bag x 2" in text
    assert received.message["List-Unsubscribe"].startswith(f"<{LINKS.unsubscribe_url}?t=1.")


def test_a_cart_without_an_image_gets_an_email_without_one(
    collector, smtp, smtp_handler, tmp_path
) -> None:
    client, sink = collector
    assert client.post("/v1/batch", json=_cart_batch(None), headers=basic()).status_code == 200
    assert _mail(_dataflow([m.value for m in sink.sent]), smtp, tmp_path) == ["sent:abandoned_cart"]
    [received] = smtp_handler.received
    assert "<img" not in received.html()
    assert "Tote Bag" in received.html()


@pytest.mark.parametrize("url", HOSTILE)
def test_the_collector_refuses_an_image_url_that_is_not_absolute_http(collector, url) -> None:
    client, sink = collector
    call = _cart_batch(url)["batch"][1]
    response = client.post("/v1/track", json=call, headers=basic())
    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_field"
    assert response.json()["error"] == "properties.image_url: not an absolute http(s) URL"
    # In a batch (the compiled path leaves it to the Python mapper) only that item is refused.
    response = client.post("/v1/batch", json=_cart_batch(url), headers=basic())
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejected_count"]) == (1, 1)
    assert [r["event_type"] for r in sink.decoded("cdp.events")] == ["identify"]


@pytest.mark.parametrize("url", HOSTILE)
def test_a_hostile_image_url_in_a_trigger_never_reaches_the_html(
    smtp, smtp_handler, tmp_path, trigger_factory, url
) -> None:
    """A trigger written by something else than the dataflow (cdp.triggers is a topic
    anyone with access can write): the mailer shows no image rather than that one."""
    line = {
        "product": {
            "product_id": "bag-7",
            "name": "Tote Bag",
            "category": "bags",
            "price": 49.5,
            "currency": "EUR",
            "image_url": url,
        },
        "quantity": 1,
    }
    other = {"product": {"product_id": "hat-1", "name": "Cap", "category": None, "price": 9.0,
                         "currency": "EUR", "image_url": "https://cdn.shop.example/cap.jpg"},
             "quantity": 1}  # fmt: skip
    for rule, fields in (
        ("abandoned_cart", {"items": [line, other], "amount": 58.5, "currency": "EUR",
                            "attributes": {"tag": '"abandoned_cart"'}}),
        ("category_interest", {"items": [line], "product_ids": ["bag-7"], "category": "bags"}),
    ):  # fmt: skip
        record = trigger_factory(rule, trigger_id=f"t-{rule}", customer=f"c-{rule}", **fields)
        raw = CODEC.encode("cdp.Trigger", record)
        out = [_Msg(raw), _Msg(_snapshot(f"c-{rule}"))]
        assert _mail(out, smtp, tmp_path / rule) == [f"sent:{rule}"]
    assert len(smtp_handler.received) == 2
    for received in smtp_handler.received:
        html = received.html()
        scheme = url.strip().split(":")[0].replace("\t", "")
        assert url not in html
        assert f"{scheme}:" not in html.lower().replace("\t", "")
        assert "Tote Bag" in html
    cart_html = smtp_handler.received[0].html()
    assert cart_html.count("<img ") == 1  # the cap's, not the bag's
    assert 'src="https://cdn.shop.example/cap.jpg" alt="Cap"' in cart_html


class _Msg:
    def __init__(self, value: bytes) -> None:
        self.value, self.key = value, b"k"


def _snapshot(customer: str) -> bytes:
    return CODEC.encode("cdp.ProfileSnapshot", {
        "customer_id": customer, "state_version": 3, "email": "ada@example.com",
        "first_name": "Ada", "last_name": None, "lifecycle": None, "tags": [], "segments": [],
        "profile_json": '{"attributes": {"email": "ada@example.com"}}',
        "event_time": NOW_MS, "emitted_at": NOW_MS,
    })  # fmt: skip
