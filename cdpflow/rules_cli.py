"""``cdpflow rules check FILE`` and ``cdpflow rules test FILE --events FILE.jsonl``.

``check`` validates a rules file and explains what it will do; ``test`` folds a JSONL file
of events through the profile logic with those rules (the same ``state.apply`` the
dataflow runs), moves the clock to ``--until`` so timers fire, and prints the tag changes,
triggers and final tags, lifecycle stage and segments of each customer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cdpflow import rules_test
from cdpflow.json_events import parse_time
from cdpflow.settings import Settings
from state import CustomerState, Rejected, TagChange, Trigger, advance, apply, evaluation_plan
from state.rules.model import (
    CategoryViews,
    LifecycleEntered,
    Rules,
    SegmentEntered,
    TagAdded,
    load_rules,
)

__all__ = ["check", "explain", "test"]


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def explain(rules: Rules, out: TextIO) -> None:
    w = out.write
    w(f"tags ({len(rules.tags)}), evaluated in this order:\n")
    for name, tag in rules.tags.items():
        w(f"  {name}: {tag.when.source}\n")
    for key, prefix in rules.preference_tags.items():
        w(f"  {prefix}<value> for each value of preference {key!r}\n")
    w(f"lifecycle ({len(rules.lifecycle)} stages), the first that matches:\n")
    for stage in rules.lifecycle:
        w(f"  {stage.name}: {stage.when.source}\n")
    w(f"segments ({len(rules.segments)}):\n")
    for name, seg in rules.segments.items():
        w(f"  {name}: {seg.when.source}\n")
    w(f"triggers ({len(rules.triggers)}), never to unsubscribed customers:\n")
    for name, trig in rules.triggers.items():
        if isinstance(trig, CategoryViews):
            what = f"{trig.threshold} views of one category within {_duration(trig.window)}"
        elif isinstance(trig, TagAdded):
            what = f"tag {trig.tag!r} added"
        elif isinstance(trig, LifecycleEntered):
            what = f"lifecycle stage {trig.stage!r} entered"
        elif isinstance(trig, SegmentEntered):
            what = f"segment entered: {', '.join(trig.segments)}"
        else:
            described = rules_test.describe_trigger(trig)  # trait_crossed, event
            if described is None:  # pragma: no cover - the model admits no other type
                raise TypeError(f"unknown trigger type {type(trig).__name__}")
            what = described
        cooldown = f"; at most one per {_duration(trig.cooldown)}" if trig.cooldown else ""
        w(f"  {name}: {what}{cooldown}\n")


def check(path: Path, out: TextIO) -> int:
    rules = load_rules(path)
    out.write(f"{path}: OK\n")
    explain(rules, out)
    if rules.traits:
        rules_test.describe_traits(rules, out)
    out.write("evaluation plan (what an event of each type can change):\n")
    for line in evaluation_plan.describe(rules):
        out.write(f"  {line}\n")
    return 0


def test(path: Path, events_path: Path, until: str | None, settings: Settings, out: TextIO) -> int:
    rules = load_rules(path)
    cfg = replace(settings.profile, rules=rules)
    states: dict[str, CustomerState] = {}
    outputs = []
    last = None
    for ev in rules_test.read_events(events_path):
        st = states.setdefault(ev.key, CustomerState(ev.key))
        outputs += apply(st, ev, cfg)
        last = ev.event_time if last is None else max(last, ev.event_time)
    horizon = parse_time(until, "--until") if until else last
    if horizon is not None:
        for st in states.values():
            outputs += advance(st, cfg, horizon)
    w = out.write
    for o in sorted(outputs, key=lambda o: o.event_time):
        when = _when(o.event_time)
        if isinstance(o, TagChange):
            w(f"{when}  {o.customer_id}  {'+' if o.added else '-'}{o.tag}  ({o.reason})\n")
        elif isinstance(o, Trigger):
            detail = o.category or ", ".join(f"{k}={v}" for k, v in o.attributes.items())
            w(f"{when}  {o.customer_id}  TRIGGER {o.rule} {detail}  id={o.trigger_id}\n")
        elif isinstance(o, Rejected):
            w(f"{when}  dead letter {o.reason} for event {o.event_id}\n")
    w("\nfinal:\n")
    for key, st in sorted(states.items()):
        d = st.derived
        w(f"  {key}: lifecycle={d.lifecycle} tags=[{', '.join(d.tags)}] "
          f"segments=[{', '.join(d.segments)}]\n")  # fmt: skip
    if rules.traits:  # each declared trait's value after each event
        w("\n")
        return rules_test.trait_values(path, events_path, settings, out)
    return 0


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
