"""The numbers a unit keeps: grow-only totals, today's count, the done streak, what waits."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta


@dataclass(frozen=True)
class Counters:
    """Grow-only totals plus today's count and the done streak (days as ISO dates)."""

    sent_total: int = 0
    received_total: int = 0
    today: int = 0
    day: str = ""
    streak: int = 0
    last_done_day: str = ""
    pending: int = 0                   # partner's thank-yous not yet acknowledged
    partner_name: str = ""
    received_seq: int = 0              # the partner's seq that brought ``received_total``

    def today_on(self, day: date) -> int:
        return self.today if self.day == day.isoformat() else 0

    def streak_on(self, day: date) -> int:
        """The streak still counts if the last done day is today or yesterday."""
        alive = (day.isoformat(), (day - timedelta(days=1)).isoformat())
        return self.streak if self.last_done_day in alive else 0

    def add_today(self, count: int, day: date) -> Counters:
        return replace(self, today=self.today_on(day) + count, day=day.isoformat())
