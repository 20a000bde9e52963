"""A whole unit with Home Assistant switched on: two paired units on the couple's mosquitto,
unit A also on a second mosquitto (the home's), watched the way Home Assistant would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from micromance.config import HomeAssistantConfig
from micromance.link.pair_file import pair_locally
from micromance.simulator.private_broker import PrivateBroker, free_loopback_port
from tests.conftest import require_mosquitto
from tests.test_homeassistant import Watcher
from tests.units import RunningUnit, desk_config, press

THANKS = 17
REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.broker


def make_unit(state_dir: Path, name: str, couple_port: int,
              home: HomeAssistantConfig | None = None) -> RunningUnit:
    """A unit on the couple's broker, with Home Assistant on ``home`` when given."""
    config = desk_config(state_dir, name=name, broker_port=couple_port)
    if home is not None:
        config = replace(config, homeassistant=home)
    return RunningUnit(config, timeout=20.0)


@pytest.fixture
def brokers(tmp_path) -> Iterator[tuple[PrivateBroker, PrivateBroker]]:
    require_mosquitto()
    with PrivateBroker(directory=tmp_path / "couple") as couple, \
            PrivateBroker(directory=tmp_path / "home") as home:
        yield couple, home


@pytest.fixture
def units(tmp_path, brokers) -> Iterator[tuple[RunningUnit, RunningUnit, Watcher]]:
    couple, home = brokers
    pair_locally(tmp_path / "a", tmp_path / "b")
    watcher = Watcher(home.port)
    a = make_unit(tmp_path / "a", "Sam", couple.port,
                  HomeAssistantConfig(enabled=True, host="127.0.0.1", port=home.port))
    b = make_unit(tmp_path / "b", "Alex", couple.port)
    yield a, b, watcher
    for each in (a, b):
        each.close()
    watcher.close()


def test_the_button_entity_sends_thanks_the_partner_receives(units):
    a, b, watcher = units
    topics = a.runtime.home.link.topics
    watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
    a.wait_until(lambda: a.state.partner.online is True)
    watcher.publish(topics.command, "PRESS")
    b.wait_until(lambda: b.state.counters.received_total == 1)
    watcher.wait(lambda: json.loads(watcher.retained[topics.state])["sent_today"] == 1,
                 "sent today in Home Assistant")
    state = json.loads(watcher.retained[topics.state])
    assert (state["sent_total"], state["partner_online"]) == (1, "ON")


def test_a_received_thanks_fires_the_trigger_and_shows_waiting(units):
    a, b, watcher = units
    topics = a.runtime.home.link.topics
    watcher.wait(lambda: topics.state in watcher.retained, "state")
    b.wait_until(lambda: b.state.partner.online is True)
    press(b.factory, THANKS)
    watcher.wait(lambda: (topics.trigger, b"received") in watcher.messages, "the trigger")
    watcher.wait(lambda: json.loads(watcher.retained[topics.state])["waiting"] == "ON",
                 "a thank-you waiting")
    assert json.loads(watcher.retained[topics.state])["received_today"] == 1


def test_the_gesture_text_is_todays(units):
    a, _, watcher = units
    topics = a.runtime.home.link.topics
    watcher.wait(lambda: topics.state in watcher.retained, "state")
    assert json.loads(watcher.retained[topics.state])["gesture"] == \
        a.state.rotation.prompt.text


def test_a_dead_home_broker_delays_no_thanks(tmp_path, brokers):
    couple, _ = brokers
    pair_locally(tmp_path / "a", tmp_path / "b")
    dead = HomeAssistantConfig(enabled=True, host="127.0.0.1", port=free_loopback_port())
    a = make_unit(tmp_path / "a", "Sam", couple.port, dead)
    b = make_unit(tmp_path / "b", "Alex", couple.port)
    try:
        b.wait_until(lambda: b.state.partner.online is True)
        a.wait_until(lambda: a.state.partner.online is True)
        delays = []
        for count in range(1, 6):
            started = time.monotonic()
            press(a.factory, THANKS)
            b.wait_until(lambda c=count: b.state.counters.received_total == c, 5)
            delays.append(time.monotonic() - started)
        assert max(delays) < 1.0, delays
        assert a.runtime.home.link.error.startswith("TCP")  # it is still trying, quietly
    finally:
        for unit in (a, b):
            unit.close()


def test_switching_it_off_on_reload_takes_the_device_out(tmp_path, brokers):
    couple, home = brokers
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = tmp_path / "a.toml"
    base = (f'[device]\nname = "Sam"\n[display]\ndriver = "dummy"\n'
            f'[broker]\nhost = "127.0.0.1"\nport = {couple.port}\ntls = false\n'
            f'[paths]\nstate_dir = "{tmp_path / "a"}"\n'
            f'[homeassistant]\nhost = "127.0.0.1"\nport = {home.port}\n')
    config.write_text(base)
    from micromance.config import load_config

    watcher = Watcher(home.port)
    unit = RunningUnit(load_config(config), timeout=10.0)
    try:
        watcher.wait(lambda: len(watcher.configs()) == 12, "discovery")
        config.write_text(base + "enabled = false\n")
        unit.runtime.call_soon(unit.runtime.reload)
        watcher.wait(lambda: not watcher.configs(), "every config cleared")
        watcher.wait(lambda: not any(t.endswith("/availability") for t in watcher.retained),
                     "availability cleared too")
        # Nothing is published there any more: a press reaches the partner's broker only.
        before = len(watcher.messages)
        press(unit.factory, THANKS)
        unit.wait_until(lambda: unit.state.counters.sent_total == 1)
        assert watcher.messages[before:] == []
    finally:
        unit.close()
        watcher.close()


def test_availability_goes_offline_when_the_unit_is_killed(tmp_path, brokers):
    couple, home = brokers
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = tmp_path / "a.toml"
    config.write_text(
        f'[device]\nname = "Sam"\n[display]\ndriver = "dummy"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {couple.port}\ntls = false\n'
        f'[paths]\nstate_dir = "{tmp_path / "a"}"\n'
        f'[homeassistant]\nhost = "127.0.0.1"\nport = {home.port}\n')
    watcher = Watcher(home.port)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock",
           "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
    unit = subprocess.Popen([sys.executable, "-m", "micromance", "run", "--config", str(config)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        watcher.wait(lambda: any(t.endswith("/availability") and p == b"online"
                                 for t, p in watcher.retained.items()), "online", 30)
        availability = next(t for t in watcher.retained if t.endswith("/availability"))
        unit.send_signal(signal.SIGKILL)
        unit.wait(10)
        watcher.wait(lambda: watcher.retained.get(availability) == b"offline",
                     "offline by the Last Will", 20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            unit.kill()
        unit.wait(10)
        watcher.close()
