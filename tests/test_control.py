"""The control socket of a running unit: every op through a real Unix socket, malformed
requests answered and counting nothing, and the CLI through it (send, pair, forget) between
two units on a private mosquitto."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import stat
import threading

import pytest

from micromance import cli
from micromance.control import server as control_server
from micromance.control.cli import (
    UnitNotRunning,
    forget_through_unit,
    pair_through_unit,
    send_from_shell,
)
from micromance.control.client import ControlClient, ControlError, control_path, find_daemon
from micromance.core import commands as cmd
from micromance.core.commands import LightMode
from micromance.link.pair_file import load_pair, pair_locally
from micromance.runtime import Runtime
from micromance.screens import views as v
from tests.test_link import Home
from tests.units import Running, desk_config

STATUS_KEYS = {"name", "paired", "link", "partner", "partner_name", "away_since", "prompt",
               "today", "sent_total", "received_total", "pending", "streak",
               "together_total", "outbox", "quiet", "screen", "pairing", "brokers",
               "config_error"}


@pytest.fixture
def unit(tmp_path, mock_factory):
    """One unpaired unit (no broker is ever contacted: it has no pair)."""
    runtime = Runtime(desk_config(tmp_path / "a", broker_port=1), pin_factory=mock_factory)
    with Running(runtime) as running:
        yield running


def raw(running: Running) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(running.runtime.control.path))
    return sock


def ask(sock: socket.socket, data: bytes) -> dict:
    sock.sendall(data)
    return json.loads(read_line(sock))


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {line!r}"
        line += chunk
    return line


def frames(running: Running, kind: type) -> list:
    return [c.frame.view for c in running.seen
            if isinstance(c, cmd.ShowFrame) and isinstance(c.frame.view, kind)]


# --- the socket itself -------------------------------------------------------------------------


def test_the_socket_is_group_only_in_the_runtime_place_and_gone_after(tmp_path, mock_factory):
    config = desk_config(tmp_path / "a", broker_port=1)
    path = control_path(config)
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))                      # a socket file left by a unit that died
    stale.close()
    assert find_daemon(config) is None         # nobody listens on it
    with Running(Runtime(config, pin_factory=mock_factory)):
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
        with find_daemon(config) as client:
            assert client.status()["name"] == "Sam"
    assert not path.exists()


def test_status_has_every_documented_key(unit):
    with ControlClient(unit.runtime.control.path) as client:
        status = client.status()
    assert set(status) >= STATUS_KEYS
    assert status["paired"] is False and status["link"] == "offline"
    assert status["screen"] == "home" and status["config_error"] == ""
    assert status["prompt"]["text"] == unit.runtime.state.rotation.prompt.text
    assert status["brokers"] == [{"host": "127.0.0.1", "port": 1, "tls": False,
                                  "connected": False, "error": ""}]
    assert status["pairing"] == {"phase": "idle", "code": "", "detail": ""}


def test_presses_act_as_the_buttons_do(unit):
    with ControlClient(unit.runtime.control.path) as client:
        prompt = client.status()["prompt"]["id"]
        client.press("thanks")
        status = client.status()                 # answered after the press was acted on
        assert status["sent_total"] == 1 and status["screen"] == "sent"
        client.press("done")
        assert client.status()["streak"] == 1
        client.press("next")
        after = client.status()
    assert after["screen"] == "home" and after["prompt"]["id"] != prompt
    assert after["history"][-1][1:] == [1, 0, 1]


def test_malformed_requests_are_answered_and_change_nothing(unit):
    server = unit.runtime.control
    before = unit.runtime.state.counters
    bad = [b"not json\n", b"[1, 2]\n", b'{"op": "launch"}\n', b'{"op": 7}\n',
           b'{"op": "press", "button": "both"}\n', b'{"op": "press", "finger": "thanks"}\n',
           b'{"op": "pair", "mode": "join", "code": "1 2 3"}\n',
           b'{"op": "pair", "mode": "room", "room": "no spaces please"}\n',
           b'{"op": "pair", "mode": "shout"}\n',
           b'{"op": "show_code", "code": "12345", "seconds": 5}\n',
           b'{"op": "show_code", "code": "123456", "seconds": 6000}\n',
           b'{"op": "show_code", "code": "123456", "seconds": true}\n',
           b'{"op": "confirm"}\n']
    sock = raw(unit)
    try:
        for request in bad:
            answer = ask(sock, request)
            assert answer["ok"] is False and answer["error"] and answer["fix"], request
        huge = ask(sock, b'{"op": "status", "pad": "' + b"x" * 9000 + b'"}\n')
        assert huge["ok"] is False and "longer than 8192" in huge["error"]
        with contextlib.suppress(ConnectionResetError):  # unread bytes: closed with a RST
            assert sock.recv(10) == b""            # and the connection is closed
    finally:
        sock.close()
    assert server.refused == len(bad) + 1
    assert unit.runtime.state.counters == before
    assert not any(isinstance(c, cmd.SaveCounters) for c in unit.seen)
    with ControlClient(server.path) as client:     # still serving
        assert client.status()["sent_total"] == 0


def test_a_client_gone_mid_way_and_a_crowd_of_idle_ones_are_fine(unit):
    half = raw(unit)
    half.sendall(b'{"op": "pre')
    half.close()
    gone = raw(unit)
    gone.sendall(b'{"op": "status"}\n')
    gone.close()                                      # before its answer could be read
    crowd: list[socket.socket] = []
    try:
        for _ in range(control_server.MAX_CONNECTIONS):  # all accepted and answering
            crowd.append(raw(unit))
            assert ask(crowd[-1], b'{"op": "pairing"}\n')["ok"]
        one_too_many = raw(unit)
        answer = json.loads(read_line(one_too_many))
        assert answer["ok"] is False and "too many" in answer["error"]
        one_too_many.close()
    finally:
        for sock in crowd:
            sock.close()
    with ControlClient(unit.runtime.control.path) as client:
        assert client.status()["sent_total"] == 0


def test_requests_sent_ahead_are_answered_in_turn_each_after_the_last_acted(unit):
    sock = raw(unit)
    try:
        sock.sendall(b'{"op": "press", "button": "thanks"}\n{"op": "status"}\n'
                     b'{"op": "press", "button": "thanks"}\n{"op": "status"}\n')
        answers = [json.loads(read_line(sock)) for _ in range(1)]
        while len(answers) < 4:
            answers += [json.loads(line) for line in read_line(sock).splitlines()]
    finally:
        sock.close()
    assert [a["ok"] for a in answers] == [True] * 4
    assert answers[1]["status"]["sent_total"] == 1
    assert answers[3]["status"]["sent_total"] == 2


def test_the_access_code_is_shown_and_hidden(unit):
    with ControlClient(unit.runtime.control.path) as client:
        client.show_code("048213", 60)
        assert client.status()["screen"] == "access_code"
        assert frames(unit, v.AccessCodeView) == [v.AccessCodeView(code="048213")]
        client.hide_code()
        assert client.status()["screen"] == "home"
        client.pair("room")                           # a pairing code is never covered
        with pytest.raises(ControlError, match="pairing"):
            client.show_code("048213", 60)
        client.cancel()
        assert client.pairing()["phase"] == "cancelled"


def test_pairing_ops_on_an_unpaired_unit(unit):
    with ControlClient(unit.runtime.control.path) as client:
        with pytest.raises(ControlError) as refused:
            client.pair("join", code="417 maple")
        assert "invite" in refused.value.fix
        invite = client.pair("invite")
        assert re.fullmatch(r"\d{3}( [a-z]+){4}", invite)
        assert client.pairing()["phase"] == "searching"
        assert client.status()["screen"] == "pairing"
        with pytest.raises(ControlError, match="no pairing code"):
            client.confirm()
        client.cancel()
        assert client.status()["screen"] == "home"
        assert client.request("forget") == {"ok": True, "was_paired": False, "told": False}
        assert client.reload() == []                 # built-in config: nothing to re-read


# --- the command line through the running unit --------------------------------------------------


def test_send_without_a_running_unit_says_how_to_start_it(tmp_path, capsys):
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    assert cli.main(["send", "--config", str(config_file)]) == 69
    error = capsys.readouterr().err
    assert "not running" in error and "systemctl start micromance" in error
    with pytest.raises(UnitNotRunning):
        send_from_shell(desk_config(tmp_path / "state"), out=io.StringIO())


def test_send_counts_locally_when_unpaired(unit):
    out = io.StringIO()
    assert send_from_shell(unit.runtime.config, out=out) == 0
    assert "#1 counted on the unit; it is not paired" in out.getvalue()


@pytest.fixture
def homes(tmp_path, broker):
    a = Home(tmp_path / "a", "Sam", broker)
    b = Home(tmp_path / "b", "Alex", broker)
    yield a, b
    for home in (a, b):
        home.close()


def test_send_through_the_running_unit_lights_the_partner(homes):
    a, b = homes
    pair_locally(a.state_dir, b.state_dir)
    a.start().connected()
    b.start().connected()
    out = io.StringIO()
    assert send_from_shell(a.runtime.config, out=out) == 0
    assert out.getvalue() == "Thank-you #1 sent to your partner.\n" or \
        out.getvalue() == "Thank-you #1 sent to Alex.\n"
    b.wait_for(lambda c: c == cmd.SetLight(LightMode.PULSE))
    assert b.state.counters.received_total == 1


def test_send_while_no_broker_is_connected_is_queued(homes, broker):
    a, b = homes
    pair_locally(a.state_dir, b.state_dir)
    a.start().connected()
    broker.stop()
    a.wait_until(lambda: a.state.partner.link.value != "connected")
    out = io.StringIO()
    assert send_from_shell(a.runtime.config, out=out) == 0
    assert "#1 queued: no broker is connected" in out.getvalue()
    assert "(1 waiting)" in out.getvalue()


class Said(io.StringIO):
    """Standard output that lets a test wait for a line."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            written = super().write(text)
            self.changed.notify_all()
        return written

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match:
        with self.changed:
            found = self.changed.wait_for(lambda: re.search(pattern, self.getvalue()), timeout)
        assert found, self.getvalue()
        return found


