"""The product catalogue: a feed file fills the names and prices triggers lack; the
trigger's own values win; bad rows are one-line errors naming line and field."""

from __future__ import annotations

import pytest

from cdpflow.errors import ConfigError
from mailer.catalog import Catalog, Product, load_catalog
from mailer.links import LinkConfig
from mailer.main import main
from mailer.templates import Renderer, context_for

JSONL = (
    '{"product_id": "sho-021", "name": "Trail Runner", "category": "shoes", "price": 89.9,'
    ' "currency": "EUR"}\n'
    "\n"
    '{"product_id": "bag-7", "name": "Tote Bag", "price": "49.50", "currency": "EUR"}\n'
)
CSV = "product_id,name,category,price,currency\nsho-021,Trail Runner,shoes,89.90,EUR\nx-1,,,,\n"


def test_jsonl_and_csv_feeds(tmp_path) -> None:
    (tmp_path / "feed.jsonl").write_text(JSONL)
    (tmp_path / "feed.csv").write_text(CSV)
    jsonl = load_catalog(tmp_path / "feed.jsonl")
    assert jsonl.products["bag-7"] == Product("Tote Bag", None, 49.5, "EUR")
    csv = load_catalog(tmp_path / "feed.csv")
    assert csv.products["sho-021"] == Product("Trail Runner", "shoes", 89.9, "EUR")
    assert csv.products["x-1"] == Product()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("f.jsonl", '{"name": "no id"}\n', "line 1: product_id is required"),
        ("f.jsonl", '{"product_id": "a"}\n{nope\n', "line 2: not JSON"),
        ("f.jsonl", '{"product_id": "a", "price": -1}\n', "line 1: price"),
        ("f.jsonl", '{"product_id": "a", "price": "NaN"}\n', "line 1: price"),
        ("f.jsonl", '{"product_id": "a", "currency": "euro"}\n', "line 1: currency"),
        ("f.jsonl", '{"product_id": "a", "name": "x\\u0000y"}\n', "line 1: name"),
        ("f.jsonl", '["a"]\n', "line 1: expected an object"),
        ("f.csv", "product_id,price\nsecret-sku,lots\n", "line 2: price"),
        ("f.txt", "", "must end in .jsonl or .csv"),
        ("f.jsonl", '{"product_id": "a", "image_url": "javascript:alert(1)"}\n',
         "line 1: image_url"),
        ("f.csv", "product_id,image_url\na,data:image/png;base64,AAAA\n", "line 2: image_url"),
    ],
)  # fmt: skip
def test_bad_feeds_name_the_line_and_field_not_the_value(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_catalog(tmp_path / name)
    assert "lots" not in str(err.value)
    assert "euro" not in str(err.value)


def test_the_triggers_values_win_and_gaps_are_filled() -> None:
    catalog = Catalog({"bag-7": Product("Tote Bag", "bags", 49.5, "EUR")})
    line = {"product_id": "bag-7", "name": "Tote (event)", "category": None, "price": None,
            "currency": None}  # fmt: skip
    assert catalog.fill(line) == {
        "product_id": "bag-7",
        "name": "Tote (event)",
        "category": "bags",
        "price": 49.5,
        "currency": "EUR",
        "image_url": None,
    }
    assert catalog.fill({"product_id": "other", "name": None}) == {
        "product_id": "other",
        "name": None,
    }


def test_emails_show_catalogue_names_and_prices_in_both_parts(
    trigger_factory, stored_profile_factory
) -> None:
    catalog = Catalog({"sho-021": Product("Trail Runner", "shoes", 89.9, "EUR"),
                       "bag-7": Product("Tote Bag", "bags", 49.5, "EUR")})  # fmt: skip
    links = LinkConfig(product_url="https://shop.example/p/{product_id}")
    viewed = trigger_factory(product_ids=["sho-021", "sho-999"])
    out = Renderer().render("category_interest", context_for(
        viewed, stored_profile_factory(), "Shop", links, None, catalog))  # fmt: skip
    assert "  - Trail Runner: 89.90 EUR\n" in out.text
    assert "  - sho-999\n" in out.text  # unknown to the catalogue: its id, no price
    assert "Trail Runner" in out.html
    assert "89.90 EUR" in out.html
    # Today's cart lines: ids and prices, no names or currency (state/rules/engine.py).
    cart = trigger_factory("abandoned_cart", items=[{"product": {
        "product_id": "bag-7", "name": None, "category": None, "price": 120.5,
        "currency": None}, "quantity": 2}], amount=241.0, currency=None)  # fmt: skip
    out = Renderer().render("abandoned_cart", context_for(
        cart, stored_profile_factory(), "Shop", links, None, catalog))  # fmt: skip
    assert "Tote Bag x 2: 120.50 EUR each, 241.00 EUR" in out.text  # the event's price wins
    assert "Total: 241.00 EUR" in out.text


def test_preview_reads_the_catalogue_setting(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "feed.jsonl").write_text(JSONL)
    monkeypatch.setenv("CDPFLOW_MAILER_CATALOG_FILE", str(tmp_path / "feed.jsonl"))
    assert main(["preview", "category_interest"]) == 0
    assert "Trail Runner: 89.90 EUR" in capsys.readouterr().out
    monkeypatch.setenv("CDPFLOW_MAILER_CATALOG_FILE", str(tmp_path / "missing.jsonl"))
    assert main(["preview", "category_interest"]) == 2
    assert "CDPFLOW_MAILER_CATALOG_FILE is not a file" in capsys.readouterr().err


def test_a_catalogue_image_fills_a_line_without_one_and_shows_in_the_html(tmp_path) -> None:
    from mailer.links import LinkConfig
    from mailer.templates import Renderer, context_for

    feed = tmp_path / "feed.csv"
    feed.write_text("product_id,name,image_url\nbag-7,Tote Bag,https://cdn.shop.example/b.jpg\n")
    catalog = load_catalog(feed)
    trigger = {"rule": "abandoned_cart", "items": [
        {"product": {"product_id": "bag-7", "price": 49.5}, "quantity": 1}]}  # fmt: skip
    context = context_for(trigger, None, "Shop", LinkConfig(), "https://u.example/x", catalog)
    assert context["items"][0]["image_url"] == "https://cdn.shop.example/b.jpg"
    html = Renderer().render("abandoned_cart", context).html
    assert '<img src="https://cdn.shop.example/b.jpg" alt="Tote Bag" width="64"' in html
