"""The rules engine: from a profile's facts to tags, a lifecycle stage, segments, and the
``TagChange`` and ``Trigger`` outputs of what changed.

:func:`evaluate` runs after a customer's events are applied (at the customer's newest
event time) and at the moments :func:`next_deadline` names, when a fact can change with
no new event: ``since(x) >= 60m`` becoming true, a day window dropping its oldest bucket.
Evaluating *at* those moments, not at whatever time a timer happened to fire, keeps every
id deterministic: the same history yields the same ``TagChange`` and ``Trigger`` ids,
live or replayed.

Outputs only go to known customers (an anonymous visitor's derived state is kept, but
nobody can be emailed). A customer who unsubscribed gets no trigger; tag changes still
flow. Each trigger rule has a cooldown per customer.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from state.outputs import Output, TagChange, Trigger, stable_id
from state.rules.expressions import Expression
from state.rules.model import LifecycleEntered, Rules, SegmentEntered, TagAdded

if TYPE_CHECKING:
    from state.profile import CustomerState

__all__ = [
    "Derived",
    "Evaluation",
    "Verdicts",
    "derive",
    "evaluate",
    "next_deadline",
    "rule_names",
]

DERIVED_NAMES = frozenset({"tags", "lifecycle", "segments"})
"""Names an expression may read that the evaluation itself derives, not facts."""

Verdicts = dict[int, tuple[tuple[Any, ...], bool, int | None]]
"""Expression (index in ``Rules.expressions``) -> what its last evaluation read of the
derived names, its verdict, and the first moment after it at which a ``since``
comparison of it could flip (``None``: never)."""


def rule_names(rules: Rules) -> frozenset[str]:
    """Every fact some expression of ``rules`` reads."""
    return _plan(rules).names


@dataclass(slots=True)
class Derived:
    """What the rules concluded last time, to emit only changes; and cooldowns."""

    tags: tuple[str, ...] = ()
    lifecycle: str | None = None
    segments: tuple[str, ...] = ()
    last_fired: dict[str, int] = field(default_factory=dict)
    """Trigger rule -> moment of its last trigger for this customer (cooldowns)."""
    next_at: int | None = field(default=None, compare=False)
    """Cache of the next deadline (derived, not dumped); valid while ``next_known``."""
    next_known: bool = field(default=False, compare=False)
    memo: Any = field(default=None, compare=False)
    """What the last evaluation found, for the next one to reuse (derived, not dumped):
    :class:`state.profile` keeps it; ``None`` makes the next evaluation start afresh."""

    def dump(self) -> tuple[Any, ...]:
        """Plain data; the cached next deadline rides along (``False`` when unknown) so a
        restart need not recompute it for every customer."""
        fired = tuple(x for r, t in sorted(self.last_fired.items()) for x in (r, t))
        nxt = self.next_at if self.next_known else False
        return (self.tags, self.lifecycle, self.segments, fired, nxt)

    @classmethod
    def load(cls, snap: tuple[Any, ...] | list[Any]) -> Derived:
        tags, lifecycle, segments, fired, *rest = snap
        nxt = rest[0] if rest else False
        return cls(
            tuple(tags),
            lifecycle,
            tuple(segments),
            dict(zip(fired[::2], fired[1::2], strict=True)),
            next_at=None if nxt is False else nxt,
            next_known=nxt is not False,
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The rules' verdict at one moment."""

    tags: tuple[str, ...]
    lifecycle: str | None
    segments: tuple[str, ...]


def derive(
    rules: Rules,
    facts: dict[str, Any],
    at: int,
    verdicts: Verdicts | None = None,
    clean: Set[str] | None = None,
) -> Evaluation:
    """Evaluate every rule against ``facts`` at ``at`` (pure; ``facts`` is updated with
    the derived ``tags``, ``lifecycle`` and ``segments`` as they are found).

    ``verdicts``, when given, holds the previous evaluation's verdicts (at an earlier or
    the same moment) and is updated in place; ``clean`` names the facts known to have
    kept their values since then (``None``: none, start afresh). An expression is then
    not evaluated again when every fact it reads is clean, the derived names it reads
    are as they were, its ``since`` comparisons cannot have flipped (see
    :meth:`Expression.deadlines`) and it reads the time in no other way: the verdict
    is the same as evaluating it would give.
    """
    tags, lifecycle, segments = _derive(_plan(rules), facts, at, verdicts, clean)
    return Evaluation(tags, lifecycle, segments)


