"""Calendar timers: prompt rotation and the morning focus, through the schedule library."""

from __future__ import annotations

import datetime

from micromance.timers import CalendarTimers


def test_rotation_and_focus_fire_when_due():
    fired = []
    timers = CalendarTimers(45, "07:30", fired.append)
    assert 0 < timers.seconds_until_due() <= 45 * 60
    jobs = timers._scheduler.jobs
    assert {job.interval for job in jobs} == {45, 1}
    for job in jobs:  # pretend both moments have come
        job.next_run = datetime.datetime.now() - datetime.timedelta(seconds=1)
    timers.run_due()
    assert sorted(fired) == ["focus", "rotate"]
    timers.clear()
    assert timers.seconds_until_due() is None
