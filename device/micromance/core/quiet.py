"""Quiet hours: a daily window of local time that may cross midnight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    enabled: bool = True

    @classmethod
    def parse(cls, start: str, end: str, enabled: bool = True) -> QuietHours:
        return cls(time.fromisoformat(start), time.fromisoformat(end), enabled)

    def contains(self, wall: datetime) -> bool:
        """Whether local time ``wall`` is inside the window (start inclusive, end exclusive)."""
        if not self.enabled or self.start == self.end:
            return False
        now = wall.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def seconds_until_change(self, wall: datetime) -> float | None:
        """Real seconds from ``wall`` until the window next opens or closes (DST-aware)."""
        if not self.enabled or self.start == self.end:
            return None
        boundary = self.end if self.contains(wall) else self.start
        zone = wall.tzinfo
        for days in range(3):
            day = wall.date() + timedelta(days=days)
            candidate = datetime.combine(day, boundary, tzinfo=zone)
            # Round trip through UTC: a wall time skipped by DST resolves to a real instant.
            candidate = candidate.astimezone(UTC).astimezone(zone)
            delta = (candidate.astimezone(UTC) - wall.astimezone(UTC)).total_seconds()
            if delta > 0:
                return delta
        return None
