"""Press and hold timing, measured by the core from edges and the injected clock."""

from __future__ import annotations

import pytest

from micromance.core import buttons as timing
from micromance.core.events import Button, Gesture

T, N = Button.THANKS, Button.NEXT


def play(script):
    """Run ``(time, button or None, down)`` steps; a None button is a tick at that time."""
    state, seen = timing.Buttons(), []
    for at, button, down in script:
        if button is None:
            state, gestures = timing.expire(state, at)
        elif down:
            state, gestures = timing.press(state, button, at), []
        else:
            state, gestures = timing.release(state, button, at)
        seen += [(at, g) for g in gestures]
    return state, seen


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([(0, T, True), (0.1, T, False)], [(0.1, Gesture.THANKS_PRESS)]),
        ([(0, T, True), (3.0, T, False)], [(3.0, Gesture.THANKS_PRESS)]),
        ([(0, N, True), (0.3, N, False)], [(0.3, Gesture.NEXT_PRESS)]),
        ([(0, N, True), (1.99, None, None), (1.995, N, False)], [(1.995, Gesture.NEXT_PRESS)]),
        # The hold fires while still held, exactly once; the release adds nothing.
        ([(0, N, True), (2.0, None, None), (2.5, None, None), (3.0, N, False)],
         [(2.0, Gesture.NEXT_HOLD)]),
        # A hold whose tick never came is still recognised at release.
        ([(0, N, True), (2.4, N, False)], [(2.4, Gesture.NEXT_HOLD)]),
        # Both held 5 s: pairing, however they were pressed and released.
        ([(0, T, True), (0.2, N, True), (5.2, None, None), (6, T, False), (6.1, N, False)],
         [(5.2, Gesture.BOTH_HOLD)]),
        ([(0, N, True), (0.5, T, True), (5.4, None, None), (5.5, None, None), (6, N, False),
          (6.1, T, False)], [(5.5, Gesture.BOTH_HOLD)]),
        # A chord let go early is the week, once: no stray thank-you, no "done".
        ([(0, T, True), (0.1, N, True), (3, T, False), (3.1, N, False)],
         [(3, Gesture.BOTH_PRESS)]),
        ([(0, N, True), (0.1, T, True), (2.5, None, None), (4, N, False), (4.2, T, False)],
         [(4, Gesture.BOTH_PRESS)]),
        ([(0, T, True), (0.05, N, True), (0.2, N, False), (0.25, T, False)],
         [(0.2, Gesture.BOTH_PRESS)]),
        # "Done" fired before the other button came: the chord is nothing more.
        ([(0, N, True), (2.0, None, None), (2.2, T, True), (3, T, False), (3.1, N, False)],
         [(2.0, Gesture.NEXT_HOLD)]),
        # Bounce: a repeated down edge changes nothing.
        ([(0, T, True), (0.01, T, True), (0.2, T, False)], [(0.2, Gesture.THANKS_PRESS)]),
        # A release without a press (started before we did) is ignored.
        ([(0, T, False)], []),
    ],
)
def test_gestures(script, expected):
    state, seen = play(script)
    assert seen == expected
    assert state == timing.Buttons()  # every gesture above ends with both buttons up


def test_deadline_tracks_the_hold_that_would_fire():
    state = timing.press(timing.Buttons(), N, 10.0)
    assert timing.next_deadline(state) == 12.0
    state = timing.press(state, T, 11.0)
    assert timing.next_deadline(state) == 16.0
    state, _ = timing.release(state, T, 12.0)
    assert timing.next_deadline(state) is None  # chord broken: nothing more will fire
    assert timing.next_deadline(timing.Buttons()) is None
