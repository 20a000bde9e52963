"""The private mosquitto: a real broker on a free loopback port, stopped, killed and restarted.

These tests talk to it with paho-mqtt 2 and wait on events, never on sleeps.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from micromance.errors import EX_UNAVAILABLE, LinkError
from micromance.simulator import private_broker as broker_adapter
from micromance.simulator.private_broker import PrivateBroker, find_mosquitto
from tests import conftest

WAIT = 5.0  # seconds; only ever reached when something is broken


class Peer:
    """A paho client that is connected when constructed and collects what it receives."""

    def __init__(self, broker: PrivateBroker, client_id: str) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.received: list[mqtt.MQTTMessage] = []
        self.message_arrived = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK from the private broker"

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage):
        self.received.append(message)
        self.message_arrived.set()

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(WAIT), "no SUBACK"

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT)  # returns on PUBACK
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(broker: PrivateBroker) -> Iterator[list[Peer]]:
    """Peers made during a test, closed after it, even when it fails."""
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def connect(broker: PrivateBroker, client_id: str, peers: list[Peer]) -> Peer:
    peer = Peer(broker, client_id)
    peers.append(peer)
    return peer


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except ConnectionRefusedError:
        return True
    return False


def process_is_gone(pid: int) -> bool:
    """True once the process was reaped: no orphan and no zombie left behind."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- talking through it ---------------------------------------------------------------------


def test_qos1_message_goes_round_trip(broker: PrivateBroker, peers: list[Peer]):
    receiver = connect(broker, "receiver", peers)
    receiver.subscribe("micromance/test/round-trip")
    sender = connect(broker, "sender", peers)

    sender.publish("micromance/test/round-trip", b"thanks")

    assert receiver.message_arrived.wait(WAIT)
    [message] = receiver.received
    assert (message.topic, message.payload, message.qos) == (
        "micromance/test/round-trip", b"thanks", 1)


def test_listens_on_loopback_only_and_never_on_the_system_port(broker: PrivateBroker):
    config = broker.config_path.read_text()
    assert broker.host == "127.0.0.1"
    assert broker.port != 1883
    assert f"listener {broker.port} 127.0.0.1\n" in config
    assert "set_tcp_nodelay true\n" in config  # Nagle costs 88 ms per exchange on loopback


def test_retained_message_survives_stop_and_restart(broker: PrivateBroker):
    writer = Peer(broker, "writer")
    writer.publish("micromance/test/state", b"sent_total=12", retain=True)
    writer.close()

    broker.stop()  # SIGTERM: mosquitto writes its database before exiting
    broker.restart()

    reader = Peer(broker, "reader")
    try:
        reader.subscribe("micromance/test/state")
        assert reader.message_arrived.wait(WAIT), "the retained message did not survive"
        [message] = reader.received
        assert message.payload == b"sent_total=12"
        assert message.retain
    finally:
        reader.close()


# -- fault injection ------------------------------------------------------------------------


def test_kill_refuses_the_port_and_restart_brings_it_back_on_the_same_port(
    broker: PrivateBroker,
):
    port, killed_pid = broker.port, broker.pid
    assert killed_pid is not None

    broker.kill()

    assert not broker.running
    assert process_is_gone(killed_pid)
    assert refuses_connections(broker.host, port)

    broker.restart()

    assert broker.running
    assert broker.port == port
    assert broker.pid != killed_pid
    peer = Peer(broker, "after-restart")
    peer.close()


def test_stop_and_kill_are_harmless_when_not_running(broker: PrivateBroker):
    broker.stop()
    broker.stop()
    broker.kill()
    assert not broker.running
    assert broker.pid is None


# -- ports, directories, processes ----------------------------------------------------------


@pytest.mark.broker
def test_two_brokers_get_different_ports():
    with PrivateBroker() as first, PrivateBroker() as second:
        assert first.port != second.port
        assert first.directory != second.directory


