"""Money as integers: sums that do not depend on the order they were added in.

Amounts arrive as Avro doubles in the currency's unit. Adding floats in a different
order can change the last bits of the total, which would make the profile depend on
arrival order; so amounts are kept as integer ten-thousandths of the unit (exact for
every ISO 4217 currency's minor unit) and turned back into floats only for display.
No currency conversion is done: totals assume one currency per customer.
"""

from __future__ import annotations

from typing import Final

__all__ = ["UNITS", "from_units", "to_units"]

UNITS: Final = 10_000
"""Stored units per currency unit."""


def to_units(amount: float | int | None) -> int:
    """``amount`` in stored units; ``None`` counts as zero.

    >>> to_units(59.99), to_units(None), to_units(0.1) + to_units(0.2) == to_units(0.3)
    (599900, 0, True)
    """
    return 0 if amount is None else round(amount * UNITS)


def from_units(units: int) -> float:
    """Stored units back in the currency's unit.

    >>> from_units(599900)
    59.99
    """
    return units / UNITS
