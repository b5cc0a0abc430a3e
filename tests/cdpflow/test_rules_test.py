"""``cdpflow rules test``'s trait table (cdpflow.rules_test.trait_values)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from cdpflow.errors import ConfigError
from cdpflow.rules_test import describe_traits, describe_trigger, trait_values
from cdpflow.settings import Settings
from state.rules.model import DEFAULT_RULES, parse_rules

RULES = (
    DEFAULT_RULES.read_text()
    + """
[traits.webinar_topics]
kind = "unique_list"
event = "custom:webinar_attended"
value = "properties.topic"

[traits.views_24h]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"
"""
)


def _events(tmp_path: Path, *events: dict[str, object]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_each_traits_value_after_each_event(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    events = _events(
        tmp_path,
        {"event_id": "1", "type": "product_viewed", "customer_id": "c-1",
         "timestamp": "2026-11-02T10:00:00Z",
         "payload": {"product": {"product_id": "s1", "category": "shoes"}}},
        {"event_id": "2", "type": "custom", "customer_id": "c-1",
         "timestamp": "2026-11-02T11:00:00Z",
         "payload": {"name": "webinar_attended", "properties": {"topic": "pricing"}}},
        {"event_id": "3", "type": "product_viewed", "customer_id": "c-1",
         "timestamp": "2026-11-02T08:00:00Z",
         "payload": {"product": {"product_id": "s2", "category": "shoes"}}},
    )  # fmt: skip
    out = io.StringIO()
    assert trait_values(rules, events, Settings(), out) == 0
    assert out.getvalue().splitlines() == [
        "2026-11-02 10:00:00  c-1  product_viewed  1",
        "  * webinar_topics = []",
        '  * views_24h = {"shoes":1}',
        "2026-11-02 11:00:00  c-1  custom:webinar_attended  2",
        '  * webinar_topics = ["pricing"]',
        '    views_24h = {"shoes":1}',
        "2026-11-02 08:00:00  c-1  product_viewed  3",
        '    webinar_topics = ["pricing"]',
        '    views_24h = {"shoes":1}',
        "    dead letter late_event: more than 3600000 ms behind the customer's newest "
        "event: lifetime aggregates updated, not counted in active days, category views, "
        "product views, trait views_24h",
    ]


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "1", "type": "nope", "timestamp": 0}\n')
    with pytest.raises(ConfigError, match=r"events.jsonl:1: "):
        trait_values(DEFAULT_RULES, events, Settings(), io.StringIO())


def test_rules_without_traits_say_so(tmp_path: Path) -> None:
    out = io.StringIO()
    assert trait_values(DEFAULT_RULES, _events(tmp_path), Settings(), out) == 0
    assert out.getvalue() == f"{DEFAULT_RULES}: declares no traits\n"


def test_describe_traits_and_the_generic_triggers() -> None:
    rules = parse_rules(RULES + """
[triggers.same]
type = "trait_crossed"
trait = "views_24h"
threshold = 3

[triggers.big]
type = "event"
event = "order_completed"
where = "revenue >= 200"
""")  # fmt: skip
    out = io.StringIO()
    describe_traits(rules, out)
    w1 = rules.traits["webinar_topics"].worst_case_bytes()
    w2 = rules.traits["views_24h"].worst_case_bytes()
    assert out.getvalue().splitlines() == [
        f"traits (2), worst case {w1 + w2} bytes per customer:",
        "  webinar_topics: unique_list of custom:webinar_attended, value properties.topic "
        f"(string), lifetime; {w1} bytes at most",
        f"  views_24h: count of product_viewed, by product.category, exact window 1d; "
        f"{w2} bytes at most",
    ]
    assert describe_trigger(rules.triggers["same"]) == (
        "trait 'views_24h' reaches 3 (per key if grouped)"
    )
    assert describe_trigger(rules.triggers["big"]) == "event order_completed where revenue >= 200"
    assert describe_trigger(rules.triggers["category_interest"]) is None


def test_the_seeds_category_interest_as_trait_crossed_on_the_demo_sample() -> None:
    """On the bundled sample, ``trait_crossed`` over a 24 h count by category (threshold
    3, cooldown 72 h) fires at the very moments, for the same customers, categories and
    products, as the seed's ``category_views`` trigger."""
    from dataclasses import replace

    from cdpflow.codec import default_codec
    from cdpflow.json_events import record_from_json
    from flows.decode import event_from_record
    from state import CustomerState, Trigger, apply

    rules = parse_rules(DEFAULT_RULES.read_text() + """
[traits.views_by_category]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[triggers.same_category_3x]
type = "trait_crossed"
trait = "views_by_category"
threshold = 3
cooldown = "72h"
""")  # fmt: skip
    cfg = replace(Settings().profile, rules=rules)
    codec = default_codec()
    sample = Path(__file__).parents[2] / "cdpflow" / "data" / "sample_events.jsonl"
    states: dict[str, CustomerState] = {}
    fired: dict[str, set[tuple[object, ...]]] = {
        "category_interest": set(),
        "same_category_3x": set(),
    }
    for line in sample.read_bytes().splitlines():
        if not line.strip():
            continue
        record = record_from_json(orjson.loads(line), codec)
        _, rec = codec.decode(codec.encode("cdp.Event", record), logical=False)
        ev = event_from_record(rec)
        for o in apply(states.setdefault(ev.key, CustomerState(ev.key)), ev, cfg):
            if isinstance(o, Trigger) and o.rule in fired:
                fired[o.rule].add((o.customer_id, o.category, o.event_time, o.product_ids))
    assert len(fired["category_interest"]) >= 10
    assert fired["same_category_3x"] == fired["category_interest"]
