"""Starting the unit: under systemd, a unit that cannot start backs off and says why on screen.

``micromance run`` fails at start when the config is wrong, the display or GPIO is missing or
the state directory cannot be used. From a shell it exits at once with the error's code (78,
69, 73...). Under systemd (``$INVOCATION_ID`` and ``$RUNTIME_DIRECTORY`` set), where nobody
reads the exit code and systemd restarts the unit whatever it was, it instead:

1. prints the one-line error (the journal and ``systemctl status`` show it) and sends systemd
   ``STATUS=`` with it, and ``EXTEND_TIMEOUT_USEC=`` (the unit is still starting: its
   ``TimeoutStartSec=`` must not kill it during the wait);
2. shows the problem in plain words on the display, if the display opens (after a config error
   with the ``[display]`` settings that could be read, else with the defaults);
3. waits a back-off delay that doubles with every failed start in a row: 10 s, 20 s, 40 s ... up
   to 10 min. The count is kept in ``$RUNTIME_DIRECTORY/start-failures`` (the unit keeps that
   directory across restarts) and dropped by a run that got going (``READY=1``). SIGTERM or
   SIGINT ends the wait at once, and the unit exits 0 like a running unit that is stopped;
4. exits with the error's code (70 for a bug), leaving the problem on the panel; systemd
   starts it again after ``RestartSec=``, without a start limit.

A failure after ``READY=1`` is not a failure to start: it exits at once, as from a shell.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from micromance.config import Config, DisplayConfig, load_config, parse_config, resolve_path
from micromance.errors import (
    EX_SOFTWARE,
    ConfigError,
    HardwareError,
    LinkError,
    MicromanceError,
    StoreError,
)
from micromance.screens.views import ProblemView
from micromance.service import Notifier

log = logging.getLogger("micromance")

#: The first back-off; it doubles with every failed start in a row, up to 60 times this.
BASE_DELAY = 10.0
MAX_FACTOR = 60
FAILURES_FILE = "start-failures"
#: Tests shorten the back-off with this variable (seconds); the service never sets it.
BASE_DELAY_VARIABLE = "MICROMANCE_TEST_BACKOFF_SECONDS"
#: Time allowed beyond the back-off for closing and exiting (for EXTEND_TIMEOUT_USEC).
EXIT_MARGIN = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SCREENSHOT_NAME = "screen.png"

#: Headlines for the screen, by the error's class (the first match wins).
_REASONS: tuple[tuple[type[MicromanceError], str], ...] = (
    (ConfigError, "Config error"),
    (StoreError, "Storage problem"),
    (HardwareError, "Hardware problem"),
    (LinkError, "Broker set-up"),
    (MicromanceError, "Cannot start"),
)

#: Runs the unit with its config and the notifier that must announce READY=1; returns the code.
Run = Callable[[Config, Notifier], int]


def start_unit(config_arg: str | None, run: Run, *,
               environ: Mapping[str, str] | None = None) -> int:
    """Load the config and ``run`` the unit; under systemd, back off when it cannot start."""
    path = resolve_path(config_arg)
    backoff = Backoff.from_environment(os.environ if environ is None else environ)
    notifier_env = None if environ is None else dict(environ)
    if backoff is None:
        return run(load_config(path), Notifier(notifier_env))
    notifier = StartNotifier(notifier_env, on_ready=backoff.reset)
    config: Config | None = None
    try:
        config = load_config(path)
        return run(config, notifier)
    except Exception as error:
        if notifier.started:
            raise  # it got going: not a failure to start
        display = config.display if config is not None else readable_display(path)
        level = config.logging.level if config is not None else "info"
        return backoff.after_failure(error, display, notifier, level)


class StartNotifier(Notifier):
    """A notifier that knows whether the unit got going (sent READY=1)."""

    def __init__(self, environ: dict[str, str] | None = None, *,
                 on_ready: Callable[[], None] = lambda: None) -> None:
        super().__init__(environ)
        self.started = False
        self._on_ready = on_ready

    def ready(self, status: str = "") -> None:
        super().ready(status)
        self.started = True
        self._on_ready()


class Backoff:
    """Failed starts in a row, counted in a small file, and the delay they earn."""

    def __init__(self, directory: Path, base: float = BASE_DELAY) -> None:
        self.directory = directory
        self.base = base

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Backoff | None:
        """Under systemd, the back-off in the unit's runtime directory; None elsewhere."""
        runtime_dir = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
        if not environ.get("INVOCATION_ID") or not runtime_dir:
            return None
        try:
            base = float(environ.get(BASE_DELAY_VARIABLE) or BASE_DELAY)
        except ValueError:
            base = BASE_DELAY
        return cls(Path(runtime_dir), base)

    @property
    def path(self) -> Path:
        return self.directory / FAILURES_FILE

    @property
    def max_delay(self) -> float:
        return self.base * MAX_FACTOR

    def failures(self) -> int:
        """Failed starts in a row so far (0 after a run that got going)."""
        try:
            return max(0, int(self.path.read_text()))
        except (OSError, ValueError):
            return 0

    def record_failure(self) -> int:
        """Count one more failed start; returns the count (without a writable runtime
        directory every failure is the first: the shortest delay, but still a delay)."""
        count = self.failures() + 1
        try:
            self.path.write_text(f"{count}\n")
        except OSError as error:
            log.warning("cannot count failed starts in %s (%s)", self.path, error.strerror)
        return count

    def reset(self) -> None:
        """The unit got going: the next failure starts again with the shortest delay."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("cannot reset the failed-start count %s: %s", self.path, error)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed starts in a row: base, 2 x base, ..."""
        return min(self.base * 2.0 ** min(max(failures - 1, 0), 32), self.max_delay)

    def after_failure(self, error: Exception, display: DisplayConfig, notifier: Notifier,
                      level: str = "info") -> int:
        """Say why, show it, wait the back-off (or until stopped), return the exit code."""
        from micromance.logs import setup_logging

        setup_logging(level)
        if isinstance(error, MicromanceError):
            code = error.exit_code
            print(f"micromance: {error}", file=sys.stderr, flush=True)
            summary = str(error)
        else:
            code = EX_SOFTWARE
            log.error("cannot start, a bug:", exc_info=error)
            summary = f"{type(error).__name__}: {error}"
        failures = self.record_failure()
        wait = self.delay(failures)
        with StopSignals() as stop:  # from here on a SIGTERM ends the back-off, not the process
            log.warning("cannot start (%d failed start%s in a row): trying again in %s",
                        failures, "" if failures == 1 else "s", _seconds(wait))
            status = " ".join(f"cannot start: {summary}; trying again in {_seconds(wait)}"
                              .split())
            notifier.notify(f"EXTEND_TIMEOUT_USEC={int((wait + EXIT_MARGIN) * 1e6)}\n"
                            f"STATUS={status}")
            panel = show_problem(problem_view(error), display, self.directory)
            stopped_by = stop.wait(wait)
            close_display(panel, keep_frame=stopped_by is None)
        if stopped_by is not None:
            log.info("stopping (%s)", signal.Signals(stopped_by).name)
            return 0
        return code


