"""The value ranges every edge enforces, in one place.

Hostile input is refused where it enters (the collector's mappers and fast path, the
dataflow's decoder), with a reason naming the field, so most of it never reaches the
fold. The ranges are wide enough for any real shop and narrow enough that no arithmetic
downstream (money in integer units, timers as datetimes, windows of 400 days) can
overflow:

- times: 1970-01-01 up to, not including, 2200-01-01 UTC (ms since the epoch);
- dates (a sign-up date): 1900-01-01 to 2199-12-31;
- amounts (prices, totals, discounts): finite, at most ``MAX_AMOUNT`` in absolute value;
  a customer's lifetime sums saturate at ``MAX_TOTAL_UNITS`` rather than leave an Avro
  ``long``.

>>> amount_problem(1e305), amount_problem(float("nan")), amount_problem(59.99)
('out of range', 'not a finite number', None)
>>> time_problem(3 * 10**14), time_problem(0)
('out of range', None)
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Final

__all__ = [
    "MAX_AMOUNT",
    "MAX_DATE",
    "MAX_TIME_MS",
    "MAX_TOTAL_UNITS",
    "MIN_DATE",
    "MIN_TIME_MS",
    "amount_problem",
    "date_problem",
    "time_problem",
]

MIN_TIME_MS: Final = 0
MAX_TIME_MS: Final = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp() * 1000)
"""Exclusive upper bound of an event time, received time or any other instant."""

MIN_DATE: Final = date(1900, 1, 1)
MAX_DATE: Final = date(2199, 12, 31)

MAX_AMOUNT: Final = 1e9
"""A billion in the currency's unit: no order, price or discount is larger."""

MAX_TOTAL_UNITS: Final = 2**62
"""Saturation point of lifetime sums kept in integer units (an Avro long is 2**63 - 1)."""


def amount_problem(value: float | int) -> str | None:
    """``None`` if ``value`` is an acceptable amount, else what is wrong with it."""
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if not -MAX_AMOUNT <= value <= MAX_AMOUNT:
        return "out of range"
    return None


def time_problem(ms: int) -> str | None:
    """``None`` if ``ms`` (since the epoch) lies in the accepted range."""
    if not MIN_TIME_MS <= ms < MAX_TIME_MS:
        return "out of range"
    return None


def date_problem(value: date) -> str | None:
    """``None`` if ``value`` lies in the accepted range of dates."""
    if not MIN_DATE <= value <= MAX_DATE:
        return "out of range"
    return None
