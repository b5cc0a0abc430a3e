"""Shop links and one-click unsubscribe in the emails that leave: settings, UTM
parameters, and the List-Unsubscribe headers as a real SMTP server receives them."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError
from cdpflow.secrets import Secret
from mailer.delivery import Backoff
from mailer.ledger import Ledger
from mailer.links import LinkConfig
from mailer.message import OutgoingEmail
from mailer.policy import PolicyConfig
from mailer.settings import MailerSettings
from mailer.sink import MailerConfig, TriggerMailer, TriggerMessage
from mailer.smtp import SmtpConfig, SmtpDelivery
from mailer.templates import Renderer
from mailer.unsubscribe import verify_token
from mailer.webhook import WebhookDelivery
from state.store import MemoryProfileStore
from tests.mailer.conftest import NOW
from tests.mailer.test_sink import Clock, Letters, Profiles

SECRET = Secret("s" * 32)
LINKS = LinkConfig(
    shop_url="https://shop.example/",
    product_url="https://shop.example/p/{product_id}?ref=mail",
    category_url="https://shop.example/c/{category}",
    cart_url="https://shop.example/cart",
    unsubscribe_url="https://collect.shop.example/v1/unsubscribe",
    unsubscribe_mailto="unsubscribe@shop.example",
    secrets=(SECRET,),
)
SECRET_ENV = {"CDPFLOW_UNSUBSCRIBE_SECRET": "s" * 32}


def test_links_carry_utm_parameters_and_keep_the_patterns_own() -> None:
    url = LINKS.product("sku/1 ä", "category_interest")
    assert url is not None
    parts = urlsplit(url)
    assert parts.path == "/p/sku%2F1%20%C3%A4"
    assert parse_qs(parts.query) == {"ref": ["mail"], "utm_source": ["cdpflow"],
                                     "utm_medium": ["email"],
                                     "utm_campaign": ["category_interest"]}  # fmt: skip
    assert LINKS.category("running shoes", "r") == (
        "https://shop.example/c/running%20shoes?utm_source=cdpflow&utm_medium=email"
        "&utm_campaign=r")  # fmt: skip
    bare = LinkConfig(shop_url="https://shop.example/")
    assert bare.product("sku-1", "r") is None  # no product pattern: not linked
    assert bare.cart("r") == bare.shop("r")
    assert LinkConfig().shop("r") is None
    assert LinkConfig().unsubscribe("c-1", "t-1", NOW / 1000) is None


def test_settings_read_and_check_the_link_patterns() -> None:
    s = MailerSettings.from_env({
        "CDPFLOW_MAILER_SHOP_URL": "https://shop.example/",
        "CDPFLOW_MAILER_PRODUCT_URL": "https://shop.example/p/{product_id}",
        "CDPFLOW_MAILER_UNSUBSCRIBE_URL": "https://c.example/v1/unsubscribe",
        "CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO": "unsub@shop.example",
        "CDPFLOW_MAILER_UNSUBSCRIBE_DAYS": "30",
        "CDPFLOW_MAILER_FALLBACK_TEMPLATE": "generic",
        **SECRET_ENV,
    })  # fmt: skip
    assert s.links.product_url == "https://shop.example/p/{product_id}"
    assert s.links.token_ttl_s == 30 * 86_400
    assert s.links.unsubscribe_mailto == "unsub@shop.example"
    assert s.fallback_template == "generic"
    assert MailerSettings.from_env({}, for_preview=True).links == LinkConfig()
    for env, message in [
        ({"CDPFLOW_MAILER_PRODUCT_URL": "https://shop.example/p/"}, "{product_id}"),
        ({"CDPFLOW_MAILER_SHOP_URL": "javascript:alert(1)"}, "CDPFLOW_MAILER_SHOP_URL"),
        ({"CDPFLOW_MAILER_UNSUBSCRIBE_URL": "https://c.example/u"}, "CDPFLOW_UNSUBSCRIBE_SECRET"),
        ({"CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO": "a@b.example, c@d.example", **SECRET_ENV},
         "CDPFLOW_MAILER_UNSUBSCRIBE_MAILTO"),
        ({"CDPFLOW_UNSUBSCRIBE_SECRET": "too-short"}, "at least 32"),
        ({"CDPFLOW_MAILER_FALLBACK_TEMPLATE": "../x"}, "FALLBACK_TEMPLATE"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(message)):
            MailerSettings.from_env(env)


@pytest.fixture
def smtp_mailer(tmp_path, smtp, stored_profile_factory):
    host, port = smtp
    profiles = Profiles()
    profiles.store = MemoryProfileStore()
    profiles.store.apply([("c-1", stored_profile_factory())], {})
    ledger = Ledger(tmp_path / "ledger")
    clock = Clock()
    config = MailerConfig("shop@example.com", "Shop", PolicyConfig(quiet_hours=None),
                          Backoff(1, 0, 0), 0, LINKS, "generic")  # fmt: skip
    mailer = TriggerMailer(
        config, ledger=ledger, profiles=profiles, renderer=Renderer(),
        delivery=SmtpDelivery(SmtpConfig(host, port, "none", sender_name="Shop")),
        dead_letters=Letters(), codec=default_codec(), now_ms=clock, sleep=clock.sleep,
    )  # fmt: skip
    yield mailer
    ledger.close()


def _add(mailer: TriggerMailer, record: dict) -> str:
    raw = default_codec().encode("cdp.Trigger", record)
    return mailer.add(TriggerMessage(raw, b"c-1", "cdp.triggers", 0, 1)).status


def test_the_received_email_has_one_click_headers_that_verify(
    smtp_mailer, smtp_handler, trigger_factory
) -> None:
    assert _add(smtp_mailer, trigger_factory(trigger_id="t-42")) == "sent"
    (got,) = smtp_handler.received
    header = got.message["List-Unsubscribe"]
    assert got.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "=?" not in header  # one plain token, no encoded words
    https, mailto = re.fullmatch(r"<(https://[^>]+)>, <(mailto:[^>]+)>", header).groups()
    assert https.startswith("https://collect.shop.example/v1/unsubscribe?t=")
    token = parse_qs(urlsplit(https).query)["t"][0]
    claims = verify_token((SECRET,), token, now_s=NOW / 1000)
    assert (claims.customer_id, claims.trigger_id) == ("c-1", "t-42")
    assert claims.expires_s == NOW // 1000 + 60 * 86_400
    assert mailto.startswith("mailto:unsubscribe@shop.example?subject=unsubscribe%20")
    # The footer of both parts links the same URL.
    assert f"Unsubscribe with one click: {https}" in got.text()
    assert f'href="{https}"' in got.html()


def test_a_rule_without_a_template_gets_the_fallback(
    smtp_mailer, smtp_handler, trigger_factory
) -> None:
    t = trigger_factory("segment_entered", category=None, product_ids=["sku-1"])
    assert _add(smtp_mailer, t) == "sent"
    (got,) = smtp_handler.received
    assert got.message["Subject"] == "Ada, news from Shop"
    assert "https://shop.example/p/sku-1?ref=mail&utm_source=cdpflow" in got.text()
    assert "utm_campaign=segment_entered" in got.text()
    assert got.message["List-Unsubscribe"]


def test_webhook_delivery_hands_the_provider_the_list_headers() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(orjson.loads(request.content))
        return httpx.Response(202)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    hook = WebhookDelivery("https://esp.example/send", SECRET, client=client)
    email = OutgoingEmail("t-1", "r", "generic", "shop@example.com", "ada@example.com", "s",
                          "t", "h", list_unsubscribe="<https://c.example/u?t=x>")  # fmt: skip
    hook.send(email)
    hook.send(replace(email, list_unsubscribe=None))
    assert bodies[0]["headers"] == {
        "List-Unsubscribe": "<https://c.example/u?t=x>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert bodies[1]["headers"] == {}


def test_a_long_link_stays_one_token_and_other_headers_fold_as_usual() -> None:
    from mailer.message import to_mime

    url = "https://c.example/v1/unsubscribe?t=1." + "A" * 300 + ".mac"
    email = OutgoingEmail("t-1", "r", "generic", "shop@example.com", "ada@example.com",
                          "Zoë, " + "schau noch einmal vorbei " * 6, "t", "h",
                          list_unsubscribe=f"<{url}>, <mailto:u@shop.example>")  # fmt: skip
    raw = to_mime(email, "Schöner Laden", 0).as_bytes()
    head = raw.split(b"\n\n", 1)[0].decode()
    assert f"List-Unsubscribe: <{url}>,\n <mailto:u@shop.example>\n" in head
    for line in head.splitlines():
        if not line.startswith("List-Unsubscribe:"):
            assert len(line) <= 78, line  # encoded words stay short (RFC 2047)
