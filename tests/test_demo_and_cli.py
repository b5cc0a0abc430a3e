"""README command 1 and the CLI's error contract: one line on stderr, non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from cdpflow import sample
from cdpflow.cli import main
from cdpflow.demo import run_demo
from cdpflow.json_events import parse_time
from flows.decode import to_ms


def test_shipped_sample_is_what_the_generator_makes() -> None:
    assert sample.load() == orjson.loads(orjson.dumps(sample.generate()))
    assert 200 <= len(sample.load()) <= 1000


def test_demo_tells_the_sample_stories() -> None:
    r = run_demo()
    by_customer = {}
    for t in r.triggers:
        if t["rule"] == "category_interest":
            by_customer.setdefault(t["customer_id"], []).append(t["category"])
    assert by_customer["c-1001"] == ["shoes"]  # Ada: t, t+1h, t+23h
    # Ben: shoes at t, t+12h, t+24h+1ms fire nothing; hats, two views on his phone before
    # logging in and one after, do.
    assert by_customer["c-1002"] == ["hats"]
    [link] = r.identity_links
    assert (link["anonymous_id"], link["linked_to"], link["merged_events"]) == (
        "phone-ben",
        "c-1002",
        2,
    )
    assert "c-1003" not in by_customer  # Cleo: one view delivered twice, plus one
    reasons = sorted(d["reason"] for d in r.dead_letters)
    assert reasons == ["corrupt_avro", "late_event"]
    assert r.profiles["c-1001"]["first_name"] == "Ada"
    # Kai told the preference centre he likes premium; with his orders, a segment.
    kai = [t for t in r.triggers if t["customer_id"] == "c-1011" and t["rule"] == "segment_entered"]
    assert [t["attributes"]["segment"] for t in kai] == ["recent_high_value_premium"]
    assert "interest:premium" in r.profiles["c-1011"]["tags"]
    # Jon unsubscribed at 14:00 on day two: nothing after that.
    opt_out = next(
        e["timestamp"]
        for e in sample.load()
        if e["customer_id"] == "c-1010" and e["type"] == "preference_updated"
    )
    jon = [to_ms(t["event_time"]) for t in r.triggers if t["customer_id"] == "c-1010"]
    assert jon
    assert max(jon) < parse_time(opt_out, "timestamp")
    assert any(c.startswith("anon:") for c in r.profiles)


def test_demo_command_prints_triggers_and_a_summary() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cdpflow.cli", "demo"], capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "category_interest  Ada   (c-1001)  shoes" in proc.stdout
    assert "segments: recent_high_value_premium" in proc.stdout
    assert "Summary:" in proc.stdout


def test_missing_events_file_is_one_line_and_exit_2(capsys, tmp_path) -> None:
    assert main(["demo", "--events", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cdpflow: error: --events: no such file")


def test_bad_setting_is_one_line_and_exit_2(capsys, monkeypatch) -> None:
    monkeypatch.setenv("CDPFLOW_PARTITIONS", "many")
    assert main(["demo"]) == 2
    assert capsys.readouterr().err == (
        "cdpflow: error: CDPFLOW_PARTITIONS must be a whole number, got 'many'\n"
    )


def test_unreachable_broker_is_one_line_and_exit_2(capsys, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setattr("cdpflow.topics.admin.__defaults__", (1.0,))
    assert main(["topics", "create"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdpflow: error: no Kafka broker answered at 127.0.0.1:1")
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["run", "-p", "0"], ["topics", "create", "--partitions", "0"]])
def test_invalid_counts_are_refused(capsys, argv) -> None:
    assert main(argv) == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_demo_of_your_own_events_adds_no_corrupt_message(tmp_path) -> None:
    mine = tmp_path / "my.jsonl"
    events = sample.load()[:40]
    mine.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    r = run_demo(mine)
    assert r.events_in == len(events)
    assert "corrupt_avro" not in {d["reason"] for d in r.dead_letters}
    # The bundled sample still shows one, on purpose.
    assert sum(d["reason"] == "corrupt_avro" for d in run_demo().dead_letters) == 1
