"""The trait kinds: small strategy objects, as Quix Streams' aggregations are.

A kind knows how to start an accumulator (:meth:`Kind.init`), fold one value at an event
time into it (:meth:`Kind.fold`), merge two accumulators (:meth:`Kind.merge`) and present
its value (:meth:`Kind.result`). Windows (:mod:`state.traits.windows`) hold one
accumulator per UTC day, or the raw entries of an exact window, and reuse the same four.

Every fold is **order-independent**: integer sums (money units, :mod:`state.money`),
minima and maxima, and sets that keep the top ``cap`` entries by ``(newest time,
value)`` — the same entries whatever order the events came in, and the same after a merge
of two accumulators as after one that folded both streams. Ties go by value, so arrival
order never decides: ``first`` is the smallest ``(time, value)``, ``last`` the largest.
The one exception, beyond its cap, is ``most_frequent`` (see :class:`MostFrequent`).

Accumulators are plain data (ints, tuples, dicts) so they dump as they are; ``merge``
never mutates its arguments; ``fold`` may mutate and returns the accumulator.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from state.money import from_units, to_units

__all__ = ["KINDS", "Kind"]


class Kind:
    """One kind of trait. ``value_types``: the types its ``value`` may have (empty: it
    takes no value); ``bytes_per_value``: a worst-case size of one held value, for the
    memory budget (:func:`state.traits.model.worst_case_bytes`)."""

    name: ClassVar[str]
    value_types: ClassVar[tuple[str, ...]] = ("string", "number", "bool")
    numeric: ClassVar[bool] = False
    bounded_by_values: ClassVar[bool] = False
    """Whether one accumulator holds up to ``limits.values`` values (sets, tallies)."""

    def init(self) -> Any:
        raise NotImplementedError

    def fold(self, acc: Any, value: Any, t: int, cap: int) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any, cap: int) -> Any:
        raise NotImplementedError

    def result(self, acc: Any) -> Any:
        return acc

    def dump(self, acc: Any) -> Any:
        return acc

    def load(self, raw: Any) -> Any:
        return raw


class Count(Kind):
    name = "count"
    value_types = ()

    def init(self) -> int:
        return 0

    def fold(self, acc: int, value: Any, t: int, cap: int) -> int:
        return acc + 1

    def merge(self, a: int, b: int, cap: int) -> int:
        return a + b


class Sum(Kind):
    """Summed in integer units (:mod:`state.money`), shown as a float."""

    name = "sum"
    value_types = ("number",)
    numeric = True

    def init(self) -> int:
        return 0

    def fold(self, acc: int, value: Any, t: int, cap: int) -> int:
        return acc + to_units(value)

    def merge(self, a: int, b: int, cap: int) -> int:
        return a + b

    def result(self, acc: int) -> float:
        return from_units(acc)


class _Pick(Kind):
    """The ``pick`` (``min`` or ``max``) of an entry per event: nothing before the first;
    a merge picks between the two sides, so it equals one customer who did both."""

    pick: ClassVar[Any]

    def init(self) -> None:
        return None

    def entry(self, value: Any, t: int) -> Any:
        raise NotImplementedError

    def fold(self, acc: Any, value: Any, t: int, cap: int) -> Any:
        entry = self.entry(value, t)
        return entry if acc is None else type(self).pick(acc, entry)

    def merge(self, a: Any, b: Any, cap: int) -> Any:
        return b if a is None else a if b is None else type(self).pick(a, b)


class _Extreme(_Pick):
    value_types = ("number",)
    numeric = True

    def entry(self, value: Any, t: int) -> Any:
        return value


class Min(_Extreme):
    name = "min"
    pick = min


class Max(_Extreme):
    name = "max"
    pick = max


class Avg(Kind):
    """``(sum in units, count)``; the mean is computed from the integers."""

    name = "avg"
    value_types = ("number",)
    numeric = True

    def init(self) -> tuple[int, int]:
        return (0, 0)

    def fold(self, acc: tuple[int, int], value: Any, t: int, cap: int) -> tuple[int, int]:
        return (acc[0] + to_units(value), acc[1] + 1)

    def merge(self, a: tuple[int, int], b: tuple[int, int], cap: int) -> tuple[int, int]:
        return (a[0] + b[0], a[1] + b[1])

    def result(self, acc: tuple[int, int]) -> float | None:
        return from_units(acc[0]) / acc[1] if acc[1] else None

    def load(self, raw: Any) -> tuple[int, int]:
        return (raw[0], raw[1])


class _Newest(Kind):
    """value -> its newest event time; beyond ``cap`` values, those with the smallest
    ``(newest time, value)`` go. Whatever the order, the kept values are the ``cap``
    largest by that key (a value's key only grows, and so does the smallest kept)."""

    bounded_by_values = True

    def init(self) -> dict[Any, int]:
        return {}

    def fold(self, acc: dict[Any, int], value: Any, t: int, cap: int) -> dict[Any, int]:
        old = acc.get(value)
        if old is None or t > old:
            acc[value] = t
            if len(acc) > cap:
                del acc[min(acc, key=lambda v: (acc[v], v))]
        return acc

    def merge(self, a: dict[Any, int], b: dict[Any, int], cap: int) -> dict[Any, int]:
        out = dict(a)
        for value, t in b.items():
            out[value] = max(t, out.get(value, t))
        if len(out) > cap:
            keep = sorted(out, key=lambda v: (out[v], v))[-cap:]
            out = {v: out[v] for v in keep}
        return out

    def dump(self, acc: dict[Any, int]) -> tuple[Any, ...]:
        return tuple(x for v in sorted(acc) for x in (v, acc[v]))

    def load(self, raw: Any) -> dict[Any, int]:
        return dict(zip(raw[::2], raw[1::2], strict=True))


class DistinctCount(_Newest):
    """Distinct values; saturates at ``limits.values`` (the most recently seen kept)."""

    name = "distinct_count"

    def result(self, acc: dict[Any, int]) -> int:
        return len(acc)


class UniqueList(_Newest):
    """Distinct values, sorted; at most ``limits.values``, the most recently seen."""

    name = "unique_list"

    def result(self, acc: dict[Any, int]) -> list[Any]:
        return sorted(acc)


class _Edge(_Pick):
    """``(time, value)`` of the earliest or latest event, ties by value."""

    def entry(self, value: Any, t: int) -> Any:
        return (t, value)

    def result(self, acc: Any) -> Any:
        return None if acc is None else acc[1]

    def load(self, raw: Any) -> Any:
        return None if raw is None else (raw[0], raw[1])


class First(_Edge):
    name = "first"
    pick = min


class Last(_Edge):
    name = "last"
    pick = max


class _Time(_Pick):
    value_types = ()

    def entry(self, value: Any, t: int) -> int:
        return t


class FirstTime(_Time):
    name = "first_time"
    pick = min


class LastTime(_Time):
    name = "last_time"
    pick = max


class MostFrequent(Kind):
    """value -> how many times; the value seen most often (ties: the smallest value).

    Exact while at most ``limits.values`` distinct values are seen (per window bucket, for
    day windows). Beyond, the least frequent (ties: the largest value) is dropped, and a
    dropped value seen again starts from one: then the answer is an approximation, and
    may depend on the order of events.
    """

    name = "most_frequent"
    bounded_by_values = True

    def init(self) -> dict[Any, int]:
        return {}

    def fold(self, acc: dict[Any, int], value: Any, t: int, cap: int) -> dict[Any, int]:
        acc[value] = acc.get(value, 0) + 1
        if len(acc) > cap:
            self._drop(acc, cap)
        return acc

    def merge(self, a: dict[Any, int], b: dict[Any, int], cap: int) -> dict[Any, int]:
        out = dict(a)
        for value, n in b.items():
            out[value] = out.get(value, 0) + n
        if len(out) > cap:
            self._drop(out, cap)
        return out

    @staticmethod
    def _drop(acc: dict[Any, int], cap: int) -> None:
        for v in sorted(acc, key=lambda v: (acc[v], _Reverse(v)))[: len(acc) - cap]:
            del acc[v]

    def result(self, acc: dict[Any, int]) -> Any:
        if not acc:
            return None
        return min(acc, key=lambda v: (-acc[v], v))

    def dump(self, acc: dict[Any, int]) -> tuple[Any, ...]:
        return tuple(x for v in sorted(acc) for x in (v, acc[v]))

    def load(self, raw: Any) -> dict[Any, int]:
        return dict(zip(raw[::2], raw[1::2], strict=True))


class _Reverse:
    """Sorts in the reverse order of the value it wraps."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Reverse) -> bool:
        return bool(other.v < self.v)


KINDS: Final[dict[str, Kind]] = {
    k.name: k()
    for k in (
        Count,
        Sum,
        Min,
        Max,
        Avg,
        DistinctCount,
        UniqueList,
        First,
        Last,
        FirstTime,
        LastTime,
        MostFrequent,
    )
}
"""Kind name -> its strategy (stateless: one instance serves every trait)."""
