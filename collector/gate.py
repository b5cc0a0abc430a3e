"""Admission control: a byte budget for request bodies in flight (back-pressure).

Each request reserves its body's worst case (``Content-Length``, or the endpoint's limit
when the length is unknown or the body is gzip) before it is read, and gives it back when
answered. A request that does not fit gets 429 with ``Retry-After``; memory held by
requests stays under the budget whatever the load. Used from the event loop only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge

from collector.exceptions import Overloaded

__all__ = ["InFlightGate"]


class InFlightGate:
    def __init__(self, budget_bytes: int, retry_after_s: int, gauge: Gauge | None = None) -> None:
        self.budget = budget_bytes
        self.used = 0
        self._retry_after = retry_after_s
        self._gauge = gauge

    @contextmanager
    def admit(self, size: int) -> Iterator[None]:
        if self.used + size > self.budget:
            raise Overloaded("too many requests in flight", retry_after=self._retry_after)
        self.used += size
        self._set_gauge()
        try:
            yield
        finally:
            self.used -= size
            self._set_gauge()

    def _set_gauge(self) -> None:
        if self._gauge is not None:
            self._gauge.set(self.used)
