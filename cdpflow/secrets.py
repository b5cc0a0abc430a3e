"""Secrets in settings: a type whose ``repr`` and ``str`` never show the value, and one
way to read them: a variable (comma-separated) or a file named by ``<VARIABLE>_FILE``
(one secret a line, for mounted secrets). The collector's write keys and webhook secrets,
the profile API's tokens and the mailer's passwords all use them."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cdpflow.errors import ConfigError

__all__ = ["Secret", "secrets_from_env"]


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string; :meth:`reveal` gives it, :meth:`matches` compares in constant time.

    >>> s = Secret("hunter2")
    >>> str(s), repr(s)
    ('**********', 'Secret()')
    >>> s.matches("hunter2"), s.matches(b"hunter2"), s.matches("hunter3")
    (True, True, False)
    """

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def reveal_bytes(self) -> bytes:
        """The UTF-8 bytes, e.g. an HMAC key."""
        return self._value.encode()

    def matches(self, candidate: str | bytes) -> bool:
        if isinstance(candidate, str):
            candidate = candidate.encode()
        return hmac.compare_digest(self._value.encode(), candidate)

    def __str__(self) -> str:
        return "**********"


def secrets_from_env(
    env: Mapping[str, str], name: str, *, min_length: int = 0
) -> tuple[Secret, ...]:
    """``name`` (comma-separated) and the file ``name_FILE`` names (one a line), in that
    order, blanks and repeats left out. A secret shorter than ``min_length``, or a file
    that cannot be read, is a :class:`ConfigError` naming the variable, never the value.

    >>> [s.reveal() for s in secrets_from_env({"K": " a, b ,,a"}, "K")]
    ['a', 'b']
    """
    values = [v.strip() for v in env.get(name, "").split(",")]
    file_name = env.get(f"{name}_FILE", "").strip()
    if file_name:
        try:
            text = Path(file_name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from None
        values += [line.strip() for line in text.splitlines()]
    secrets = tuple(Secret(v) for v in dict.fromkeys(v for v in values if v))
    if any(len(s.reveal()) < min_length for s in secrets):
        raise ConfigError(f"{name}: every value must be at least {min_length} characters")
    return secrets
