"""The wall clock, injected: operators take a ``Clock`` so tests can set the time."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "system_clock_ms"]

Clock = Callable[[], int]
"""Returns wall-clock time in milliseconds since the Unix epoch, UTC."""


def system_clock_ms() -> int:
    return time.time_ns() // 1_000_000
