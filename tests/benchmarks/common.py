"""Shared pieces of the benchmarks: units in subprocesses and in-process, /proc readings.

Only the project's own dependencies are used (paho, gpiozero, the micromance package), so the
benchmarks run wherever the test suite runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

#: What a desktop unit needs: gpiozero's mock pins with PWM for the LED.
MOCK_ENV = {"GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}

UP_LINE = re.compile(r" is up \(device ")
LINK_UP_LINE = re.compile(r"link up: ")
RECEIVED_LINE = re.compile(r"thank-you from .* \(their #(\d+)\)")
CONFIRMED_LINE = re.compile(r"partner confirmed (\d+) message")


# --- figures --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, as numpy's default does."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of durations given in seconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def check(value: float, limit: float) -> bool:
    return bool(value == value and value <= limit)  # NaN never passes


# --- /proc readings ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads, live and exited), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns(pid: int) -> int:
    """On-CPU time of the live threads in nanoseconds (/proc/PID/task/*/schedstat).

    Finer than the 10 ms ticks of /proc/PID/stat; threads that exited are not counted.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def context_switches(pid: int) -> dict[str, int]:
    """Voluntary and involuntary context switches summed over live threads (= wake-ups)."""
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    involuntary += int(line.split()[1])
    return {"voluntary": voluntary, "involuntary": involuntary}


def thread_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def status_kib(pid: int, key: str) -> int:
    """A "kB" line of /proc/PID/status (VmRSS, VmHWM, RssAnon...), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def io_counters(pid: int) -> dict[str, int]:
    """/proc/PID/io (readable by the same user): wchar, write_bytes, syscw, ..."""
    counters = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        counters[name.strip()] = int(value)
    return counters


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                model = line.split(":", 1)[1].strip()
                break
    from micromance.simulator.private_broker import find_mosquitto

    mosquitto = find_mosquitto()
    version = ""
    if mosquitto:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([mosquitto, "-h"], capture_output=True, text=True,
                                 timeout=5).stdout
            version = out.splitlines()[0] if out else ""
    os_name = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    import paho.mqtt

    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB,
        "kernel": os.uname().release,
        "os": os_name,
        "python": sys.version.split()[0],
        "paho_mqtt": paho.mqtt.__version__,
        "mosquitto": version,
        "filesystem": _filesystem_of(Path("/tmp")),
    }


def code_version() -> dict[str, Any]:
    """Which micromance was measured: its version, where it was imported from, its commit."""
    import micromance

    package = Path(micromance.__file__).resolve().parent
    info: dict[str, Any] = {"version": getattr(micromance, "__version__", ""),
                            "package": str(package)}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        described = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                                   cwd=package, capture_output=True, text=True, timeout=5)
        if described.returncode == 0:
            info["git"] = described.stdout.strip()
    return info


def _filesystem_of(path: Path) -> str:
    """The mount (device and type) holding path: fsync costs depend on it."""
    best, found = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) >= len(best):
                best, found = mount, f"{device} ({kind}) on {mount}"
    return found


# --- a unit's files ---------------------------------------------------------------------------


Ports = int | tuple[int, ...]


def _ports(port: Ports) -> tuple[int, ...]:
    return (port,) if isinstance(port, int) else port


def config_text(state_dir: Path, port: Ports, name: str = "Sam") -> str:
    """A desktop unit: dummy display, no quiet hours, the private broker(s) without TLS.

    One port is written as ``[broker]``, several as ``[[broker]]`` tables.
    """
    ports = _ports(port)
    if len(ports) == 1:
        brokers = f'[broker]\nhost = "127.0.0.1"\nport = {ports[0]}\ntls = false\n'
    else:
        brokers = "".join(f'[[broker]]\nhost = "127.0.0.1"\nport = {p}\ntls = false\n'
                          for p in ports)
    return (
        f'[device]\nname = "{name}"\n'
        '[display]\ndriver = "dummy"\n'
        "[quiet_hours]\nenabled = false\n"
        f"{brokers}"
        f'[paths]\nstate_dir = "{state_dir}"\n'
        '[logging]\nlevel = "info"\n'
    )


def write_config(directory: Path, port: Ports, name: str) -> Path:
    path = directory.with_suffix(".toml")
    path.write_text(config_text(directory, port, name))
    return path


def desk_config(state_dir: Path, port: Ports, name: str, home_port: int | None = None) -> Any:
    """The same unit as a Config object, for in-process runtimes (as the tests build it);
    ``home_port``: Home Assistant switched on, its broker there."""
    import dataclasses

    from micromance.config import BrokerConfig, HomeAssistantConfig
    from tests.units import desk_config as test_unit_config

    ports = _ports(port)
    config = test_unit_config(state_dir, name=name, broker_port=ports[0])
    if home_port is not None:
        config = dataclasses.replace(config, homeassistant=HomeAssistantConfig(
            enabled=True, host="127.0.0.1", port=home_port))
    if len(ports) == 1:
        return config
    return dataclasses.replace(config, broker_tables=tuple(
        BrokerConfig(host="127.0.0.1", port=p, tls=False) for p in ports))


# --- a unit in its own process ------------------------------------------------------------------

#: What ``run`` imports (and the screens it draws), compiled once before units are measured.
_WARM_CODE = (
    "import micromance.cli, micromance.runtime, micromance.logs, micromance.link.mqtt, "
    "micromance.hardware.panel, micromance.hardware.display, gpiozero.pins.mock, "
    "luma.core.device, paho.mqtt.client, tests.benchmarks.wired\n"
    "from micromance.screens.preview import sample_frames\n"
    "from micromance.screens.render import render\n"
    "[render(frame, 128, 64) for frame in sample_frames().values()]\n"
)
_pycache: list[Path] = []


def pycache_dir() -> Path:
    """Bytecode for the units, outside the source tree, for this benchmark run.

    A device runs from compiled bytecode (pip compiles at install; the service cannot write
    it), so units are measured warm, whatever PYTHONDONTWRITEBYTECODE says here.
    """
    if not _pycache:
        import atexit
        import shutil
        import tempfile

        _pycache.append(Path(tempfile.mkdtemp(prefix="mm-bench-pycache-")))
        atexit.register(shutil.rmtree, _pycache[0], ignore_errors=True)
        subprocess.run([PYTHON, "-c", _WARM_CODE], cwd=ROOT, env=unit_env(), check=True,
                       capture_output=True)
    return _pycache[0]


def service_environment() -> dict[str, str]:
    """The ``Environment=`` of systemd/micromance.service that applies off systemd too.

    Settings naming systemd's own paths (``%t``...) and the bytecode switch (the benchmarks
    keep warm bytecode of their own, see ``pycache_dir``) are left out.
    """
    unit = (ROOT / "systemd" / "micromance.service").read_text()
    env = {}
    for line in unit.splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            if "%" not in value and name != "PYTHONDONTWRITEBYTECODE":
                env[name] = value
    return env


def unit_env(*, cold: bool = False) -> dict[str, str]:
    """Environment of a unit process: the service's, mock pins, warm bytecode (or none)."""
    env = dict(os.environ, **service_environment(), **MOCK_ENV, PYTHONUNBUFFERED="1")
    env.pop("RUNTIME_DIRECTORY", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    if cold:  # no bytecode anywhere (an empty cache, nothing written): all compiled at start
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(pycache_dir() / "empty")
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(_pycache[0] if _pycache else pycache_dir())
    return env



class UnitProcess:
    """``python -m micromance run --config X`` on mock pins, its log read line by line."""

    def __init__(self, config: Path, *, stdin_input: bool = False,
                 python_flags: tuple[str, ...] = (), keep_lines: int = 200,
                 runtime_dir: Path | None = None, cold: bool = False) -> None:
        env = unit_env(cold=cold)
        if runtime_dir is not None:  # as systemd's RuntimeDirectory= (tmpfs) gives the service
            env["RUNTIME_DIRECTORY"] = str(runtime_dir)
        command = [PYTHON, *python_flags, "-m", "micromance", "run", "--config", str(config)]
        if stdin_input:
            command += ["--input", "stdin"]
        self.lines: deque[tuple[float, str]] = deque(maxlen=keep_lines)
        self.import_lines: list[str] = []
        self.received = 0          # highest "their #N" seen in the log
        self.confirmed = 0         # messages the partner confirmed (sum)
        self.up_at: float | None = None
        self._changed = threading.Condition()
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE if stdin_input else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            now = time.perf_counter()
            with self._changed:
                if line.startswith("import time:"):
                    if self.up_at is None:  # start-up imports only
                        self.import_lines.append(line)
                    continue
                self.lines.append((now, line.rstrip()))
                if self.up_at is None and UP_LINE.search(line):
                    self.up_at = now
                if (match := RECEIVED_LINE.search(line)) is not None:
                    self.received = max(self.received, int(match.group(1)))
                if (match := CONFIRMED_LINE.search(line)) is not None:
                    self.confirmed += int(match.group(1))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait(self, condition: Callable[[UnitProcess], bool], timeout: float, what: str) -> None:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: condition(self) or self.process.poll() is not None, timeout)
            if not ok or not condition(self):
                tail = "\n".join(line for _, line in list(self.lines)[-15:])
                raise RuntimeError(f"unit {self.pid}: {what} not reached within {timeout}s "
                                   f"(exit {self.process.poll()}):\n{tail}")

    def wait_line(self, pattern: re.Pattern[str], timeout: float = 20.0) -> float:
        """Time (perf_counter) at which a log line matching pattern arrived."""
        found: list[float] = []

        def seen(unit: UnitProcess) -> bool:
            found[:] = [at for at, line in unit.lines if pattern.search(line)][:1]
            return bool(found)

        self.wait(seen, timeout, f"log line /{pattern.pattern}/")
        return found[0]

    def send_keys(self, keys: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(keys)
        self.process.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int:
        terminate(self.process, timeout)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._reader.join(5)
        return self.process.returncode


def terminate(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM as systemd stops a unit; SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def paired_dirs(base: Path) -> Iterator[tuple[Path, Path]]:
    """Two state directories paired with each other (pair.json written to both)."""
    from micromance.link.pair_file import pair_locally

    a, b = base / "a", base / "b"
    pair_locally(a, b)
    yield a, b


@contextlib.contextmanager
def private_broker(base: Path) -> Iterator[Any]:
    from micromance.simulator.private_broker import PrivateBroker

    with PrivateBroker(directory=base / "broker") as broker:
        yield broker


# --- a unit in this process -------------------------------------------------------------------


class InProcessUnit:
    """A Runtime on a thread with its own MockFactory; observers record commands with times."""

    def __init__(self, state_dir: Path, port: Ports, name: str,
                 home_port: int | None = None) -> None:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        from micromance.runtime import Runtime

        self.factory = MockFactory(pin_class=MockPWMPin)
        self.runtime = Runtime(desk_config(state_dir, port, name, home_port),
                               pin_factory=self.factory)
        self.listeners: list[Callable[[Any, float], None]] = []
        self.runtime.observers.append(self._observe)
        self._changed = threading.Condition()
        self.thread = threading.Thread(target=self.runtime.run, daemon=True, name=name)

    def _observe(self, command: Any) -> None:
        now = time.perf_counter()
        for listener in self.listeners:
            listener(command, now)
        with self._changed:
            self._changed.notify_all()

    def start(self, timeout: float = 20.0) -> InProcessUnit:
        self.thread.start()
        if not self.runtime.wait_started(timeout):
            raise RuntimeError("runtime did not start")
        return self

    def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0,
                   what: str = "condition") -> None:
        """Re-checked after every command and every 2 ms (some state changes emit none)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{what} not reached within {timeout}s")
                self._changed.wait(0.002)

    def press(self, pin: int) -> None:
        self.factory.pin(pin).drive_low()
        self.factory.pin(pin).drive_high()

    def tap(self, pin: int, hold: float) -> float:
        """Press, hold ``hold`` seconds, release; returns the perf_counter just before the
        release (when the press becomes a thank-you)."""
        self.factory.pin(pin).drive_low()
        time.sleep(hold)
        released = time.perf_counter()
        self.factory.pin(pin).drive_high()
        return released

    def close(self) -> None:
        self.runtime.stop()
        self.thread.join(10)
        self.factory.reset()
        self.factory.close()


# --- raw paho clients -------------------------------------------------------------------------


def raw_client(client_id: str, port: int, *, on_message: Callable[..., None] | None = None,
               subscribe: list[tuple[str, int]] | None = None, loop: bool = True,
               timeout: float = 20.0) -> Any:
    """A connected paho 2 client (MQTT 5, TCP_NODELAY like the link) with its loop thread."""
    import socket

    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    connected = threading.Event()
    subscribed = threading.Event()

    def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None
                   ) -> None:
        sock = c.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if subscribe:
            c.subscribe(subscribe)
        else:
            subscribed.set()
        connected.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: subscribed.set()
    if on_message is not None:
        client.on_message = on_message
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=60)
    if loop:
        client.loop_start()
        if not (connected.wait(timeout) and subscribed.wait(timeout)):
            raise RuntimeError(f"{client_id}: no connection to the broker")
    return client


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
