"""The shipped templates, rendered with fabricated triggers (the abandoned-cart and
win-back rules arrive with the rules issue)."""

from __future__ import annotations

import pytest

from mailer.exceptions import TemplateError
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
