"""Last write wins by event time, never by arrival: the rule for every mutable field.

A write ``(value, t)`` replaces the held ``(old, old_t)`` when ``(t, rank(value))`` is
greater than ``(old_t, rank(old))``. Equal times fall back to the value's rank (its
``repr`` unless said otherwise), so any arrival order of the same writes ends in the same
value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["merge", "put", "wins"]

K = TypeVar("K")
V = TypeVar("V")


def wins(t: int, value: V, old: tuple[V, int] | None, rank: Callable[[V], Any] = repr) -> bool:
    """Whether writing ``value`` at ``t`` replaces ``old``.

    >>> wins(2, "a", ("b", 1)), wins(1, "b", ("a", 1)), wins(1, "a", ("b", 1))
    (True, True, False)
    """
    return old is None or (t, rank(value)) > (old[1], rank(old[0]))


def put(
    entries: dict[K, tuple[V, int]],
    key: K,
    value: V,
    t: int,
    cap: int | None = None,
    rank: Callable[[V], Any] = repr,
) -> None:
    """Write ``key = value`` at ``t`` if it wins; beyond ``cap`` keys forget the key written
    longest ago (ties by key), which may be the one just written."""
    if not wins(t, value, entries.get(key), rank):
        return
    entries[key] = (value, t)
    if cap is not None and len(entries) > cap:
        stalest = min(entries, key=lambda k: (entries[k][1], repr(k)))
        del entries[stalest]


def merge(
    entries: dict[K, tuple[V, int]],
    other: dict[K, tuple[V, int]],
    cap: int | None = None,
    rank: Callable[[V], Any] = repr,
) -> None:
    """Write every entry of ``other`` into ``entries`` with :func:`put`: per key the later
    write wins with the same tie rule, so the result does not depend on which side is
    ``entries``; beyond ``cap`` the keys written longest ago go, as they would have.

    >>> a = {"x": ("old", 1), "y": ("kept", 5)}
    >>> merge(a, {"x": ("new", 2), "z": ("z", 0)}, cap=2); sorted(a.items())
    [('x', ('new', 2)), ('y', ('kept', 5))]
    """
    for key, (value, t) in other.items():
        put(entries, key, value, t, cap, rank)