class Shell:
    """``micromance pair`` through a running unit, on its own thread, answering y."""

    def __init__(self, home: Home, mode: str, code: str = "") -> None:
        self.out = Said()
        self.result: list[int] = []
        client = ControlClient(home.runtime.control.path)

        def run() -> None:
            with client:
                self.result.append(pair_through_unit(client, mode, code=code,
                                                     answers=io.StringIO("y\n"),
                                                     out=self.out))

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> int:
        self.thread.join(60)
        assert self.result, self.out.getvalue()
        return self.result[0]

    def code(self) -> str:
        return re.search(r"Code: (\d{3} \d{3})", self.out.getvalue()).group(1)


def test_pair_invite_and_join_through_two_running_units(homes):
    a, b = homes
    a.start()
    b.start()
    inviter = Shell(a, "invite")
    invite = inviter.out.wait_for(r"Invite code: (.+)\n").group(1)
    assert f"micromance pair --join {invite}" in inviter.out.getvalue()
    joiner = Shell(b, "join", invite.upper())
    assert (inviter.join(), joiner.join()) == (0, 0), inviter.out.getvalue()
    assert inviter.code() == joiner.code()
    assert "Confirmed here" in inviter.out.getvalue()
    assert "Paired with Alex." in inviter.out.getvalue()  # its name, not an id
    assert "Paired with Sam." in joiner.out.getvalue()
    assert load_pair(a.state_dir).key == load_pair(b.state_dir).key
    a.wait_until(lambda: a.state.partner.paired and b.state.partner.paired)
    a.wait_until(lambda: a.state.partner.link.value == "connected")  # the new pair's link


