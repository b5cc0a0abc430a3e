"""The rules' expression language: parsed by Lark, compiled to closures, never ``eval``.

Grammar, loosest binding first::

    expr     := expr "or" expr | expr "and" expr | "not" expr | comparison
    compare  := sum (("==" | "!=" | ">=" | "<=" | ">" | "<" | "in") sum)?
    sum      := product (("+" | "-") product)*
    product  := atom (("*" | "/") atom)*
    atom     := number | duration | "string" | true | false | null
              | name ("." name)*          a fact, e.g. orders_90d, attributes.country
              | function "(" args ")"     see FUNCTIONS: since, count, exists, and
                                          max, min, sum over a map's values or a list
              | "(" expr ")" | "-" atom

A *duration* is a number with a unit, ``ms s m h d`` (``30d``, ``60m``), and means
milliseconds, the unit of every time. Missing values are ``null``: arithmetic with
``null`` gives ``null``, and a comparison with ``null`` is false (so
``since(last_order_at) <= 30d`` is false for a customer who never ordered). ``in``
tests membership in a list, a set or a string.

>>> e = compile_expression("orders_90d >= 3 and since(last_active) < 30d",
...                        {"orders_90d", "last_active"})
>>> e.evaluate({"orders_90d": 3, "last_active": 0}, now=86_400_000)
True
>>> e.deadlines({"orders_90d": 3, "last_active": 0})
[2592000000]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from state.exceptions import StateError

__all__ = ["FUNCTIONS", "Expression", "ExpressionError", "compile_expression", "parse_duration"]

_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr ("or" and_expr)*
?and_expr: not_expr ("and" not_expr)*
?not_expr: "not" not_expr -> not_
         | cmp_expr
?cmp_expr: sum_expr (CMP sum_expr)?
         | sum_expr "in" sum_expr -> in_
?sum_expr: mul_expr (ADD_OP mul_expr)*
?mul_expr: atom (MUL_OP atom)*
?atom: DURATION -> duration
     | NUMBER -> number
     | ESCAPED_STRING -> string
     | SINGLE_STRING -> string
     | "true" -> true
     | "false" -> false
     | "null" -> null
     | NAME "(" [or_expr ("," or_expr)*] ")" -> call
     | NAME ("." NAME)* -> var
     | "(" or_expr ")"
     | "-" atom -> neg
CMP: "==" | "!=" | ">=" | "<=" | ">" | "<"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/"
DURATION.2: /\d+(\.\d+)?(ms|s|m|h|d)(?![A-Za-z0-9_])/
SINGLE_STRING: /'[^'\\]*'/
%import common.NUMBER
%import common.ESCAPED_STRING
%import common.CNAME -> NAME
%import common.WS
%ignore WS
"""
_PARSER = Lark(_GRAMMAR, parser="lalr")
_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")


class ExpressionError(StateError):
    """An expression that does not parse or names something unknown."""

    reason = "rules"


@dataclass(frozen=True, slots=True)
class _Scope:
    facts: Mapping[str, Any]
    now: int


Fn = Callable[[Mapping[str, Any], int], Any]
"""A compiled part of an expression: its value given the facts and the time (now)."""


def _since(scope: _Scope, t: Any) -> Any:
    return None if t is None else scope.now - t


def _count(_: _Scope, value: Any) -> Any:
    return None if value is None else len(value)


def _has(_: _Scope, value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _numbers(value: Any) -> list[Any] | None:
    """The numbers of a map's values or a list's items; ``None`` if it holds none."""
    if isinstance(value, Mapping):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return None
    found = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    return found or None


def _max(_: _Scope, value: Any) -> Any:
    found = _numbers(value)
    return None if found is None else max(found)


def _min(_: _Scope, value: Any) -> Any:
    found = _numbers(value)
    return None if found is None else min(found)


def _sum(_: _Scope, value: Any) -> Any:
    found = _numbers(value)
    return 0 if found is None else sum(found)


#: name -> (function of scope and arguments, number of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "since": (_since, 1),  # ms from a time to now (event time, or the timer's time)
    "count": (_count, 1),  # length of a list or map
    "exists": (_has, 1),  # not null and not empty
    "max": (_max, 1),  # the largest number of a map's values or a list (null if none)
    "min": (_min, 1),  # the smallest, likewise
    "sum": (_sum, 1),  # their sum (0 if none)
}


