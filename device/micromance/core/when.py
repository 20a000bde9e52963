"""Times in words, pure: "2 h ago", "yesterday 21:40", "since 18:05".

The core has the wall clock; the screens only draw the words it gives them. Times from the
partner (a message's ``time``, ISO with an offset) are read with ``parse_time``; they may be
a little ahead of our clock, so ``ago`` never says "in 2 minutes".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

RELATIVE_HOURS = 6     # up to this many hours: "2 h ago"; older: a day and a clock time
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=64)
def parse_time(text: str) -> datetime | None:
    """An aware datetime from ISO text (a message's ``time``); None if it is not one.

    Cached: each press compares its time with the last few presses of both partners."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.utcoffset() is not None else None


def stamp(wall: datetime) -> str:
    """``wall`` as ISO text with its offset, to the second (as messages carry it)."""
    return wall.isoformat(timespec="seconds")


def _clock(then: datetime) -> str:
    return f"{then.hour:02d}:{then.minute:02d}"


def _day(then: datetime, now: datetime) -> str:
    """``today``, ``yesterday``, ``Mon`` (within a week) or ``12 Nov``, in ``now``'s zone."""
    days = (now.date() - then.date()).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return WEEKDAYS[then.weekday()]
    return f"{then.day} {MONTHS[then.month - 1]}"


def ago(then: datetime, now: datetime) -> str:
    """How long ago ``then`` was: ``just now``, ``12 min ago``, ``2 h ago``, then a day and
    a clock time (``today 08:10``, ``yesterday 21:40``, ``Mon 21:40``), then a date."""
    then = then.astimezone(now.tzinfo)
    seconds = (now - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < RELATIVE_HOURS * 3600:
        return f"{int(seconds // 3600)} h ago"
    day = _day(then, now)
    return day if (now.date() - then.date()).days >= 7 else f"{day} {_clock(then)}"


def since(then: datetime, now: datetime) -> str:
    """A moment as a person says "since ...": ``18:05`` today, else ``yesterday 18:05``,
    ``Mon 18:05``, or ``12 Nov`` a week or more ago."""
    then = then.astimezone(now.tzinfo)
    day = _day(then, now)
    if day == "today":
        return _clock(then)
    return day if (now.date() - then.date()).days >= 7 else f"{day} {_clock(then)}"


def waited(then: datetime, now: datetime) -> timedelta:
    """How long something from ``then`` has waited by ``now`` (never negative)."""
    return max(timedelta(0), now - then)
