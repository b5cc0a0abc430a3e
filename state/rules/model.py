"""The rules file, validated: TOML in, frozen compiled rules out.

Validation (pydantic) runs once at start-up. Every error names the file, the rule, the
field and what is wrong, e.g. ``rules.toml: tags.frequent_buyer.when: unknown name
'orders_9d'; known: ...``. The README documents the format with the shipped default,
``state/rules/default.toml``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from state.rules.expressions import Expression, ExpressionError, compile_expression, parse_duration
from state.rules.facts import FACTS
from state.traits.model import (
    DEFAULT_BUDGET_BYTES,
    TRAIT_NAME,
    TraitDecl,
    event_names,
    where_expression,
)
from state.traits.state import Trait

__all__ = [
    "DEFAULT_RULES",
    "CategoryViews",
    "EventTrigger",
    "LifecycleEntered",
    "LifecycleStage",
    "Rules",
    "RulesError",
    "SegmentEntered",
    "TagAdded",
    "TagRule",
    "TraitCrossed",
    "load_rules",
    "parse_rules",
]

DEFAULT_RULES = Path(__file__).with_name("default.toml")
_NAME = r"^[a-z][a-z0-9_:.\-]*$"
# A string literal tested for membership of the derived tags or segments: 'x' in tags.
_MEMBER = re.compile(r"""(?:'([^'\\]*)'|"((?:[^"\\]|\\.)*)")\s+in\s+(tags|segments)\b""")


class RulesError(ExpressionError):
    """A rules file that cannot be used; the message names file, rule and field."""


def _expression(value: Any, info: ValidationInfo) -> Expression:
    if isinstance(value, Expression):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty expression string")
    traits = (info.context or {}).get("traits")
    try:
        return compile_expression(value, FACTS if not traits else {**FACTS, **traits})
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


