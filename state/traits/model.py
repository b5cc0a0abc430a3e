"""``[traits.NAME]`` declarations of a rules file, validated with pydantic.

Each declaration is a pure fold of events (the README's "Rules: traits" shows examples)::

    [traits.category_views_24h]
    kind = "count"
    event = "product_viewed"
    by = "product.category"
    window = "24h"

Fields: ``kind`` (:data:`state.traits.kinds.KINDS`), ``event`` (a type, a list, or
``custom:NAME``; ``custom`` alone: every custom event), ``where`` (an expression over
the event's own payload fields: never the profile, never the clock), ``value`` (a field
path, typed by ``type``: ``string``, ``number`` or ``bool``), ``by`` (a group key path),
``each`` (an array path: the trait folds each element, and ``value`` and ``by`` are read
in the element), ``window`` (a duration; exact unless ``granularity = "day"``, then whole
UTC days), ``limits`` (``keys``, ``values``, ``value_chars``; see
:mod:`state.traits.state`).

Errors name the trait and the field (``traits.topics.value: ...``); the rules file's
loader (:mod:`state.rules.model`) adds the file.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from state.events import DAY_MS
from state.rules.expressions import (
    Expression,
    ExpressionError,
    compile_expression,
    parse_duration,
)
from state.traits.kinds import KINDS
from state.traits.paths import EVENT_FIELDS, ValueType, parse_path
from state.traits.state import Trait
from state.traits.windows import Days, Exact, Lifetime, Window

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "TRAIT_NAME",
    "Limits",
    "TraitDecl",
    "event_names",
    "where_expression",
]

TRAIT_NAME: Final = r"^[a-z][a-z0-9_]*$"
DEFAULT_BUDGET_BYTES: Final = 1024 * 1024
"""Default ceiling of the worst-case bytes per customer of a rules file's traits."""

# Worst-case sizes (CPython, 64-bit) the budget adds up: a held time or number, a
# container slot, a dict entry, a tuple.
_NUMBER, _SLOT, _ENTRY, _TUPLE = 32, 8, 100, 56

KindName = Literal[
    "count", "sum", "min", "max", "avg", "distinct_count", "unique_list", "first", "last",
    "first_time", "last_time", "most_frequent",
]  # fmt: skip


