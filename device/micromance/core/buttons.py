"""Press and hold detection from raw button edges, measured with the injected clock.

Two buttons carry everything, so timing is the vocabulary: a THANKS release is a press, a
NEXT held for 2 s is "done", both held together for 5 s is "pair", both pressed together and
let go sooner is "your week". Once both buttons were down together the gesture is a chord:
it never also counts as a press of either button, so starting a pairing never sends a stray
thank-you (giving up on one before 5 s shows the week, which changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from micromance.core.events import Button, Gesture
from micromance.core.records import evolve as replace  # quick copies

NEXT_HOLD_SECONDS = 2.0
BOTH_HOLD_SECONDS = 5.0


@dataclass(frozen=True)
class Buttons:
    thanks_down_at: float | None = None
    next_down_at: float | None = None
    chord_since: float | None = None   # when both became down (None: not a chord)
    fired: bool = False                # a hold already fired for the current gesture

    def is_down(self, button: Button) -> bool:
        return self._down_at(button) is not None

    def _down_at(self, button: Button) -> float | None:
        return self.thanks_down_at if button is Button.THANKS else self.next_down_at

    def _with(self, button: Button, value: float | None) -> Buttons:
        if button is Button.THANKS:
            return replace(self, thanks_down_at=value)
        return replace(self, next_down_at=value)


def press(buttons: Buttons, button: Button, at: float) -> Buttons:
    """A button went down."""
    if buttons.is_down(button):
        return buttons  # a repeated edge (bounce) changes nothing
    buttons = buttons._with(button, at)
    other = Button.NEXT if button is Button.THANKS else Button.THANKS
    if buttons.is_down(other) and not buttons.fired:
        buttons = replace(buttons, chord_since=at)
    return buttons


def release(buttons: Buttons, button: Button, at: float) -> tuple[Buttons, list[Gesture]]:
    """A button went up: maybe a gesture, or a hold whose deadline passed unobserved."""
    down_at = buttons._down_at(button)
    if down_at is None:
        return buttons, []
    buttons, gestures = expire(buttons, at)
    if not buttons.fired and buttons.chord_since is not None:
        # A short chord: the week, at the first release (the second one then means nothing).
        gestures.append(Gesture.BOTH_PRESS)
        buttons = replace(buttons, fired=True)
    elif not buttons.fired:
        if button is Button.THANKS:
            gestures.append(Gesture.THANKS_PRESS)
        else:
            gestures.append(Gesture.NEXT_PRESS)
    buttons = buttons._with(button, None)
    if buttons.thanks_down_at is None and buttons.next_down_at is None:
        buttons = Buttons()  # gesture over: forget chord and fired
    return buttons, gestures


def expire(buttons: Buttons, at: float) -> tuple[Buttons, list[Gesture]]:
    """Fire the hold whose time has come while the buttons are still down."""
    deadline = next_deadline(buttons)
    if deadline is None or at < deadline:
        return buttons, []
    gesture = Gesture.BOTH_HOLD if buttons.chord_since is not None else Gesture.NEXT_HOLD
    return replace(buttons, fired=True), [gesture]


def next_deadline(buttons: Buttons) -> float | None:
    """When a hold would fire, if the buttons stay as they are."""
    if buttons.fired:
        return None
    if buttons.chord_since is not None:
        both_down = buttons.thanks_down_at is not None and buttons.next_down_at is not None
        return buttons.chord_since + BOTH_HOLD_SECONDS if both_down else None
    if buttons.next_down_at is not None:
        return buttons.next_down_at + NEXT_HOLD_SECONDS
    return None
