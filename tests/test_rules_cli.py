"""``cdpflow rules check`` and ``cdpflow rules test``."""

from __future__ import annotations

from pathlib import Path

import orjson

from cdpflow.cli import main
from state.rules.model import DEFAULT_RULES


def test_check_explains_the_default(capsys) -> None:
    assert main(["rules", "check", str(DEFAULT_RULES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{DEFAULT_RULES}: OK\n")
    assert "  frequent_buyer: orders_90d >= 3\n" in out
    assert "  category_interest: 3 views of one category within 1d; at most one per 3d\n" in out


def test_check_lists_every_problem_and_exits_2(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text('version = 1\n[tags.x]\nwhen = "foo > 1"\n[tags.y]\nwhen = "orders >"\n')
    assert main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}: tags.x.when: unknown name 'foo'; known: ")
    assert err[1] == f"{bad}: tags.y.when: syntax error at column 8: 'orders >'"


def test_test_prints_what_events_produce(capsys, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    item = {"product": {"product_id": "sku-1", "price": 30.0}, "quantity": 1}
    events.write_bytes(orjson.dumps({"event_id": "1", "type": "cart_item_added",
                                     "customer_id": "c-9", "timestamp": "2026-11-02T10:00:00Z",
                                     "payload": {"item": item}}) + b"\n")  # fmt: skip
    argv = ["rules", "test", str(DEFAULT_RULES), "--events", str(events)]
    assert main([*argv, "--until", "2026-11-02T10:59:59.999Z"]) == 0
    assert "abandoned_cart" not in capsys.readouterr().out
    assert main([*argv, "--until", "2026-11-02T11:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-02 11:00:00  c-9  +abandoned_cart" in out
    assert "2026-11-02 11:00:00  c-9  TRIGGER abandoned_cart" in out
    assert "c-9: lifecycle=active tags=[abandoned_cart] segments=[]" in out


def test_test_reports_a_bad_event_line_and_exits_2(capsys, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "1", "type": "nope", "timestamp": 0}\n')
    assert main(["rules", "test", str(DEFAULT_RULES), "--events", str(events)]) == 2
    assert capsys.readouterr().err == (f"cdpflow: error: {events}:1: type: unknown event type\n")


def test_check_refuses_a_tag_or_segment_no_rule_defines(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        'version = 1\n[tags.high_value]\nwhen = "revenue_180d >= 500"\n'
        '[preference_tags]\ninterests = "interest:"\n'
        "[segments.vip]\nwhen = \"'high_valu' in tags and 'interest:premium' in tags\"\n"
        '[segments.vvip]\nwhen = "\'vip\' in segments and \\"nope\\" in segments"\n'
    )
    assert main(["rules", "check", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}: segments.vip.when: no tag named 'high_valu' (tags: high_value, interest:<value>)",
        f"{bad}: segments.vvip.when: no segment named 'nope' (segments: vip, vvip)",
    ]


TRAITS = """
[traits.views_24h]
kind = "count"
event = "product_viewed"
by = "product.category"
window = "24h"

[triggers.same_category_3x]
type = "trait_crossed"
trait = "views_24h"
threshold = 3
cooldown = "72h"

[triggers.big_order]
type = "event"
event = "order_completed"
where = "revenue >= 200"
"""


def test_check_and_test_explain_declared_traits_and_generic_triggers(
    capsys, tmp_path: Path
) -> None:
    rules = tmp_path / "traits.toml"
    rules.write_text(DEFAULT_RULES.read_text() + TRAITS)
    assert main(["rules", "check", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "same_category_3x: trait 'views_24h' reaches 3 (per key if grouped)" in out
    assert "big_order: event order_completed where revenue >= 200" in out
    assert "views_24h: count of product_viewed, by product.category, exact window 1d" in out
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps({
        "event_id": f"v{i}", "type": "product_viewed", "customer_id": "c1",
        "timestamp": 1_793_000_000_000 + i * 60_000,
        "payload": {"product": {"product_id": f"p{i}", "category": "shoes"}},
    }) for i in range(3)))  # fmt: skip
    assert main(["rules", "test", str(rules), "--events", str(events)]) == 0
    out = capsys.readouterr().out
    assert "TRIGGER same_category_3x" in out
    assert 'views_24h = {"shoes":3}' in out
