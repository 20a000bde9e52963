"""Buttons from text lines (``run --input stdin``): for desktops, scripts and tests.

Each character of a line is one gesture: ``t`` THANKS press, ``n`` NEXT press, ``T`` THANKS
hold, ``N`` NEXT hold, ``w`` both pressed briefly (the week), ``p`` both held (pairing). ``q``
(after the gestures before it on its line) or the end of input stops the unit, as in the
simulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TextIO

from micromance.core.events import Gesture

log = logging.getLogger(__name__)

KEYS = {
    "t": Gesture.THANKS_PRESS,
    "n": Gesture.NEXT_PRESS,
    "T": Gesture.THANKS_HOLD,
    "N": Gesture.NEXT_HOLD,
    "w": Gesture.BOTH_PRESS,
    "p": Gesture.BOTH_HOLD,
}


QUIT = "q"


def parse_keys(line: str) -> tuple[list[Gesture], str]:
    """Gestures in ``line`` and the characters that mean nothing (spaces ignored); ``q``
    ends the line's gestures."""
    gestures, unknown = [], ""
    for char in line.strip():
        if char == QUIT:
            break
        if char in KEYS:
            gestures.append(KEYS[char])
        elif not char.isspace():
            unknown += char
    return gestures, unknown


class KeyLines:
    """Reads ``stream`` on its own thread; ``on_gesture`` per key, ``on_end`` at EOF."""

    def __init__(self, stream: TextIO, on_gesture: Callable[[Gesture], None],
                 on_end: Callable[[], None]) -> None:
        self._stream = stream
        self._on_gesture = on_gesture
        self._on_end = on_end
        self._thread = threading.Thread(target=self._read, name="keys", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._stream:
                gestures, unknown = parse_keys(line)
                if unknown:
                    log.warning("ignored keys %r (use t n T N w p, q to stop)", unknown)
                for gesture in gestures:
                    self._on_gesture(gesture)
                if QUIT in line:
                    log.info("q: stopping")
                    break
        except (OSError, ValueError):
            log.warning("input closed unexpectedly")
        finally:
            self._on_end()
