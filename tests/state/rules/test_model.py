"""The rules file: the shipped default, and invalid files with the exact error text."""

from pathlib import Path

import pytest

from state.rules.model import (
    DEFAULT_RULES,
    CategoryViews,
    RulesError,
    TagAdded,
    load_rules,
    parse_rules,
)


def test_the_shipped_default_implements_the_seed() -> None:
    rules = load_rules()
    assert list(rules.tags) == ["frequent_buyer", "abandoned_cart", "high_engagement", "high_value"]
    assert [s.name for s in rules.lifecycle] == ["new", "active", "lapsed", "churned"]
    assert rules.preference_tags == {"interests": "interest:"}
    assert list(rules.segments) == ["recent_high_value_premium"]
    ci = rules.triggers["category_interest"]
    assert isinstance(ci, CategoryViews)
    assert (ci.threshold, ci.window, ci.cooldown) == (3, 86_400_000, 72 * 3_600_000)
    cart = rules.triggers["abandoned_cart"]
    assert isinstance(cart, TagAdded)
    assert cart.tag == "abandoned_cart"


def check(text: str) -> str:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "rules.toml")
    return str(info.value)


def test_unknown_name_in_an_expression() -> None:
    err = check('version = 1\n[tags.big]\nwhen = "orders_9d >= 3"\n')
    assert err.startswith("rules.toml: tags.big.when: unknown name 'orders_9d'; known: ")
    assert "orders_90d" in err


def test_unknown_field_and_missing_field() -> None:
    err = check('version = 1\n[tags.big]\nwhen = "orders >= 3"\ncolour = "red"\n[segments.s]\n')
    assert err.splitlines() == [
        "rules.toml: tags.big.colour: unknown field",
        "rules.toml: segments.s.when: required field missing",
    ]


def test_bad_duration_and_threshold() -> None:
    err = check(
        'version = 1\n[triggers.ci]\ntype = "category_views"\nwindow = "a day"\nthreshold = 0\n'
    )
    assert err.splitlines() == [
        "rules.toml: triggers.ci.threshold: Input should be greater than or equal to 1",
        "rules.toml: triggers.ci.window: not a duration: 'a day' (use e.g. 60m, 24h, 30d)",
    ]


def test_unknown_trigger_type() -> None:
    err = check('version = 1\n[triggers.t]\ntype = "sms"\n')
    assert err.startswith("rules.toml: triggers.t: Input tag 'sms' found using 'type' does not")


def test_references_to_undefined_rules() -> None:
    err = check(
        'version = 1\n[triggers.t]\ntype = "tag_added"\ntag = "vip"\n'
        '[triggers.w]\ntype = "lifecycle_entered"\nstage = "asleep"\n'
        '[triggers.s]\ntype = "segment_entered"\nsegments = ["nope"]\n'
    )
    assert err.splitlines() == [
        "rules.toml: triggers.t.tag: no tag rule named 'vip'",
        "rules.toml: triggers.w.stage: no lifecycle stage named 'asleep'",
        "rules.toml: triggers.s.segments: no segment named 'nope'",
    ]


def test_syntax_errors_and_versions() -> None:
    assert check("version = 1\n[tags.x\n").startswith("rules.toml: not valid TOML: ")
    assert check("version = 2\n") == "rules.toml: version: Input should be 1"
    assert check('version = 1\n[tags.Bad-Name]\nwhen = "true"\n') == (
        "rules.toml: tags.Bad-Name: invalid name, pattern '^[a-z][a-z0-9_:.\\-]*$'"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"nope\.toml: cannot read: No such file"):
        load_rules(tmp_path / "nope.toml")


def test_a_user_adds_a_tag_segment_and_trigger_by_editing_only_the_file(tmp_path: Path) -> None:
    text = DEFAULT_RULES.read_text() + (
        '\n[tags.bargain_hunter]\nwhen = "average_order_value < 30 and orders >= 2"\n'
        "[segments.bargain_fans]\nwhen = \"'bargain_hunter' in tags\"\n"
        '[triggers.bargain]\ntype = "segment_entered"\nsegments = ["bargain_fans"]\n'
    )
    path = tmp_path / "rules.toml"
    path.write_text(text)
    rules = load_rules(path)
    assert "bargain_hunter" in rules.tags
    assert "bargain" in rules.triggers