def _derive(
    plan: _Plan,
    facts: dict[str, Any],
    at: int,
    verdicts: Verdicts | None,
    clean: Set[str] | None,
) -> tuple[tuple[str, ...], str | None, tuple[str, ...]]:
    """:func:`derive`, as a plain tuple."""
    if verdicts is None:
        verdicts, clean = {}, None
    elif clean is None:
        verdicts.clear()
    last = verdicts.get
    tags: list[str] = []
    facts["tags"] = tags
    for step in plan.tags:
        # Inline, the common case: a verdict whose facts are clean and no flip is due.
        if clean is not None and step.plain:
            was = last(step.index)
            if was is not None and (was[2] is None or at < was[2]) and step.facts <= clean:
                if was[1]:
                    tags.append(step.name)
                continue
            if _verdict(step, facts, at, verdicts, ()):
                tags.append(step.name)  # the check _holds would repeat failed just now
        elif _holds(step, facts, at, verdicts, clean):
            tags.append(step.name)
    if plan.preference_tags:
        values = facts.get("preferences") or {}
        for key, prefix in plan.preference_tags:
            raw = values.get(key)
            if isinstance(raw, str):
                tags.extend(sorted({f"{prefix}{v.strip()}" for v in raw.split(",") if v.strip()}))
    lifecycle = None
    for step in plan.lifecycle:  # the first stage that holds; the others are not read
        if lifecycle is not None:
            verdicts.pop(step.index, None)  # not evaluated now: its facts may change unseen
            continue
        if clean is not None and step.plain:
            was = last(step.index)
            if was is not None and (was[2] is None or at < was[2]) and step.facts <= clean:
                if was[1]:
                    lifecycle = step.name
                continue
            if _verdict(step, facts, at, verdicts, ()):
                lifecycle = step.name
        elif _holds(step, facts, at, verdicts, clean):
            lifecycle = step.name
    facts["lifecycle"] = lifecycle
    segments: list[str] = []
    facts["segments"] = segments
    for step in plan.segments:
        if _holds(step, facts, at, verdicts, clean):
            segments.append(step.name)
    return tuple(tags), lifecycle, tuple(segments)


@dataclass(frozen=True, slots=True)
class _Step:
    index: int  # in Rules.expressions
    name: str  # the tag, stage or segment
    expr: Expression
    facts: frozenset[str]  # the facts it reads
    derived: tuple[str, ...]  # the derived names it reads
    plain: bool  # reads no derived name, and the time only through its timers


@dataclass(frozen=True, slots=True)
class _Plan:
    tags: tuple[_Step, ...]
    lifecycle: tuple[_Step, ...]
    segments: tuple[_Step, ...]
    timers: tuple[tuple[str, int], ...]
    names: frozenset[str]
    preference_tags: tuple[tuple[str, str], ...]


_T = TypeVar("_T")


def once_per_rules(build: Callable[[Rules], _T]) -> Callable[[Rules], _T]:
    """``build(rules)``, computed once per rules object (by identity) and then looked up:
    for what the hot path derives from the rules alone. The table keeps each rules object
    alive; a process has a few."""
    table: dict[int, tuple[Rules, _T]] = {}

    def laid_out(rules: Rules) -> _T:
        found = table.get(id(rules))
        if found is not None and found[0] is rules:
            return found[1]
        value = build(rules)
        table[id(rules)] = (rules, value)
        return value

    return laid_out


@once_per_rules
def _plan(rules: Rules) -> _Plan:
    """The rules laid out for :func:`derive`."""
    named: list[tuple[str, Expression]] = [(n, r.when) for n, r in rules.tags.items()]
    named += [(s.name, s.when) for s in rules.lifecycle]
    named += [(n, s.when) for n, s in rules.segments.items()]
    steps = []
    for i, (name, e) in enumerate(named):
        derived = tuple(n for n in _DERIVED_ORDER if n in e.names)
        steps.append(_Step(i, name, e, e.names - DERIVED_NAMES, derived,
                           e.time_exact and not derived))  # fmt: skip
    n_tags, n_stages = len(rules.tags), len(rules.lifecycle)
    return _Plan(
        tuple(steps[:n_tags]),
        tuple(steps[n_tags : n_tags + n_stages]),
        tuple(steps[n_tags + n_stages :]),
        rules.timers,
        rules.names,
        tuple(rules.preference_tags.items()),
    )


