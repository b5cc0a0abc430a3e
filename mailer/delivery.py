"""How an email leaves: the :class:`Delivery` protocol, and retries with backoff.

A delivery raises :class:`~mailer.exceptions.TransientDeliveryError` (worth retrying) or
:class:`~mailer.exceptions.PermanentDeliveryError` (not); :func:`deliver_with_retries`
retries the first kind with exponential backoff and gives up after ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mailer.exceptions import DeliveryError, TransientDeliveryError
from mailer.message import OutgoingEmail

__all__ = ["Backoff", "Delivery", "GaveUp", "deliver_with_retries"]


class Delivery(Protocol):
    """Sends one email or raises a :class:`~mailer.exceptions.DeliveryError`."""

    def send(self, email: OutgoingEmail) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt ``n`` (from 1) waits ``min(base_s * 2 ** (n - 1), max_s)`` after failing.

    >>> [Backoff(max_attempts=5, base_s=0.5, max_s=3).delay(n) for n in (1, 2, 3, 4)]
    [0.5, 1.0, 2.0, 3.0]
    """

    max_attempts: int = 4
    base_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.base_s * 2.0 ** (attempt - 1), self.max_s))


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The last error and how many attempts were made."""

    error: DeliveryError
    attempts: int


def deliver_with_retries(
    delivery: Delivery,
    email: OutgoingEmail,
    backoff: Backoff,
    sleep: Callable[[float], None],
) -> GaveUp | None:
    """``None`` once delivered; :class:`GaveUp` after a permanent error or the last try."""
    attempt = 1
    while True:
        try:
            delivery.send(email)
        except TransientDeliveryError as exc:
            if attempt >= backoff.max_attempts:
                return GaveUp(exc, attempt)
            sleep(backoff.delay(attempt))
            attempt += 1
        except DeliveryError as exc:
            return GaveUp(exc, attempt)
        else:
            return None
