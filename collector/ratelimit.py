"""Per-client rate limits: a token bucket per write key and per webhook source.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens a second (read from an
injected monotonic clock, in seconds). A request costs one token per item it carries,
valid or not (an item that is dead-lettered costs what a stored one does, no more). It is
admitted only when the bucket holds its whole cost; otherwise it is refused with
:class:`~collector.exceptions.RateLimited`, whose ``retry_after`` is the whole number of
seconds until the bucket holds enough, and nothing is taken. A bucket never goes into
debt, so one request cannot lock a shared key out for longer than its own cost's worth
of the rate; a request costing more than the burst could never pass and is refused with
:class:`~collector.exceptions.TooManyItems` (the endpoints cap batches below it first).

Buckets are keyed by the configured write key (its position among the keys, never the
key itself) or webhook source, so their number is bounded by the configuration. Used
from the event loop only.

>>> clock = [0.0]
>>> limits = RateLimiter(rate=10, burst=20, clock=lambda: clock[0])
>>> limits.take("key:0", 15)
>>> limits.take("key:0", 10)
Traceback (most recent call last):
...
collector.exceptions.RateLimited: more than 10 events a second for this write key or source
>>> clock[0] = 0.5  # 5 + 5 tokens
>>> limits.take("key:0", 10)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from collector.exceptions import RateLimited, TooManyItems

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``tokens`` as of ``updated`` (clock seconds), between 0 and ``burst``."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens and return 0.0, or return the seconds to wait (taking none)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """Token buckets by client; ``rate == 0`` turns limiting off."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @property
    def max_cost(self) -> float:
        """The most one request may cost (the burst; unbounded when limiting is off)."""
        return self.burst if self.enabled else math.inf

    def take(self, client: str, cost: int) -> None:
        """Charge ``cost`` events to ``client`` or raise :class:`RateLimited`."""
        if self.rate <= 0 or cost <= 0:
            return
        if cost > self.burst:
            raise TooManyItems(f"a request may carry at most {self.burst:g} events for this key")
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.take(cost, now)
        if wait > 0:
            raise RateLimited(
                f"more than {self.rate:g} events a second for this write key or source",
                retry_after=max(1, math.ceil(wait)),
            )
