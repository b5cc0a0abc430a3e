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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from state.outputs import Output, TagChange, Trigger, stable_id
from state.rules.model import LifecycleEntered, Rules, SegmentEntered, TagAdded

if TYPE_CHECKING:
    from state.profile import CustomerState

__all__ = ["Derived", "Evaluation", "derive", "evaluate", "next_deadline", "rule_names"]


def rule_names(rules: Rules) -> frozenset[str]:
    """Every fact some expression of ``rules`` reads."""
    return rules.names


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


def derive(rules: Rules, facts: dict[str, Any], at: int) -> Evaluation:
    """Evaluate every rule against ``facts`` at ``at`` (pure; ``facts`` is updated with
    the derived ``tags``, ``lifecycle`` and ``segments`` as they are found)."""
    tags: list[str] = []
    facts["tags"] = tags
    for name, rule in rules.tags.items():
        if rule.when.evaluate(facts, at):
            tags.append(name)
    values = facts.get("preferences") or {}
    for key, prefix in rules.preference_tags.items():
        raw = values.get(key)
        if isinstance(raw, str):
            tags.extend(sorted({f"{prefix}{v.strip()}" for v in raw.split(",") if v.strip()}))
    lifecycle = next((s.name for s in rules.lifecycle if s.when.evaluate(facts, at)), None)
    facts["lifecycle"] = lifecycle
    segments: list[str] = []
    facts["segments"] = segments
    for name, seg in rules.segments.items():
        if seg.when.evaluate(facts, at):
            segments.append(name)
    return Evaluation(tuple(tags), lifecycle, tuple(segments))


def evaluate(
    rules: Rules, st: CustomerState, facts: dict[str, Any], at: int, cause: str
) -> list[Output]:
    """Derive at ``at``, store the verdict in ``st.derived``, return what changed.

    ``cause`` names what prompted the evaluation ("event", "timer") for the reasons.
    """
    new = derive(rules, facts, at)
    old = st.derived
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
    times = [counters_change] if counters_change is not None else []
    exprs = [r.when for r in rules.tags.values()] + [s.when for s in rules.lifecycle]
    exprs += [s.when for s in rules.segments.values()]
    for e in exprs:
        for t in e.deadlines(facts):
            # Strict and non-strict comparisons flip at t or just after.
            times += [t, t + 1]
    later = [t for t in times if t is not None and t > at]
    return min(later) if later else None


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
            out.append(_trigger(name, customer_id, subject, attrs, facts, at, st))
    return out


def cooled_down(st: CustomerState, rule: str, cooldown: int, at: int) -> bool:
    """No trigger of ``rule`` for this customer within ``cooldown`` before ``at``."""
    last = st.derived.last_fired.get(rule)
    return last is None or at - last >= cooldown


def _trigger(rule: str, customer_id: str, subject: str, attrs: dict[str, str],
             facts: dict[str, Any], at: int, st: CustomerState) -> Trigger:  # fmt: skip
    from state.profile import excerpt  # the profile imports this module

    cart = facts.get("cart") or {}
    items = tuple(
        {"product": {"product_id": i["product_id"], "name": None, "category": None,
                     "price": i["price"], "currency": facts.get("currency")},
         "quantity": i["quantity"]}
        for i in cart.get("items", ())
    ) if attrs.get("tag") == "abandoned_cart" else ()  # fmt: skip
    return Trigger(
        trigger_id=stable_id(rule, customer_id, subject, at),
        rule=rule,
        customer_id=customer_id,
        event_time=at,
        profile=excerpt(st),
        items=items,
        amount=facts.get("cart_value") if items else None,
        currency=facts.get("currency") if items else None,
        attributes=attrs,
    )
