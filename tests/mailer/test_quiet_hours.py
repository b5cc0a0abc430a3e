"""Quiet hours: windows across midnight and within a day, zones, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailer.quiet_hours import QuietHours, quiet_until


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ((2026, 7, 1, 18, 59), None),  # 20:59 in Berlin (CEST): not yet
        ((2026, 7, 1, 19, 0), (2026, 7, 2, 6, 0)),  # 21:00: quiet until 08:00 CEST
        ((2026, 7, 2, 5, 59), (2026, 7, 2, 6, 0)),  # 07:59 the next morning
        ((2026, 7, 2, 6, 0), None),  # 08:00: over
    ],
)
def test_a_window_across_midnight(utc, expected) -> None:
    q = QuietHours.parse("21:00-08:00")
    got = quiet_until(_ms(*utc), "Europe/Berlin", q)
    assert got == (None if expected is None else _ms(*expected))


def test_a_window_within_one_day() -> None:
    q = QuietHours.parse("12:00-14:00")
    assert quiet_until(_ms(2026, 1, 5, 12, 30), "UTC", q) == _ms(2026, 1, 5, 14, 0)
    assert quiet_until(_ms(2026, 1, 5, 14, 0), "UTC", q) is None


def test_the_end_is_resolved_across_a_dst_change() -> None:
    # Night of 2026-10-24/25: Berlin falls back from CEST (+2) to CET (+1) at 03:00.
    q = QuietHours.parse("21:00-08:00")
    assert quiet_until(_ms(2026, 10, 24, 20, 0), "Europe/Berlin", q) == _ms(2026, 10, 25, 7, 0)


@pytest.mark.parametrize("zone", [None, "", "Not/AZone", "../etc/passwd"])
def test_no_or_an_unknown_zone_means_not_quiet(zone) -> None:
    assert quiet_until(_ms(2026, 1, 5, 23, 0), zone, QuietHours.parse("21:00-08:00")) is None


@pytest.mark.parametrize("text", ["21:00", "25:00-08:00", "08:00-08:00", "x-y"])
def test_parse_refuses_malformed_windows(text) -> None:
    with pytest.raises(ValueError, match=r"quiet hours|HH:MM"):
        QuietHours.parse(text)
