"""The evaluation plan: what each event type can change, and which rules lie downstream.

Derived at load from the built-in facts' declarations (:mod:`state.facts`) and the rules
file (its traits' ``event`` lists, its expressions' names), never kept by hand: an event
re-reads only the facts its type can change, an evaluation re-evaluates only the rules
that read one of them (or the tags, stage or segments derived from one), a timer only
those whose moment came. ``cdpflow rules check`` prints it (:func:`describe`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from state.counters import Counters
from state.facts import DECLARED, EVERY_EVENT, FOLDED_TYPES, WITH_TIMEZONE
from state.rules import engine
from state.rules.expressions import Expression
from state.rules.model import (
    CategoryViews,
    EventTrigger,
    LifecycleEntered,
    Rules,
    SegmentEntered,
    TagAdded,
    TraitCrossed,
)
from state.traits.plan import TraitPlan
from state.traits.state import Trait
from state.windows import DayBuckets

__all__ = [
    "CLEAN_AFTER",
    "KEPT",
    "NEVER_KEPT",
    "NOT_RETAINED",
    "STALE_AFTER_TIME",
    "TIMEZONE_FACTS",
    "TOUCHES",
    "WINDOWED",
    "WINDOWS",
    "EvaluationPlan",
    "describe",
    "plan_of",
]

WINDOWS: Final[dict[str, tuple[Callable[[Counters], DayBuckets], int]]] = {
    name: fact.window for name, fact in DECLARED.items() if fact.window is not None
}
"""Windowed fact -> its day buckets and window length (as ``Counters.next_change`` reads)."""
WINDOW_LIST: Final = tuple((name, counter, days) for name, (counter, days) in WINDOWS.items())
WINDOWED: Final = frozenset(WINDOWS)
KEPT: Final = frozenset(n for n, f in DECLARED.items() if f.timeless or f.window is not None)
"""Facts an evaluation may reuse from the last one while nothing changed them."""
NEVER_KEPT: Final = frozenset(DECLARED) - KEPT | engine.DERIVED_NAMES
NOT_RETAINED: Final = tuple(sorted(engine.DERIVED_NAMES)) + tuple(
    n for n, f in DECLARED.items() if not f.retained
)
"""Dropped from the memo after each evaluation: the derived names, and what is big or
never reused."""
TIMEZONE_FACTS: Final = frozenset(n for n, f in DECLARED.items() if WITH_TIMEZONE in f.changed_by)
TOUCHES: Final = {
    kind: frozenset(
        n for n, f in DECLARED.items() if kind in f.changed_by or EVERY_EVENT in f.changed_by
    )
    for kind in FOLDED_TYPES
}
"""Event type -> the facts its fold may change. A type not listed changes everything."""
CLEAN_AFTER: Final = {
    kind: (KEPT - touched, touched - frozenset(NOT_RETAINED)) for kind, touched in TOUCHES.items()
}
"""Event type -> (the kept facts it leaves as they were, those to drop from the memo and
read again). The facts never kept are not in the memo to drop: every evaluation ends by
dropping :data:`NOT_RETAINED`, which holds them."""
STALE_AFTER_TIME: Final = NEVER_KEPT - frozenset(NOT_RETAINED)
"""What to drop from the memo when only time passed: nothing today (every fact never kept
is also never retained), derived all the same."""


@dataclass(frozen=True, slots=True)
class EvaluationPlan:
    """A rules file's plan (one per rules object: :func:`plan_of`)."""

    traits: TraitPlan
    trait_reads: Mapping[str, Trait]
    """The declared traits some rule reads, by name."""
    reads_windows: bool
    """Whether some rule reads a windowed built-in fact."""
    downstream: Mapping[str, tuple[str, ...]]
    """Event type -> the rules (``tags.x``, ``lifecycle.x``, ``segments.x``,
    ``triggers.x``) an event of that type can change the verdict of, in file order."""
    timed: tuple[str, ...]
    """The rules a timer can change with no event: a ``since()``, a windowed fact or
    trait."""


@engine.once_per_rules
def plan_of(rules: Rules) -> EvaluationPlan:
    """The plan of ``rules``, built once per rules object."""
    traits = TraitPlan.build(rules)
    names = engine.rule_names(rules)
    trait_reads = {n: tr for n, tr in rules.compiled_traits.items() if n in names}
    windowed_traits = {n for n, tr in rules.compiled_traits.items() if tr.windowed}
    kinds = sorted({*FOLDED_TYPES, *traits.by_type, *traits.event_triggers})
    downstream = {}
    for kind in kinds:
        changed = set(TOUCHES.get(kind.split(":", 1)[0], DECLARED))
        changed |= {tr.name for tr in traits.by_type.get(kind, ())}
        downstream[kind] = _downstream(rules, changed, kind)
    timed_facts = WINDOWED | windowed_traits
    timed = tuple(
        rule
        for rule, expr in _expressions(rules)
        if expr.timers or not expr.time_exact or expr.names & timed_facts
    )
    return EvaluationPlan(traits, trait_reads, not names.isdisjoint(WINDOWED), downstream, timed)


def _expressions(rules: Rules) -> list[tuple[str, Expression]]:
    out = [(f"tags.{n}", r.when) for n, r in rules.tags.items()]
    out += [(f"lifecycle.{s.name}", s.when) for s in rules.lifecycle]
    out += [(f"segments.{n}", s.when) for n, s in rules.segments.items()]
    return out


def _downstream(rules: Rules, changed: set[str], kind: str) -> tuple[str, ...]:
    """The rules reading ``changed``, and through the derived names the rules after them."""
    hit: list[str] = []
    derived: set[str] = set()  # "tags", "lifecycle", "segments" whose value may change
    if "preferences" in changed and rules.preference_tags:
        derived.add("tags")
    for rule, expr in _expressions(rules):
        if expr.names & changed or expr.names & derived:
            hit.append(rule)
            derived.add(rule.split(".", 1)[0])
    prefixes = tuple(rules.preference_tags.values()) if "preferences" in changed else ()
    for name, trig in rules.triggers.items():
        reads = (
            (isinstance(trig, TagAdded)
             and (f"tags.{trig.tag}" in hit or trig.tag.startswith(prefixes or ("\0",))))
            or (isinstance(trig, LifecycleEntered) and "lifecycle" in derived)
            or (isinstance(trig, SegmentEntered)
                and any(f"segments.{s}" in hit for s in trig.segments))
            or (isinstance(trig, CategoryViews) and kind == "product_viewed")
            or (isinstance(trig, TraitCrossed) and trig.trait in changed)
            or (isinstance(trig, EventTrigger) and kind in trig.event)
        )  # fmt: skip
        if reads:
            hit.append(f"triggers.{name}")
    return tuple(hit)


def describe(rules: Rules) -> list[str]:
    """The plan as lines for people: per event type, what it can change."""
    plan = plan_of(rules)
    lines = []
    for kind, rules_hit in plan.downstream.items():
        folds = ", ".join(tr.name for tr in plan.traits.by_type.get(kind, ())) or "-"
        lines.append(f"{kind}: folds traits {folds}; evaluates {', '.join(rules_hit) or '-'}")
    lines.append(f"timers: {', '.join(plan.timed) or '-'}")
    return lines
