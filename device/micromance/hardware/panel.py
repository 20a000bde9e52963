"""The panel: two buttons and a light on GPIO, through gpiozero.

This adapter only translates. Button edges become events (the core measures presses and
holds with its own clock, never gpiozero's ``when_held``); light modes become gpiozero calls.
The pin factory is injected, so tests run the very same code on ``MockFactory``.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from micromance.config import PinsConfig
from micromance.core.commands import LightMode
from micromance.core.events import Button
from micromance.errors import HardwareError

log = logging.getLogger(__name__)

#: Debounce for real switches; gpiozero's mock pins ignore it (tests drive clean edges).
BOUNCE_SECONDS = 0.03
PULSE_FADE_SECONDS = 0.9

PULSE_FPS = 25

EdgeSink = Callable[[Button, bool], None]


def breathing(period: float, fps: int) -> Iterator[float]:
    """Brightness values for a slow pulse that starts at full brightness (a cosine)."""
    steps = max(2, round(period * fps))
    for step in itertools.count():
        yield 0.5 + 0.5 * math.cos(2 * math.pi * (step % steps) / steps)


class Panel:
    """Buttons in, light out. ``on_edge(button, down)`` is called on gpiozero's thread."""

    def __init__(self, pins: PinsConfig, on_edge: EdgeSink, pin_factory: Any = None) -> None:
        self._devices: list[Any] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gpiozero's fallback chatter is not for users
                self._thanks = self._button(pins.thanks, Button.THANKS, on_edge, pin_factory)
                self._next = self._button(pins.next, Button.NEXT, on_edge, pin_factory)
                self._light = self._make_light(pins.led, pin_factory)
        except Exception as error:
            self.close()
            raise _explain(error, pins) from None
        self._mode = LightMode.OFF

    def _button(self, pin: int, button: Button, on_edge: EdgeSink, pin_factory: Any) -> Any:
        # Not gpiozero's Button: its HoldMixin runs one thread per button that wakes every
        # 0.1 s for ever (20 wake-ups a second for two buttons while idle). The core times
        # holds itself, so an input device with edge callbacks is all the panel needs.
        from gpiozero import DigitalInputDevice

        device = DigitalInputDevice(pin, pull_up=True, bounce_time=BOUNCE_SECONDS,
                                    pin_factory=pin_factory)
        self._devices.append(device)
        device.when_activated = lambda: on_edge(button, True)
        device.when_deactivated = lambda: on_edge(button, False)
        return device

    def _make_light(self, pin: int, pin_factory: Any) -> Any:
        from gpiozero import LED, PWMLED
        from gpiozero.exc import PinPWMUnsupported

        try:
            light = PWMLED(pin, pin_factory=pin_factory)
        except PinPWMUnsupported:
            log.info("GPIO%d has no PWM here: the light will blink instead of pulsing", pin)
            light = LED(pin, pin_factory=pin_factory)
        self._devices.append(light)
        return light

    @property
    def light_mode(self) -> LightMode:
        return self._mode

    @property
    def can_fade(self) -> bool:
        """The light's pin has PWM: it breathes (else it blinks instead)."""
        return hasattr(self._light, "pulse")

    def set_light(self, mode: LightMode) -> None:
        light = self._light
        light.source = None  # stop a breathing light before anything else
        if mode is LightMode.PULSE:
            # Full brightness at once, on this thread: gpiozero's own pulse() starts dark and
            # its thread first lights the LED ~40 ms later. Then it breathes from the top.
            light.on()
            if hasattr(light, "pulse"):
                light.source_delay = 1 / PULSE_FPS
                light.source = breathing(PULSE_FADE_SECONDS * 2, PULSE_FPS)
            else:
                light.blink(on_time=PULSE_FADE_SECONDS, off_time=PULSE_FADE_SECONDS)
        elif mode is LightMode.ON:
            light.on()  # the core's deadline turns it off: no thread per press
        else:
            light.off()
        self._mode = mode

    def close(self) -> None:
        """Release the pins (light off first, so nothing stays lit after exit)."""
        for device in reversed(self._devices):
            try:
                device.close()
            except Exception:  # closing must never mask the reason we are closing
                log.debug("closing %r failed", device, exc_info=True)
        self._devices.clear()


def _explain(error: Exception, pins: PinsConfig) -> HardwareError:
    from gpiozero.exc import BadPinFactory, GPIOPinInUse, PinInvalidPin

    wiring = f"(THANKS GPIO{pins.thanks}, NEXT GPIO{pins.next}, LED GPIO{pins.led})"
    if isinstance(error, BadPinFactory):
        return HardwareError(
            f"no GPIO available {wiring}: {error}",
            fix="on a Raspberry Pi install python3-lgpio (install.sh does); on a desktop set "
            "GPIOZERO_PIN_FACTORY=mock GPIOZERO_MOCK_PIN_CLASS=mockpwmpin")
    if isinstance(error, GPIOPinInUse):
        return HardwareError(f"a GPIO is already in use {wiring}: {error}",
                             fix="stop the other program using it, or choose other pins in "
                             "[pins]")
    if isinstance(error, PinInvalidPin):
        return HardwareError(f"invalid GPIO {wiring}: {error}", fix="use BCM numbers in [pins]")
    if isinstance(error, PermissionError):
        return HardwareError(f"no permission for the GPIO chip {wiring}: {error}",
                             fix="add the service user to the gpio group")
    return HardwareError(f"cannot set up the buttons and light {wiring}: {error}")
