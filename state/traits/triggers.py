"""The generic triggers: ``trait_crossed`` and ``event``, fired while an event is applied.

- ``trait_crossed``: when an event folded into the trait takes its value (per key, for a
  grouped trait) from below ``threshold`` to at least it, both read at the customer's
  time (:func:`state.profile.as_of`) just before and just after the fold. A window's
  decay never fires it (it only moves values down for the kinds a threshold reads, but
  for ``min`` and sums of negative amounts). The trigger carries the key (``category``,
  and ``attributes.key``), the value and threshold, and, when the key is a category the
  customer viewed, the products viewed in it.
- ``event``: an event of the listed type whose ``where`` holds.

As the other trigger types: never to an anonymous visitor or a customer who withdrew
consent; at most one per rule and customer within ``cooldown`` (by event time); ids
deterministic — ``trait_crossed`` from the rule, customer, key and event time, ``event``
from the rule, customer and event id, so a replay yields the same ids. A late event (past
the allowed lateness) fires neither: windowed traits refuse it, and a moment that far
back is not one to act on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from state.events import Event
from state.outputs import Output, Trigger, stable_id
from state.rules import engine
from state.rules.model import Rules
from state.traits.plan import TraitPlan, fold_event
from state.traits.state import Trait, event_fields

if TYPE_CHECKING:
    from state.profile import CustomerState

__all__ = ["carried", "fold_traits"]


def carried(st: CustomerState, rules: Rules, names: list[str], at: int) -> dict[str, str]:
    """``{"trait.NAME": value as JSON}`` of the traits a trigger rule names, read at the
    trigger's moment ``at``."""
    traits = rules.compiled_traits
    return {
        f"trait.{name}": orjson.dumps(st.traits.value(traits[name], at)).decode()
        for name in names
        if name in traits
    }


def fold_traits(
    st: CustomerState,
    ev: Event,
    rules: Rules,
    plan: TraitPlan,
    folds: tuple[Trait, ...],
    late: bool,
    refused: list[str],
) -> list[Output]:
    """Fold ``ev`` into ``folds``, the traits ``plan`` lists for it (appending to
    ``refused`` those too late for it), and return the generic triggers it fires."""
    fire = not late and st.customer_id is not None and not st.unsubscribed
    at = max(st.watermark, st.clock)  # state.profile.as_of
    watched: list[tuple[str, Any, Trait, Any]] = []
    if fire and plan.crossings:
        for tr in folds:
            for rule, trig in plan.crossings.get(tr.name, ()):
                watched.append((rule, trig, tr, st.traits.value(tr, at)))
    if folds:
        refused += [
            f"trait {name}" for name in fold_event(st.traits, folds, ev, late, st.watermark)
        ]
    if not fire:
        return []
    out: list[Output] = []
    for rule, trig, tr, before in watched:
        after = st.traits.value(tr, at)
        for key, value in _crossed(before, after, trig.threshold, tr.by is not None):
            if engine.cooled_down(st, rule, trig.cooldown, ev.event_time):
                st.derived.last_fired[rule] = ev.event_time
                extra = carried(st, rules, trig.traits, ev.event_time) if trig.traits else {}
                out.append(_crossing(st, rule, tr, key, value, trig.threshold, ev, extra))
    found = plan.triggers_for(ev) if plan.event_triggers else ()
    fields: Any = None
    for rule, etrig in found:
        if etrig.where is not None:
            if fields is None:
                fields = event_fields(ev)
            if not etrig.where.evaluate(fields, ev.event_time):
                continue
        if engine.cooled_down(st, rule, etrig.cooldown, ev.event_time):
            st.derived.last_fired[rule] = ev.event_time
            extra = carried(st, rules, etrig.traits, ev.event_time) if etrig.traits else {}
            out.append(_on_event(st, rule, ev, extra))
    return out


def _crossed(before: Any, after: Any, threshold: float, grouped: bool) -> list[tuple[Any, Any]]:
    """``(key, value)`` of what went from below ``threshold`` to at least it, keys sorted."""
    if not grouped:
        return (
            [(None, after)]
            if _reaches(after, threshold) and not _reaches(before, threshold)
            else []
        )
    return [
        (k, v)
        for k, v in after.items()
        if _reaches(v, threshold) and not _reaches(before.get(k), threshold)
    ]


def _reaches(value: Any, threshold: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= threshold


def _crossing(
    st: CustomerState,
    rule: str,
    tr: Trait,
    key: Any,
    value: Any,
    threshold: float,
    ev: Event,
    extra: dict[str, str],
) -> Trigger:
    from state.profile import excerpt

    customer_id = st.customer_id or ""
    t = ev.event_time
    attrs = {"trait": tr.name, "value": str(value), "threshold": f"{threshold:g}"}
    products: tuple[str, ...] = ()
    if key is not None:
        attrs["key"] = key
        products = tuple(pid for _, pid in st.viewed_products.get(key, ()))
    return Trigger(
        trigger_id=stable_id(rule, customer_id, "" if key is None else key, t),
        rule=rule,
        customer_id=customer_id,
        event_time=t,
        profile=excerpt(st),
        category=key,
        product_ids=products,
        attributes={**attrs, **extra},
    )


def _on_event(st: CustomerState, rule: str, ev: Event, extra: dict[str, str]) -> Trigger:
    from state.profile import excerpt

    customer_id = st.customer_id or ""
    p = ev.payload
    order = ev.event_type == "order_completed" and isinstance(p.get("revenue"), int | float)
    kind = ev.event_type if ev.event_type != "custom" else f"custom:{p.get('name')}"
    return Trigger(
        trigger_id=stable_id(rule, customer_id, ev.event_id),
        rule=rule,
        customer_id=customer_id,
        event_time=ev.event_time,
        profile=excerpt(st),
        amount=float(p["revenue"]) if order else None,
        currency=p.get("currency") if order else None,
        attributes={"event": kind, **extra},
    )
