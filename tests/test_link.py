"""Two units through a real mosquitto: every THANKS arrives exactly once, whatever fails."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from micromance.core import commands as cmd
from micromance.core.commands import LightMode
from micromance.link.pair_file import pair_locally
from micromance.runtime import Runtime
from micromance.screens import views as v
from tests.units import Running, desk_config, press

THANKS, NEXT = 17, 27


class Home:
    """One unit in one home: its own pins, state directory and runtime."""

    def __init__(self, state_dir: Path, name: str, broker) -> None:
        self.state_dir = state_dir
        self.name = name
        self.broker = broker
        self.factory = MockFactory(pin_class=MockPWMPin)
        self.running: Running | None = None

    def start(self) -> Home:
        runtime = Runtime(desk_config(self.state_dir, name=self.name,
                                      broker_port=self.broker.port),
                          pin_factory=self.factory)
        self.running = Running(runtime).__enter__()
        return self

    def stop(self) -> None:
        if self.running is not None:
            self.running.__exit__(None, None, None)
            self.running = None

    def close(self) -> None:
        self.stop()
        self.factory.reset()
        self.factory.close()

    @property
    def runtime(self) -> Runtime:
        assert self.running is not None
        return self.running.runtime

    def press(self, pin: int) -> None:
        press(self.factory, pin)

    def wait_for(self, predicate, timeout: float = 20.0, since: int = 0):
        assert self.running is not None
        return self.running.wait_for(predicate, timeout, since)

    def wait_until(self, condition, timeout: float = 30.0) -> None:
        assert self.running is not None
        self.running.wait_until(condition, timeout)

    def connected(self) -> None:
        self.wait_for(lambda c: isinstance(c, cmd.PublishState))

    @property
    def state(self):
        return self.runtime.state


@pytest.fixture
def homes(tmp_path, broker):
    a = Home(tmp_path / "a", "Sam", broker)
    b = Home(tmp_path / "b", "Alex", broker)
    pair_locally(a.state_dir, b.state_dir)
    yield a, b
    for home in (a, b):
        home.close()


def test_thanks_lights_the_partner_and_seen_comes_back(homes):
    a, b = homes
    a.start().connected()
    b.start().connected()
    a.press(THANKS)
    b.wait_for(lambda c: c == cmd.SetLight(LightMode.PULSE))
    assert b.factory.pin(18).state > 0 or b.runtime.panel.light_mode is LightMode.PULSE
    frame = b.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                       and isinstance(c.frame.view, v.ReceivedView))
    assert frame.frame.view.sender == "Sam"
    since = b.running.mark()
    b.press(NEXT)
    a.wait_for(lambda c: isinstance(c, cmd.ShowFrame) and isinstance(c.frame.view, v.SentView)
               and c.frame.view.seen)
    b.wait_for(lambda c: c == cmd.SetLight(LightMode.OFF), since=since)
    assert b.factory.pin(18).state == 0
    # Both sides agree: A sent one, B received one, and both outboxes drain.
    assert a.state.counters.sent_total == 1 == b.state.counters.received_total
    _wait_outbox_empty(a)
    _wait_outbox_empty(b)


def test_a_thank_you_lights_the_led_before_its_step_counts_it(homes):
    """As the message is opened, before its step: the LED goes on while B has not counted
    the thank-you yet; the step then makes it breathe. (Only when nothing waited before the
    message: should something else of B's have been queued, the step lights it; then the
    next thank-you shows it.)"""
    a, b = homes
    a.start().connected()
    b.start().connected()
    lights: list[tuple[LightMode, int]] = []
    panel = b.runtime.panel
    set_light = panel.set_light

    def recorded(mode: LightMode) -> None:
        set_light(mode)
        lights.append((mode, b.state.counters.received_total))

    panel.set_light = recorded
    for total in range(1, 4):
        lights.clear()
        since = b.running.mark()
        a.press(THANKS)
        b.wait_for(lambda c: c == cmd.SetLight(LightMode.PULSE), since=since)
        assert lights[-1] == (LightMode.PULSE, total)  # the step counted it, and breathes
        if lights[0][0] is LightMode.ON:
            break
        b.press(NEXT)  # dark again, for the next try
        b.wait_for(lambda c: c == cmd.SetLight(LightMode.OFF), since=since)
    assert lights == [(LightMode.ON, total - 1), (LightMode.PULSE, total)]
    assert panel.light_mode is LightMode.PULSE


def test_next_pressed_the_moment_the_led_lights_acknowledges_that_thank_you(homes):
    """The light comes before the step, the press never does: pressed as the LED goes on
    (here from inside the light's own call), NEXT still finds the thank-you counted."""
    a, b = homes
    a.start().connected()
    b.start().connected()
    panel = b.runtime.panel
    set_light = panel.set_light
    pressed: list[LightMode] = []

    def and_next(mode: LightMode) -> None:
        set_light(mode)
        if mode is not LightMode.OFF and not pressed:
            pressed.append(mode)
            b.press(NEXT)

    panel.set_light = and_next
    a.press(THANKS)
    b.wait_for(lambda c: isinstance(c, cmd.SendSeen))
    b.wait_for(lambda c: c == cmd.SetLight(LightMode.OFF))
    assert b.state.counters.received_total == 1 and b.state.pending == 0
    assert b.factory.pin(18).state == 0


def test_a_release_publishes_its_thank_you_before_its_step_runs(homes):
    """THANKS held, then let go: the thank-you rehearsed at the press is committed and
    published ahead of the release's step (A's core has not counted it when it goes out),
    and the step then does the rest; B gets each once. (Only when nothing else stepped A
    during the hold, such as the partner's summary just after connecting: up to five
    tries.)"""
    a, b = homes
    a.start().connected()
    b.start().connected()
    courier, stepper = a.runtime.courier, a.runtime._stepper
    publish = courier.publish
    counted_when_published: list[int] = []

    def recorded(message, *args, **kwargs):
        if message.type == "thanks":
            counted_when_published.append(a.state.counters.sent_total)
        return publish(message, *args, **kwargs)

    courier.publish = recorded
    until_deadline = stepper.seconds_until_deadline
    asleep = threading.Event()  # the loop worked out its deadline with THANKS held

    def noted(now: float) -> float | None:
        seconds = until_deadline(now)
        if stepper.state.prepared is not None:
            asleep.set()
        return seconds

    stepper.seconds_until_deadline = noted
    pin = a.factory.pin(THANKS)
    for total in range(1, 6):
        _wait_outbox_empty(a)  # the last one acknowledged: no step of A's in the next hold
        asleep.clear()
        pin.drive_low()
        assert asleep.wait(10)
        pin.drive_high()
        _wait_received(b, total)
        if counted_when_published[-1] == total - 1:
            break
    assert counted_when_published[-1] == total - 1  # out before the step counted it
    a.wait_until(lambda: a.state.counters.sent_total == total)
    _wait_outbox_empty(a)
    assert b.state.counters.received_total == total == len(counted_when_published)


def _wait_outbox_empty(home: Home, timeout: float = 30.0) -> None:
    home.wait_until(lambda: home.state.partner.outbox == 0, timeout)


def _wait_received(home: Home, total: int, timeout: float = 30.0) -> None:
    home.wait_until(lambda: home.state.counters.received_total >= total, timeout)


def test_partner_offline_for_50_presses_gets_each_exactly_once(homes):
    a, b = homes
    a.start().connected()
    for _ in range(50):
        a.press(THANKS)
    a.wait_for(lambda c: c == cmd.SendThanks(total=50))
    a.wait_until(lambda: a.state.partner.outbox == 50)
    b.start()
    _wait_received(b, 50)
    _wait_outbox_empty(a)
    counters = b.state.counters
    assert counters.received_total == 50
    assert b.state.pending == 50  # each press counted once, none twice
    assert b.state.partner.rejected == sum(
        1 for c in b.running.seen if isinstance(c, cmd.NoteRejected))


def test_broker_killed_mid_presses_loses_nothing(homes, broker):
    a, b = homes
    a.start().connected()
    b.start().connected()
    for index in range(100):
        a.press(THANKS)
        if index == 40:
            broker.kill()
        if index == 60:
            broker.restart()
    _wait_received(b, 100, timeout=60)
    _wait_outbox_empty(a, timeout=60)
    assert b.state.counters.received_total == 100
    assert a.state.counters.sent_total == 100


def test_units_started_while_the_broker_is_down_connect_when_it_comes_up(homes, broker):
    a, b = homes
    broker.stop()
    a.start()
    b.start()
    for _ in range(3):
        a.press(THANKS)  # counted and kept while nobody can be reached
    a.wait_until(lambda: a.state.counters.sent_total == 3)
    assert a.runtime.courier.links[0].socket() is None  # refused: waiting out its backoff
    broker.restart()
    _wait_received(b, 3, timeout=30)
    _wait_outbox_empty(a, timeout=30)
    a.press(THANKS)
    _wait_received(b, 4, timeout=10)


def test_receiver_killed_and_restarted_counts_everything_once(homes):
    a, b = homes
    a.start().connected()
    b.start().connected()
    for _ in range(10):
        a.press(THANKS)
    _wait_received(b, 10)
    b.stop()
    for _ in range(10):
        a.press(THANKS)
    b.start()
    _wait_received(b, 20)
    _wait_outbox_empty(a)
    assert b.state.counters.received_total == 20
    assert b.state.pending == 20


def test_forged_and_replayed_messages_are_dropped_and_counted(homes, broker):
    import paho.mqtt.client as mqtt

    from micromance import protocol
    from micromance.link.pair_file import load_pair

    a, b = homes
    b.start().connected()
    pair = load_pair(a.state_dir)
    names = protocol.pair_names(pair.key, pair.device_id, pair.partner_id)[0]
    topic = names.events
    genuine = protocol.Message(type="thanks", sender=names.member, seq=1,
                               time="2026-11-25T12:00:00+01:00", name="Sam", sent_total=1)
    sealed = protocol.seal(genuine, key=pair.key, topic=topic)
    wrong_key = protocol.seal(genuine, key=bytes(32),  # published on the real topic below
                              topic=protocol.Names.derive(bytes(32), names.member).events)
    envelope = json.loads(sealed)
    ciphertext = bytearray(base64.b64decode(envelope["ct"]))
    ciphertext[3] ^= 0x01  # one bit of the ciphertext, the envelope still well formed
    flipped = json.dumps(envelope | {"ct": base64.b64encode(ciphertext).decode()}).encode()
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker")
    attacker.connect(broker.host, broker.port)
    attacker.loop_start()
    try:
        for payload in (b"not json", wrong_key, bytes(flipped), b"x" * 5000, sealed, sealed):
            attacker.publish(topic, payload, qos=1).wait_for_publish(5)
        b.wait_until(lambda: b.state.partner.rejected >= 4 and b.state.partner.duplicates)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
    state = b.state
    assert state.counters.received_total == 1  # only the genuine one, once
    assert state.partner.rejected == 4  # the forged ones...
    assert state.partner.duplicates == 1  # ...and the replay: a copy of what it had
    reasons = {c.reason for c in b.running.seen if isinstance(c, cmd.NoteRejected)}
    assert reasons == {"not_json", "undecryptable", "oversized"}
    # The replay is refused after a restart too.
    b.stop()
    b.start().connected()
    with contextlib.suppress(Exception):
        attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="attacker2")
        attacker.connect(broker.host, broker.port)
        attacker.loop_start()
        attacker.publish(topic, sealed, qos=1).wait_for_publish(5)
        b.wait_until(lambda: b.state.partner.duplicates == 1)
        attacker.loop_stop()
        attacker.disconnect()
    assert b.state.counters.received_total == 1
    assert b.state.partner.duplicates == 1 and b.state.partner.rejected == 0