@pytest.mark.broker
def test_leaves_no_process_and_no_private_directory_behind():
    with PrivateBroker() as private_broker:
        pid, directory = private_broker.pid, private_broker.directory
        assert pid is not None
        assert (directory / "mosquitto.conf").is_file()
    assert process_is_gone(pid)
    assert not directory.exists()


@pytest.mark.broker
def test_a_given_directory_and_port_are_used_and_kept(tmp_path: Path):
    port = broker_adapter.free_loopback_port()
    with PrivateBroker(port=port, directory=tmp_path) as private_broker:
        assert private_broker.port == port
        assert not refuses_connections(private_broker.host, port)
    assert (tmp_path / "mosquitto.log").is_file()  # the caller's directory, kept for a post-mortem


@pytest.mark.broker
def test_atexit_safety_net_stops_forgotten_brokers():
    forgotten = PrivateBroker().start()
    pid, directory = forgotten.pid, forgotten.directory
    assert pid is not None

    broker_adapter._stop_leftover_brokers()

    assert process_is_gone(pid)
    assert not directory.exists()


@pytest.mark.broker
def test_port_already_served_by_someone_else_is_a_clear_error():
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        with pytest.raises(LinkError, match=f"127.0.0.1:{port}: Address already in use"):
            PrivateBroker(port=port).start()


@pytest.mark.broker
def test_mosquitto_exiting_at_start_up_raises_with_the_end_of_its_log():
    # Bound but not listening: our pre-check sees nothing, mosquitto's own bind() fails.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        private_broker = PrivateBroker(port=port)
        with pytest.raises(LinkError) as raised:
            private_broker.start()
    assert "mosquitto exited at start-up" in str(raised.value)
    assert "Error: Address already in use" in str(raised.value)  # from mosquitto's log
    assert not private_broker.running
    private_broker.close()


# -- a missing mosquitto ----------------------------------------------------------------------


def test_missing_mosquitto_raises_link_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(broker_adapter, "find_mosquitto", lambda: None)
    private_broker = PrivateBroker()
    with pytest.raises(LinkError) as raised:
        private_broker.start()
    assert str(raised.value) == "mosquitto is not installed: sudo apt-get install mosquitto"
    assert raised.value.exit_code == EX_UNAVAILABLE == 69
    private_broker.close()


def test_find_mosquitto_looks_in_sbin_when_it_is_not_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
):
    fake = tmp_path / "sbin" / "mosquitto"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(broker_adapter, "_WELL_KNOWN_PATHS", ("/nonexistent/mosquitto", str(fake)))
    assert find_mosquitto() == str(fake)

    monkeypatch.setattr(broker_adapter, "_WELL_KNOWN_PATHS", ())
    assert find_mosquitto() is None


# -- the project's rule: fail in CI, skip elsewhere ---------------------------------------------


@pytest.mark.parametrize("ci_value", ["true", "1", "yes"])
def test_missing_mosquitto_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci_value: str):
    monkeypatch.setattr(broker_adapter, "find_mosquitto", lambda: None)
    monkeypatch.setenv("CI", ci_value)
    with pytest.raises(pytest.fail.Exception, match="mosquitto not installed: sudo apt-get"):
        conftest.require_mosquitto()


@pytest.mark.parametrize("ci_value", [None, "", "false", "0"])
def test_missing_mosquitto_skips_outside_ci_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, ci_value: str | None,
):
    monkeypatch.setattr(broker_adapter, "find_mosquitto", lambda: None)
    if ci_value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci_value)
    with pytest.raises(pytest.skip.Exception) as raised:
        conftest.require_mosquitto()
    assert raised.value.msg == "mosquitto not installed: sudo apt-get install mosquitto"


def test_installed_mosquitto_is_simply_found(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(broker_adapter, "find_mosquitto", lambda: "/usr/sbin/mosquitto")
    monkeypatch.setenv("CI", "true")
    assert conftest.require_mosquitto() == "/usr/sbin/mosquitto"


def test_tests_using_the_broker_fixture_carry_the_broker_marker(
    request: pytest.FixtureRequest, broker: PrivateBroker,
):
    assert request.node.get_closest_marker("broker") is not None
