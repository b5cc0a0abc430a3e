"""Admission control: a byte budget for request bodies in flight (back-pressure).

Each request reserves its body's worst case (``Content-Length``, or the endpoint's limit
when the length is unknown or the body is gzip) before it is read, and gives it back when
answered. A request that does not fit gets 429 with ``Retry-After``; memory held by
requests stays under the budget whatever the load. Used from the event loop only.

No one holds all of it: a request also reserves from its write key's share and from its
client address's share (a part of the budget each, in percent). Requests that carry their
key in the body cannot be authenticated before they are read: they all share one key
share, ``body-key``, so slow unauthenticated bodies can never take what authenticated
callers need. A share that holds nothing admits any request the budget has room for, so
a share smaller than one request never locks its owner out.

>>> gate = InFlightGate(100, 1, key_share_pct=50, peer_share_pct=100)
>>> with gate.admit(40, key="server:0", peer="10.0.0.1"):
...     with gate.admit(40, key="server:0", peer="10.0.0.1"):
...         pass
Traceback (most recent call last):
...
collector.exceptions.Overloaded: too many requests in flight for this write key
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Gauge

from collector.exceptions import Overloaded

__all__ = ["BODY_KEY", "InFlightGate"]

#: The one key share of requests whose key is in the body (read before it is checked).
BODY_KEY = "body-key"


class InFlightGate:
    def __init__(
        self,
        budget_bytes: int,
        retry_after_s: int,
        gauge: Gauge | None = None,
        *,
        key_share_pct: int = 100,
        peer_share_pct: int = 100,
    ) -> None:
        self.budget = budget_bytes
        self.used = 0
        self.key_limit = budget_bytes * key_share_pct // 100
        self.peer_limit = budget_bytes * peer_share_pct // 100
        #: Bytes held by each key and each client address with a request in flight.
        self.held: dict[str, int] = {}
        self._retry_after = retry_after_s
        self._gauge = gauge

    @contextmanager
    def admit(self, size: int, *, key: str = BODY_KEY, peer: str | None = None) -> Iterator[None]:
        if self.used + size > self.budget:
            raise Overloaded("too many requests in flight", retry_after=self._retry_after)
        shares = [(f"key:{key}", self.key_limit, "write key")]
        if peer is not None:
            shares.append((f"peer:{peer}", self.peer_limit, "client address"))
        for name, limit, what in shares:
            held = self.held.get(name, 0)
            if held and held + size > limit:
                raise Overloaded(
                    f"too many requests in flight for this {what}", retry_after=self._retry_after
                )
        self._add(size, [name for name, _, _ in shares])
        try:
            yield
        finally:
            self._add(-size, [name for name, _, _ in shares])

    def _add(self, size: int, names: list[str]) -> None:
        self.used += size
        for name in names:
            held = self.held.get(name, 0) + size
            if held:
                self.held[name] = held
            else:
                del self.held[name]  # bounded by the requests in flight, not by clients seen
        if self._gauge is not None:
            self._gauge.set(self.used)