def parse_duration(text: str) -> int:
    """``"24h"`` -> 86400000.

    >>> parse_duration("90d") == 90 * 86_400_000
    True
    """
    m = _DURATION.match(text.strip())
    if not m:
        raise ExpressionError(f"not a duration: {text!r} (use e.g. 60m, 24h, 30d)")
    return round(float(m.group(1)) * _UNITS[m.group(2)])


def _null_safe(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        try:
            return op(a, b)
        except (TypeError, ZeroDivisionError):
            return None

    return apply


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _null_safe(lambda a, b: a + b),
    "-": _null_safe(lambda a, b: a - b),
    "*": _null_safe(lambda a, b: a * b),
    "/": _null_safe(lambda a, b: a / b),
}


@dataclass
class _Compiler(Transformer[Token, Fn]):
    known: Collection[str]
    names: set[str] = field(default_factory=set)
    # (fact, duration ms): from `since(fact) <op> duration`, times the truth can flip.
    timers: list[tuple[str, int]] = field(default_factory=list)
    # How many `since(...)` calls: when each is a timer, `now` is read only through them.
    since_calls: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    @v_args(inline=True)
    def number(self, tok: Token) -> Fn:
        value = float(tok) if any(c in tok for c in ".eE") else int(tok)
        return _Value(value)

    @v_args(inline=True)
    def duration(self, tok: Token) -> Fn:
        value = parse_duration(str(tok))
        return _Const(value)

    @v_args(inline=True)
    def string(self, tok: Token) -> Fn:
        return _Value(str(tok)[1:-1])

    def true(self, _: list[Fn]) -> Fn:
        return lambda f, n: True

    def false(self, _: list[Fn]) -> Fn:
        return lambda f, n: False

    def null(self, _: list[Fn]) -> Fn:
        return lambda f, n: None

    def var(self, parts: list[Token]) -> Fn:
        head, *rest = (str(p) for p in parts)
        if head not in self.known:
            raise ExpressionError(f"unknown name {head!r}; known: {', '.join(sorted(self.known))}")
        self.names.add(head)
        return _Fact(head, tuple(rest))

    def call(self, children: list[Any]) -> Fn:
        name, *args = children
        args = [a for a in args if a is not None]
        if str(name) not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function {str(name)!r}; known: {', '.join(sorted(FUNCTIONS))}"
            )
        impl, arity = FUNCTIONS[str(name)]
        if len(args) != arity:
            raise ExpressionError(f"{name}() takes {arity} argument(s), got {len(args)}")
        if str(name) == "since":
            self.since_calls += 1
        if str(name) == "since" and isinstance(args[0], _Fact) and not args[0].path:
            return _Since(args[0].name)
        return lambda f, n: impl(_Scope(f, n), *(a(f, n) for a in args))

    def cmp_expr(self, children: list[Any]) -> Fn:
        left, op, right = children
        if isinstance(left, _Since) and isinstance(right, _Const):
            self.timers.append((left.name, right.value))
        elif isinstance(right, _Since) and isinstance(left, _Const):
            self.timers.append((right.name, left.value))
        return _comparison(str(op), left, right)

    @v_args(inline=True)
    def in_(self, item: Fn, container: Fn) -> Fn:
        def member(f: Mapping[str, Any], n: int) -> bool:
            c = container(f, n)
            i = item(f, n)
            if c is None or i is None:
                return False
            try:
                return i in c
            except TypeError:
                return False

        return member

    def sum_expr(self, children: list[Any]) -> Fn:
        return self._chain(children)

    def mul_expr(self, children: list[Any]) -> Fn:
        return self._chain(children)

    @staticmethod
    def _chain(children: list[Any]) -> Fn:
        first, rest = children[0], children[1:]
        steps = [(_ARITH[str(rest[i])], rest[i + 1]) for i in range(0, len(rest), 2)]

        def run(f: Mapping[str, Any], n: int) -> Any:
            acc = first(f, n)
            for op, operand in steps:
                acc = op(acc, operand(f, n))
            return acc

        return run

    @v_args(inline=True)
    def neg(self, operand: Fn) -> Fn:
        return lambda f, n: None if (v := operand(f, n)) is None else -v

    @v_args(inline=True)
    def not_(self, operand: Fn) -> Fn:
        return lambda f, n: not operand(f, n)

    def and_expr(self, children: list[Fn]) -> Fn:
        if len(children) == 2:
            a, b = children
            return lambda f, n: bool(a(f, n) and b(f, n))
        return lambda f, n: all(c(f, n) for c in children)

    def or_expr(self, children: list[Fn]) -> Fn:
        if len(children) == 2:
            a, b = children
            return lambda f, n: bool(a(f, n) or b(f, n))
        return lambda f, n: any(c(f, n) for c in children)


