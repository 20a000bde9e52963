"""The command line as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

MOCK_PINS = {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
STATUS_KEYS = {"version", "device_id", "paired", "pair_id", "link", "partner", "sent_total",
               "received_total", "outbox", "rejected", "last_events", "together_total"}


def micromance(*args: str, stdin: str = "", env: dict | None = None, timeout: float = 60):
    environment = {k: v for k, v in os.environ.items() if k != "INVOCATION_ID"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "micromance", *args], input=stdin,
                          capture_output=True, text=True, env=environment, timeout=timeout)


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[display]
driver = "dummy"
[paths]
state_dir = "{tmp_path / 'state'}"
[quiet_hours]
enabled = false
""")
    return path


def assert_one_line_error(result, code: int) -> str:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("micromance: "), result.stderr
    return lines[0]


def test_run_stdin_thanks_then_eof_exits_0_and_leaves_a_frame(config, tmp_path):
    result = micromance("run", "--config", str(config), "--input", "stdin", stdin="t\n",
                        env=MOCK_PINS)
    assert result.returncode == 0, result.stderr
    assert "thank-you #1 counted here" in result.stderr  # not paired: nothing was sent
    frame = tmp_path / "state" / "screen.png"
    from PIL import Image

    with Image.open(frame) as image:
        assert image.size == (128, 64)
        assert image.convert("1").getbbox() is not None  # something is drawn

    text = micromance("status", "--config", str(config)).stdout
    assert "unit:     not running" in text and "nothing is set up" not in text
    status = micromance("status", "--config", str(config), "--json")
    report = json.loads(status.stdout)
    assert report.keys() >= STATUS_KEYS
    assert report["sent_total"] == 1 and report["paired"] is False
    assert report["link"] in {"connected", "connecting", "offline"}
    assert report["partner"] in {"online", "offline", "unknown"}
    assert report["last_events"][0]["kind"] == "sent"


def test_every_stdin_key_is_understood(config):
    result = micromance("run", "--config", str(config), "--input", "stdin",
                        stdin="t\nn\nT\nN\np\nn\nx\n", env=MOCK_PINS)
    assert result.returncode == 0, result.stderr
    assert "thank-you #2 counted here" in result.stderr  # t and T
    assert "marked done" in result.stderr             # N
    assert "pairing: looking for the other unit" in result.stderr  # p
    assert "ignored keys 'x'" in result.stderr


def test_q_stops_a_unit_reading_stdin_as_the_simulator_does(config):
    """The rest of the input (and of q's line) is not read: the unit stops at q."""
    result = micromance("run", "--config", str(config), "--input", "stdin",
                        stdin="t\ntqt\nt\n", env=MOCK_PINS, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "thank-you #2 counted here" in result.stderr
    assert "#3" not in result.stderr and "ignored keys" not in result.stderr


def test_missing_i2c_bus_exits_69_with_a_hint(config):
    config.write_text(config.read_text().replace('"dummy"', '"ssd1306"\ni2c_port = 99'))
    result = micromance("run", "--config", str(config), "--input", "stdin", env=MOCK_PINS)
    line = assert_one_line_error(result, 69)
    assert "I2C" in line and "i2c-99" in line


def test_missing_gpio_exits_69_with_a_hint(config):
    result = micromance("run", "--config", str(config), "--input", "stdin",
                        env={"GPIOZERO_PIN_FACTORY": "no-such-factory"})
    line = assert_one_line_error(result, 69)
    assert "GPIOZERO_PIN_FACTORY=mock" in line


def test_config_error_exits_78(config):
    config.write_text("[pins]\nthanks = 99\n")
    line = assert_one_line_error(micromance("run", "--config", str(config)), 78)
    assert str(config) in line and "pins.thanks" in line


def test_usage_error_exits_2():
    assert micromance("fly").returncode == 2
    assert micromance("run", "--input", "keyboard").returncode == 2


def test_sigterm_stops_cleanly(config):
    env = {**os.environ, **MOCK_PINS}
    process = subprocess.Popen(
        [sys.executable, "-m", "micromance", "run", "--config", str(config)],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in process.stderr:
            if " is up " in line:
                break
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=20) == 0
        assert "stopping" in rest
    finally:
        process.kill()


def test_logs_carry_no_timestamps_under_systemd(config):
    result = micromance("run", "--config", str(config), "--input", "stdin", stdin="t\n",
                        env={**MOCK_PINS, "INVOCATION_ID": "0123"})
    assert result.returncode == 0
    assert all(re.match(r"^(DEBUG|INFO|WARNING|ERROR) ", line)
               for line in result.stderr.splitlines())


def test_preview_writes_every_screen(tmp_path, config):
    out = tmp_path / "shots"
    result = micromance("preview", "--config", str(config), "--out", str(out))
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.glob("*.png")}
    assert any(n.endswith("-128x64.png") for n in names)
    assert any(n.endswith("-128x32.png") for n in names)
    assert {n.split("-128x")[0] for n in names} >= {"home-short", "sent", "received-first"} or \
        len(names) >= 20


