"""The shipped systemd unit: hardened (score at most 1.5), valid, and saying what it promises;
and the watchdog rule behind it (pings only while the adapter threads live)."""

from __future__ import annotations

import itertools
import logging
import re
import shutil
import subprocess
import threading
from pathlib import Path

from micromance.health import ThreadWatch
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "micromance.service"
MAX_EXPOSURE = 1.5
EXEC_START = "/opt/micromance/venv/bin/micromance run --config /etc/micromance/config.toml"


def require_systemd_analyze() -> str:
    return require_tool("systemd-analyze", "systemd-analyze is missing (Debian package "
                        "systemd; install.sh --dev installs it)")


def settings(section: str) -> dict[str, list[str]]:
    """Key -> values (in order) of one [section] of the unit file."""
    found: dict[str, list[str]] = {}
    current = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        if current == section:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_security_exposure_is_at_most_1_5():
    analyze = require_systemd_analyze()
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for micromance\.service: (\d+\.\d+)",
                      result.stdout)
    assert match, result.stdout + result.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security --offline=yes: {score}")
    assert score <= MAX_EXPOSURE, result.stdout


def test_verify_is_clean(tmp_path):
    """verify needs an existing ExecStart binary (a known pitfall): check a copy with /bin/true."""
    analyze = require_systemd_analyze()
    text = UNIT.read_text()
    assert EXEC_START in text
    copy = tmp_path / "micromance.service"
    copy.write_text(text.replace(EXEC_START.split()[0], shutil.which("true") or "/bin/true"))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_notify_watchdog_and_restart_policy():
    service = settings("Service")
    unit = settings("Unit")
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30"]
    assert service["Restart"] == ["always"]
    assert service["ExecStart"] == [EXEC_START]
    # No start limit any more (it left a unit dark for good): the daemon backs off itself.
    assert unit["StartLimitIntervalSec"] == ["0"]


def test_a_unit_that_cannot_start_is_restarted_forever_and_keeps_its_back_off_count():
    """No start limit, no exit status that stops the restarts (a config may be fixed later),
    and the failed-start count in the runtime directory survives each restart. Settings that
    need systemd 254 (RestartSteps=, RestartMaxDelaySec=) are not used: Debian 12 has 252."""
    service = settings("Service")
    unit = settings("Unit")
    assert unit["StartLimitIntervalSec"] == ["0"]
    assert "StartLimitBurst" not in unit
    assert service["Restart"] == ["always"]
    assert "RestartPreventExitStatus" not in service
    assert service["RuntimeDirectoryPreserve"] == ["restart"]
    assert not {"RestartSteps", "RestartMaxDelaySec"} & service.keys()


def test_restarts_are_quick_because_the_daemon_itself_backs_off():
    """RestartSec stays short, the back-off is the daemon's (10 s doubling to 10 min); while
    it waits the unit is still starting, so it needs Type=notify for EXTEND_TIMEOUT_USEC."""
    from micromance.startup import BASE_DELAY, MAX_FACTOR

    service = settings("Service")
    assert service["Type"] == ["notify"]  # EXTEND_TIMEOUT_USEC needs a notify service
    assert int(service["RestartSec"][0]) <= 5
    assert BASE_DELAY * MAX_FACTOR == 600  # 10 s, 20 s, 40 s ... 10 min


def test_watchdog_pings_are_paced_not_sent_on_every_loop_turn(tmp_path):
    import socket

    from micromance.service import Notifier

    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(path)
        systemd.setblocking(False)
        now = [100.0]
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"},
                            clock=lambda: now[0])
        assert notifier.watchdog_interval == 15.0
        pings = 0
        for moment in (100.0, 100.1, 103.0, 107.6, 107.7, 130.0):
            now[0] = moment
            notifier.watchdog()
            while True:
                try:
                    assert systemd.recv(64) == b"WATCHDOG=1"
                except BlockingIOError:
                    break
                pings += 1
        assert pings == 3  # at 100.0, 107.6 and 130.0


def test_directories_and_the_lgpio_runtime_directory():
    service = settings("Service")
    assert service["User"] == ["micromance"]
    assert service["StateDirectory"] == ["micromance"]
    assert service["ConfigurationDirectory"] == ["micromance"]
    assert service["RuntimeDirectory"] == ["micromance"]
    assert "LG_WD=%t/micromance" in service["Environment"]
    assert service["WorkingDirectory"] == ["%t/micromance"]


def test_only_i2c_and_gpio_devices_are_allowed():
    service = settings("Service")
    assert service["DevicePolicy"] == ["closed"]
    allowed = {value.split()[0] for value in service["DeviceAllow"]}
    assert allowed == {"char-i2c", "char-gpiochip", "/dev/gpiomem"}
    assert "PrivateUsers" not in service  # it would drop the gpio and i2c group access


# --- WATCHDOG=1 only while the adapter threads live (micromance.health) -------------------------


def start_worker(stop: threading.Event) -> threading.Thread:
    worker = threading.Thread(target=stop.wait, name="fake-adapter", daemon=True)
    worker.start()
    return worker


def test_watch_tracks_the_threads_an_adapter_starts(caplog):
    watch = ThreadWatch()
    stop = threading.Event()
    worker = watch.track("panel", lambda: start_worker(stop))
    assert watch.watched() == {"panel": ("fake-adapter",)}
    assert watch.alive()
    stop.set()
    worker.join()
    with caplog.at_level(logging.ERROR, logger="micromance.health"):
        assert not watch.alive()
        assert not watch.alive()
    assert [r.getMessage() for r in caplog.records if "fake-adapter" in r.getMessage()] == [
        "adapter thread ended (panel: fake-adapter): no more watchdog pings, so systemd "
        "restarts the unit"]


def test_an_adapter_closed_on_purpose_is_forgotten_and_one_without_threads_is_fine():
    watch = ThreadWatch()
    stop = threading.Event()
    worker = watch.track("link", lambda: start_worker(stop))
    watch.track("panel", lambda: "mock pins start no thread")
    stop.set()
    worker.join()
    watch.forget("link")
    assert watch.alive()
    assert watch.watched() == {"panel": ()}


def test_a_real_link_leaves_no_thread_behind_its_connection_attempt(tmp_path, broker):
    """The watchdog rule needs no network thread: the loop itself serves the link."""
    from micromance.config import BrokerConfig
    from micromance.link.mqtt import MqttLink
    from micromance.link.pair_file import pair_locally

    pair, _ = pair_locally(tmp_path / "a", tmp_path / "b")
    link = MqttLink(BrokerConfig(host=broker.host, port=broker.port, tls=False), pair,
                    lambda *args, **kwargs: None, next_seq=itertools.count(1).__next__,
                    name="Sam")
    before = threading.enumerate()
    link.start()
    try:
        link._attempt.join(10)  # the short-lived connection attempt
        link.handle_timers()
        assert link.socket() is not None  # connected: now served by whoever loops
        assert threading.enumerate() == before  # nothing left for the watchdog to watch
    finally:
        link.stop()