def _comparison(op: str, left: Fn, right: Fn) -> Fn:
    """``left op right`` as a bool: ``==`` and ``!=`` compare anything; an ordering is
    false when a side is ``null`` or the two do not compare."""
    if op == "==":
        return lambda f, n: bool(left(f, n) == right(f, n))
    if op == "!=":
        return lambda f, n: bool(left(f, n) != right(f, n))
    order = _ORDER[op]
    if isinstance(right, _Const | _Value) and isinstance(left, _Fact | _Since):
        return _compare_to_constant(order, left, right.value)

    def compare(f: Mapping[str, Any], n: int) -> bool:
        a = left(f, n)
        b = right(f, n)
        if a is None or b is None:
            return False
        try:
            result = order(a, b)
        except (TypeError, ZeroDivisionError):
            return False
        return bool(result)

    return compare


def _compare_to_constant(order: Callable[[Any, Any], Any], left: _Fact | _Since, b: Any) -> Fn:
    """:func:`_comparison` of a fact (or ``since(fact)``) with a constant, the common shape
    (``orders_90d >= 3``, ``since(last_active) <= 30d``), without the calls of its parts:
    the same value, errors included."""
    name = left.name
    if isinstance(left, _Since):

        def since(f: Mapping[str, Any], n: int) -> bool:
            try:
                t = f[name]
            except KeyError:
                return False
            if t is None:
                return False
            a = n - t  # a TypeError here propagates, as from _Since
            if b is None:
                return False
            try:
                return bool(order(a, b))
            except (TypeError, ZeroDivisionError):
                return False

        return since
    path = left.path

    def fact(f: Mapping[str, Any], n: int) -> bool:
        try:
            a = f[name]
        except KeyError:
            return False
        for key in path:
            a = a.get(key) if isinstance(a, Mapping) else None
        if a is None or b is None:
            return False
        try:
            return bool(order(a, b))
        except (TypeError, ZeroDivisionError):
            return False

    return fact


_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True, slots=True)
class _Const:
    value: int

    def __call__(self, f: Mapping[str, Any], n: int) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class _Value:
    """A literal: a number or a string (a duration is a :class:`_Const`)."""

    value: Any

    def __call__(self, f: Mapping[str, Any], n: int) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class _Fact:
    name: str
    path: tuple[str, ...]

    def __call__(self, f: Mapping[str, Any], n: int) -> Any:
        try:  # not .get: a lazy mapping computes a missing fact in __missing__
            value = f[self.name]
        except KeyError:
            value = None
        for key in self.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value


@dataclass(frozen=True, slots=True)
class _Since:
    name: str

    def __call__(self, f: Mapping[str, Any], n: int) -> Any:
        try:
            t = f[self.name]
        except KeyError:
            return None
        return None if t is None else n - t


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: :meth:`evaluate` it against facts at a moment."""

    source: str
    names: frozenset[str]
    timers: tuple[tuple[str, int], ...]
    _fn: Fn
    time_exact: bool = True
    """``now`` is read only through :attr:`timers`: between two moments that
    :meth:`deadlines` names, the same facts give the same verdict."""

    def evaluate(self, facts: Mapping[str, Any], now: int) -> bool:
        return bool(self._fn(facts, now))

    def deadlines(self, facts: Mapping[str, Any]) -> list[int]:
        """Moments when ``since(fact) <op> duration`` parts can change truth with no new
        event: ``fact + duration`` and the millisecond after (for strict comparisons)."""
        out = []
        for name, duration in self.timers:
            t = facts.get(name)
            if isinstance(t, int):
                out.append(t + duration)
        return sorted(out)


def compile_expression(source: str, known: Collection[str]) -> Expression:
    """Parse and compile ``source``; names must be in ``known``."""
    try:
        tree = _PARSER.parse(source)
    except UnexpectedInput as exc:
        col = getattr(exc, "column", "?")
        raise ExpressionError(f"syntax error at column {col}: {source!r}") from None
    compiler = _Compiler(known)
    try:
        fn = compiler.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExpressionError):
            raise exc.orig_exc from None
        raise
    timers = tuple(compiler.timers)
    exact = compiler.since_calls == len(timers)
    return Expression(source, frozenset(compiler.names), timers, fn, exact)