# --- a damaged or lost database (issue "Hardening", item 5) -----------------------------------


def damaged_state(config: Path, where: str) -> Path:
    """Run the unit once (a database with a press in it), then damage it."""
    assert micromance("run", "--config", str(config), "--input", "stdin", stdin="t\n",
                      env=MOCK_PINS).returncode == 0
    path = config.parent / "state" / "state.db"
    with path.open("r+b") as handle:
        handle.seek(0 if where == "header" else 2 * 1024)  # page 1, or page 3 (inside)
        handle.write(b"\xa5" * 1024)
    return path


@pytest.mark.parametrize("where", ["header", "inside"])
def test_status_on_a_damaged_database_is_one_line_naming_repair(config, where):
    damaged_state(config, where)
    for args in ((), ("--json",)):
        line = assert_one_line_error(micromance("status", "--config", str(config), *args), 73)
        assert "damaged" in line and "micromance repair" in line
        assert "writable" not in line and "disk" not in line


@pytest.mark.parametrize("where", ["header", "inside"])
def test_the_daemon_repairs_a_damaged_database_by_itself_and_runs(config, where):
    path = damaged_state(config, where)
    result = micromance("run", "--config", str(config), "--input", "stdin", stdin="t\n",
                        env=MOCK_PINS)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "repaired" in line]
    assert len(said) == 1 and ".damaged-" in said[0], result.stderr
    assert list(path.parent.glob("state.db.damaged-*"))
    assert micromance("status", "--config", str(config)).returncode == 0


def test_repair_command_keeps_a_copy_and_says_what_it_kept(config):
    path = damaged_state(config, "inside")
    result = micromance("repair", "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "damaged" in lines[0]
    assert any(line.startswith("kept: ") for line in lines)
    assert any(line.startswith(("lost: ", "kept: the totals")) for line in lines)
    (copy,) = path.parent.glob("state.db.damaged-*")
    assert copy.name in result.stdout
    assert micromance("status", "--config", str(config)).returncode == 0
    again = micromance("repair", "--config", str(config))
    assert again.returncode == 0 and "nothing to repair" in again.stdout


def test_a_lost_database_keeps_the_pair_and_its_identity(tmp_path, config):
    state = tmp_path / "state"
    paired = micromance("pair", "--local", str(state), str(tmp_path / "other"))
    assert paired.returncode == 0, paired.stderr
    pair = json.loads((state / "pair.json").read_text())
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (state / name).unlink(missing_ok=True)

    report = json.loads(micromance("status", "--config", str(config), "--json").stdout)
    assert report["paired"] is True and report["device_id"] == pair["device_id"]

    result = micromance("run", "--config", str(config), "--input", "stdin", stdin="",
                        env=MOCK_PINS)
    assert result.returncode == 0, result.stderr
    assert "ignoring" not in result.stderr
    assert pair["device_id"] in result.stderr  # the daemon runs as the paired unit
    report = json.loads(micromance("status", "--config", str(config), "--json").stdout)
    assert report["paired"] is True and report["device_id"] == pair["device_id"]
    connection = sqlite3.connect(state / "state.db")
    try:
        assert connection.execute("SELECT value FROM kv WHERE key = 'device_id'").fetchall() \
            == [(pair["device_id"],)]
    finally:
        connection.close()


@pytest.mark.parametrize("command", ["run", "simulate", "status", "pair", "send", "web",
                                     "doctor", "preview", "repair", "selftest"])
def test_every_command_has_an_example_in_its_help(command):
    text = micromance(command, "--help").stdout
    assert "example" in text and f"micromance {command}" in text.split("example")[1]


def test_pair_help_explains_the_code_step_and_the_wait():
    text = " ".join(micromance("pair", "--help").stdout.split())
    assert "6-digit code" in text and "answer y" in text and "2 minutes" in text
