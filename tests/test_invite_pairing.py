"""Pairing across homes through real mosquitto processes: invites, several brokers, brokers
that cannot be reached (said within seconds, each with its failed step), and what a wildcard
listener on the broker learns (nothing that names the product, a unit or the pair)."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from micromance.config import BrokerConfig
from micromance.core import commands as cmd
from micromance.link.pair_cli import pair_from_shell
from micromance.link.pair_file import load_pair
from micromance.protocol import make_invite, pairing
from micromance.simulator.private_broker import PrivateBroker, free_loopback_port
from tests.conftest import require_mosquitto
from tests.silent_broker import HangingBroker
from tests.test_brokers import loopback, make_unit
from tests.units import desk_config, press

pytestmark = pytest.mark.broker
THANKS = 17
CODE = make_invite(bytes(range(8)))


def shell_config(state_dir: Path, brokers: list[BrokerConfig], name: str = "Sam"):
    return replace(desk_config(state_dir, name=name), broker_tables=tuple(brokers))


class Shell:
    """``micromance pair`` in a shell on its own thread, answering y to the code."""

    def __init__(self, config, *, invite: str = "", room: str = "", answer: str = "y\n",
                 client_factory=None) -> None:
        self.out = io.StringIO()
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(pair_from_shell(
            config, room, invite=invite, answers=io.StringIO(answer), out=self.out,
            client_factory=client_factory)))
        self.thread.start()

    def join(self, timeout: float = 60) -> int:
        self.thread.join(timeout)
        assert self.result, f"still pairing after {timeout} s:\n{self.out.getvalue()}"
        return self.result[0]

    @property
    def text(self) -> str:
        return self.out.getvalue()


@pytest.fixture
def brokers(tmp_path):
    require_mosquitto()
    started = [PrivateBroker(directory=tmp_path / f"broker{i}").start() for i in range(2)]
    yield started
    for broker in started:
        broker.close()


@pytest.fixture
def short_search():
    before = pairing.SEARCH_SECONDS
    pairing.SEARCH_SECONDS = 4.0
    yield
    pairing.SEARCH_SECONDS = before


def test_an_invite_pairs_two_units_over_two_brokers(tmp_path, brokers):
    both = [loopback(b.port) for b in brokers]
    inviter = Shell(shell_config(tmp_path / "a", both), invite=CODE)
    joiner = Shell(shell_config(tmp_path / "b", both, "Alex"), invite=CODE.upper())
    assert inviter.join() == 0, inviter.text
    assert joiner.join() == 0, joiner.text
    codes = {re.search(r"Code: (\d{3} \d{3})", shell.text).group(1)
             for shell in (inviter, joiner)}
    assert len(codes) == 1                       # both showed the same six digits
    pair_a, pair_b = load_pair(tmp_path / "a"), load_pair(tmp_path / "b")
    assert pair_a.key == pair_b.key
    assert "the invite's room" in inviter.text
    said = [inviter.text.count(f"✓ {broker.host}:{broker.port}") for broker in both]
    # Each broker says so once at most: the pairing may end through the first broker before
    # the second has answered (then the command is done and says nothing more of it).
    assert 1 in said and set(said) <= {0, 1}, said


def test_a_wrong_code_never_pairs(tmp_path, brokers, short_search):
    one = [loopback(brokers[0].port)]
    wrong = make_invite(bytes(range(1, 9)))
    assert wrong != CODE
    inviter = Shell(shell_config(tmp_path / "a", one), invite=CODE)
    joiner = Shell(shell_config(tmp_path / "b", one, "Alex"), invite=wrong)
    assert (inviter.join(), joiner.join()) == (1, 1)
    assert all("no other unit in the room" in s.text for s in (inviter, joiner))
    assert "Code:" not in inviter.text + joiner.text
    assert load_pair(tmp_path / "a") is None and load_pair(tmp_path / "b") is None


def test_a_unit_in_the_lobby_cannot_join_an_invites_room(tmp_path, brokers):
    """A third unit pairs with its buttons (the lobby) while two units pair by invite: it
    never sees a code, and the invite's pair is the two units' only."""
    from micromance.core.events import Gesture
    from micromance.screens import views as v
    from tests.test_link import Home

    stranger = Home(tmp_path / "c", "Kim", brokers[0])
    try:
        stranger.start()
        stranger.runtime.on_gesture(Gesture.BOTH_HOLD)   # searching the lobby
        one = [loopback(brokers[0].port)]
        shells = [Shell(shell_config(tmp_path / d, one, n), invite=CODE)
                  for d, n in (("a", "Sam"), ("b", "Alex"))]
        assert [s.join() for s in shells] == [0, 0], shells[0].text
        assert stranger.runtime.state.session is not None          # still searching...
        assert not any(isinstance(c, cmd.ShowFrame) and isinstance(c.frame.view, v.PairingView)
                       and c.frame.view.phase is v.PairingPhase.CODE
                       for c in stranger.running.seen)              # ...and never got a code
    finally:
        stranger.close()
    assert load_pair(tmp_path / "c") is None
    assert load_pair(tmp_path / "a").key == load_pair(tmp_path / "b").key


class FailingDns:
    """A client factory whose connections fail at name resolution (no test waits on DNS)."""

    def __call__(self, *args, **kwargs):
        import paho.mqtt.client as mqtt

        class Client(mqtt.Client):
            def reconnect(self):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        return Client(*args, **kwargs)


def test_no_reachable_broker_is_said_within_seconds_with_each_failed_step(tmp_path, brokers):
    from tests.selfhosted import start_selfhosted

    hanging = HangingBroker()
    selfhosted = start_selfhosted(tmp_path / "mosquitto", ("home-a",))
    (tmp_path / "password").write_text("not the password\n")
    closed = free_loopback_port()
    listed = [
        loopback(closed),                                            # TCP refused
        loopback(hanging.port),                                      # TCP, then silence
        BrokerConfig(host="127.0.0.1", port=brokers[0].port, tls=True),  # no TLS there
        BrokerConfig(host="localhost", port=selfhosted.port, tls=True,  # a wrong password
                     ca_file=str(selfhosted.ca_file), username="home-a",
                     password_file=str(tmp_path / "password")),
    ]
    try:
        started = time.monotonic()
        shell = Shell(shell_config(tmp_path / "a", listed))
        assert shell.join(30) == 1
        took = time.monotonic() - started
    finally:
        hanging.close()
        selfhosted.stop()
    text = shell.text
    assert took < 10, text                              # seconds, not the two minutes
    assert f"✗ 127.0.0.1:{closed}: TCP: connection refused" in text
    assert f"✗ 127.0.0.1:{hanging.port}: no answer to CONNECT" in text
    assert f"✗ 127.0.0.1:{brokers[0].port}: TLS" in text
    assert f"✗ localhost:{selfhosted.port}: login: refused" in text
    assert "Not paired: none of the 4 brokers could be reached" in text
    assert re.search(r"\(after \d+(\.\d)? s\)", text), text       # the time it took
    assert "no other unit" not in text


def test_a_name_that_does_not_resolve_is_a_dns_failure(tmp_path):
    config = shell_config(tmp_path / "a", [BrokerConfig(host="broker.example.invalid",
                                                        port=8883)])
    shell = Shell(config, client_factory=FailingDns())
    assert shell.join(30) == 1
    assert "✗ broker.example.invalid:8883: DNS: cannot resolve" in shell.text
    assert "Not paired: the broker could not be reached" in shell.text


def test_the_waiting_time_is_printed(tmp_path, brokers, short_search):
    shell = Shell(shell_config(tmp_path / "a", [loopback(brokers[0].port)]))
    assert shell.join() == 1
    assert "waiting up to 4.0 s" in shell.text
    assert re.search(r"no other unit in the room \(after \d\.\d s\)", shell.text), shell.text


def test_a_wildcard_listener_learns_no_product_unit_or_pair(tmp_path, brokers):
    """Subscribed to '#' through pairing and 20 presses: every topic is opaque."""
    import paho.mqtt.client as mqtt

    broker = brokers[0]
    topics: set[str] = set()
    listening = threading.Event()
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="spy", protocol=mqtt.MQTTv5)
    spy.on_connect = lambda c, *a: c.subscribe("#", qos=0)
    spy.on_subscribe = lambda *a: listening.set()
    spy.on_message = lambda c, u, message: topics.add(message.topic)
    spy.connect("127.0.0.1", broker.port)
    spy.loop_start()
    units = []
    try:
        assert listening.wait(5)
        one = [loopback(broker.port)]
        shells = [Shell(shell_config(tmp_path / d, one, n), invite=CODE)
                  for d, n in (("a", "Sam"), ("b", "Alex"))]
        assert [s.join() for s in shells] == [0, 0]
        units = [make_unit(tmp_path / d, n, one) for d, n in (("a", "Sam"), ("b", "Alex"))]
        a, b = units
        for index in range(20):
            press(a.factory, THANKS)
            a.wait_until(lambda i=index: a.state.counters.sent_total == i + 1)
        b.wait_until(lambda: b.state.counters.received_total == 20)
        a.wait_until(lambda: a.state.partner.outbox == 0)
    finally:
        for unit in units:
            unit.close()
        spy.loop_stop()
        spy.disconnect()
    pair = load_pair(tmp_path / "a")
    device_ids = {load_pair(tmp_path / d).device_id for d in ("a", "b")}
    secrets = {pair.pair_id, *device_ids, "micromance", "pair", "lobby", "sam", "alex"}
    assert len(topics) >= 4                           # the room, events, state, presence
    for topic in topics:
        assert re.fullmatch(r"[0-9a-f]{32}", topic), topic
        assert not any(word in topic.lower() for word in secrets), topic
