"""Shared fixtures: gpiozero's mock pins, a fake clock, the core's settings, a private broker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from micromance.simulator import private_broker as broker_adapter

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


# -- a real mosquitto ---------------------------------------------------------------------------
# The project's rule: a test that needs mosquitto fails in CI when it is missing, and only skips
# (saying why) on a developer's machine. Tests get the rule by using the `broker` fixture or by
# carrying the `broker` marker (for tests that run their own PrivateBroker).

MOSQUITTO_MISSING = "mosquitto not installed: sudo apt-get install mosquitto"
_NOT_CI_VALUES = frozenset({"", "0", "false", "no", "off"})


def running_in_ci() -> bool:
    """True when the CI variable is set (CI=true, CI=1...); CI=false or empty does not count."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI_VALUES


def require_tool(name: str, reason: str) -> str:
    """Path of a command some tests run; if it is missing, fail in CI and skip elsewhere.

    ``reason`` says what is missing and where it comes from (install.sh --dev installs them).
    """
    path = shutil.which(name)
    if path is not None:
        return path
    if running_in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_mosquitto() -> str:
    """Path of mosquitto; if it is missing, fail in CI and skip elsewhere, with the reason."""
    path = broker_adapter.find_mosquitto()
    if path is not None:
        return path
    if running_in_ci():
        pytest.fail(f"{MOSQUITTO_MISSING} (CI must run every broker test)", pytrace=False)
    pytest.skip(MOSQUITTO_MISSING)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker fixture, so `-m broker` / `-m "not broker"` work."""
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("broker") is not None:
        require_mosquitto()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[broker_adapter.PrivateBroker]:
    """A started private mosquitto on a free loopback port, stopped after the test.

    Function scope: start-up takes about 10 ms, so every test gets a fresh one it may stop,
    kill or restart. Its config, log and database stay in tmp_path for a post-mortem.
    """
    require_mosquitto()
    with broker_adapter.PrivateBroker(directory=tmp_path / "broker") as private_broker:
        yield private_broker
