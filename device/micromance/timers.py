"""Calendar timers through the ``schedule`` library, used from the loop thread only.

``schedule`` is not thread-safe, so the runtime owns one ``Scheduler`` and asks it how long it
may sleep; jobs only hand an event factory back to the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import schedule


class CalendarTimers:
    """Prompt rotation every N minutes and the morning focus at a fixed local time."""

    def __init__(self, interval_minutes: int, focus_time: str,
                 fire: Callable[[str], None]) -> None:
        self._scheduler = schedule.Scheduler()
        self._scheduler.every(interval_minutes).minutes.do(fire, "rotate")
        self._scheduler.every().day.at(focus_time).do(fire, "focus")

    def seconds_until_due(self) -> float | None:
        return self._scheduler.idle_seconds

    def run_due(self) -> None:
        self._scheduler.run_pending()

    def clear(self) -> None:
        self._scheduler.clear()
