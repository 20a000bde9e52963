"""The numbers a unit keeps: grow-only totals, today's count, the done streak, what waits,
the last week's counts, 30 days of history (the web page's chart), and the shared moments.

The store keeps them as JSON, so tuples come back as lists and a damaged or older record may
lack fields or hold odd values: ``Counters.from_stored`` puts every field back into shape and
never raises, so a bad field costs that field, not the counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

from micromance.core.records import evolve as replace  # quick copies

#: Days the week screen shows (today and the six before it).
WEEK_DAYS = 7
#: Press times kept per side for "Together" (a burst of presses is still matched).
PRESSES_KEPT = 8
#: Days the history keeps (today and the 29 before it).
HISTORY_DAYS = 30

#: One day of history: (ISO date, thank-yous sent, received, gestures done).
HistoryDay = tuple[str, int, int, int]


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
    pending_at: str = ""               # when the oldest of them came (ISO, the sender's time)
    #: Thank-yous both ways per day, ``(ISO date, count)``, the last ``WEEK_DAYS`` days.
    days: tuple[tuple[str, int], ...] = ()
    together_total: int = 0            # shared moments: both pressed within minutes
    together_last: str = ""            # the later press of the last moment (ISO)
    together_held: bool = False        # a moment came in quiet hours: shown in the morning
    sent_times: tuple[str, ...] = ()   # our latest presses (ISO), for "Together"...
    received_times: tuple[str, ...] = ()   # ...and the partner's, from their messages
    week_shown: str = ""               # the Sunday the week screen last showed by itself
    #: Per day, oldest first, the last ``HISTORY_DAYS`` days: ``(ISO date, sent, received,
    #: done)``; a day with nothing is left out.
    history: tuple[HistoryDay, ...] = ()

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Counters:
        """Counters from the store's JSON (or anything not made by the core): unknown keys
        are ignored and a field of the wrong type or shape takes its default, the others are
        kept. The core's own copies are not checked again: it makes only well-formed counters,
        and checking every copy cost 0.1 ms of each press."""
        names = {f.name for f in fields(cls)}
        counters = cls(**{k: v for k, v in data.items() if k in names})
        for name in ("sent_total", "received_total", "today", "streak", "pending",
                     "received_seq", "together_total"):
            value = getattr(counters, name)
            if type(value) is not int or value < 0:
                object.__setattr__(counters, name, 0)
        for name in ("day", "last_done_day", "partner_name", "pending_at", "together_last",
                     "week_shown"):
            if not isinstance(getattr(counters, name), str):
                object.__setattr__(counters, name, "")
        if not isinstance(counters.together_held, bool):
            object.__setattr__(counters, "together_held", False)
        object.__setattr__(counters, "days", _day_counts(counters.days))
        object.__setattr__(counters, "history", _history(counters.history))
        for name in ("sent_times", "received_times"):
            object.__setattr__(counters, name,
                               _strings(getattr(counters, name))[-PRESSES_KEPT:])
        return counters

    def today_on(self, day: date) -> int:
        return self.today if self.day == day.isoformat() else 0

    def streak_on(self, day: date) -> int:
        """The streak still counts if the last done day is today or yesterday."""
        alive = (day.isoformat(), (day - timedelta(days=1)).isoformat())
        return self.streak if self.last_done_day in alive else 0

    def note_day(self, day: date, *, sent: int = 0, received: int = 0,
                 done: int = 0) -> Counters:
        """``day``'s history row grows by these; rows older than ``HISTORY_DAYS`` go."""
        return replace(self, history=self._history_with(day, sent, received, done))

    def thanked(self, day: date, *, sent: int = 0, received: int = 0,
                **changes: Any) -> Counters:
        """Thank-yous ``sent`` or ``received`` on ``day``, counted in today's count, the
        week's and the history, with ``changes`` to other fields: one copy, as a press and a
        delivery make it before the partner's light."""
        return replace(self, **changes, **self._week_with(sent + received, day),
                       history=self._history_with(day, sent, received, 0))

    def _week_with(self, count: int, day: date) -> dict[str, Any]:
        """``today``, ``day`` and ``days`` with ``count`` more on ``day``."""
        key = day.isoformat()
        today = (self.today if self.day == key else 0) + count
        first = (day - timedelta(days=WEEK_DAYS - 1)).isoformat()
        kept = tuple((d, n) for d, n in self.days if first <= d < key)
        return {"today": today, "day": key, "days": (*kept, (key, today))}

    def _history_with(self, day: date, sent: int, received: int, done: int) \
            -> tuple[HistoryDay, ...]:
        key = day.isoformat()
        history = self.history
        if history and history[-1][0] == key:  # today's row is the last: only it changes
            _, old_sent, old_received, old_done = history[-1]
            return (*history[:-1], (key, old_sent + sent, old_received + received,
                                    old_done + done))
        first = (day - timedelta(days=HISTORY_DAYS - 1)).isoformat()
        rows = {row[0]: row for row in history if first <= row[0] <= key}
        _, old_sent, old_received, old_done = rows.get(key, (key, 0, 0, 0))
        rows[key] = (key, old_sent + sent, old_received + received, old_done + done)
        return tuple(sorted(rows.values()))

    def week(self, day: date) -> tuple[int, ...]:
        """Thank-yous both ways on each of the ``WEEK_DAYS`` days up to ``day``, oldest first."""
        counts = dict(self.days)
        if self.day:
            counts[self.day] = self.today  # the day last counted (also from before ``days``)
        return tuple(counts.get((day - timedelta(days=back)).isoformat(), 0)
                     for back in range(WEEK_DAYS - 1, -1, -1))


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _day_counts(value: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    out = []
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) \
                and type(item[1]) is int and item[1] >= 0:
            out.append((item[0], item[1]))
    return tuple(sorted(out)[-WEEK_DAYS:])


def _history(value: Any) -> tuple[HistoryDay, ...]:
    """Rows that make sense, one per day (the last one kept), the newest ``HISTORY_DAYS``."""
    if not isinstance(value, (list, tuple)):
        return ()
    rows: dict[str, HistoryDay] = {}
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 4 and isinstance(item[0], str) \
                and _is_iso_date(item[0]) \
                and all(type(n) is int and n >= 0 for n in item[1:]):
            rows[item[0]] = (item[0], item[1], item[2], item[3])
    return tuple(sorted(rows.values())[-HISTORY_DAYS:])


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
