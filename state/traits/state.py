"""A customer's trait states: fold an event, read a value, expire, merge, dump and load.

:class:`Trait` is one compiled declaration (:mod:`state.traits.model` builds it);
:class:`TraitStates` is what :class:`~state.profile.CustomerState` keeps: for each trait,
by the **hash of its definition** (:attr:`Trait.digest`), the cells of its group keys
(``None`` for an ungrouped trait), each with the newest event time that touched it.
A changed definition has another digest, so it starts empty instead of misreading the
old state; a state whose digest no rule declares any more is dropped at the next
compaction. Snapshots keep the dumped form, decoded only when a trait is next touched.

Limits, deterministic whatever the order of events:

- ``limits.keys``: group keys per trait; beyond, the key with the oldest newest event
  (ties: the smallest key) is dropped, and starts empty if seen again;
- ``limits.values``: values per key — entries of an exact window, distinct values of
  ``distinct_count``, ``unique_list`` and ``most_frequent`` (per day bucket with a day
  window); see :mod:`state.traits.kinds` and :mod:`state.traits.windows`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from state.events import Event
from state.rules.expressions import Expression
from state.traits.kinds import Kind
from state.traits.paths import SKIP, ValueType, property_value, read, walk
from state.traits.windows import Window

__all__ = ["SKIPPED", "Trait", "TraitStates", "event_fields"]

SKIPPED: Counter[tuple[str, str]] = Counter()
"""``(trait, reason)`` -> events (or ``each`` elements) skipped for a missing or ill-typed
value (reasons ``value``, ``by``, ``each``): the process's metric, never reset here."""

Groups = dict[Any, list[Any]]
"""Group key -> ``[newest event time, cell]``."""


@dataclass(frozen=True, slots=True, eq=False)
class Trait:
    """A declared trait, compiled: what :class:`TraitStates` needs to fold and read it."""

    name: str
    digest: str
    kind: Kind
    window: Window
    events: tuple[str, ...]
    where: Expression | None = None
    value: tuple[str, ...] | None = None
    value_type: ValueType = "string"
    by: tuple[str, ...] | None = None
    each: tuple[str, ...] | None = None
    keys: int = 64
    values: int = 32
    value_chars: int = 64

    @property
    def windowed(self) -> bool:
        return self.window.windowed


def event_fields(ev: Event) -> Mapping[str, Any]:
    """The names a ``where`` reads: the payload, with a custom event's properties decoded
    (:func:`~state.traits.paths.property_value`)."""
    p = ev.payload
    if ev.event_type != "custom" or not p.get("properties"):
        return p
    props = {k: property_value(raw) for k, raw in p["properties"].items()}
    return {**p, "properties": props}


