"""Moments worth a glance, pure: "Together", the Sunday week screen, the together light.

**Together.** Both partners pressed THANKS within ``TOGETHER_WINDOW`` of each other. There is
no message for it: each unit decides by itself, from the two press times it knows (its own,
and the partner's thank-yous' ``time``), and the rule depends on those times alone, whatever
order they arrive in. So both units find the same moment, each exactly once:

- a press (ours or the partner's) makes a moment when a press of the other side lies within
  the window of it, and both presses came more than the window after the last moment's key;
- the moment's key is the latest of the presses it joins. So a moment takes in every press
  of its window: thanking back and forth makes one moment, not one per press.

**The week.** On Sunday from ``WEEK_TIME`` the week screen shows once by itself, outside quiet
hours, when the unit is at rest (``week_due``).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from micromance.core.clock import seconds_until
from micromance.core.counters import PRESSES_KEPT, Counters
from micromance.core.records import evolve as replace  # quick copies
from micromance.core.when import parse_time, stamp

TOGETHER_WINDOW = timedelta(minutes=10)
WEEK_WEEKDAY = 6             # Sunday
WEEK_TIME = time(18, 0)      # ...evening
#: The together light: three heartbeats ("ba-dum"), each ``BEAT`` seconds long: on, off, on,
#: then dark for the rest of the beat.
BEAT = 1.0
BEATS = 3
BEAT_STEPS = ((0.0, True), (0.15, False), (0.3, True), (0.45, False))


def note_press(counters: Counters, *, ours: bool, at: datetime) -> tuple[Counters, bool]:
    """Remember a THANKS press (``ours`` or the partner's, at ``at``); True when it makes a
    "Together" moment, which is then counted in the returned counters."""
    press = stamp(at)
    mine, theirs = counters.sent_times, counters.received_times
    if ours:
        mine = (*mine, press)[-PRESSES_KEPT:]
    else:
        theirs = (*theirs, press)[-PRESSES_KEPT:]
    counters = replace(counters, sent_times=mine, received_times=theirs)
    when = parse_time(press)
    assert when is not None
    last = parse_time(counters.together_last)
    others = [parse_time(p) for p in (theirs if ours else mine)]
    matches = [o for o in others if o is not None and abs(o - when) <= TOGETHER_WINDOW
               and (last is None or min(o, when) > last + TOGETHER_WINDOW)]
    if not matches:
        return counters, False
    key = max([when, *matches])
    return replace(counters, together_total=counters.together_total + 1,
                   together_last=stamp(key)), True


def week_due(wall: datetime, shown: str) -> bool:
    """Sunday evening, and the week screen has not shown by itself today."""
    return (wall.weekday() == WEEK_WEEKDAY and wall.time().replace(tzinfo=None) >= WEEK_TIME
            and shown != wall.date().isoformat())


def seconds_until_week(wall: datetime, shown: str) -> float | None:
    """Real seconds from ``wall`` to the next Sunday evening the week screen has yet to show
    on (DST-aware); None when it is due now (``week_due`` says so at every step)."""
    if week_due(wall, shown):
        return None
    for days in range(8):
        day: date = wall.date() + timedelta(days=days)
        if day.weekday() != WEEK_WEEKDAY or day.isoformat() == shown:
            continue
        delta = seconds_until(wall, day, WEEK_TIME)
        if delta > 0:
            return delta
    return None


def together_light(elapsed: float) -> tuple[bool | None, float | None]:
    """The together light ``elapsed`` seconds into it: on or off (None: the pattern is over),
    and the seconds until it changes next (None: never)."""
    if elapsed < 0 or elapsed >= BEAT * BEATS:
        return None, None
    into = elapsed % BEAT
    on = BEAT_STEPS[0][1]
    change = BEAT - into
    for i, (start, state) in enumerate(BEAT_STEPS):
        if into + 1e-9 >= start:
            on = state
            nxt = BEAT_STEPS[i + 1][0] if i + 1 < len(BEAT_STEPS) else BEAT
            change = nxt - into
    return on, max(change, 1e-3)
