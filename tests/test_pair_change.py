"""A pair change leaves nothing of the old pair on the broker (issue "Hardening", item 9).

The partner link keeps a persistent session under a fixed client id, so the broker remembers
its subscriptions across connections. After a re-pairing or a forget, messages on the old
partner's topics must no longer reach the unit, and the unit's old retained ``state`` and
``presence`` must be gone: whether the old link was connected at the switch or not.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from micromance import protocol
from micromance.core import commands as cmd
from micromance.core.events import Gesture
from micromance.link.pair_cli import pair_from_shell
from micromance.link.pair_file import Pair, load_pair, pair_locally
from micromance.runtime import Runtime
from tests.benchmarks.common import raw_client
from tests.test_link import Home
from tests.test_pairing_broker import code_on, paired_on
from tests.units import Running, desk_config, names_of, partner_names_of

WAIT = 20.0


class LinkClients:
    """A unit's client factory: real paho clients; the partner link's ones (the clients that
    acknowledge by hand: see ``MqttLink``) record every topic they receive and can be cut
    off; the pairing room's are left alone."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.blocked = threading.Event()   # while set, the link's connection attempts fail
        self.links: list[_LinkClient] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, client_id: str = "", **kwargs: Any) -> mqtt.Client:
        client = _LinkClient(*args, client_id=client_id, **kwargs)
        client.owner = self
        return client

    def adopt(self, client: _LinkClient) -> None:
        with self._lock:
            self.links.append(client)

    def record(self, topic: str) -> None:
        with self._lock:
            self.received.append(topic)

    def mark(self) -> int:
        with self._lock:
            return len(self.received)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.received[mark:]

    def cut(self) -> None:
        """Block new attempts and drop the current connection, as a broken network would."""
        self.blocked.set()
        for client in self.links:
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _LinkClient(mqtt.Client):
    owner: LinkClients
    is_link = False  # set once the client turns out to be the partner link's

    def manual_ack_set(self, on: bool) -> None:
        super().manual_ack_set(on)
        self.is_link = on
        self.owner.adopt(self)

    @property
    def on_message(self) -> Any:
        return mqtt.Client.on_message.fget(self)

    @on_message.setter
    def on_message(self, func: Any) -> None:
        def recorded(client: Any, userdata: Any, message: Any) -> None:
            if self.is_link:
                self.owner.record(message.topic)
            func(client, userdata, message)

        mqtt.Client.on_message.fset(self, recorded if func else func)

    def reconnect(self) -> Any:
        if self.is_link and self.owner.blocked.is_set():
            raise ConnectionRefusedError(111, "Connection refused (cut off by the test)")
        return super().reconnect()


class RecordedHome(Home):
    """A unit whose partner link records what reaches it (and can be cut off)."""

    def __init__(self, state_dir: Path, name: str, broker: Any) -> None:
        super().__init__(state_dir, name, broker)
        self.clients = LinkClients()

    def start(self) -> RecordedHome:
        config = desk_config(self.state_dir, name=self.name, broker_port=self.broker.port)
        runtime = Runtime(config, pin_factory=self.factory, client_factory=self.clients)
        self.running = Running(runtime).__enter__()
        return self


def poll(condition: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.01)


def pair_again(home: RecordedHome, shell_dir: Path, *, then: Any = None) -> Pair:
    """Pair ``home`` with a new partner (``micromance pair`` in a shell); ``then`` runs once
    the code is shown, before the unit confirms (the switch follows the confirmation)."""
    home.runtime.on_gesture(Gesture.BOTH_HOLD)
    result: list[int] = []
    shell_config = desk_config(shell_dir, name="Kim", broker_port=home.broker.port)
    shell = threading.Thread(target=lambda: result.append(pair_from_shell(
        shell_config, "", answers=io.StringIO("y\n"), out=io.StringIO())))
    shell.start()
    code_on(home)
    if then is not None:
        then()
    home.runtime.on_gesture(Gesture.THANKS_PRESS)
    shell.join(30)
    assert result == [0]
    paired_on(home)
    pair = load_pair(shell_dir)
    assert pair is not None
    return pair


