"""Quiet hours in the customer's own time zone: one pure function.

Wall-clock time: ``now_ms`` is the worker's clock (UTC milliseconds), read once per
decision and passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["QuietHours", "quiet_until"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times ``[start, end)`` when no email goes out; ``start > end`` spans midnight.

    >>> QuietHours.parse("21:00-08:00")
    QuietHours(start=datetime.time(21, 0), end=datetime.time(8, 0))
    """

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"HH:MM-HH:MM"``; raises ``ValueError`` naming the expected shape."""
        try:
            a, b = text.split("-")
            start, end = time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
        except ValueError:
            raise ValueError("expected HH:MM-HH:MM, e.g. 21:00-08:00") from None
        if start == end:
            raise ValueError("start and end of quiet hours must differ")
        return cls(start, end)

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def quiet_until(now_ms: int, tz_name: str | None, hours: QuietHours | None) -> int | None:
    """When quiet hours end (UTC ms) if ``now_ms`` falls inside them in ``tz_name``;
    ``None`` if not quiet, no quiet hours are set, or the zone is unknown or invalid.

    >>> q = QuietHours.parse("21:00-08:00")
    >>> t = int(datetime(2026, 11, 2, 22, 30, tzinfo=UTC).timestamp() * 1000)  # 23:30 Berlin
    >>> end = quiet_until(t, "Europe/Berlin", q)
    >>> datetime.fromtimestamp(end / 1000, UTC).isoformat()
    '2026-11-03T07:00:00+00:00'
    >>> quiet_until(t, "Asia/Tokyo", q) is None  # 07:30 next morning there: also quiet
    False
    >>> quiet_until(t, "America/New_York", q) is None  # 17:30 there
    True
    """
    if hours is None or not tz_name:
        return None
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    local = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(zone)
    if not hours.contains(local.time()):
        return None
    end = local.replace(hour=hours.end.hour, minute=hours.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Re-resolve the wall-clock time in the zone (a DST change may lie in between).
    end = datetime.combine(end.date(), hours.end, tzinfo=zone)
    return int(end.astimezone(UTC).timestamp() * 1000)
