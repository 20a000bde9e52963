"""A private mosquitto on a loopback port, for `micromance simulate` and the tests.

An adapter that manages one process and nothing else: it never touches the system's
mosquitto service (port 1883), keeps its config, log and persistence file in one directory, and
can be stopped, killed (SIGKILL, for fault injection) and restarted on the same port with the
same persistence, so a test can see what survives a broker crash.

The directory also holds ``mosquitto.pid`` while the broker runs: if the program that started
it was killed (SIGKILL, a crash) and left it running, the next start in the same directory
stops it first, after checking that the process really is the mosquitto of that directory.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from micromance.errors import LinkError

log = logging.getLogger(__name__)

MOSQUITTO_MISSING = "mosquitto is not installed: sudo apt-get install mosquitto"
LOOPBACK = "127.0.0.1"
PID_FILE = "mosquitto.pid"

# /usr/sbin is often missing from a normal user's PATH, and that is where Debian puts it.
_WELL_KNOWN_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_STARTUP_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_CONNECT_PROBE_TIMEOUT = 0.2
_EXIT_WATCH_INTERVAL = 0.005   # how long to wait for an early exit between two connect probes
_PORT_RETRIES = 3              # a freshly picked port can be taken before mosquitto binds it
_PORT_TAKEN = "Address already in use"   # mosquitto's own words, reused for our pre-check

# Brokers with a process or a private directory, for the atexit safety net.
_brokers_to_clean_up: set[PrivateBroker] = set()


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary: PATH first, then where Debian and source installs put it."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in _WELL_KNOWN_PATHS:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_PROBE_TIMEOUT):
            return True
    except OSError:
        return False


class PrivateBroker:
    """One mosquitto process listening on 127.0.0.1 only, with persistence in its own directory.

    The port is picked once (or given) and kept across `restart()`, so clients can reconnect
    to the same address, as they would after a real broker outage.
    """

    def __init__(
        self,
        port: int | None = None,
        directory: str | os.PathLike[str] | None = None,
        *,
        verbose: bool = False,
        startup_timeout: float = _STARTUP_TIMEOUT,
    ) -> None:
        self._port = port
        self._port_is_fixed = port is not None
        self._given_directory = Path(directory).resolve() if directory is not None else None
        self._own_directory: Path | None = None
        self._verbose = verbose
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_sizes_at_launch: dict[Path, int] = {}

    # -- addresses and files ----------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always loopback: the private broker is never reachable from the network."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The TCP port; picked on the first `start()` unless one was given."""
        if self._port is None:
            raise LinkError("the private broker has no port yet: call start() first")
        return self._port

    @property
    def directory(self) -> Path:
        """Where the config, the log and the persistence file live (kept across restarts)."""
        if self._given_directory is not None:
            return self._given_directory
        if self._own_directory is None:
            self._own_directory = Path(tempfile.mkdtemp(prefix="micromance-broker-"))
            _brokers_to_clean_up.add(self)
        return self._own_directory

    @property
    def config_path(self) -> Path:
        """The mosquitto.conf written on every start (from the settings, never edited by hand)."""
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """mosquitto's own log (log_dest file); its stdout/stderr go to `output_path`."""
        return self.directory / "mosquitto.log"

    @property
    def output_path(self) -> Path:
        """stdout and stderr of the process: config errors appear here, before the log opens."""
        return self.directory / "mosquitto.out"

    @property
    def pid_path(self) -> Path:
        """``<mosquitto pid> <pid of the program that started it>`` while the broker runs."""
        return self.directory / PID_FILE

    @property
    def running(self) -> bool:
        """True while the process is alive (False after stop(), kill() or a crash)."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while running, for tests that check nothing is left behind."""
        return self._process.pid if self._process is not None and self.running else None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> PrivateBroker:
        """Start mosquitto and return once it accepts TCP connections on `port`."""
        if self.running:
            return self
        executable = find_mosquitto()
        if executable is None:
            raise LinkError(MOSQUITTO_MISSING)
        self.directory.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._port_is_fixed else _PORT_RETRIES
        for attempt in range(1, attempts + 1):
            if not self._port_is_fixed:
                self._port = free_loopback_port()
            try:
                self._refuse_taken_port()
                self._launch(executable)
            except LinkError as error:
                if attempt < attempts and _PORT_TAKEN in str(error):
                    continue
                raise
            break
        # From now on the address is part of what clients know: restarts must keep it.
        self._port_is_fixed = True
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop gracefully (SIGTERM: mosquitto saves its database), SIGKILL if it hangs."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self._forget_process()

    def kill(self) -> None:
        """SIGKILL, as in a power cut: whatever was not autosaved yet is lost (fault tests)."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        finally:
            self._forget_process()

    def restart(self) -> PrivateBroker:
        """Stop if running, then start again on the same port with the same persistence."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the private directory (a given directory is left in place)."""
        self.stop()
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)
            self._own_directory = None
        _brokers_to_clean_up.discard(self)

    def log_tail(self, lines: int = 20, *, since_last_start: bool = False) -> str:
        """The last lines of mosquitto's output and log (both are kept across restarts)."""
        collected: list[str] = []
        for path in (self.output_path, self.log_path):
            skip = self._log_sizes_at_launch.get(path, 0) if since_last_start else 0
            with contextlib.suppress(OSError), open(path, "rb") as log:
                log.seek(skip)
                collected.extend(log.read().decode(errors="replace").splitlines())
        return "\n".join(collected[-lines:])

    def __enter__(self) -> PrivateBroker:
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ will not run: do not leave the private directory behind
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        directory = self._given_directory or self._own_directory
        return f"PrivateBroker({self.host}:{self._port}, {state}, {directory})"

    # -- internals ----------------------------------------------------------------------------

    def _config_text(self) -> str:
        """mosquitto.conf: loopback only, no Nagle, persistence saved every second."""
        location = f"{self.directory.resolve()}/"
        if "\n" in location:
            raise LinkError(f"unusable broker directory (newline in the path): {location!r}")
        log_types = ["all"] if self._verbose else ["error", "warning", "notice", "information"]
        lines = [
            "# written by micromance.simulator.private_broker; rewritten on every start",
            f"listener {self.port} {LOOPBACK}",
            "allow_anonymous true",
            "set_tcp_nodelay true",
            "persistence true",
            f"persistence_location {location}",
            "autosave_interval 1",
            f"log_dest file {self.log_path.resolve()}",
            *(f"log_type {log_type}" for log_type in log_types),
            "max_queued_messages 10000",
            "max_inflight_messages 100",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto switches to the "mosquitto" user, which cannot write
            # our directory (a containerised CI runs as root); "user root" keeps it as it is.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def _refuse_taken_port(self) -> None:
        """Fail early if something already answers on the port.

        Otherwise the readiness probe below would be answered by that other server while our
        mosquitto is still starting (it exits ~10 ms later with "Address already in use").
        """
        if _accepts_connections(LOOPBACK, self.port):
            raise LinkError(f"cannot start mosquitto on {LOOPBACK}:{self.port}: {_PORT_TAKEN}")

    def _launch(self, executable: str) -> None:
        self._stop_leftover()
        self.config_path.write_text(self._config_text())
        self._log_sizes_at_launch = {
            path: path.stat().st_size if path.exists() else 0
            for path in (self.output_path, self.log_path)
        }
        with open(self.output_path, "ab") as output:
            process = subprocess.Popen(
                [executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        self._process = process
        _brokers_to_clean_up.add(self)
        try:
            self.pid_path.write_text(f"{process.pid} {os.getpid()}\n")
            self._wait_until_accepting(process)
        except BaseException:
            self.kill()
            raise

    def _wait_until_accepting(self, process: subprocess.Popen[bytes]) -> None:
        """Probe the port until mosquitto accepts, or fail with its log if it exits first.

        Between probes we wait on the process itself, so an early exit (port taken, bad
        config) is noticed at once instead of after the whole timeout.
        """
        deadline = time.monotonic() + self._startup_timeout
        while not self._exited_within(process, 0):
            if _accepts_connections(LOOPBACK, self.port):
                return
            if time.monotonic() >= deadline:
                raise LinkError(
                    f"mosquitto did not accept connections on {LOOPBACK}:{self.port} "
                    f"within {self._startup_timeout:g} s:\n{self._startup_log()}"
                )
            self._exited_within(process, _EXIT_WATCH_INTERVAL)
        raise LinkError(
            f"mosquitto exited at start-up (code {process.returncode}) "
            f"on {LOOPBACK}:{self.port}:\n{self._startup_log()}"
        )

    @staticmethod
    def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _startup_log(self) -> str:
        return self.log_tail(since_last_start=True)

    def _forget_process(self) -> None:
        process, self._process = self._process, None
        if process is not None and self._recorded_pids()[0] == process.pid:
            self.pid_path.unlink(missing_ok=True)

    def _recorded_pids(self) -> tuple[int | None, int | None]:
        """(mosquitto, the program that started it) from the pid file; None when unknown."""
        try:
            fields = self.pid_path.read_text().split()
            return int(fields[0]), int(fields[1])
        except (OSError, ValueError, IndexError):
            return None, None

    def _stop_leftover(self) -> None:
        """Stop the mosquitto an earlier run left running in this directory.

        That run was killed before it could stop its broker (SIGKILL, a crash): the orphan
        still holds the persistence file, and a second broker would be started beside it.
        The recorded pid is trusted only if it is still the mosquitto of *this* directory
        (its command line names our config file); a broker whose starter is still alive is
        not left behind but in use, and is never touched.
        """
        pid, owner = self._recorded_pids()
        if pid is None:
            return
        with _other_process(pid) as process:
            if process is None or not self._is_our_mosquitto(process.argv()):
                self.pid_path.unlink(missing_ok=True)  # gone, or the pid now belongs to another
                return
            if owner is not None and process.parent() == owner:
                raise LinkError(
                    f"the private broker in {self.directory} is in use by process {owner} "
                    f"(mosquitto {pid}): quit the other micromance simulate first, or use "
                    "another --state")
            log.warning("stopping mosquitto %d, left running in %s by an earlier run", pid,
                        self.directory)
            process.stop(_STOP_TIMEOUT)
        self.pid_path.unlink(missing_ok=True)

    def _is_our_mosquitto(self, argv: list[str]) -> bool:
        """Started as ``_launch`` does it here: a mosquitto binary with our config file."""
        return (len(argv) == 3 and Path(argv[0]).name == "mosquitto"
                and argv[1:] == ["-c", str(self.config_path)])


@contextlib.contextmanager
def _other_process(pid: int) -> Iterator[_ProcessHandle | None]:
    """The process ``pid`` (not our child), or None when it no longer exists."""
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        yield None
        return
    except (AttributeError, OSError):  # no pidfd (an old kernel, not Linux): plain signals
        pass
    try:
        yield _ProcessHandle(pid, pidfd)
    finally:
        if pidfd is not None:
            os.close(pidfd)


class _ProcessHandle:
    """A process that is not our child: a pidfd where Linux has one, so that a recycled pid
    is never signalled and its exit can be waited for without polling."""

    def __init__(self, pid: int, pidfd: int | None) -> None:
        self.pid = pid
        self._pidfd = pidfd

    def argv(self) -> list[str]:
        """Its command line; empty for a zombie, a process gone, or without /proc."""
        try:
            raw = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]

    def parent(self) -> int | None:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        return int(stat.rpartition(")")[2].split()[1])  # after "pid (comm) state"

    def stop(self, timeout: float) -> None:
        """SIGTERM (mosquitto saves its database and exits), SIGKILL if it hangs."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self._send(sig)
            except ProcessLookupError:
                return
            if self._exited_within(timeout):
                return

    def _send(self, sig: signal.Signals) -> None:
        if self._pidfd is not None:
            signal.pidfd_send_signal(self._pidfd, sig)
        else:
            os.kill(self.pid, sig)

    def _exited_within(self, timeout: float) -> bool:
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], timeout)  # readable: exited
            return bool(readable)
        deadline = time.monotonic() + timeout
        while self.argv():  # no pidfd: a zombie or a gone process has no command line
            if time.monotonic() >= deadline:
                return False
            time.sleep(_EXIT_WATCH_INTERVAL)
        return True


@atexit.register
def _stop_leftover_brokers() -> None:
    """Safety net: never leave a mosquitto or a private directory behind at interpreter exit."""
    for broker in list(_brokers_to_clean_up):
        with contextlib.suppress(Exception):
            broker.close()