def retained_on(port: int, topics: list[str]) -> dict[str, bytes]:
    """The retained messages a fresh subscriber is handed on ``topics``."""
    probe = f"test/probe/{uuid.uuid4().hex}"
    found: dict[str, bytes] = {}
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        if message.topic == probe:
            done.set()
        elif message.retain:
            found[message.topic] = bytes(message.payload)

    client = raw_client(f"fresh-{uuid.uuid4().hex[:8]}", port, on_message=on_message,
                        subscribe=[(topic, 1) for topic in [*topics, probe]])
    try:
        # Retained copies are sent when the subscription is made, before this arrives.
        client.publish(probe, b"probe", qos=1)
        assert done.wait(10), "the probe never came back"
    finally:
        client.loop_stop()
        client.disconnect()
    return found


def retained_left(port: int, topics: protocol.Names) -> list[str]:
    """Which of the unit's old retained topics (``state``, ``presence``) still hold a
    message; the clearing may take a moment to reach the broker, so asked until empty."""
    old = [topics.state, topics.presence]
    left: list[str] = []

    def cleared() -> bool:
        left[:] = sorted(retained_on(port, old))
        return not left

    with contextlib.suppress(AssertionError):
        poll(cleared, "old retained topics cleared", timeout=5)
    return left


def publish_as_old_partner(port: int, old: Pair, count: int = 5) -> None:
    """What the old partner (or anyone on its topics) keeps sending: sealed thank-yous and
    summaries, and its presence."""
    topics = names_of(old)
    client = raw_client(f"old-partner-{uuid.uuid4().hex[:8]}", port)
    try:
        for seq in range(1, count + 1):
            thanks = protocol.Message(type=protocol.MessageType.THANKS, sender=topics.member,
                                      seq=seq, time="2026-11-25T12:00:00+01:00", name="Alex",
                                      sent_total=seq)
            client.publish(topics.events, protocol.seal(thanks, key=old.key,
                                                        topic=topics.events),
                           qos=1).wait_for_publish(5)
        client.publish(topics.presence, b"online", qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def old_topics_reaching(home: RecordedHome, old: Pair, new: Pair,
                        since: int | None = None) -> list[str]:
    """Publish on the old partner's topics, then on the new partner's: only the latter
    reaches the unit's link (the broker keeps the order of one publisher's messages).
    ``since``: count from this mark of the link's topics (else from now)."""
    old_topics = names_of(old)
    new_events = names_of(new).events
    mark = home.clients.mark() if since is None else since
    publish_as_old_partner(home.broker.port, old)
    thanks = protocol.Message(type=protocol.MessageType.THANKS, sender=names_of(new).member,
                              seq=1,
                              time="2026-11-25T12:00:00+01:00", name="Kim", sent_total=1)
    client = raw_client(f"new-partner-{uuid.uuid4().hex[:8]}", home.broker.port)
    try:
        client.publish(new_events, protocol.seal(thanks, key=new.key, topic=new_events),
                       qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    poll(lambda: new_events in home.clients.since(mark), "the new partner's message")
    return [topic for topic in home.clients.since(mark)
            if topic in (old_topics.events, old_topics.state, old_topics.presence)]


def assert_nothing_left(reached: list[str], left: list[str]) -> None:
    """(a) nothing on the old partner's topics reached the unit, (b) nothing retained."""
    assert (reached, left) == ([], []), (
        f"{len(reached)} message(s) on the old partner's topics reached the unit; "
        f"retained messages of the old pair still on the broker: {left}")


def connected_since(home: Home, mark: int) -> None:
    home.wait_for(lambda c: isinstance(c, cmd.PublishState), timeout=WAIT, since=mark)


# --- the tests ------------------------------------------------------------------------------


def test_re_pairing_while_connected_leaves_nothing_of_the_old_pair(tmp_path, broker):
    a = RecordedHome(tmp_path / "a", "Sam", broker)
    mine, old = pair_locally(a.state_dir, tmp_path / "old")
    try:
        a.start().connected()
        mark = a.running.mark()
        new = pair_again(a, tmp_path / "new")
        connected_since(a, mark)
        left = retained_left(broker.port, names_of(mine))
        assert_nothing_left(old_topics_reaching(a, old, new), left)
        # After a restart too (the session the broker keeps is the new pair's alone).
        a.stop()
        a.start().connected()
        assert old_topics_reaching(a, old, new) == []
    finally:
        a.close()


def test_re_pairing_while_the_link_is_down_leaves_nothing_once_it_is_back(tmp_path, broker):
    a = RecordedHome(tmp_path / "a", "Sam", broker)
    mine, old = pair_locally(a.state_dir, tmp_path / "old")
    try:
        a.start().connected()

        def cut_off() -> None:
            a.clients.cut()   # the broker publishes the Last Will: a retained "offline"
            poll(lambda: not a.runtime.courier.links[0].connected, "the link down")

        mark = a.running.mark()
        new = pair_again(a, tmp_path / "new", then=cut_off)
        assert not a.runtime.courier.links[0].connected
        a.clients.blocked.clear()   # the network is back: the new link connects
        connected_since(a, mark)
        left = retained_left(broker.port, names_of(mine))
        assert_nothing_left(old_topics_reaching(a, old, new), left)
    finally:
        a.close()


def test_re_pairing_while_the_unit_is_stopped_leaves_nothing_once_it_runs(tmp_path, broker):
    """``micromance pair`` in a shell while the service is stopped, then a restart."""
    a = RecordedHome(tmp_path / "a", "Sam", broker)
    mine, old = pair_locally(a.state_dir, tmp_path / "old")
    other = desk_config(tmp_path / "new", name="Kim", broker_port=broker.port)
    here = desk_config(a.state_dir, name="Sam", broker_port=broker.port)
    try:
        a.start().connected()
        a.stop()
        results: list[int] = []
        shells = [threading.Thread(target=lambda c=c: results.append(pair_from_shell(
            c, "", answers=io.StringIO("y\n"), out=io.StringIO()))) for c in (here, other)]
        for shell in shells:
            shell.start()
        for shell in shells:
            shell.join(60)
        assert results == [0, 0]
        new = load_pair(tmp_path / "new")
        assert new is not None and partner_names_of(load_pair(a.state_dir)) == names_of(new)
        a.start().connected()
        left = retained_left(broker.port, names_of(mine))
        assert_nothing_left(old_topics_reaching(a, old, new), left)
    finally:
        a.close()


def test_forgetting_while_connected_leaves_nothing_of_the_old_pair(tmp_path, broker):
    a = RecordedHome(tmp_path / "a", "Sam", broker)
    mine, old = pair_locally(a.state_dir, tmp_path / "old")
    try:
        a.start().connected()
        # The old partner unpairs (micromance pair --forget there): A forgets the pair.
        topics = names_of(old)
        unpair = protocol.Message(type=protocol.MessageType.UNPAIR, sender=topics.member,
                                  seq=1, time="2026-11-25T12:00:00+01:00", name="Alex",
                                  sent_total=0)
        client = raw_client("old-partner-unpair", broker.port)
        try:
            client.publish(topics.events, protocol.seal(unpair, key=old.key,
                                                        topic=topics.events),
                           qos=1).wait_for_publish(5)
        finally:
            client.loop_stop()
            client.disconnect()
        a.wait_for(lambda c: isinstance(c, cmd.ForgetPair))
        poll(lambda: not a.runtime.courier.links, "the link gone")
        left = retained_left(broker.port, names_of(mine))
        # What is sent on the old topics meanwhile must not wait for A on the broker either:
        # the next pair's link would be handed it.
        received = a.clients.mark()
        publish_as_old_partner(broker.port, old)
        mark = a.running.mark()
        new = pair_again(a, tmp_path / "new")
        connected_since(a, mark)
        assert_nothing_left(old_topics_reaching(a, old, new, since=received), left)
    finally:
        a.close()