def _holds(
    step: _Step,
    facts: dict[str, Any],
    at: int,
    verdicts: Verdicts,
    clean: Set[str] | None,
) -> bool:
    e = step.expr
    if not e.time_exact:
        verdicts.pop(step.index, None)
        return e.evaluate(facts, at)
    read = tuple([_derived(facts, n) for n in step.derived]) if step.derived else ()
    if clean is not None:
        last = verdicts.get(step.index)
        if (
            last is not None
            and (last[2] is None or at < last[2])
            and step.facts <= clean
            and last[0] == read
        ):
            return last[1]
    return _verdict(step, facts, at, verdicts, read)


def _verdict(
    step: _Step, facts: dict[str, Any], at: int, verdicts: Verdicts, read: tuple[Any, ...]
) -> bool:
    """Evaluate ``step`` (time-exact) at ``at`` and remember the verdict, what it read of
    the derived names, and the first moment after ``at`` a ``since`` comparison can flip."""
    e = step.expr
    verdict = e.evaluate(facts, at)
    flip = None  # the first moment after `at` a since() comparison can flip (deadlines)
    for name, duration in e.timers:
        try:
            t = facts[name]
        except KeyError:
            continue
        if isinstance(t, int):
            t += duration
            if t <= at:
                t += 1  # strict comparisons flip just after
            if t > at and (flip is None or t < flip):
                flip = t
    verdicts[step.index] = (read, verdict, flip)
    return verdict


def _fact(facts: dict[str, Any], name: str) -> Any:
    """``facts.get(name)``; a lazy mapping computes a missing fact in ``__missing__``."""
    try:
        return facts[name]
    except KeyError:
        return None


_DERIVED_ORDER = ("tags", "lifecycle", "segments")


def _derived(facts: dict[str, Any], name: str) -> Any:
    value = _fact(facts, name)
    return tuple(value) if isinstance(value, list) else value


def evaluate(
    rules: Rules,
    st: CustomerState,
    facts: dict[str, Any],
    at: int,
    cause: str,
    verdicts: Verdicts | None = None,
    clean: Set[str] | None = None,
) -> list[Output]:
    """Derive at ``at``, store the verdict in ``st.derived``, return what changed.

    ``cause`` names what prompted the evaluation ("event", "timer") for the reasons;
    ``verdicts`` and ``clean`` as for :func:`derive`.
    """
    tags, lifecycle, segments = _derive(_plan(rules), facts, at, verdicts, clean)
    old = st.derived
    if tags == old.tags and lifecycle == old.lifecycle and segments == old.segments:
        return []  # nothing changed: no tag change, and triggers fire only on a change
    new = Evaluation(tags, lifecycle, segments)
    customer_id = st.customer_id
    out: list[Output] = []
    if customer_id is not None:
        changes = _diff("", old.tags, new.tags) + _diff("segment:", old.segments, new.segments)
        if old.lifecycle != new.lifecycle:
            if old.lifecycle is not None:
                changes.append((f"lifecycle:{old.lifecycle}", False))
            if new.lifecycle is not None:
                changes.append((f"lifecycle:{new.lifecycle}", True))
        for tag, added in changes:
            out.append(TagChange(
                change_id=stable_id("tag", customer_id, tag, added, at),
                customer_id=customer_id, tag=tag, added=added,
                reason=_reason(rules, tag, added, cause), event_time=at,
            ))  # fmt: skip
        out += _triggers(rules, st, customer_id, old, new, facts, at)
    st.derived.tags, st.derived.lifecycle, st.derived.segments = (
        new.tags,
        new.lifecycle,
        new.segments,
    )
    return out


def next_deadline(
    rules: Rules, facts: dict[str, Any], at: int, counters_change: int | None
) -> int | None:
    """The next moment after ``at`` at which a rule's verdict could change with no event."""
    best = counters_change if counters_change is not None and counters_change > at else None
    for name, duration in _plan(rules).timers:  # as Expression.deadlines, for every expression
        try:
            t = facts[name]
        except KeyError:
            continue
        if isinstance(t, int):
            # Strict and non-strict comparisons flip at t or just after.
            t += duration
            if t <= at:
                t += 1
            if t > at and (best is None or t < best):
                best = t
    return best