def test_status_reports_the_link(homes, tmp_path):

    a, b = homes
    a.start().connected()
    b.start().connected()
    report = wait_for_status(a.runtime, lambda report: report["link"] == "connected")
    assert report["paired"] is True
    assert report["pair_id"] and len(report["pair_id"]) == 8
    assert "key" not in str(report).lower()


def wait_for_status(runtime, predicate, timeout: float = 10.0) -> dict:
    """The unit's status once ``predicate`` holds (re-read after each write of status.json)."""
    from micromance.status import collect_status

    deadline = time.monotonic() + timeout
    while True:
        runtime.status_written.clear()
        report = collect_status(runtime.config)
        if predicate(report):
            return report
        remaining = deadline - time.monotonic()
        assert remaining > 0 and runtime.status_written.wait(remaining), f"status: {report}"


class UnitProcess:
    """A unit as its own process (`micromance run`), so it can really be killed with -9."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.config = state_dir.parent / f"{state_dir.name}.toml"
        self.config.write_text(
            f'[device]\nname = "Alex"\n[display]\ndriver = "dummy"\n'
            f'[quiet_hours]\nenabled = false\n[paths]\nstate_dir = "{state_dir}"\n'
            f'[broker]\nhost = "127.0.0.1"\nport = {port}\ntls = false\n')
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> UnitProcess:
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock",
               "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "micromance", "run", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        self.wait_line("link up")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stderr:
            self.lines.put(line)

    def wait_line(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout}s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(20)


def test_receiver_killed_with_sigkill_loses_nothing_and_counts_nothing_twice(tmp_path, broker):
    a = Home(tmp_path / "a", "Sam", broker)
    b_dir = tmp_path / "b"
    pair_locally(a.state_dir, b_dir)
    b = UnitProcess(b_dir, broker.port)
    try:
        a.start().connected()
        b.start()
        for _ in range(10):
            a.press(THANKS)
        b.wait_line("(their #10)")
        b.kill()
        for _ in range(10):
            a.press(THANKS)
        a.wait_until(lambda: a.state.counters.sent_total == 20)
        b.start()
        b.wait_line("(their #20)")
        _wait_outbox_empty(a)
        assert b.stop() == 0
        from micromance.config import load_config
        from micromance.status import collect_status

        report = collect_status(load_config(b.config))
        assert report["received_total"] == 20
        assert report["outbox"] == 0
    finally:
        if b.process and b.process.poll() is None:
            b.kill()
        a.close()


def test_two_units_through_a_self_hosted_tls_broker_with_logins_and_acl(tmp_path):
    """The link's own loop over TLS (decrypted bytes select cannot see) and per-unit logins."""
    from dataclasses import replace

    from micromance.config import BrokerConfig
    from tests.selfhosted import PASSWORD, start_selfhosted

    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    pair_locally(dir_a, dir_b)
    broker = start_selfhosted(tmp_path / "mosquitto", ("home-a", "home-b"))
    (tmp_path / "password").write_text(PASSWORD + "\n")
    homes = []
    try:
        for state_dir, login, name in ((dir_a, "home-a", "Sam"), (dir_b, "home-b", "Alex")):
            config = replace(desk_config(state_dir, name=name), broker=BrokerConfig(
                host="localhost", port=broker.port, tls=True, ca_file=str(broker.ca_file),
                username=login, password_file=str(tmp_path / "password")))
            home = Home(state_dir, name, broker)
            home.running = Running(Runtime(config, pin_factory=home.factory)).__enter__()
            homes.append(home)
        a, b = homes
        a.connected()
        b.connected()
        for _ in range(5):
            a.press(THANKS)
        _wait_received(b, 5, timeout=20)
        _wait_outbox_empty(a, timeout=20)
        assert b.state.outputs.light is LightMode.PULSE  # B's LED breathes
    finally:
        for home in homes:
            home.close()
        broker.stop()