def event_names(value: Any) -> list[str]:
    """An event type, a list of them, or ``custom:NAME``, checked; sorted, unique."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError("must be an event type or a non-empty list of them")
    for n in names:
        base, colon, custom = n.partition(":")
        if base not in EVENT_FIELDS or (colon and (not custom or base != "custom")):
            known = ", ".join(sorted(EVENT_FIELDS))
            raise ValueError(f"unknown event type {n!r} (known: {known}, custom:NAME)")
    return sorted(set(names))


def where_expression(source: str, events: list[str]) -> Expression:
    """A ``where`` over the payload fields of ``events``; never the clock."""
    fields = frozenset().union(*(EVENT_FIELDS[e.partition(":")[0]] for e in events))
    try:
        e = compile_expression(source, fields)
    except ExpressionError as exc:
        raise ValueError(f"where: {exc}") from None
    if e.timers or not e.time_exact:
        raise ValueError("where: may not read the clock (since)")
    return e


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: Annotated[int, Field(ge=1, le=4096)] = 64
    """Group keys per trait (``by``)."""
    values: Annotated[int, Field(ge=1, le=4096)] = 32
    """Values per key: exact-window entries, distinct values."""
    value_chars: Annotated[int, Field(ge=1, le=1024)] = 64
    """Longest string value or key kept; a longer one skips the event (counted)."""


class TraitDecl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: KindName
    event: list[str]
    where: str | None = None
    value: str | None = None
    type: ValueType | None = None
    by: str | None = None
    each: str | None = None
    window: int | None = None
    granularity: Literal["day"] | None = None
    limits: Limits = Limits()
    description: str = ""

    @field_validator("event", mode="before")
    @classmethod
    def _events(cls, value: Any) -> list[str]:
        return event_names(value)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int:
        if not isinstance(value, str):
            raise ValueError("must be a duration such as 24h or 30d")
        try:
            ms = parse_duration(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        if ms <= 0:
            raise ValueError("must be longer than zero")
        return ms

    @field_validator("value", "by", "each")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            parse_path(value)
        return value

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a non-empty expression")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TraitDecl:
        kind = KINDS[self.kind]
        if not kind.value_types and self.value is not None:
            raise ValueError(f"value: a {self.kind} trait takes no value")
        if kind.value_types and self.value is None:
            raise ValueError(f"value: required for a {self.kind} trait (a field path)")
        if self.type is not None and self.type not in kind.value_types:
            allowed = ", ".join(kind.value_types) or "none"
            raise ValueError(f"type: {self.type!r} not allowed for {self.kind} ({allowed})")
        if self.granularity is not None:
            if self.window is None:
                raise ValueError("granularity: needs a window")
            if self.window % DAY_MS:
                raise ValueError("window: must be whole days with granularity = 'day'")
        fields = frozenset().union(*(EVENT_FIELDS[e.partition(":")[0]] for e in self.event))
        paths = [("each", self.each)]
        if self.each is None:
            paths += [("value", self.value), ("by", self.by)]
        for name, path in paths:
            if path is not None and parse_path(path)[0] not in fields:
                raise ValueError(
                    f"{name}: {path!r} is no field of {', '.join(self.event)} "
                    f"(fields: {', '.join(sorted(fields))})"
                )
        if self.where is not None:
            where_expression(self.where, self.event)
        return self

    @property
    def value_type(self) -> ValueType:
        if self.type is not None:
            return self.type
        return "number" if KINDS[self.kind].numeric else "string"

    def digest(self) -> str:
        """A hash of what the trait means (not its name or description): its state's key."""
        spec = self.model_dump(exclude={"description"})
        spec["type"] = self.value_type
        return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def compile(self, name: str) -> Trait:
        where = None if self.where is None else where_expression(self.where, self.event)
        return Trait(
            name=name,
            digest=self.digest(),
            kind=KINDS[self.kind],
            window=self._window_strategy(),
            events=tuple(self.event),
            where=where,
            value=None if self.value is None else parse_path(self.value),
            value_type=self.value_type,
            by=None if self.by is None else parse_path(self.by),
            each=None if self.each is None else parse_path(self.each),
            keys=self.limits.keys,
            values=self.limits.values,
            value_chars=self.limits.value_chars,
        )

    def _window_strategy(self) -> Window:
        if self.window is None:
            return Lifetime()
        if self.granularity == "day":
            return Days(self.window // DAY_MS)
        return Exact(self.window)

    def worst_case_bytes(self) -> int:
        """An upper estimate of one customer's state of this trait, from its limits."""
        kind, lim = KINDS[self.kind], self.limits
        if not kind.value_types:
            value = 0  # the entry holds True, a shared constant
        else:
            value = _NUMBER if self.value_type != "string" else 49 + lim.value_chars
        if kind.bounded_by_values:  # a dict of values
            acc = _ENTRY + lim.values * (_ENTRY + value + _NUMBER)
        elif self.kind in ("count", "sum", "first_time", "last_time"):
            acc = _NUMBER
        elif self.kind in ("min", "max"):
            acc = value
        else:  # avg, first, last: a pair
            acc = _TUPLE + value + _NUMBER
        if self.window is None:
            cell = acc
        elif self.granularity == "day":
            cell = _ENTRY + (self.window // DAY_MS) * (_ENTRY + _NUMBER + acc)
        else:
            cell = _ENTRY + lim.values * (_SLOT + _TUPLE + _NUMBER + value)
        keys = 1 if self.by is None else lim.keys
        key = 49 + lim.value_chars if self.by is not None else 0
        return _ENTRY + keys * (_ENTRY + key + _TUPLE + _NUMBER + cell)
