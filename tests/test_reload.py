"""Reloading the config without a restart: through the control socket, and with SIGHUP on a
real ``micromance run``. A good file is applied, a bad one changes nothing and is reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from micromance.config import load_config
from micromance.control.client import ControlClient, ControlError, find_daemon
from micromance.core import commands as cmd
from micromance.link.pair_file import pair_locally
from micromance.runtime import Runtime
from micromance.simulator.private_broker import PrivateBroker
from micromance.status import collect_status
from tests.conftest import require_mosquitto
from tests.units import WAIT, Running


def config_text(state_dir: Path, port: int = 1, *, quiet: str = "", extra: str = "",
                display: str = "") -> str:
    """A desk unit's config file; ``quiet`` "on" puts quiet hours around now."""
    if quiet == "on":
        now = datetime.now()
        start, end = (now - timedelta(hours=1)), (now + timedelta(hours=1))
        quiet_table = f'enabled = true\nstart = "{start:%H:%M}"\nend = "{end:%H:%M}"\n'
    else:
        quiet_table = "enabled = false\n"
    return (f'[device]\nname = "Sam"\n[display]\ndriver = "dummy"\n{display}'
            f'[paths]\nstate_dir = "{state_dir}"\n[quiet_hours]\n{quiet_table}'
            f'[broker]\nhost = "127.0.0.1"\nport = {port}\ntls = false\n{extra}')


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "a"))
    return path


@pytest.fixture
def unit(config_file, mock_factory):
    with Running(Runtime(load_config(config_file), pin_factory=mock_factory)) as running:
        yield running


def client_of(running: Running) -> ControlClient:
    return ControlClient(running.runtime.control.path)


def test_a_good_config_is_applied_without_a_restart(unit, config_file):
    calendar = unit.runtime.timers
    with client_of(unit) as client:
        assert client.status()["quiet"] is False
        config_file.write_text(config_text(unit.runtime.config.state_dir, quiet="on"))
        applied = client.reload()
        assert {"quiet_hours.enabled", "quiet_hours.start", "quiet_hours.end"} <= set(applied)
        status = client.status()
    assert status["quiet"] is True and status["config_error"] == ""
    assert unit.runtime.state.outputs.panel_on is False      # the screen went dark at once
    assert unit.runtime.timers is calendar                    # the calendar did not change


def test_a_new_prompt_interval_makes_new_calendar_timers(unit, config_file):
    calendar = unit.runtime.timers
    config_file.write_text(config_text(unit.runtime.config.state_dir,
                                       extra="[prompts]\ninterval_minutes = 5\n"))
    with client_of(unit) as client:
        assert client.reload() == ["prompts.interval_minutes"]
    assert unit.runtime.timers is not calendar
    assert unit.runtime.timers.seconds_until_due() <= 5 * 60


def test_keys_that_need_a_restart_are_named_and_kept(unit, config_file):
    config_file.write_text(config_text(unit.runtime.config.state_dir,
                                       extra="[pins]\nthanks = 5\n"))
    with client_of(unit) as client:
        assert client.reload() == ["restart to apply pins.thanks"]
    assert unit.runtime.config.pins.thanks == 17              # the pins it opened


def test_a_bad_config_keeps_the_old_one_and_says_why(unit, config_file, mock_factory):
    config_file.write_text(config_text(unit.runtime.config.state_dir,
                                       extra="[quiet_hours]\n") .replace(
        "enabled = false", 'enabled = false\nstart = "25:99"'))
    unit.runtime.status_written.clear()
    with client_of(unit) as client:
        with pytest.raises(ControlError) as refused:
            client.reload()
        status = client.status()
    assert "quiet_hours" in refused.value.message and refused.value.fix
    assert status["config_error"].startswith(refused.value.message)
    assert status["quiet"] is False and unit.runtime.config.quiet_hours.start == "22:30"
    assert unit.runtime.status_written.wait(WAIT)
    assert collect_status(unit.runtime.config)["config_error"] == status["config_error"]
    config_file.write_text(config_text(unit.runtime.config.state_dir))
    unit.runtime.status_written.clear()
    with client_of(unit) as client:
        assert client.reload() == []
        assert client.status()["config_error"] == ""
    assert unit.runtime.status_written.wait(WAIT)
    assert collect_status(unit.runtime.config)["config_error"] == ""


