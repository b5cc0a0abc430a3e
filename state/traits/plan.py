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
from state.traits.state import Trait, TraitStates, event_fields

__all__ = ["TraitPlan", "fold_event"]


@dataclass(frozen=True, slots=True)
class TraitPlan:
    by_name: Mapping[str, Trait]
    by_digest: Mapping[str, Trait]
    by_type: Mapping[str, tuple[Trait, ...]]
    windowed: tuple[Trait, ...]

    @classmethod
    def build(cls, traits: Mapping[str, Trait]) -> TraitPlan:
        by_type: dict[str, list[Trait]] = {}
        for tr in traits.values():
            for e in tr.events:
                by_type.setdefault(e, []).append(tr)
        return cls(
            dict(traits),
            {tr.digest: tr for tr in traits.values()},
            {k: tuple(v) for k, v in by_type.items()},
            tuple(tr for tr in traits.values() if tr.windowed),
        )

    def for_event(self, ev: Event) -> tuple[Trait, ...]:
        """The traits ``ev``'s type lists (before their ``where``), in file order."""
        found = self.by_type.get(ev.event_type, ())
        if ev.event_type == "custom":
            name = ev.payload.get("name")
            named = self.by_type.get(f"custom:{name}", ()) if isinstance(name, str) else ()
            if named:
                found = tuple(t for t in self.by_name.values() if t in found or t in named)
        return found


EMPTY_PLAN = TraitPlan({}, {}, {}, ())


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
