"""The evaluation plan of a rules file's traits: which traits each event folds.

Compiled once per rules object (:func:`plan_of`); an event whose type no trait lists
costs one dict lookup. ``custom:NAME`` traits fold the custom events of that name,
``custom`` ones every custom event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from state.events import Event
from state.rules.model import EventTrigger, Rules, TraitCrossed
from state.traits.state import Trait, TraitStates, event_fields

__all__ = ["TraitPlan", "fold_event"]


@dataclass(frozen=True, slots=True)
class TraitPlan:
    by_name: Mapping[str, Trait]
    by_digest: Mapping[str, Trait]
    by_type: Mapping[str, tuple[Trait, ...]]
    windowed: tuple[Trait, ...]
    crossings: Mapping[str, tuple[tuple[str, TraitCrossed], ...]]
    """Trait name -> the ``trait_crossed`` triggers that watch it, in file order."""
    event_triggers: Mapping[str, tuple[tuple[str, EventTrigger], ...]]
    """Event type (or ``custom:NAME``) -> the ``event`` triggers listing it."""
    active: bool
    """Whether an event may have anything to do here at all."""

    @classmethod
    def build(cls, rules: Rules) -> TraitPlan:
        traits = rules.compiled_traits
        by_type: dict[str, list[Trait]] = {}
        for tr in traits.values():
            for e in tr.events:
                by_type.setdefault(e, []).append(tr)
        crossings: dict[str, list[tuple[str, TraitCrossed]]] = {}
        events: dict[str, list[tuple[str, EventTrigger]]] = {}
        for name, trig in rules.triggers.items():
            if isinstance(trig, TraitCrossed):
                crossings.setdefault(trig.trait, []).append((name, trig))
            elif isinstance(trig, EventTrigger):
                for e in trig.event:
                    events.setdefault(e, []).append((name, trig))
        return cls(
            dict(traits),
            {tr.digest: tr for tr in traits.values()},
            {k: tuple(v) for k, v in by_type.items()},
            tuple(tr for tr in traits.values() if tr.windowed),
            {k: tuple(v) for k, v in crossings.items()},
            {k: tuple(v) for k, v in events.items()},
            bool(by_type or events),
        )

    def triggers_for(self, ev: Event) -> list[tuple[str, EventTrigger]]:
        """The ``event`` triggers ``ev``'s type lists (before their ``where``)."""
        found = list(self.event_triggers.get(ev.event_type, ()))
        if ev.event_type == "custom":
            name = ev.payload.get("name")
            if isinstance(name, str):
                found += self.event_triggers.get(f"custom:{name}", ())
        return found

    def for_event(self, ev: Event) -> tuple[Trait, ...]:
        """The traits ``ev``'s type lists (before their ``where``), in file order."""
        found = self.by_type.get(ev.event_type, ())
        if ev.event_type == "custom":
            name = ev.payload.get("name")
            named = self.by_type.get(f"custom:{name}", ()) if isinstance(name, str) else ()
            if named:
                found = tuple(t for t in self.by_name.values() if t in found or t in named)
        return found


def fold_event(
    states: TraitStates, traits: tuple[Trait, ...], ev: Event, late: bool, now: int
) -> list[str]:
    """Fold ``ev`` into each of ``traits`` whose ``where`` holds; return the names of the
    windowed ones a ``late`` event may not enter (it still folds the lifetime ones)."""
    refused: list[str] = []
    fields: Any = None
    for tr in traits:
        if tr.where is not None:
            if fields is None:
                fields = event_fields(ev)
            if not tr.where.evaluate(fields, ev.event_time):
                continue
        if late and tr.windowed:
            refused.append(tr.name)
            continue
        states.fold(tr, ev, now)
    return refused
