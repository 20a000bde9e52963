"""Quiet hours: windows that cross midnight, and days when the clocks change."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance.core.quiet import QuietHours

ZONES = [ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("Australia/Sydney")]
times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31))


def local(naive_utc: datetime, zone: ZoneInfo) -> datetime:
    return naive_utc.replace(tzinfo=UTC).astimezone(zone)


@settings(max_examples=300, deadline=None)
@given(times, times, instants, st.sampled_from(ZONES))
def test_the_next_change_really_is_the_next_change(start, end, instant, zone):
    quiet = QuietHours(start, end)
    wall = local(instant, zone)
    seconds = quiet.seconds_until_change(wall)
    if start == end:
        assert seconds is None and not quiet.contains(wall)
        return
    assert seconds is not None and 0 < seconds <= 49 * 3600
    before = quiet.contains(wall)
    after = (wall.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(zone)
    # At the change the state flips, unless DST skipped the boundary's wall time entirely
    # (then the change lands on the first real instant after it).
    assert quiet.contains(after) != before or after.time() != (end if before else start)
    # Nothing changes before it: probe a few instants strictly inside the interval.
    for fraction in (0.25, 0.5, 0.75):
        probe = (wall.astimezone(UTC) + timedelta(seconds=seconds * fraction)).astimezone(zone)
        assert quiet.contains(probe) == before


@pytest.mark.parametrize(
    ("moment", "expected_hours"),
    [
        # Paris, spring forward 2026-03-29 02:00 -> 03:00: 22:30 to 07:00 lasts 7.5 h.
        (datetime(2026, 3, 28, 22, 30), 7.5),
        # Autumn back 2026-10-25 03:00 -> 02:00: the night lasts 9.5 h.
        (datetime(2026, 10, 24, 22, 30), 9.5),
        (datetime(2026, 6, 1, 22, 30), 8.5),
    ],
)
def test_night_length_follows_dst(moment, expected_hours):
    zone = ZoneInfo("Europe/Paris")
    quiet = QuietHours.parse("22:30", "07:00")
    wall = moment.replace(tzinfo=zone)
    assert quiet.contains(wall)
    assert quiet.seconds_until_change(wall) == expected_hours * 3600


def test_disabled_window_is_never_quiet():
    quiet = QuietHours.parse("22:30", "07:00", enabled=False)
    wall = datetime(2026, 1, 1, 23, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert not quiet.contains(wall) and quiet.seconds_until_change(wall) is None
