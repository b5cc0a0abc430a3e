"""``cdpflow mailer preview``: both parts and the headers, to the terminal or files; a test
send to a real SMTP server on loopback; one-line errors with exit status 2."""

from __future__ import annotations

from email import message_from_bytes, policy
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from mailer.main import main
from mailer.unsubscribe import verify_token
from state.store import RocksProfileStore

SECRET = "p" * 32


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for name, value in {
        "CDPFLOW_MAILER_SHOP_NAME": "Test Shop",
        "CDPFLOW_MAILER_FROM": "shop@example.com",
        "CDPFLOW_MAILER_SHOP_URL": "https://shop.example/",
        "CDPFLOW_MAILER_PRODUCT_URL": "https://shop.example/p/{product_id}",
        "CDPFLOW_MAILER_CART_URL": "https://shop.example/cart",
        "CDPFLOW_MAILER_UNSUBSCRIBE_URL": "https://collect.shop.example/v1/unsubscribe",
        "CDPFLOW_UNSUBSCRIBE_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)


def test_prints_headers_and_both_parts_of_the_sample(capsys) -> None:
    assert main(["preview", "abandoned_cart"]) == 0
    out = capsys.readouterr().out
    assert "Subject: Ada, you left something in your cart" in out
    assert "List-Unsubscribe: <https://collect.shop.example/v1/unsubscribe?t=" in out
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in out
    text, html = out.split("--- text/plain ---")[1].split("--- text/html ---")
    assert "Tote Bag x 2: 49.50 EUR each, 99.00 EUR" in text
    assert "Total: 188.90 EUR" in text
    assert "Tote Bag" in html
    assert "188.90 EUR" in html


def test_out_writes_text_html_and_the_whole_message(tmp_path, capsys) -> None:
    assert main(["preview", "category_interest", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "o" / f"category_interest.{s}") for s in
                       ("txt", "html", "eml")]  # fmt: skip
    eml = message_from_bytes((tmp_path / "o" / "category_interest.eml").read_bytes(),
                             policy=policy.default)  # fmt: skip
    assert eml["Subject"] == "Ada, still looking at shoes?"
    assert eml["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "sho-026" in (tmp_path / "o" / "category_interest.txt").read_text()
    assert "<table" in (tmp_path / "o" / "category_interest.html").read_text()


def test_a_trigger_file_fills_in_the_sample(tmp_path, capsys) -> None:
    f = tmp_path / "t.json"
    f.write_bytes(orjson.dumps({"category": "hats", "product_ids": ["hat-1"]}))
    assert main(["preview", "category_interest", "--trigger-file", str(f)]) == 0
    out = capsys.readouterr().out
    assert "Subject: Ada, still looking at hats?" in out
    assert "https://shop.example/p/hat-1?utm_source=cdpflow" in out


def test_a_rule_without_its_own_template_previews_the_generic_one(capsys) -> None:
    assert main(["preview", "segment_entered"]) == 0
    assert "Subject: Ada, news from Test Shop" in capsys.readouterr().out


def test_send_to_sends_one_test_message_to_that_address_only(smtp, smtp_handler, monkeypatch,
                                                             capsys) -> None:  # fmt: skip
    host, port = smtp
    monkeypatch.setenv("CDPFLOW_SMTP_HOST", host)
    monkeypatch.setenv("CDPFLOW_SMTP_PORT", str(port))
    monkeypatch.setenv("CDPFLOW_SMTP_SECURITY", "none")
    assert main(["preview", "abandoned_cart", "--send-to", "qa@shop.example"]) == 0
    assert "test message sent to qa@shop.example (smtp)" in capsys.readouterr().out
    (got,) = smtp_handler.received
    assert got.to == ["qa@shop.example"]
    assert got.message["To"] == "qa@shop.example"
    assert got.message["Subject"] == "[TEST] Ada, you left something in your cart"
    assert got.message["X-Cdpflow-Trigger"].startswith("preview-")
    url = got.message["List-Unsubscribe"].strip("<>")
    claims = verify_token(_secrets(), parse_qs(urlsplit(url).query)["t"][0], now_s=0)
    assert claims.customer_id == "preview:sample-customer"  # a click unsubscribes nobody real
    assert "Tote Bag x 2" in got.text()


def _secrets():
    from cdpflow.secrets import Secret

    return (Secret(SECRET),)


def test_customer_renders_their_profile_and_says_what_the_policy_decides(
    tmp_path, capsys, stored_profile_factory
) -> None:
    store = RocksProfileStore(tmp_path / "profiles")
    store.apply([("c-9", stored_profile_factory("c-9", first_name="Zoe", unsubscribed=True))], {})
    store.close()
    args = ["preview", "win_back", "--customer", "c-9", "--state-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "policy: would skip (unsubscribed)" in out
    assert "Subject: Zoe, we miss you at Test Shop" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "nobody", "--state-dir", "{tmp}"], "--customer: no profile store"),
        (["--trigger-file", "{tmp}/missing.json"], "--trigger-file: cannot read"),
        (["--trigger-file", "{tmp}/bad.json"], "is not JSON"),
        (["--trigger-file", "{tmp}/wrong.json"], "does not fit cdp.Trigger"),
        (["--send-to", "a@x.example, b@y.example"], "--send-to"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "wrong.json").write_text('{"amount": "lots"}')
    argv = ["preview", "abandoned_cart", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdpflow mailer preview: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_without_an_unsubscribe_url_it_renders_a_placeholder_and_warns(monkeypatch,
                                                                      capsys) -> None:  # fmt: skip
    """The mailer does not start without the URL; a preview still shows the email, with a
    link that says what is missing, and one warning line."""
    from mailer.links import PLACEHOLDER

    monkeypatch.delenv("CDPFLOW_MAILER_UNSUBSCRIBE_URL")
    monkeypatch.delenv("CDPFLOW_UNSUBSCRIBE_SECRET")
    assert main(["preview", "abandoned_cart"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "cdpflow mailer preview: warning: CDPFLOW_MAILER_UNSUBSCRIBE_URL is not set: the "
        "unsubscribe link is a placeholder, and 'cdpflow mailer' will not start without it"
    ]
    assert f"List-Unsubscribe: {PLACEHOLDER.header}" in captured.out
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in captured.out
    text, html = captured.out.split("--- text/plain ---")[1].split("--- text/html ---")
    assert f"Unsubscribe with one click: {PLACEHOLDER.url}" in text
    assert f'<a href="{PLACEHOLDER.url}"' in html
    assert urlsplit(PLACEHOLDER.url).hostname.endswith(".invalid")  # reaches nobody


def test_product_images_of_a_trigger_file_show_in_the_html_only(tmp_path, capsys) -> None:
    image = "https://cdn.shop.example/p/bag-7.jpg"
    lines = [{"product": {"product_id": "bag-7", "name": "Tote Bag", "price": 49.5,
                          "currency": "EUR", "image_url": image}, "quantity": 1},
             {"product": {"product_id": "x-1", "name": "Gift", "price": 1.0,
                          "currency": "EUR", "image_url": "javascript:alert(1)"},
              "quantity": 1}]  # fmt: skip
    f = tmp_path / "t.json"
    f.write_bytes(orjson.dumps({"items": lines, "amount": 50.5}))
    assert main(["preview", "abandoned_cart", "--trigger-file", str(f)]) == 0
    text, html = capsys.readouterr().out.split("--- text/plain ---")[1].split("--- text/html ---")
    assert f'<img src="{image}" alt="Tote Bag" width="64"' in html
    assert html.count("<img ") == 1
    assert "javascript" not in html
    assert image not in text
