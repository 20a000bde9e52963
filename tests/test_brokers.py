"""Several brokers at once, through real mosquitto processes on loopback: losing any of them,
or one that refuses or hangs, loses and delays nothing while another one works."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from micromance.config import BrokerConfig
from micromance.link.pair_file import pair_locally
from micromance.simulator.private_broker import PrivateBroker, free_loopback_port
from tests.conftest import require_mosquitto
from tests.silent_broker import HangingBroker
from tests.units import RunningUnit, desk_config, press

THANKS = 17
pytestmark = pytest.mark.broker


def loopback(port: int) -> BrokerConfig:
    return BrokerConfig(host="127.0.0.1", port=port, tls=False, keepalive=10)


def make_unit(state_dir: Path, name: str, brokers: list[BrokerConfig]) -> RunningUnit:
    """A unit whose config names several brokers."""
    return RunningUnit(replace(desk_config(state_dir, name=name), broker_tables=tuple(brokers)))


@pytest.fixture
def brokers(tmp_path):
    require_mosquitto()
    started = [PrivateBroker(directory=tmp_path / f"broker{i}").start() for i in range(3)]
    yield started
    for broker in started:
        broker.close()


@pytest.fixture
def pair_dirs(tmp_path):
    pair_locally(tmp_path / "a", tmp_path / "b")
    return tmp_path / "a", tmp_path / "b"


def start_units(pair_dirs, lists) -> list[RunningUnit]:
    return [make_unit(d, name, brokers)
            for d, name, brokers in zip(pair_dirs, ("Sam", "Alex"), lists, strict=True)]


def connected_everywhere(running: RunningUnit, count: int) -> bool:
    links = running.state.partner.links
    return sum(link.connected for link in links) == count


def test_three_brokers_lose_two_and_lose_no_press(brokers, pair_dirs):
    lists = [[loopback(b.port) for b in brokers]] * 2
    a, b = start_units(pair_dirs, lists)
    try:
        for unit in (a, b):
            unit.wait_until(lambda u=unit: connected_everywhere(u, 3))
        for index in range(60):
            press(a.factory, THANKS)
            a.wait_until(lambda i=index: a.state.counters.sent_total == i + 1)
            if index == 15:
                brokers[0].kill()
            if index == 30:
                brokers[1].kill()
            if index == 40:
                brokers[0].restart()
        b.wait_until(lambda: b.state.counters.received_total == 60, 60)
        a.wait_until(lambda: a.state.partner.outbox == 0, 60)
        assert b.state.counters.received_total == 60 and b.state.pending == 60  # once each
        assert b.state.partner.rejected == 0
        assert b.state.partner.duplicates > 0  # the copies from the other brokers
    finally:
        for unit in (a, b):
            unit.close()


def test_a_hanging_and_a_closed_broker_delay_nothing(brokers, pair_dirs):
    hanging = HangingBroker()
    closed = free_loopback_port()
    lists = [[loopback(hanging.port), loopback(closed), loopback(brokers[0].port)]] * 2
    a, b = start_units(pair_dirs, lists)
    try:
        for unit in (a, b):
            unit.wait_until(lambda u=unit: connected_everywhere(u, 1))
        delays = []
        for index in range(10):
            started = time.monotonic()
            press(a.factory, THANKS)
            b.wait_until(lambda i=index: b.state.counters.received_total == i + 1, 5)
            delays.append(time.monotonic() - started)
        assert max(delays) < 1.0, delays   # the silent and the refusing broker cost nothing
        def error_at(port: int) -> str:
            return {link.where: link.error for link in a.state.partner.links}[f"127.0.0.1:{port}"]

        assert error_at(closed).startswith("TCP")
        a.wait_until(lambda: "CONNECT" in error_at(hanging.port), 20)
    finally:
        for unit in (a, b):
            unit.close()
        hanging.close()


def test_units_whose_lists_share_one_broker_still_talk(brokers, pair_dirs):
    only_a, shared, only_b = (loopback(b.port) for b in brokers)
    a, b = start_units(pair_dirs, [[only_a, shared], [shared, only_b]])
    try:
        for unit in (a, b):
            unit.wait_until(lambda u=unit: connected_everywhere(u, 2))
        for _ in range(3):
            press(a.factory, THANKS)
        b.wait_until(lambda: b.state.counters.received_total == 3)
        a.wait_until(lambda: a.state.partner.outbox == 0)
        press(b.factory, THANKS)
        a.wait_until(lambda: a.state.counters.received_total == 1)
    finally:
        for unit in (a, b):
            unit.close()
