"""A secret setting whose ``repr`` and ``str`` never show the value."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

__all__ = ["Secret"]


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string; :meth:`reveal` gives it, :meth:`matches` compares in constant time.

    >>> s = Secret("hunter2")
    >>> str(s), repr(s)
    ('**********', 'Secret()')
    >>> s.matches("hunter2"), s.matches("hunter3")
    (True, False)
    """

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __str__(self) -> str:
        return "**********"