def test_a_cancel_on_the_unit_ends_the_shells_attempt(homes):
    a, _ = homes
    a.start()
    shell = Shell(a, "room")
    shell.out.wait_for("Looking for the other unit")
    with ControlClient(a.runtime.control.path) as client:
        client.cancel()
    assert shell.join() == 1
    assert "Not paired: cancelled here" in shell.out.getvalue()


def test_forget_through_the_socket_tells_the_partner(homes):
    a, b = homes
    pair_locally(a.state_dir, b.state_dir)
    a.start().connected()
    b.start().connected()
    out = io.StringIO()
    with ControlClient(a.runtime.control.path) as client:
        assert forget_through_unit(client, out=out) == 0
    assert "the partner's unit was told" in out.getvalue()
    assert load_pair(a.state_dir) is None
    b.wait_for(lambda c: isinstance(c, cmd.ForgetPair))
    assert load_pair(b.state_dir) is None and not b.state.partner.paired
    with ControlClient(a.runtime.control.path) as client:
        out = io.StringIO()
        assert forget_through_unit(client, out=out) == 0
    assert out.getvalue() == "This unit is not paired.\n"


def test_the_pair_command_goes_through_a_running_unit(homes, monkeypatch, capsys):
    """``micromance pair --forget`` with the daemon up: the daemon unpairs itself."""
    a, b = homes
    pair_locally(a.state_dir, b.state_dir)
    a.start().connected()
    config_file = a.state_dir / "config.toml"
    config_file.write_text(f'[paths]\nstate_dir = "{a.state_dir}"\n[broker]\n'
                           f'host = "127.0.0.1"\nport = {a.broker.port}\ntls = false\n')
    assert cli.main(["pair", "--forget", "--config", str(config_file)]) == 0
    assert "Unpaired" in capsys.readouterr().out
    a.wait_until(lambda: not a.state.partner.paired)
