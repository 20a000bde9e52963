"""The panel adapter on gpiozero's MockFactory: edges in, light out."""

from __future__ import annotations

import itertools

from micromance.config import PinsConfig
from micromance.core.commands import LightMode
from micromance.core.events import Button
from micromance.hardware.panel import PULSE_FPS, Panel, breathing


def test_edges_of_both_buttons_reach_the_sink(mock_factory):
    edges = []
    panel = Panel(PinsConfig(), lambda button, down: edges.append((button, down)), mock_factory)
    try:
        for pin in (17, 27):
            mock_factory.pin(pin).drive_low()
            mock_factory.pin(pin).drive_high()
        assert edges == [(Button.THANKS, True), (Button.THANKS, False),
                         (Button.NEXT, True), (Button.NEXT, False)]
    finally:
        panel.close()


def test_a_thanks_lights_the_led_at_once_then_breathes_and_off_stops_it(mock_factory):
    panel = Panel(PinsConfig(), lambda *_: None, mock_factory)
    led = mock_factory.pin(18)
    try:
        panel.set_light(LightMode.PULSE)
        assert led.state == 1  # full brightness before set_light returns, not 40 ms later
        assert panel.light_mode is LightMode.PULSE
        panel.set_light(LightMode.OFF)
        assert led.state == 0
        states_after_off = len(led.states)
        panel.set_light(LightMode.OFF)
        assert len(led.states) == states_after_off  # nothing keeps animating
    finally:
        panel.close()
    assert panel._devices == []


def test_breathing_starts_at_the_top_and_repeats():
    steps = round(1.8 * PULSE_FPS)
    values = list(itertools.islice(breathing(1.8, PULSE_FPS), 2 * steps))
    assert values[0] == 1.0
    assert min(values) < 0.01 and all(0.0 <= v <= 1.0 for v in values)
    assert values[:steps] == values[steps:]