def test_the_link_is_reopened_only_when_the_brokers_change(tmp_path, mock_factory, broker):
    require_mosquitto()
    pair_locally(tmp_path / "a", tmp_path / "b")
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "a", broker.port))
    other = PrivateBroker(directory=tmp_path / "other").start()
    try:
        with Running(Runtime(load_config(path), pin_factory=mock_factory)) as unit:
            unit.wait_until(lambda: unit.runtime.state.partner.link.value == "connected")
            links = list(unit.runtime.courier.links)
            path.write_text(config_text(tmp_path / "a", broker.port, quiet="on"))
            with client_of(unit) as client:
                assert "broker" not in client.reload()
            assert unit.runtime.courier.links == links          # the same connections
            mark = unit.mark()
            path.write_text(config_text(tmp_path / "a", other.port))
            with client_of(unit) as client:
                assert "broker" in client.reload()
            where = f"127.0.0.1:{other.port}"
            unit.wait_for(lambda c: isinstance(c, cmd.ReportLiveFacts)
                          and c.facts.brokers == ((where, True, ""),), since=mark)
            assert unit.runtime.courier.links[0] is not links[0]
            with client_of(unit) as client:
                assert client.status()["brokers"][0]["port"] == other.port
    finally:
        other.close()


def test_sighup_reloads_a_real_daemon(tmp_path):
    state = tmp_path / "state"
    path = tmp_path / "config.toml"
    path.write_text(config_text(state))
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock",
           "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin", "PYTHONUNBUFFERED": "1"}
    env.pop("RUNTIME_DIRECTORY", None)
    env.pop("INVOCATION_ID", None)
    daemon = subprocess.Popen([sys.executable, "-m", "micromance", "run", "--config",
                               str(path)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        read_until(daemon, "is up")
        with find_daemon(load_config(path)) as client:
            assert client.status()["quiet"] is False
        path.write_text(config_text(state, quiet="on"))
        daemon.send_signal(signal.SIGHUP)
        read_until(daemon, "config reloaded")
        with find_daemon(load_config(path)) as client:
            assert client.status()["quiet"] is True
        good = tmp_path / "good.toml"                  # to find the unit once the file is bad
        good.write_text(config_text(state))
        path.write_text("[quiet_hours\n")
        daemon.send_signal(signal.SIGHUP)
        read_until(daemon, "reload refused")
        with find_daemon(load_config(good)) as client:
            status = client.status()
        assert status["quiet"] is True and str(path) in status["config_error"]
        for _ in range(20):                            # status.json follows within 0.25 s
            report = json.loads(subprocess.run(
                [sys.executable, "-m", "micromance", "status", "--json", "--config",
                 str(good)], env=env, capture_output=True, text=True, check=True).stdout)
            if report["config_error"]:
                break
        assert report["config_error"] == status["config_error"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(WAIT) == 0


def read_until(daemon: subprocess.Popen, text: str) -> None:
    """Read the daemon's log until a line says ``text`` (each readline waits on the pipe)."""
    seen = []
    for line in daemon.stderr:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never logged:\n{''.join(seen)}")


def test_the_service_reloads_with_a_hup():
    unit = (Path(__file__).parent.parent / "systemd" / "micromance.service").read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit.splitlines()


def test_a_new_contrast_reaches_the_screen_at_once(unit, config_file):
    mark = unit.mark()
    config_file.write_text(config_text(unit.runtime.config.state_dir,
                                       display="contrast = 77\n"))
    with client_of(unit) as client:
        assert client.reload() == ["display.contrast"]
    command = unit.wait_for(lambda c: isinstance(c, cmd.SetContrast), since=mark)
    assert command.level == 77 and unit.runtime.settings.contrast == 77
