"""``cdpflow rules test RULES_FILE EVENTS_JSONL``: each declared trait's value after each
event, computed by the same ``state.apply`` the dataflow runs.

Events are read as ``cdpflow rules test --events`` reads them (one JSON event a line,
through Avro and back); per event one line (time, customer, type, id), then each of that
customer's traits, ``*`` marking those the event changed. A late event's dead letter
(which traits refused it) is printed under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from cdpflow.codec import default_codec
from cdpflow.errors import ConfigError, EventValidationError
from cdpflow.json_events import record_from_json
from cdpflow.settings import Settings
from flows.decode import event_from_record
from state import CustomerState, Rejected, Trigger, apply, view
from state.events import Event
from state.rules.model import EventTrigger, Rules, TraitCrossed, load_rules

__all__ = ["describe_traits", "describe_trigger", "read_events", "trait_values"]


def describe_traits(rules: Rules, out: TextIO) -> None:
    """For ``cdpflow rules check``: each declared trait, and the worst case in bytes per
    customer of them all (a file over the budget never gets here: loading refuses it)."""
    w = out.write
    w(f"traits ({len(rules.traits)}), worst case {rules.worst_case_bytes()} bytes per customer:\n")
    for name, decl in rules.traits.items():
        what = f"{decl.kind} of {', '.join(decl.event)}"
        if decl.where:
            what += f" where {decl.where}"
        if decl.each:
            what += f", each {decl.each}"
        if decl.value:
            what += f", value {decl.value} ({decl.value_type})"
        if decl.by:
            what += f", by {decl.by}"
        if decl.window is None:
            what += ", lifetime"
        elif decl.granularity == "day":
            what += f", {decl.window // 86_400_000} UTC days"
        else:
            what += f", exact window {_duration(decl.window)}"
        w(f"  {name}: {what}; {decl.worst_case_bytes()} bytes at most\n")


def describe_trigger(trig: object) -> str | None:
    """What a ``trait_crossed`` or ``event`` trigger waits for (``None``: another type),
    for ``cdpflow rules check``'s list of triggers."""
    if isinstance(trig, TraitCrossed):
        return f"trait {trig.trait!r} reaches {trig.threshold:g} (per key if grouped)"
    if isinstance(trig, EventTrigger):
        where = f" where {trig.where.source}" if trig.where is not None else ""
        return f"event {', '.join(trig.event)}{where}"
    return None


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def read_events(events_path: Path) -> Iterator[Event]:
    """The JSON events of ``events_path`` through Avro and back, exactly as the dataflow
    would see them; :class:`ConfigError` naming the file and line for a bad one."""
    codec = default_codec()
    try:
        lines = events_path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"--events: cannot read {events_path}: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = record_from_json(orjson.loads(line), codec)
        except (orjson.JSONDecodeError, EventValidationError) as exc:
            raise ConfigError(f"{events_path}:{n}: {exc}") from None
        _, decoded = codec.decode(codec.encode("cdp.Event", record), logical=False)
        yield event_from_record(decoded)


def trait_values(rules_path: Path, events_path: Path, settings: Settings, out: TextIO) -> int:
    """Print each trait's value after each event of ``events_path``; the exit status.

    Raises :class:`~state.rules.model.RulesError` for a bad rules file and
    :class:`~cdpflow.errors.ConfigError` for an unreadable or invalid events file (the
    line named)."""
    rules = load_rules(rules_path)
    cfg = replace(settings.profile, rules=rules)
    w = out.write
    if not rules.traits:
        w(f"{rules_path}: declares no traits\n")
    states: dict[str, CustomerState] = {}
    before: dict[str, dict[str, Any]] = {}
    for ev in read_events(events_path):
        st = states.setdefault(ev.key, CustomerState(ev.key))
        outputs = apply(st, ev, cfg)
        kind = ev.event_type
        if kind == "custom":
            kind = f"custom:{ev.payload.get('name')}"
        w(f"{_when(ev.event_time)}  {ev.key}  {kind}  {ev.event_id}\n")
        now = view(st, cfg).get("traits", {})
        was = before.get(ev.key, {})
        for name, value in now.items():
            mark = "*" if name not in was or was[name] != value else " "
            w(f"  {mark} {name} = {orjson.dumps(value).decode()}\n")
        before[ev.key] = now
        for o in outputs:
            if isinstance(o, Rejected):
                w(f"    dead letter {o.reason}: {o.error}\n")
            elif isinstance(o, Trigger):
                w(f"    TRIGGER {o.rule} {orjson.dumps(o.attributes).decode()}\n")
    return 0


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
