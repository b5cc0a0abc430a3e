"""The event as the profile logic sees it: ids, event time and a typed payload.

Times are integers: milliseconds since the Unix epoch, UTC. They are converted once, at
the edge that decodes the event, so the logic never touches time zones or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "NO_TIME",
    "Event",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
NO_TIME: Final = -(2**62)
"""A time before any event: the watermark of a customer with no event yet."""


@dataclass(frozen=True, slots=True)
class Event:
    """One customer event, keyed by :attr:`key`.

    ``payload`` is the event type's record as plain data (see ``avro/cdp.Event.avsc``);
    ``event_time`` is the moment it happened, ``received_at`` when the edge got it.
    """

    event_id: str
    event_type: str
    event_time: int
    received_at: int
    customer_id: str | None = None
    anonymous_id: str | None = None
    source: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None
    origin: Any = field(default=None, compare=False)
    """Opaque to the logic: where the edge got the event, handed back on rejection."""

    @property
    def key(self) -> str:
        """The state key: the customer id, else ``anon:`` and the anonymous id."""
        if self.customer_id:
            return self.customer_id
        return f"anon:{self.anonymous_id}"