@dataclass(slots=True)
class TraitStates:
    live: dict[str, Groups] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    """Digest -> dumped groups not decoded yet (from a snapshot)."""
    defs: dict[str, Trait] = field(default_factory=dict, compare=False)
    """Digest -> the trait of each live state (to dump it)."""

    def groups(self, tr: Trait) -> Groups:
        g = self.live.get(tr.digest)
        if g is None:
            raw = self.raw.pop(tr.digest, None)
            g = self.live[tr.digest] = {} if raw is None else _load(tr, raw)
            self.defs[tr.digest] = tr
        return g

    def fold(self, tr: Trait, ev: Event, now: int) -> None:
        """Fold ``ev`` (already past ``where``) into ``tr``; ``now``: the newest event time."""
        t = ev.event_time
        custom = ev.event_type == "custom"
        if tr.each is None:
            items: Any = (ev.payload,)
        else:
            items = walk(ev.payload, tr.each, custom)
            if not isinstance(items, list | tuple):
                SKIPPED[tr.name, "each"] += 1
                return
            custom = False  # paths are read in the element
        groups = self.groups(tr)
        kind, window, cap = tr.kind, tr.window, tr.values
        for item in items:
            value: Any = True
            if tr.value is not None:
                value = read(item, tr.value, tr.value_type, custom)
                if value is SKIP or (isinstance(value, str) and len(value) > tr.value_chars):
                    SKIPPED[tr.name, "value"] += 1
                    continue
            key = None
            if tr.by is not None:
                key = read(item, tr.by, "string", custom)
                if key is SKIP or len(key) > tr.value_chars:
                    SKIPPED[tr.name, "by"] += 1
                    continue
            slot = groups.get(key)
            if slot is None:
                slot = groups[key] = [t, window.init(kind)]
                if len(groups) > tr.keys:
                    del groups[min(groups, key=lambda k: (groups[k][0], k))]
                    if key not in groups:
                        continue
            elif t > slot[0]:
                slot[0] = t
            slot[1] = window.fold(kind, slot[1], value, t, now, cap)

    def value(self, tr: Trait, at: int) -> Any:
        """The trait's value in the window ending at ``at``: a map for a grouped trait
        (keys sorted, those with nothing in the window left out)."""
        groups = self.live.get(tr.digest)
        if groups is None:
            groups = self.groups(tr) if tr.digest in self.raw else {}
        kind, window = tr.kind, tr.window
        if tr.by is None:
            slot = groups.get(None)
            acc = None if slot is None else window.read(kind, slot[1], at, tr.values)
            return kind.result(kind.init() if acc is None else acc)
        out = {}
        for key in sorted(groups):
            acc = window.read(kind, groups[key][1], at, tr.values)
            if acc is not None:
                out[key] = kind.result(acc)
        return out

    def next_change(self, tr: Trait, at: int) -> int | None:
        """The first moment after ``at`` the value can change with no event."""
        if not tr.windowed:
            return None
        groups = self.live.get(tr.digest)
        if groups is None:
            if tr.digest not in self.raw:
                return None
            groups = self.groups(tr)
        best = None
        for _, cell in groups.values():
            t = tr.window.next_change(cell, at)
            if t is not None and (best is None or t < best):
                best = t
        return best

    def expire(self, traits: Mapping[str, Trait], at: int) -> None:
        """Drop states no trait of ``traits`` (digest -> trait) declares, and what no
        window ending at ``at`` or later can count."""
        for digest in [d for d in self.live if d not in traits]:
            del self.live[digest]
            self.defs.pop(digest, None)
        for digest in [d for d in self.raw if d not in traits]:
            del self.raw[digest]
        for digest, groups in self.live.items():
            tr = traits[digest]
            if not tr.windowed:
                continue
            for key in list(groups):
                cell = tr.window.expire(groups[key][1], at)
                if tr.window.is_empty(cell):
                    del groups[key]

    def merge(self, other: TraitStates, traits: Mapping[str, Trait], now: int) -> None:
        """Fold ``other``'s states in: per key the windows' and kinds' merges, as one
        customer who folded both streams; ``now``: the merged newest event time."""
        for digest, tr in traits.items():
            if digest not in other.live and digest not in other.raw:
                continue
            theirs = other.groups(tr)
            mine = self.groups(tr)
            for key, (newest, cell) in theirs.items():
                slot = mine.get(key)
                if slot is None:
                    cell = tr.window.merge(tr.kind, tr.window.init(tr.kind), cell, now, tr.values)
                    mine[key] = [newest, cell]
                else:
                    slot[0] = max(slot[0], newest)
                    slot[1] = tr.window.merge(tr.kind, slot[1], cell, now, tr.values)
            if len(mine) > tr.keys:
                keep = sorted(mine, key=lambda k: (mine[k][0], k))[-tr.keys :]
                self.live[digest] = {k: mine[k] for k in keep}

    def dump(self) -> tuple[Any, ...]:
        """Flat ``(digest, groups, ...)``, digests sorted."""
        out: dict[str, Any] = dict(self.raw)
        for digest, groups in self.live.items():
            out[digest] = _dump(self.defs[digest], groups)
        return tuple(x for d in sorted(out) for x in (d, out[d]))

    @classmethod
    def load(cls, flat: tuple[Any, ...] | list[Any]) -> TraitStates:
        return cls(raw=dict(zip(flat[::2], flat[1::2], strict=True)))

    def __bool__(self) -> bool:
        return bool(self.live or self.raw)


def _dump(tr: Trait, groups: Groups) -> tuple[Any, ...]:
    ordered = sorted(groups, key=lambda k: "" if k is None else k)
    return tuple(
        x for k in ordered for x in (k, groups[k][0], tr.window.dump(tr.kind, groups[k][1]))
    )


def _load(tr: Trait, raw: Any) -> Groups:
    return {
        raw[i]: [raw[i + 1], tr.window.load(tr.kind, raw[i + 2])] for i in range(0, len(raw), 3)
    }
