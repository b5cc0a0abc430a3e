import pytest

from state.rules.expressions import ExpressionError, compile_expression, parse_duration

KNOWN = {"orders", "revenue", "last_order_at", "tags", "attributes", "cart_items"}


def ev(source: str, now: int = 0, **facts) -> bool:
    return compile_expression(source, KNOWN).evaluate(facts, now)


@pytest.mark.parametrize(
    ("source", "facts", "expected"),
    [
        ("orders >= 3", {"orders": 3}, True),
        ("orders >= 3", {"orders": 2}, False),
        ("orders > 2 and revenue < 100", {"orders": 3, "revenue": 99.5}, True),
        ("orders > 2 and revenue < 100", {"orders": 3, "revenue": 100}, False),
        ("orders == 0 or revenue > 10", {"orders": 1, "revenue": 11}, True),
        ("not orders == 0", {"orders": 0}, False),
        ("not (orders == 0 or orders == 1)", {"orders": 2}, True),
        # and binds tighter than or
        ("orders == 1 or orders == 2 and revenue > 5", {"orders": 1, "revenue": 0}, True),
        ("revenue / orders >= 50", {"revenue": 100, "orders": 2}, True),
        ("orders * 2 + 1 == 7", {"orders": 3}, True),
        ("-orders < 0", {"orders": 1}, True),
        ("'vip' in tags", {"tags": ["a", "vip"]}, True),
        ('"vip" in tags', {"tags": ["a"]}, False),
        ("attributes.country == 'DE'", {"attributes": {"country": "DE"}}, True),
        ("attributes.country == 'DE'", {"attributes": {}}, False),
        ("count(tags) == 2", {"tags": ["a", "b"]}, True),
        ("exists(attributes.city)", {"attributes": {"city": ""}}, False),
        ("true and not false", {}, True),
    ],
)
def test_evaluates(source: str, facts: dict, expected: bool) -> None:
    assert ev(source, **facts) is expected


@pytest.mark.parametrize(
    "source",
    [
        "orders >= 3",
        "orders < 3",
        "revenue / orders > 1",
        "since(last_order_at) <= 30d",
        "'x' in tags",
        "attributes.city == 'x'",
    ],
)
def test_a_comparison_with_a_missing_value_is_false(source: str) -> None:
    assert ev(source) is False


def test_since_is_measured_from_the_evaluation_moment() -> None:
    day = 86_400_000
    assert ev("since(last_order_at) <= 30d", now=30 * day, last_order_at=0) is True
    assert ev("since(last_order_at) <= 30d", now=30 * day + 1, last_order_at=0) is False


def test_deadlines_name_the_moments_a_since_comparison_flips() -> None:
    e = compile_expression("cart_items > 0 and since(last_order_at) >= 60m", KNOWN)
    assert e.timers == (("last_order_at", 3_600_000),)
    assert e.deadlines({"last_order_at": 1_000}) == [3_601_000]
    assert e.deadlines({}) == []
    flipped = compile_expression("2h < since(last_order_at)", KNOWN)
    assert flipped.deadlines({"last_order_at": 0}) == [7_200_000]


@pytest.mark.parametrize(
    ("source", "exact"),
    [
        ("orders >= 3", True),
        ("since(last_order_at) <= 30d and orders > 1", True),
        ("not (60m <= since(last_order_at))", True),
        ("since(last_order_at) > since(last_order_at)", False),  # no duration: no deadline
        ("since(last_order_at) + 1d > 5d", False),
        ("since(last_order_at) > 5", False),  # a number, not a duration
        ("since(attributes.seen) > 1d", False),
        ("since(last_order_at) in tags", False),
    ],
)
def test_time_exact_when_the_time_is_read_only_through_deadlines(source: str, exact: bool) -> None:
    # A verdict may be reused between deadlines only if the time enters no other way.
    assert compile_expression(source, KNOWN).time_exact is exact


@pytest.mark.parametrize(
    ("source", "facts", "expected"),
    [
        ("orders > 1 and revenue > 1 and cart_items > 1", {"orders": 2, "revenue": 2}, False),
        ("orders > 1 or revenue > 1 or cart_items > 1", {"cart_items": 2}, True),
        ("(orders and revenue) == true", {"orders": 1, "revenue": 5}, True),  # and is a bool
        ("(orders or revenue) == 1", {"orders": 0, "revenue": 7}, True),  # or is a bool
        ("orders < 'x'", {"orders": 1}, False),  # does not compare: false
        ("orders != null", {"orders": 0}, True),
    ],
)
def test_connectives_and_comparisons_give_bools(source: str, facts: dict, expected: bool) -> None:
    assert ev(source, **facts) is expected


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("60m", 3_600_000),
        ("1.5h", 5_400_000),
        ("90d", 90 * 86_400_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("orderz >= 3", "unknown name 'orderz'; known: attributes, cart_items, last_order_at"),
        ("eval('1')", "unknown function 'eval'; known: count, exists, max, min, since, sum"),
        ("since(orders, 1)", "since() takes 1 argument(s), got 2"),
        ("orders >=", "syntax error at column"),
        ("orders >= 3 xor 2", "syntax error at column"),
        ("__import__('os')", "unknown function '__import__'"),
    ],
)
def test_errors_say_what_is_wrong(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, KNOWN)
    assert message in str(info.value)
