"""The shipped templates, rendered with fabricated triggers (the abandoned-cart and
win-back rules arrive with the rules issue)."""

from __future__ import annotations

import html
import re

import pytest

from mailer.exceptions import TemplateError
from mailer.links import LinkConfig
from mailer.templates import Renderer, context_for, template_for


@pytest.fixture
def renderer() -> Renderer:
    return Renderer()


def test_category_interest_names_the_category_and_the_viewed_products(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    t = trigger_factory(category="running shoes", product_ids=["sho-021", "sho-026"])
    out = renderer.render("category_interest", context_for(t, stored_profile_factory(), "Shop"))
    assert out.subject == "Ada, still looking at running shoes?"
    for body in (out.text, out.html):
        assert "running shoes" in body
        assert "sho-021" in body
        assert "sho-026" in body
        assert "Ada" in body


def test_abandoned_cart_lists_items_with_prices_and_the_total(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    items = [
        {"product": {"product_id": "sku-1", "name": "Trail shoe", "category": "shoes",
                     "price": 89.9, "currency": "EUR"}, "quantity": 1},
        {"product": {"product_id": "sku-2", "name": None, "category": None, "price": None,
                     "currency": None}, "quantity": 2},
    ]  # fmt: skip
    t = trigger_factory("abandoned_cart", items=items, amount=89.9, currency="EUR",
                        category=None, product_ids=[])  # fmt: skip
    out = renderer.render("abandoned_cart", context_for(t, stored_profile_factory(), "Shop"))
    assert "Trail shoe x 1: 89.90 EUR" in out.text
    assert "sku-2 x 2" in out.text
    assert "Total: 89.90 EUR" in out.text
    assert "Trail shoe" in out.html
    assert "89.90 EUR" in out.html
    assert out.subject == "Ada, you left something in your cart"


def test_win_back_for_a_customer_who_became_lapsed(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    # As the shipped rules file emits it: rule win_back, lifecycle_entered, plain values.
    t = trigger_factory("win_back", category=None, product_ids=[],
                        attributes={"from": "active", "to": "lapsed"})  # fmt: skip
    assert template_for(t) == "win_back"
    out = renderer.render("win_back", context_for(t, stored_profile_factory(), "Shop"))
    assert out.subject == "Ada, we miss you at Shop"
    assert "a while since your last visit" in out.text


def test_no_first_name_reads_naturally(renderer, trigger_factory) -> None:
    excerpt = {"email": None, "first_name": None, "timezone": None, "lifecycle": None,
               "tags": [], "segments": []}  # fmt: skip
    t = trigger_factory(profile=excerpt)
    out = renderer.render("category_interest", context_for(t, None, "Shop"))
    assert out.subject == "Still looking at shoes?"
    assert out.text.startswith("Hi there,")


def test_html_escapes_customer_data_and_text_does_not(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    profile = stored_profile_factory(first_name="<script>x</script>")
    out = renderer.render("category_interest", context_for(trigger_factory(), profile, "Shop"))
    assert "<script>" not in out.html
    assert "&lt;script&gt;" in out.html
    assert "<script>x</script>" in out.text


@pytest.mark.parametrize(
    ("rule", "attributes", "expected"),
    [("category_interest", {}, "category_interest"), ("abandoned_cart", {}, "abandoned_cart"),
     ("win_back", {"to": "lapsed"}, "win_back"), ("lifecycle_change", {"to": '"churned"'}, None),
     ("lifecycle_change", {"to": "lapsed"}, "win_back"), ("Bad Name", {}, None), ("", {}, None)],
)  # fmt: skip
def test_template_for(rule, attributes, expected) -> None:
    assert template_for({"rule": rule, "attributes": attributes}) == expected


def test_only_the_shipped_rules_have_templates(renderer) -> None:
    assert [n for n in ("category_interest", "abandoned_cart", "win_back", "segment_entered")
            if renderer.has(n)] == ["category_interest", "abandoned_cart", "win_back"]  # fmt: skip


def test_an_override_directory_replaces_single_files(tmp_path, trigger_factory) -> None:
    (tmp_path / "category_interest.subject.j2").write_text("New {{ category }} for you")
    out = Renderer(tmp_path).render("category_interest", context_for(trigger_factory(), None,
                                                                      "Shop"))  # fmt: skip
    assert out.subject == "New shoes for you"
    assert "sho-021" in out.text  # the shipped body still applies


def test_a_broken_template_names_the_file_not_the_data(tmp_path, trigger_factory) -> None:
    (tmp_path / "category_interest.txt.j2").write_text("{{ no_such_name }}")
    with pytest.raises(TemplateError, match=r"category_interest\.txt\.j2") as info:
        Renderer(tmp_path).render("category_interest", context_for(trigger_factory(), None, "S"))
    assert "ada" not in str(info.value).lower()
    with pytest.raises(TemplateError, match="not found"):
        Renderer().render("no_such_template", {})


# --- templates a shop would send: the same facts in both parts ---------------------------

_LINKS = LinkConfig(
    shop_url="https://shop.example/",
    product_url="https://shop.example/p/{product_id}",
    category_url="https://shop.example/c/{category}",
    cart_url="https://shop.example/cart",
)
_UNSUB = "https://collect.shop.example/v1/unsubscribe?t=1.abc.def"
_CART = [
    {"product": {"product_id": "bag-7", "name": "Tote <Bag> & Co", "category": "bags",
                 "price": 120.5, "currency": "EUR"}, "quantity": 2},
    {"product": {"product_id": "sku-2", "name": None, "category": None, "price": 9.0,
                 "currency": None}, "quantity": 1},
    {"product": {"product_id": "sku-3", "name": None, "category": None, "price": None,
                 "currency": None}, "quantity": 1},
]  # fmt: skip
_MONEY = re.compile(r"\d+\.\d\d(?: [A-Z]{3})?")
_URL = re.compile(r"https://[^\s<>\"']+")


def _facts_text(text: str) -> tuple[set[str], set[str]]:
    return set(_MONEY.findall(text)), set(_URL.findall(text))


def _facts_html(markup: str) -> tuple[set[str], set[str]]:
    hrefs = {html.unescape(h) for h in re.findall(r'href="([^"]+)"', markup)}
    visible = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    return set(_MONEY.findall(visible)), hrefs


def _cases(trigger_factory):
    yield (
        "abandoned_cart",
        trigger_factory(
            "abandoned_cart",
            items=_CART,
            amount=250.0,
            currency=None,
            category=None,
            product_ids=[],
        ),
    )
    yield (
        "category_interest",
        trigger_factory(category="running shoes", product_ids=["sho-021", "sho-026"]),
    )
    yield (
        "win_back",
        trigger_factory(
            "win_back", category=None, product_ids=[], attributes={"favourite_category": '"bags"'}
        ),
    )
    yield (
        "generic",
        trigger_factory("segment_entered", items=_CART, category="bags", product_ids=[]),
    )
    yield "generic", trigger_factory("segment_entered", category="bags")
    yield "generic", trigger_factory("segment_entered", category=None, product_ids=[])


def test_text_and_html_carry_the_same_names_prices_and_links(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    for name, t in _cases(trigger_factory):
        ctx = context_for(t, stored_profile_factory(), "Shop", _LINKS, _UNSUB)
        out = renderer.render(name, ctx)
        money_t, urls_t = _facts_text(out.text)
        money_h, urls_h = _facts_html(out.html)
        assert money_t == money_h, name
        assert urls_t == urls_h, name
        assert _UNSUB in urls_t, name
        for label in [i["label"] for i in ctx["items"]] + [p["label"] for p in ctx["products"]]:
            assert label in out.text, (name, label)
            assert html.escape(label) in out.html, (name, label)
        assert "Ada" in out.text
        assert "Ada" in out.html
        for body in (out.text, out.html, out.subject):
            assert "None" not in body, name
            assert not re.search(r"\{\{|\{%", body), name


def test_abandoned_cart_names_prices_currency_and_links_to_the_cart(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    t = trigger_factory("abandoned_cart", items=_CART, amount=250.0, currency=None,
                        category=None, product_ids=[])  # fmt: skip
    out = renderer.render("abandoned_cart", context_for(t, stored_profile_factory(), "Shop",
                                                        _LINKS, _UNSUB))  # fmt: skip
    assert "Tote <Bag> & Co x 2: 120.50 EUR each, 241.00 EUR" in out.text
    assert "sku-2 x 1: 9.00 EUR" in out.text  # the line's currency from the others'
    assert "  - sku-3 x 1\n" in out.text  # no price: none shown, no "None"
    assert "Total: 250.00 EUR" in out.text
    utm = "utm_source=cdpflow&utm_medium=email&utm_campaign=abandoned_cart"
    assert f"Complete your order: https://shop.example/cart?{utm}" in out.text
    assert f"https://shop.example/p/bag-7?{utm}" in out.text
    assert "Tote &lt;Bag&gt; &amp; Co" in out.html  # autoescaped
    assert f'href="https://shop.example/cart?{html.escape(utm)}"' in out.html


def test_html_is_email_safe(renderer, trigger_factory, stored_profile_factory) -> None:
    """Tables and inline styles: no stylesheet, script, external resource or pixel."""
    for name, t in _cases(trigger_factory):
        out = renderer.render(
            name, context_for(t, stored_profile_factory(), "Shop", _LINKS, _UNSUB)
        )
        lower = out.html.lower()
        for banned in ("<style", "<link", "<script", "<img", "<iframe", "src=", "class="):
            assert banned not in lower, (name, banned)
        assert "<table" in lower
        assert 'style="' in lower


def test_without_links_the_emails_still_read_well(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    for name, t in _cases(trigger_factory):
        t["profile"]["first_name"] = None
        out = renderer.render(name, context_for(t, stored_profile_factory(first_name=None), "Shop"))
        assert "https://" not in out.text, name
        assert "href=" not in out.html, name
        assert "unsubscribe at any time in your account" in out.text, name
        assert "Hi there," in out.text, name
        assert "None" not in out.text + out.html, name


def test_category_interest_shows_the_viewed_products_as_the_trigger_describes_them(
    renderer, trigger_factory, stored_profile_factory
) -> None:
    """Issue 20: the dataflow names and prices a category trigger's products (its lines);
    no catalogue is needed for that."""
    line = {"product": {"product_id": "sho-021", "name": "Trail Runner", "category": "shoes",
                        "price": 89.9, "currency": "EUR"}, "quantity": 1}  # fmt: skip
    t = trigger_factory("category_interest", category="shoes", product_ids=["sho-021", "sho-9"],
                        items=[line])  # fmt: skip
    out = renderer.render("category_interest", context_for(t, stored_profile_factory(), "Shop"))
    assert "Trail Runner: 89.90 EUR" in out.text
    assert "sho-9" in out.text  # a product the trigger does not describe: its id
    assert "Trail Runner" in out.html


def test_a_template_reads_the_traits_its_trigger_rule_carries_by_name(
    tmp_path, trigger_factory, stored_profile_factory
) -> None:
    # As the dataflow writes them: attributes["trait.NAME"] = the value as JSON (a trigger
    # rule's traits = [...]); a shop's own template says "new arrivals in shoes, your
    # favourite" from them.
    for part, text in {
        "subject": "New in {{ traits.favourite_category }}",
        "txt": "Hi {{ first_name }}, new arrivals in {{ traits.favourite_category }}, your "
        "favourite ({{ traits.category_views_30d[traits.favourite_category] }} views).\n",
        "html": "<p>New arrivals in {{ traits.favourite_category }}</p>\n",
    }.items():
        (tmp_path / f"category_interest.{part}.j2").write_text(text)
    attrs = {"trait.favourite_category": '"shoes"',
             "trait.category_views_30d": '{"shoes": 4, "bags": 1}', "views": "3"}  # fmt: skip
    t = trigger_factory(category="shoes", attributes=attrs)
    context = context_for(t, stored_profile_factory(), "Shop")
    assert context["traits"] == {"favourite_category": "shoes",
                                 "category_views_30d": {"shoes": 4, "bags": 1}}  # fmt: skip
    out = Renderer(tmp_path).render("category_interest", context)
    assert out.subject == "New in shoes"
    assert out.text == "Hi Ada, new arrivals in shoes, your favourite (4 views).\n"
    assert "<p>New arrivals in shoes</p>" in out.html
    # A trigger without traits gives an empty map, never an undefined name.
    assert context_for(trigger_factory(), None, "Shop")["traits"] == {}
