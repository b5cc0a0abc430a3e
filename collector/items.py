"""Batch items the collector cannot store as they are: longer than the per-event limit, or
nested deeper than JSON can be written back (orjson writes 254 levels, reads 1,024).

Both are found with few serializations (one ``orjson.dumps`` a run of items, not one an
item), before any item is mapped, so such an item becomes its own dead letter and never
fails its batch.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["TOO_DEEP", "TOO_LARGE", "cut", "unfit_items", "with_stand_ins", "writable"]

TOO_LARGE = "event_too_large"
TOO_DEEP = "too_deeply_nested"
#: Levels a dead letter keeps of an item nested deeper than JSON can be written.
KEPT_LEVELS = 64


def unfit_items(items: list[Any], limit: int, body_bytes: int) -> dict[int, str]:
    """The ``id`` of each item whose JSON is longer than ``limit`` bytes, or that cannot be
    written as JSON, with the reason (:data:`TOO_LARGE`, :data:`TOO_DEEP`).

    Items are serialized in runs of about ``limit / 2`` bytes, judged by the body's average:
    an item is a part of its run's JSON, so a run that is written within the limit holds
    no unfit item; only the items of the other runs are measured one by one. A body within
    the limit is one run.
    """
    if body_bytes > limit:
        per_run = max(1, len(items) * limit // (2 * body_bytes))
    else:
        per_run = max(1, len(items))
    found: dict[int, str] = {}
    for start in range(0, len(items), per_run):
        run = items[start : start + per_run]
        if _size(run) <= limit:
            continue
        for item in run:
            size = _size(item)
            if size > limit:
                found[id(item)] = TOO_DEEP if size == _UNWRITABLE else TOO_LARGE
    return found


_UNWRITABLE = 1 << 62


def writable(value: Any) -> bool:
    """Whether ``value`` (parsed JSON) can be written back as JSON.

    >>> writable([[]] * 3), writable(orjson.loads(b"[" * 300 + b"]" * 300))
    (True, False)
    """
    return _size(value) != _UNWRITABLE


def _size(value: Any) -> int:
    try:
        return len(orjson.dumps(value))
    except orjson.JSONEncodeError:  # nested deeper than orjson writes
        return _UNWRITABLE


def cut(value: Any, levels: int = KEPT_LEVELS) -> Any:
    """``value`` with what is nested below ``levels`` replaced by ``"..."``: what a dead
    letter keeps of an item too deep to write back as JSON.

    >>> cut({"a": [[1]], "b": 2}, levels=2)
    {'a': ['...'], 'b': 2}
    """
    if isinstance(value, dict):
        if levels <= 0:
            return "..."
        return {k: cut(v, levels - 1) for k, v in value.items()}
    if isinstance(value, list):
        if levels <= 0:
            return "..."
        return [cut(v, levels - 1) for v in value]
    return value


def with_stand_ins(items: list[Any], unfit: dict[int, str]) -> tuple[list[Any], dict[int, str]]:
    """``items`` with each too-deep one replaced by its :func:`cut` copy (what its dead
    letter keeps, as it cannot keep the original), and ``unfit`` keyed by the new ids."""
    out: list[Any] = []
    reasons: dict[int, str] = {}
    for item in items:
        reason = unfit.get(id(item))
        if reason == TOO_DEEP:
            item = cut(item)
        if reason is not None:
            reasons[id(item)] = reason
        out.append(item)
    return out, reasons