def _diff(prefix: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[tuple[str, bool]]:
    before, after = set(old), set(new)
    return [(f"{prefix}{t}", False) for t in old if t not in after] + [
        (f"{prefix}{t}", True) for t in new if t not in before
    ]


def _reason(rules: Rules, tag: str, added: bool, cause: str) -> str:
    verb = "now" if added else "no longer"
    if tag in rules.tags:
        rule = rules.tags[tag]
        return f"{verb}: {rule.description or rule.when.source} ({cause})"
    if tag.startswith("segment:") and tag[8:] in rules.segments:
        seg = rules.segments[tag[8:]]
        return f"{verb}: {seg.description or seg.when.source} ({cause})"
    if tag.startswith("lifecycle:"):
        return f"lifecycle stage {'entered' if added else 'left'} ({cause})"
    return f"{verb} set by preferences ({cause})"


def _triggers(
    rules: Rules, st: CustomerState, customer_id: str, old: Any, new: Evaluation,
    facts: dict[str, Any], at: int,
) -> list[Output]:  # fmt: skip
    if st.unsubscribed:
        return []  # consent wins: nothing that leads to an email
    out: list[Output] = []
    for name, trig in rules.triggers.items():
        subjects: list[tuple[str, dict[str, str]]] = []
        if isinstance(trig, TagAdded) and trig.tag in new.tags and trig.tag not in old.tags:
            subjects.append((trig.tag, {"tag": trig.tag}))
        elif isinstance(trig, LifecycleEntered) and new.lifecycle == trig.stage != old.lifecycle:
            subjects.append((trig.stage, {"from": old.lifecycle or "", "to": trig.stage}))
        elif isinstance(trig, SegmentEntered):
            entered = [s for s in new.segments if s in trig.segments and s not in old.segments]
            subjects += [(s, {"segment": s}) for s in entered]
        for subject, attrs in subjects:
            if not cooled_down(st, name, trig.cooldown, at):
                continue
            st.derived.last_fired[name] = at
            if trig.traits:
                attrs = {**attrs, **_carried(st, rules, trig.traits, at)}
            out.append(_trigger(name, customer_id, subject, attrs, facts, at, st))
    return out


def _carried(st: CustomerState, rules: Rules, names: list[str], at: int) -> dict[str, str]:
    from state.traits.triggers import carried  # it imports this module

    return carried(st, rules, names, at)


def cooled_down(st: CustomerState, rule: str, cooldown: int, at: int) -> bool:
    """No trigger of ``rule`` for this customer within ``cooldown`` before ``at``."""
    last = st.derived.last_fired.get(rule)
    return last is None or at - last >= cooldown


def _trigger(rule: str, customer_id: str, subject: str, attrs: dict[str, str],
             facts: dict[str, Any], at: int, st: CustomerState) -> Trigger:  # fmt: skip
    from state.profile import excerpt  # the profile imports this module

    cart = facts.get("cart") or {}
    items: tuple[dict[str, Any], ...] = ()
    currency = None
    if attrs.get("tag") == "abandoned_cart":
        # Each line as its cart events described it (its image too); the cart's own
        # currency, else the customer's last order's.
        details = st.cart.details
        currencies = [d[3] for i in cart.get("items", ()) if (d := details.get(i["product_id"]))
                      and d[3]]  # fmt: skip
        currency = currencies[0] if currencies else facts.get("currency")
        items = tuple(
            {"product": {"product_id": pid, "name": d[1], "category": d[2], "price": i["price"],
                         "currency": d[3] or currency, "image_url": d[4]},
             "quantity": i["quantity"]}
            for i in cart.get("items", ())
            for pid in (i["product_id"],)
            for d in (details.get(pid) or (0, None, None, None, None),)
        )  # fmt: skip
    return Trigger(
        trigger_id=stable_id(rule, customer_id, subject, at),
        rule=rule,
        customer_id=customer_id,
        event_time=at,
        profile=excerpt(st),
        items=items,
        amount=facts.get("cart_value") if items else None,
        currency=currency if items else None,
        attributes=attrs,
    )
