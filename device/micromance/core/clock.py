"""Time, injected: the core never reads a clock, the runtime asks one of these.

Two readings travel together: a monotonic one for durations (holds, timeouts, animation)
and an aware local wall time for the calendar (quiet hours, mornings, "today").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from pathlib import Path
from typing import Protocol


def seconds_until(wall: datetime, day: date, at: clock_time) -> float:
    """Real seconds from ``wall`` to ``at`` o'clock on ``day`` in ``wall``'s zone (negative
    when that is past). A wall time that DST skips resolves to a real instant, by a round
    trip through UTC; seconds are counted in UTC, so an hour that DST adds or removes
    counts as it is lived."""
    zone = wall.tzinfo
    candidate = datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)
    return (candidate.astimezone(UTC) - wall.astimezone(UTC)).total_seconds()


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


def local_zone() -> tzinfo:
    """The system's named time zone (so DST is right for future times), else a fixed offset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    key = os.environ.get("TZ", "").lstrip(":")
    if not key:
        try:
            target = Path("/etc/localtime").resolve()
            key = str(target).split("zoneinfo/", 1)[1] if "zoneinfo/" in str(target) else ""
        except OSError:
            key = ""
    if key:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


class SystemClock:
    """The real clock."""

    def __init__(self, zone: tzinfo | None = None) -> None:
        self._zone = zone or local_zone()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(self._zone)


@dataclass
class FakeClock:
    """A clock tests move by hand; both readings advance together."""

    wall: datetime
    mono: float = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        # Aware arithmetic in UTC, so stepping across a DST change behaves like real time.
        zone = self.wall.tzinfo
        self.wall = (self.wall.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(zone)

