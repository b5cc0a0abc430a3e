"""``[traits.NAME]`` declarations: validation naming file, trait and field; the budget;
traits readable by name (and as maps) in the rules' expressions."""

from __future__ import annotations

import pytest

from state.rules.expressions import compile_expression
from state.rules.model import RulesError, parse_rules
from state.traits.model import DEFAULT_BUDGET_BYTES

HEAD = "version = 1\n"


def _error(text: str, **kw: int) -> str:
    with pytest.raises(RulesError) as info:
        parse_rules(HEAD + text, "r.toml", **kw)
    return str(info.value)


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ("kind = 'sum'\nevent = 'order_completed'",
         "r.toml: traits.t.value: required for a sum trait"),
        ("kind = 'count'\nevent = 'order_completed'\nvalue = 'revenue'",
         "r.toml: traits.t.value: a count trait takes no value"),
        ("kind = 'sum'\nevent = 'order_complete'\nvalue = 'revenue'",
         "r.toml: traits.t.event: unknown event type 'order_complete'"),
        ("kind = 'total'\nevent = 'order_completed'", "r.toml: traits.t.kind: "),
        ("kind = 'count'\nevent = 'order_completed'\nwindow = '2x'",
         "r.toml: traits.t.window: not a duration: '2x'"),
        ("kind = 'count'\nevent = 'order_completed'\ngranularity = 'day'",
         "r.toml: traits.t.granularity: needs a window"),
        ("kind = 'count'\nevent = 'order_completed'\nwindow = '36h'\ngranularity = 'day'",
         "r.toml: traits.t.window: must be whole days"),
        ("kind = 'sum'\nevent = 'custom:webinar'\nvalue = 'revenue'",
         "r.toml: traits.t.value: 'revenue' is no field of custom:webinar"),
        ("kind = 'count'\nevent = 'product_viewed'\nby = 'categry'",
         "r.toml: traits.t.by: 'categry' is no field of product_viewed"),
        ("kind = 'count'\nevent = 'product_viewed'\nwhere = 'orders > 1'",
         "r.toml: traits.t.where: unknown name 'orders'"),
        ("kind = 'count'\nevent = 'product_viewed'\nwhere = 'since(session_id) > 1h'",
         "r.toml: traits.t.where: may not read the clock"),
        ("kind = 'max'\nevent = 'custom'\nvalue = 'properties.x'\ntype = 'string'",
         "r.toml: traits.t.type: 'string' not allowed for max"),
        ("kind = 'count'\nevent = 'custom'\nlimits = { keys = 0 }",
         "r.toml: traits.t.limits.keys: "),
        ("kind = 'count'\nevnt = 'custom'", "r.toml: traits.t.evnt: unknown field"),
    ],
)  # fmt: skip
def test_errors_name_file_trait_and_field(decl: str, message: str) -> None:
    lines = _error(f"[traits.t]\n{decl}\n").splitlines()
    assert any(line.startswith(message) for line in lines), lines


def test_a_trait_may_not_take_a_facts_name() -> None:
    err = _error("[traits.orders_90d]\nkind = 'count'\nevent = 'order_completed'\n")
    assert err == "r.toml: traits.orders_90d: the name of a built-in fact; choose another"


def test_budget_refuses_a_file_over_it() -> None:
    decl = ("[traits.views]\nkind = 'count'\nevent = 'product_viewed'\n"
            "by = 'product.category'\nwindow = '24h'\n")  # fmt: skip
    rules = parse_rules(HEAD + decl, "r.toml")
    worst = rules.worst_case_bytes()
    assert 0 < worst <= DEFAULT_BUDGET_BYTES
    assert parse_rules(HEAD + decl, "r.toml", budget_bytes=worst).traits
    err = _error(decl, budget_bytes=worst - 1)
    assert err.startswith(f"r.toml: traits: worst case {worst} bytes per customer, over the "
                          f"budget of {worst - 1} (largest: traits.views.limits")  # fmt: skip
    small = decl + "limits = { keys = 8, values = 4 }\n"
    assert parse_rules(HEAD + small).worst_case_bytes() < worst


def test_budget_grows_with_limits_and_day_windows() -> None:
    def worst(extra: str) -> int:
        text = (
            f"[traits.t]\nkind = 'unique_list'\nevent = 'custom'\nvalue = 'properties.x'\n{extra}"
        )
        return parse_rules(HEAD + text).worst_case_bytes()

    assert worst("") < worst("limits = { values = 64 }")
    assert worst("window = '7d'\ngranularity = 'day'") < worst(
        "window = '30d'\ngranularity = 'day'"
    )


def test_traits_are_names_in_expressions_and_maps_read_by_key() -> None:
    rules = parse_rules(HEAD + """
[traits.category_views_7d]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "7d"
granularity = "day"

[traits.webinar_topics]
kind = "unique_list"
event = "custom:webinar_attended"
value = "properties.topic"

[tags.shoe_fan]
when = "category_views_7d.shoes >= 3 or max(category_views_7d) >= 10"

[segments.pricing_curious]
when = "'pricing' in webinar_topics"
""")  # fmt: skip
    assert {"category_views_7d", "webinar_topics"} <= rules.names
    assert list(rules.compiled_traits) == ["category_views_7d", "webinar_topics"]
    assert rules.tags["shoe_fan"].when.evaluate({"category_views_7d": {"shoes": 3}}, 0)
    assert rules.tags["shoe_fan"].when.evaluate({"category_views_7d": {"hats": 10}}, 0)
    assert not rules.tags["shoe_fan"].when.evaluate({"category_views_7d": {}}, 0)
    seg = rules.segments["pricing_curious"].when
    assert seg.evaluate({"webinar_topics": ["api", "pricing"]}, 0)


def test_undeclared_trait_name_is_unknown() -> None:
    err = _error("[tags.x]\nwhen = 'webinar_topics == 1'\n")
    assert err.startswith("r.toml: tags.x.when: unknown name 'webinar_topics'")


def test_digest_ignores_name_and_description_but_not_meaning() -> None:
    def digest(decl: str) -> str:
        return next(iter(parse_rules(HEAD + decl).compiled_traits.values())).digest

    base = "kind = 'count'\nevent = 'product_viewed'\nwindow = '24h'\n"
    assert digest(f"[traits.a]\n{base}") == digest(f"[traits.b]\n{base}description = 'x'\n")
    assert digest(f"[traits.a]\n{base}") != digest(f"[traits.a]\n{base}by = 'product.category'\n")
    longer = base.replace("24h", "25h")
    assert digest(f"[traits.a]\n{base}") != digest(f"[traits.a]\n{longer}")


@pytest.mark.parametrize(
    ("source", "value"),
    [("max(m)", 5), ("min(m)", -1), ("sum(m)", 4), ("max(l)", 3), ("max(e)", None),
     ("sum(e)", 0), ("max(s)", None)],
)  # fmt: skip
def test_max_min_sum_over_maps_and_lists(source: str, value: object) -> None:
    facts = {"m": {"a": 5, "b": -1, "c": 0}, "l": [1, 3], "e": {}, "s": "x"}
    e = compile_expression(f"{source} == {'null' if value is None else value}", facts)
    assert e.evaluate(facts, 0)
