"""`micromance simulate`: two paired units through a private mosquitto, from one terminal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from micromance import cli
from micromance.store import Store


@pytest.mark.broker
def test_scripted_thanks_reaches_the_other_unit(tmp_path):
    state = tmp_path / "sim"
    result = subprocess.run(
        [sys.executable, "-m", "micromance", "simulate", "--state", str(state)],
        input="t", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    final = result.stdout.strip().split(" q: quit")[-2]  # the last picture of both units
    left, right = final.split("light")[1:3]
    assert "pulsing" in right and "pulsing" not in left
    pair_id = json.loads((state / "a" / "pair.json").read_text())["pair_id"]
    for unit, sent, received in (("a", 1, 0), ("b", 0, 1)):
        store = Store.open(state / unit)
        counters = store.load_counters(pair_id)
        store.close()
        assert (counters.sent_total, counters.received_total) == (sent, received)
    # A second run continues with the same pair and counters.
    again = subprocess.run(
        [sys.executable, "-m", "micromance", "simulate", "--state", str(state)],
        input="y", capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    pair_a = json.loads((state / "a" / "pair.json").read_text())["pair_id"]
    assert pair_a == json.loads((state / "b" / "pair.json").read_text())["pair_id"]


def test_missing_mosquitto_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from micromance.simulator import private_broker as broker

    monkeypatch.setattr(broker, "find_mosquitto", lambda: None)
    code = cli.main(["simulate", "--state", str(tmp_path / "sim")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 69
    assert err == ["micromance: mosquitto is not installed: sudo apt-get install mosquitto"]


# --- no mosquitto left behind: signals, and a run killed with SIGKILL --------------------------

SIMULATE_WAIT = 30.0  # seconds; only ever reached when something is broken


def mosquittos_of(state: Path) -> set[int]:
    """Live mosquitto processes started for ``state`` (its broker's config names the directory).

    Read from /proc, so a mosquitto counts whoever started it; zombies have no command line and
    do not count (a reaped or dead-but-unreaped process serves nobody).
    """
    config = str((state / "broker" / "mosquitto.conf").resolve())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and Path(argv[0].decode(errors="replace")).name == "mosquitto" \
                and config.encode() in argv:
            found.add(int(entry.name))
    return found


def wait_for(condition, what: str, timeout: float = SIMULATE_WAIT):
    """Poll ``condition`` (a process we do not own has no event to wait on) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_simulate(state: Path) -> subprocess.Popen[str]:
    """`micromance simulate` with its stdin a pipe we keep open: it runs until told to stop."""
    return subprocess.Popen(
        [sys.executable, "-m", "micromance", "simulate", "--state", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def units_up(state: Path) -> bool:
    log = state / "simulate.log"
    return log.exists() and log.read_text().count(" is up ") >= 2


@pytest.fixture
def leftovers():
    """Kill whatever mosquitto a failing test leaves behind (the old code did leave them)."""
    states: list[Path] = []
    yield states
    for state in states:
        for pid in mosquittos_of(state):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.broker
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_signal_stops_the_units_and_the_private_mosquitto(tmp_path, leftovers, signum):
    """Closing the terminal (SIGHUP) or `kill` (SIGTERM) cleans up like `q` does."""
    state = tmp_path / "sim"
    leftovers.append(state)
    process = start_simulate(state)
    try:
        [broker_pid] = wait_for(lambda: mosquittos_of(state), "the private mosquitto")
        wait_for(lambda: units_up(state), "both units")
        process.send_signal(signum)
        code = process.wait(timeout=SIMULATE_WAIT)
        errors = process.stderr.read()
    finally:
        process.kill()
        process.wait()
    assert mosquittos_of(state) == set(), f"{broker_pid} left behind"
    assert code == 128 + signum, errors  # like 130 after Ctrl-C
    assert "Traceback" not in errors
    log = (state / "simulate.log").read_text()
    assert log.count("stopping") == 2  # both units went through their own shutdown
    assert (state / "broker" / "mosquitto.db").exists()  # stopped with SIGTERM: it saved


@pytest.mark.broker
def test_a_mosquitto_left_by_a_killed_run_is_stopped_by_the_next_run(tmp_path, leftovers):
    state = tmp_path / "sim"
    leftovers.append(state)
    first = start_simulate(state)
    try:
        [orphan] = wait_for(lambda: mosquittos_of(state), "the first run's mosquitto")
        wait_for(lambda: units_up(state), "the first run's units")
    finally:
        first.kill()  # SIGKILL: no clean-up at all
        first.wait()
    assert mosquittos_of(state) == {orphan}  # left behind, as after a power cut of the shell

    second = start_simulate(state)
    try:
        wait_for(lambda: units_up(state) and (state / "simulate.log").read_text()
                 .count(" is up ") >= 4, "the second run's units")
        assert len(mosquittos_of(state)) == 1
        assert orphan not in mosquittos_of(state)
        second.stdin.write("q")
        second.stdin.flush()
        assert second.wait(timeout=SIMULATE_WAIT) == 0, second.stderr.read()
    finally:
        second.kill()
        second.wait()
    assert mosquittos_of(state) == set()


@pytest.mark.broker
def test_a_recorded_pid_that_is_not_the_mosquitto_of_the_directory_is_left_alone(tmp_path):
    """The pid file may be stale and the pid reused: only our mosquitto is ever stopped."""
    from micromance.simulator.private_broker import PID_FILE, PrivateBroker

    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        directory = tmp_path / "broker"
        directory.mkdir()
        (directory / PID_FILE).write_text(f"{stranger.pid} 1\n")
        with PrivateBroker(directory=directory) as broker:
            assert stranger.poll() is None
            assert (directory / PID_FILE).read_text().split()[0] == str(broker.pid)
        assert not (directory / PID_FILE).exists()
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.broker
def test_a_broker_still_in_use_by_a_live_run_is_refused_not_stopped(tmp_path):
    from micromance.errors import LinkError
    from micromance.simulator.private_broker import PrivateBroker

    with PrivateBroker(directory=tmp_path / "broker") as running:
        with pytest.raises(LinkError, match="in use by process"):
            PrivateBroker(directory=tmp_path / "broker").start()
        assert running.running
        assert mosquittos_of(tmp_path) == {running.pid}