def _duration(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str):
        raise ValueError("must be a duration such as 60m, 24h or 30d")
    try:
        return parse_duration(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class TagRule(_Strict):
    when: Expression
    description: str = ""

    _check = field_validator("when", mode="before")(_expression)


class LifecycleStage(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    when: Expression

    _check = field_validator("when", mode="before")(_expression)


class Segment(_Strict):
    when: Expression
    description: str = ""

    _check = field_validator("when", mode="before")(_expression)


class _Trigger(_Strict):
    cooldown: int = 0
    """At most one trigger of this rule per customer (and scope) within this time."""
    traits: list[str] = []
    """Declared traits whose values the trigger carries (``attributes["trait.NAME"]``,
    JSON), for the email's template."""

    _cooldown = field_validator("cooldown", mode="before")(_duration)


class CategoryViews(_Trigger):
    """``threshold`` views of one category within ``window``."""

    type: Literal["category_views"]
    threshold: Annotated[int, Field(ge=1, le=32)] = 3
    window: int = 86_400_000

    _window = field_validator("window", mode="before")(_duration)


class TagAdded(_Trigger):
    type: Literal["tag_added"]
    tag: str


class LifecycleEntered(_Trigger):
    type: Literal["lifecycle_entered"]
    stage: str


class SegmentEntered(_Trigger):
    type: Literal["segment_entered"]
    segments: list[str]


class TraitCrossed(_Trigger):
    """A declared trait's value (per key, for a grouped trait) reaches ``threshold``:
    fires when an event folded into the trait takes it from below to at least it."""

    type: Literal["trait_crossed"]
    trait: str
    threshold: float


class EventTrigger(_Trigger):
    """An event of type ``event`` (or ``custom:NAME``) whose ``where`` holds."""

    type: Literal["event"]
    event: list[str]
    where: Expression | None = None

    @field_validator("event", mode="before")
    @classmethod
    def _events(cls, value: Any) -> list[str]:
        return event_names(value)

    @field_validator("where", mode="before")
    @classmethod
    def _where(cls, value: Any, info: ValidationInfo) -> Expression:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty expression string")
        events = info.data.get("event")
        if events is None:
            raise ValueError("needs a valid event")
        try:
            return where_expression(value, events)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("where: ")) from None


TriggerRule = Annotated[
    CategoryViews | TagAdded | LifecycleEntered | SegmentEntered | TraitCrossed | EventTrigger,
    Field(discriminator="type"),
]

#: Trait kinds whose value is a number a threshold can compare with.
_NUMERIC_KINDS = frozenset({"count", "sum", "min", "max", "avg", "distinct_count"})


class Rules(_Strict):
    version: Literal[1]
    traits: dict[Annotated[str, Field(pattern=TRAIT_NAME)], TraitDecl] = {}
    """Declared computed traits (:mod:`state.traits`), readable by name in expressions."""
    tags: dict[Annotated[str, Field(pattern=_NAME)], TagRule] = {}
    preference_tags: dict[str, str] = {}
    """Preference key -> tag prefix: each comma-separated value becomes ``prefix + value``."""
    lifecycle: list[LifecycleStage] = []
    segments: dict[Annotated[str, Field(pattern=_NAME)], Segment] = {}
    triggers: dict[Annotated[str, Field(pattern=_NAME)], TriggerRule] = {}
    _names: frozenset[str] = PrivateAttr(default=frozenset())
    _expressions: tuple[Expression, ...] = PrivateAttr(default=())
    _timers: tuple[tuple[str, int], ...] = PrivateAttr(default=())
    _compiled: dict[str, Trait] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = {name: decl.compile(name) for name, decl in self.traits.items()}
        exprs = [r.when for r in self.tags.values()] + [s.when for s in self.lifecycle]
        exprs += [s.when for s in self.segments.values()]
        self._names = frozenset().union(*(e.names for e in exprs))
        self._expressions = tuple(exprs)
        self._timers = tuple(t for e in exprs for t in e.timers)

    @property
    def expressions(self) -> tuple[Expression, ...]:
        """Every expression, in evaluation order: tags, lifecycle stages, segments."""
        return self._expressions

    @property
    def timers(self) -> tuple[tuple[str, int], ...]:
        """``(fact, duration)`` of every ``since(fact) <op> duration`` of every expression."""
        return self._timers

    @property
    def names(self) -> frozenset[str]:
        """Every fact (or trait) some expression reads."""
        return self._names

    @property
    def compiled_traits(self) -> dict[str, Trait]:
        """Trait name -> the compiled declaration, in file order."""
        return self._compiled

    def worst_case_bytes(self) -> int:
        """An upper estimate of one customer's trait state under these rules."""
        return sum(decl.worst_case_bytes() for decl in self.traits.values())

    def check_references(self) -> list[str]:
        """Problems pydantic cannot see: triggers that name tags, stages, segments that
        no rule defines."""
        problems = []
        stages = {s.name for s in self.lifecycle}
        for name, trig in self.triggers.items():
            problems += [f"triggers.{name}.traits: no trait named {t!r} "
                         f"(traits: {', '.join(self.traits) or 'none'})"
                         for t in trig.traits if t not in self.traits]  # fmt: skip
            if isinstance(trig, TagAdded) and trig.tag not in self.tags:
                problems.append(f"triggers.{name}.tag: no tag rule named {trig.tag!r}")
            if isinstance(trig, LifecycleEntered) and trig.stage not in stages:
                problems.append(f"triggers.{name}.stage: no lifecycle stage named {trig.stage!r}")
            if isinstance(trig, SegmentEntered):
                problems += [f"triggers.{name}.segments: no segment named {s!r}"
                             for s in trig.segments if s not in self.segments]  # fmt: skip
            if isinstance(trig, TraitCrossed):
                decl = self.traits.get(trig.trait)
                if decl is None:
                    known = ", ".join(self.traits) or "none"
                    problems.append(f"triggers.{name}.trait: no trait named {trig.trait!r} "
                                    f"(traits: {known})")  # fmt: skip
                elif decl.kind not in _NUMERIC_KINDS:
                    problems.append(f"triggers.{name}.trait: {trig.trait!r} is a {decl.kind} "
                                    "trait; a threshold needs a number "
                                    f"({', '.join(sorted(_NUMERIC_KINDS))})")  # fmt: skip
        if len(stages) != len(self.lifecycle):
            problems.append("lifecycle: stage names must be unique")
        for name in self.traits:
            if name in FACTS:
                problems.append(f"traits.{name}: the name of a built-in fact; choose another")
        return problems + self._unknown_members()

    def _unknown_members(self) -> list[str]:
        """``'high_valu' in tags`` is never true: name the rule and the unknown tag."""
        where = [(f"tags.{n}.when", r.when) for n, r in self.tags.items()]
        where += [(f"lifecycle[{i}].when", s.when) for i, s in enumerate(self.lifecycle)]
        where += [(f"segments.{n}.when", s.when) for n, s in self.segments.items()]
        prefixes = tuple(self.preference_tags.values())
        problems = []
        for loc, expr in where:
            for m in _MEMBER.finditer(expr.source):
                name, kind = m.group(1) if m.group(1) is not None else m.group(2), m.group(3)
                if (
                    kind == "tags"
                    and name not in self.tags
                    and not (prefixes and name.startswith(prefixes) and name not in prefixes)
                ):
                    known = ", ".join(self.tags) or "none"
                    more = "".join(f", {p}<value>" for p in prefixes)
                    problems.append(f"{loc}: no tag named {name!r} (tags: {known}{more})")
                elif kind == "segments" and name not in self.segments:
                    known = ", ".join(self.segments) or "none"
                    problems.append(f"{loc}: no segment named {name!r} (segments: {known})")
        return problems


def parse_rules(
    text: str, source: str = "<rules>", budget_bytes: int = DEFAULT_BUDGET_BYTES
) -> Rules:
    """Validate rules from TOML text; raise :class:`RulesError` listing every problem.

    ``budget_bytes``: the most a customer's declared traits may take in the worst case
    (:meth:`Rules.worst_case_bytes`); a file over it is refused."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    declared = raw.get("traits")
    traits = {n: "declared trait" for n in declared} if isinstance(declared, dict) else {}
    try:
        rules = Rules.model_validate(raw, context={"traits": traits})
    except ValidationError as exc:
        lines = [f"{source}: {_located(e)}" for e in exc.errors()]
        lines = [line.replace("[key]: String should match pattern", ": invalid name, pattern")
                 for line in lines]  # fmt: skip
        raise RulesError("\n".join(lines)) from None
    problems = rules.check_references()
    worst = rules.worst_case_bytes()
    if worst > budget_bytes:
        big = max(rules.traits, key=lambda n: rules.traits[n].worst_case_bytes())
        problems.append(
            f"traits: worst case {worst} bytes per customer, over the budget of "
            f"{budget_bytes} (largest: traits.{big}.limits, "
            f"{rules.traits[big].worst_case_bytes()} bytes); lower limits.keys, "
            "limits.values or the windows"
        )
    if problems:
        raise RulesError("\n".join(f"{source}: {p}" for p in problems))
    return rules


def load_rules(path: Path | None = None, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> Rules:
    """The rules in ``path``, or the shipped default."""
    path = path or DEFAULT_RULES
    try:
        text = path.read_text()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, str(path), budget_bytes)


_TRIGGER_TYPES = {
    "category_views",
    "tag_added",
    "lifecycle_entered",
    "segment_entered",
    "trait_crossed",
    "event",
}


def _where(loc: tuple[int | str, ...]) -> str:
    # Drop pydantic's union-branch labels (e.g. 'category_views') after a trigger name.
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i == 2 and loc[0] == "triggers" and part in _TRIGGER_TYPES:
            continue
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
    return ".".join(parts).replace(".[", "[") or "file"


_FIELD_FIRST = re.compile(r"^([a-z_]+): ")


def _located(err: Any) -> str:
    """``where: what``; a trait's cross-field error names its field in the place."""
    where, what = _where(err["loc"]), _what(err)
    loc = err["loc"]
    m = _FIELD_FIRST.match(what)
    if m and len(loc) == 2 and loc[0] == "traits":
        return f"{where}.{m.group(1)}: {what[m.end() :]}"
    return f"{where}: {what}"


def _what(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field missing"
    return msg.removeprefix("Value error, ")
