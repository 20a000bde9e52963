"""``micromance run`` as it is, with its GPIO wired to the benchmark instead of to a board.

    python -m tests.benchmarks.wired --report-fd W --command-fd R -- run --config unit.toml

installs a pin factory (gpiozero's MockFactory, PWM pins) as ``gpiozero.Device.pin_factory``
and then calls ``micromance.cli.main`` with the arguments after ``--``, unchanged. Nothing of
the unit is patched and no measuring code runs in its loop; the pins are the wires:

- a **logic analyser on the outputs**: whenever an output pin goes from dark to lit or back,
  ``<time.perf_counter()> <pin> <value>`` is written to the inherited fd ``--report-fd`` (the
  breathing's brightness steps in between are not reported; ``value`` is 0 or the level);
- a **finger on the buttons**: a thread reads lines ``<pin> <0|1>`` from ``--command-fd`` and
  drives that input pin low or high, so edges reach the unit on a thread of their own, as
  lgpio's callbacks do on a Pi.

perf_counter is CLOCK_MONOTONIC on Linux, one clock for every process, so the benchmark
compares the analyser's times with its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any


def wire(report_fd: int, command_fd: int) -> Any:
    """Make the wired factory gpiozero's default and start the finger; returns the factory."""
    import gpiozero
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    class WiredPin(MockPWMPin):
        """A mock pin whose output edges are reported, as a logic analyser would see them."""

        def __init__(self, factory: Any, info: Any) -> None:
            super().__init__(factory, info)
            self._number = int(info.name.removeprefix("GPIO"))

        def _change_state(self, value: Any) -> bool:
            was_lit = bool(self._state)
            changed = bool(super()._change_state(value))
            if changed and self._function == "output" and bool(value) != was_lit:
                os.write(report_fd, f"{time.perf_counter():.9f} {self._number} "
                                    f"{float(value):g}\n".encode())
            return changed

    factory = MockFactory(pin_class=WiredPin)
    gpiozero.Device.pin_factory = factory

    def finger() -> None:
        with os.fdopen(command_fd, "r", buffering=1) as commands:
            for line in commands:
                pin, level = line.split()
                target = factory.pin(int(pin))
                target.drive_high() if level == "1" else target.drive_low()

    threading.Thread(target=finger, name="finger", daemon=True).start()
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-fd", type=int, required=True)
    parser.add_argument("--command-fd", type=int, required=True)
    parser.add_argument("micromance_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    rest = args.micromance_args[1:] if args.micromance_args[:1] == ["--"] \
        else args.micromance_args
    wire(args.report_fd, args.command_fd)

    from micromance.cli import main as micromance_main

    return micromance_main(rest)


# --- the benchmark's side ---------------------------------------------------------------------


class WiredUnit:
    """A ``micromance run`` process on wired pins: press its buttons, watch its outputs.

    Between rounds the benchmark may ask the unit's control socket for its status (as
    ``micromance status`` would); while a press is timed it only writes to the finger and
    reads the analyser.
    """

    def __init__(self, config: Path, state_dir: Path) -> None:
        from tests.benchmarks.common import PYTHON, ROOT, unit_env

        self.state_dir = state_dir
        report_read, report_write = os.pipe()
        command_read, self._command_write = os.pipe()
        env = unit_env()
        env.pop("GPIOZERO_PIN_FACTORY", None)  # the launcher installs its own factory
        self.process = subprocess.Popen(
            [PYTHON, "-m", "tests.benchmarks.wired", "--report-fd", str(report_write),
             "--command-fd", str(command_read), "--", "run", "--config", str(config)],
            cwd=ROOT, env=env, pass_fds=(report_write, command_read), text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(report_write)
        os.close(command_read)
        self._report_read = report_read
        #: (perf_counter, pin, value) of every output edge, in order.
        self.edges: list[tuple[float, int, float]] = []
        self.lines: deque[str] = deque(maxlen=200)
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._read_edges, daemon=True),
                         threading.Thread(target=self._read_log, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read_edges(self) -> None:
        with os.fdopen(self._report_read, "r") as edges:
            for line in edges:
                at, pin, value = line.split()
                with self._changed:
                    self.edges.append((float(at), int(pin), float(value)))
                    self._changed.notify_all()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def press(self, pin: int) -> float:
        """Press and release at once; returns the perf_counter just before the press."""
        started = time.perf_counter()
        os.write(self._command_write, f"{pin} 0\n{pin} 1\n".encode())
        return started

    def wait_edge(self, pin: int, lit: bool, after: float, timeout: float = 10.0) -> float:
        """When ``pin`` went lit (or dark) later than ``after``, per the analyser."""
        found: list[float] = []

        def seen() -> bool:
            found[:] = [at for at, p, value in self.edges
                        if p == pin and bool(value) is lit and at > after][:1]
            return bool(found)

        self._wait(seen, timeout, f"GPIO{pin} {'lit' if lit else 'dark'}")
        return found[0]

    def wait_line(self, text: str, timeout: float = 20.0) -> None:
        self._wait(lambda: any(text in line for line in self.lines), timeout, repr(text))

    def _wait(self, condition: Any, timeout: float, what: str) -> None:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: condition() or self.process.poll() is not None, timeout)
            if not ok or not condition():
                tail = "\n".join(list(self.lines)[-15:])
                raise RuntimeError(f"unit {self.process.pid}: {what} not seen within "
                                   f"{timeout}s (exit {self.process.poll()}):\n{tail}")

    def status(self) -> dict[str, Any]:
        """The unit's ``status`` through its control socket (in its state directory)."""
        from micromance.control import CONTROL_SOCKET
        from micromance.control.client import ControlClient

        with ControlClient(self.state_dir / CONTROL_SOCKET) as client:
            return client.status()

    def forget_edges(self) -> None:
        with self._changed:
            self.edges.clear()

    def stop(self, timeout: float = 10.0) -> int:
        from tests.benchmarks.common import terminate

        terminate(self.process, timeout)
        with contextlib.suppress(OSError):
            os.close(self._command_write)
        for thread in self._threads:
            thread.join(5)
        return self.process.returncode


if __name__ == "__main__":
    sys.exit(main())
