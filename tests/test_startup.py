"""A unit that cannot start under systemd: the problem on its screen, a growing back-off, and
an exit with its code for systemd to restart it; SIGTERM ends the wait at once.

systemd is simulated: INVOCATION_ID and RUNTIME_DIRECTORY (a tmp dir) in the environment, and
MICROMANCE_TEST_BACKOFF_SECONDS to shorten the back-off.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from micromance import startup
from micromance.config import DisplayConfig, load_config
from micromance.errors import ConfigError, HardwareError, StoreError
from micromance.screens.render import render
from micromance.screens.views import Frame, ProblemView

MOCK_PINS = {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
SYSTEMD_VARIABLES = ("INVOCATION_ID", "RUNTIME_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                     "WATCHDOG_PID", startup.BASE_DELAY_VARIABLE)


@pytest.fixture
def runtime_dir(tmp_path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.fixture
def config(tmp_path) -> Path:
    """A dummy display and a bad pin: a config error, with display settings that are fine."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[display]
driver = "dummy"
contrast = 150
[paths]
state_dir = "{tmp_path / 'state'}"
[quiet_hours]
enabled = false
[pins]
thanks = 99
""")
    return path


def under_systemd(runtime_dir: Path, base: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SYSTEMD_VARIABLES}
    env.update(MOCK_PINS, INVOCATION_ID="0123456789abcdef", RUNTIME_DIRECTORY=str(runtime_dir))
    env[startup.BASE_DELAY_VARIABLE] = str(base)
    return env


def run_unit(config: Path, env: dict[str, str], *args: str, stdin: str = ""):
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "micromance", "run", "--config",
                             str(config), *args], input=stdin, capture_output=True, text=True,
                            env=env, timeout=60)
    return result, time.monotonic() - began


def failures(runtime_dir: Path) -> int | None:
    path = runtime_dir / startup.FAILURES_FILE
    return int(path.read_text()) if path.exists() else None


def expected_frame(error: Exception) -> Image.Image:
    return render(Frame(startup.problem_view(error)), 128, 64)


def assert_shows(runtime_dir: Path, error: Exception) -> None:
    """The dummy display got exactly the problem frame (it leaves it as a PNG)."""
    with Image.open(runtime_dir / startup.SCREENSHOT_NAME) as shown:
        assert shown.convert("1").tobytes() == expected_frame(error).tobytes()
        assert shown.convert("1").getbbox() is not None


# --- the daemon under a simulated systemd --------------------------------------------------------


def test_a_config_error_shows_the_problem_and_waits_before_exiting_78(config, runtime_dir):
    result, took = run_unit(config, under_systemd(runtime_dir, 0.5))
    assert result.returncode == 78, result.stderr
    assert took >= 0.5
    first = result.stderr.splitlines()[0]
    assert first.startswith("micromance: ") and "pins.thanks = 99" in first  # at once
    assert "trying again in 0.5 s" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ConfigError) as error:
        load_config(config)
    view = startup.problem_view(error.value)
    assert view.reason == "Config error"
    assert view.detail.startswith("pins.thanks = 99 is out of range")
    assert_shows(runtime_dir, error.value)
    assert failures(runtime_dir) == 1


def test_the_delay_grows_with_failed_starts_and_a_start_that_got_going_resets_it(
        config, runtime_dir):
    env = under_systemd(runtime_dir, 0.2)
    for count, delay in ((1, "0.2 s"), (2, "0.4 s"), (3, "0.8 s")):
        result, took = run_unit(config, env)
        assert result.returncode == 78, result.stderr
        assert f"cannot start ({count} failed start" in result.stderr
        assert f"trying again in {delay}" in result.stderr
        assert took >= float(delay.split()[0])
        assert failures(runtime_dir) == count

    good = config.read_text().replace("thanks = 99", "thanks = 17")
    config.write_text(good)
    result, _ = run_unit(config, env, "--input", "stdin", stdin="t\n")
    assert result.returncode == 0, result.stderr
    assert failures(runtime_dir) is None  # READY=1: the count starts again

    config.write_text(good + "\n[logging]\nlevel = \"loud\"\n")
    result, _ = run_unit(config, env)
    assert result.returncode == 78
    assert "trying again in 0.2 s" in result.stderr


def test_sigterm_ends_the_wait_at_once(config, runtime_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "micromance", "run", "--config", str(config)],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=under_systemd(runtime_dir, 60))
    try:
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "trying again in" in line:
                break
        assert "trying again in 1 min" in "".join(seen)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # stopped on request, like a running unit
        assert time.monotonic() - signalled < 5
        assert "stopping (SIGTERM)" in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_an_unusable_state_directory_shows_a_storage_problem_and_exits_73(tmp_path,
                                                                          runtime_dir):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = tmp_path / "config.toml"
    config.write_text(f'[display]\ndriver = "dummy"\n[paths]\nstate_dir = "{blocker}/state"\n')
    result, took = run_unit(config, under_systemd(runtime_dir, 0.3))
    assert result.returncode == 73, result.stderr
    assert took >= 0.3
    assert "cannot create the state directory" in result.stderr
    with Image.open(runtime_dir / startup.SCREENSHOT_NAME) as shown:
        expected = render(Frame(ProblemView("Storage problem", result.stderr.splitlines()[0]
                                            .removeprefix("micromance: ").split("; fix:")[0])),
                          128, 64)
        assert shown.convert("1").tobytes() == expected.tobytes()


def test_a_missing_display_still_backs_off_and_exits_69(config, runtime_dir):
    config.write_text(config.read_text().replace('"dummy"', '"ssd1306"\ni2c_port = 99')
                      .replace("thanks = 99", "thanks = 17"))
    result, took = run_unit(config, under_systemd(runtime_dir, 0.3))
    assert result.returncode == 69, result.stderr
    assert took >= 0.3
    assert "i2c-99" in result.stderr.splitlines()[0]
    assert not (runtime_dir / startup.SCREENSHOT_NAME).exists()  # nothing to show it on


def test_outside_systemd_run_still_exits_at_once(config, runtime_dir):
    env = under_systemd(runtime_dir, 30)
    del env["INVOCATION_ID"]
    result, took = run_unit(config, env)
    assert result.returncode == 78
    assert took < 20
    assert "trying again" not in result.stderr
    assert failures(runtime_dir) is None


# --- in process: notifications, the count, the display settings of a broken config ------------


@pytest.fixture
def quiet_logging(monkeypatch):
    """setup_logging would take over pytest's root logger."""
    import micromance.logs

    monkeypatch.setattr(micromance.logs, "setup_logging", lambda level="info": None)