def problem_view(error: BaseException) -> ProblemView:
    """What the screen says: a short headline and the message without its file name."""
    if not isinstance(error, MicromanceError):
        return ProblemView("Software error", "see journalctl -u micromance")
    reason = next(words for kind, words in _REASONS if isinstance(error, kind))
    head, colon, rest = error.message.partition(": ")
    detail = rest if colon and "/" in head and " " not in head else error.message
    return ProblemView(reason, detail)


def readable_display(path: Path | None) -> DisplayConfig:
    """The ``[display]`` settings of a config that failed to load, as far as each is valid on
    its own; the defaults for the rest (and for all when the file cannot be read)."""
    if path is None:
        return DisplayConfig()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("display")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return DisplayConfig()
    if not isinstance(table, dict):
        return DisplayConfig()
    valid: dict[str, Any] = {}
    for key, value in table.items():
        literal = _toml_literal(value)
        if literal is None:
            continue
        try:
            one = parse_config(f"[display]\n{json.dumps(key)} = {literal}\n", path)
        except ConfigError:
            continue
        valid[key] = getattr(one.display, key)
    return DisplayConfig(**valid)


def _toml_literal(value: Any) -> str | None:
    """The TOML spelling of the values a display key can have (others are invalid anyway)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    return None


def show_problem(view: ProblemView, config: DisplayConfig, runtime_dir: Path) -> Any:
    """The display with the problem on it, or None when it cannot be shown.

    Showing is a courtesy: whatever fails here (the display may be the very problem) is
    logged, and the back-off goes on. The dummy driver's frame is saved as a PNG in the
    runtime directory.
    """
    from micromance.hardware.display import open_display
    from micromance.screens.render import render
    from micromance.screens.views import Frame

    display = None
    try:
        display = open_display(config)
        image = render(Frame(view), *display.size)
        display.show(image)
        if config.driver == "dummy":
            image.save(runtime_dir / SCREENSHOT_NAME)
    except Exception as error:
        log.info("the problem is not on the display: %s", " ".join(str(error).split()))
        close_display(display, keep_frame=False)
        return None
    return display


def close_display(display: Any, *, keep_frame: bool) -> None:
    """Close; with ``keep_frame`` the panel keeps showing the problem while systemd restarts
    the unit (luma's ``persist``), otherwise it is switched off as at any clean exit."""
    if display is None:
        return
    device: Any = display.device
    if keep_frame and hasattr(device, "persist"):
        device.persist = True
    try:
        display.close()
    except Exception as error:
        log.info("closing the display: %s", error)


class StopSignals:
    """While entered, SIGTERM and SIGINT are only noted, and ``wait`` ends when one comes.

    The handlers note the signal; ``signal.set_wakeup_fd`` wakes the ``select`` in ``wait`` at
    once, whichever thread the kernel delivered the signal to. Main thread only.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._pipe: tuple[int, int] | None = None
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1

    def __enter__(self) -> StopSignals:
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)
        self._previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None

    def wait(self, seconds: float) -> int | None:
        """Wait ``seconds`` or until a stop signal (also one that came before): the signal,
        or None after the whole wait."""
        assert self._pipe is not None, "wait inside the with block"
        deadline = time.monotonic() + seconds
        while not self.received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if select.select([self._pipe[0]], [], [], remaining)[0]:
                os.read(self._pipe[0], 512)
        return self.received[0] if self.received else None

    def _note(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)} min"
    return f"{value:g} s"
