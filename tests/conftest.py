"""Shared fixtures: gpiozero's mock pins, a fake clock, the core's settings."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

ZONE = ZoneInfo("Europe/Paris")


@pytest.fixture
def mock_factory():
    """gpiozero's MockFactory with PWM-capable pins, reset after the test."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    factory.close()


@pytest.fixture
def clock():
    from micromance.core.clock import FakeClock

    return FakeClock(wall=datetime(2026, 11, 25, 12, 0, 0, tzinfo=ZONE))