def test_systemd_is_told_why_and_how_long_while_the_unit_is_still_starting(
        tmp_path, runtime_dir, quiet_logging):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(path)
        env = {"INVOCATION_ID": "1", "RUNTIME_DIRECTORY": str(runtime_dir),
               "NOTIFY_SOCKET": path, startup.BASE_DELAY_VARIABLE: "0.05"}

        def no_display(config, notifier):
            raise HardwareError("no display answers at I2C address 0x3C on bus 1")

        config = tmp_path / "empty.toml"
        config.write_text('[display]\ndriver = "dummy"\n')
        assert startup.start_unit(str(config), no_display, environ=env) == 69
        message = systemd.recv(1024).decode()
    fields = dict(line.split("=", 1) for line in message.splitlines())
    assert int(fields["EXTEND_TIMEOUT_USEC"]) >= (0.05 + startup.EXIT_MARGIN) * 1e6 - 1
    assert fields["STATUS"] == ("cannot start: no display answers at I2C address 0x3C on bus 1;"
                                " trying again in 0.05 s")
    assert "READY=1" not in message


def test_a_failure_after_ready_is_not_a_failure_to_start(tmp_path, runtime_dir,
                                                         quiet_logging):
    (runtime_dir / startup.FAILURES_FILE).write_text("4\n")
    env = {"INVOCATION_ID": "1", "RUNTIME_DIRECTORY": str(runtime_dir)}

    def got_going_then_failed(config, notifier):
        notifier.ready("running")
        raise StoreError("disk full")

    with pytest.raises(StoreError):  # at once, as from a shell
        startup.start_unit(None, got_going_then_failed, environ=env)
    assert failures(runtime_dir) is None


def test_the_delay_doubles_up_to_sixty_times_the_first():
    backoff = startup.Backoff(Path("/nonexistent"), base=10)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 6, 7, 8, 1000)] == [
        10, 20, 40, 80, 320, 600, 600, 600]


def test_without_a_writable_runtime_directory_every_failure_is_the_first(tmp_path):
    backoff = startup.Backoff(tmp_path / "missing", base=1)
    assert backoff.record_failure() == 1
    assert backoff.record_failure() == 1
    assert backoff.delay(backoff.record_failure()) == 1
    backoff.reset()  # nothing to remove: no error either


def test_a_broken_config_keeps_the_display_settings_that_are_valid(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[display]\ndriver = "dummy"\nwidth = 999\nrotate = 2\nheight = "tall"\n'
                    'contrast = 10\n[pins]\nthanks = 99\n')
    assert startup.readable_display(path) == DisplayConfig(driver="dummy", rotate=2,
                                                           contrast=10)
    path.write_text("[display\ndriver = ")
    assert startup.readable_display(path) == DisplayConfig()
    assert startup.readable_display(tmp_path / "missing.toml") == DisplayConfig()
    assert startup.readable_display(None) == DisplayConfig()


def test_the_screen_says_what_is_wrong_without_the_file_name():
    view = startup.problem_view(ConfigError("/etc/micromance/config.toml: pins.thanks = 99 is "
                                            "out of range", fix="change it"))
    assert view == ProblemView("Config error", "pins.thanks = 99 is out of range")
    assert startup.problem_view(HardwareError("no I2C bus 99 (/dev/i2c-99): enable I2C")) == \
        ProblemView("Hardware problem", "no I2C bus 99 (/dev/i2c-99): enable I2C")
    assert startup.problem_view(ZeroDivisionError()).reason == "Software error"


def test_sigterm_ends_the_wait_in_process_even_from_another_thread():
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    with startup.StopSignals() as stop:
        began = time.monotonic()
        timer.start()
        assert stop.wait(30) == signal.SIGTERM
        assert time.monotonic() - began < 5
    assert signal.getsignal(signal.SIGTERM) == before  # handlers put back
    with startup.StopSignals() as stop:
        assert stop.wait(0.05) is None
    with startup.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # before the wait: it must not be lost
        assert stop.wait(30) == signal.SIGTERM
