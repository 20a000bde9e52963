"""Quiet hours: a daily window of local time that may cross midnight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from micromance.core.clock import seconds_until


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
        now = wall.time()  # naive: time() drops the zone
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def seconds_until_change(self, wall: datetime) -> float | None:
        """Real seconds from ``wall`` until the window next opens or closes (DST-aware)."""
        if not self.enabled or self.start == self.end:
            return None
        boundary = self.end if self.contains(wall) else self.start
        for days in range(3):
            delta = seconds_until(wall, wall.date() + timedelta(days=days), boundary)
            if delta > 0:
                return delta
        return None
