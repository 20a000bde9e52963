"""``micromance run`` as it is, with its GPIO wired to the benchmark instead of to a board.

    python -m tests.benchmarks.wired --report-fd W --command-fd R -- run --config unit.toml

installs a pin factory (gpiozero's MockFactory, PWM pins) as ``gpiozero.Device.pin_factory``
and then calls ``micromance.cli.main`` with the arguments after ``--``, unchanged. Nothing of
the unit is patched and no measuring code runs in its loop; the pins are the wires:

- a **logic analyser on the outputs** (``--report-pins``, else every output): whenever such a
  pin goes from dark to lit or back, ``<time.perf_counter()> <pin> <value>`` is written to the
  inherited fd ``--report-fd`` (the breathing's brightness steps in between are not reported;
  ``value`` is 0 or the level). Only the probed pins cost the benchmark a wake-up;
- a **finger on the buttons**: a thread reads lines ``<pin> <0|1>`` from ``--command-fd`` and
  drives that input pin low or high, so edges reach the unit on a thread of their own, as
  lgpio's callbacks do on a Pi. It notes the ``perf_counter`` at which it put each edge on
  the wire and writes them (``<time> <pin> <level> in``) to the report fd only when asked
  (a ``report`` line), between rounds: the moment the edge is on the wire is the start of a
  measurement the way the analyser's is its end, and the pipe to the finger (the benchmark's
  write, this thread's wake-up) is not part of the unit.

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
from pathlib import Path
from typing import Any


def wire(report_fd: int, command_fd: int, report_pins: frozenset[int] | None = None) -> Any:
    """Make the wired factory gpiozero's default and start the finger; returns the factory.
    ``report_pins``: the outputs the analyser watches (None: all)."""
    import gpiozero
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    class WiredPin(MockPWMPin):
        """A mock pin whose output edges are reported, as a logic analyser would see them."""

        def __init__(self, factory: Any, info: Any) -> None:
            super().__init__(factory, info)
            self._number = int(info.name.removeprefix("GPIO"))
            self._probed = report_pins is None or self._number in report_pins

        def _change_state(self, value: Any) -> bool:
            was_lit = bool(self._state)
            changed = bool(super()._change_state(value))
            if changed and self._probed and self._function == "output" \
                    and bool(value) != was_lit:
                os.write(report_fd, f"{time.perf_counter():.9f} {self._number} "
                                    f"{float(value):g}\n".encode())
            return changed

    factory = MockFactory(pin_class=WiredPin)
    gpiozero.Device.pin_factory = factory

    def finger() -> None:
        wires: dict[str, Any] = {}  # a wire per pin, found once (not on the timed path)
        driven: list[str] = []      # "<time> <pin> <level>" of each edge, until reported
        with os.fdopen(command_fd, "r", buffering=1) as commands:
            for line in commands:
                if line.strip() == "report":
                    report = "".join(f"{edge} in\n" for edge in driven)
                    os.write(report_fd, f"{report}\n".encode())  # an empty line ends it
                    driven.clear()
                    continue
                pin, level = line.split()
                if pin not in wires:
                    wires[pin] = factory.pin(int(pin))
                target = wires[pin]
                at = time.perf_counter()
                target.drive_high() if level == "1" else target.drive_low()
                driven.append(f"{at:.9f} {pin} {level}")

    threading.Thread(target=finger, name="finger", daemon=True).start()
    return factory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-fd", type=int, required=True)
    parser.add_argument("--command-fd", type=int, required=True)
    parser.add_argument("--report-pins", default=None,
                        help="comma-separated output pins to report (default: all)")
    parser.add_argument("micromance_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    rest = args.micromance_args[1:] if args.micromance_args[:1] == ["--"] \
        else args.micromance_args
    pins = None if args.report_pins is None else \
        frozenset(int(pin) for pin in args.report_pins.split(",") if pin)
    wire(args.report_fd, args.command_fd, pins)

    from micromance.cli import main as micromance_main

    return micromance_main(rest)


# --- the benchmark's side ---------------------------------------------------------------------


class WiredUnit:
    """A ``micromance run`` process on wired pins: press its buttons, watch its outputs.

    Between rounds the benchmark may ask the unit's control socket for its status (as
    ``micromance status`` would); while a press is timed it only writes to the finger and
    reads the analyser. The unit's log goes to a file (``<state dir>.log``), as to the
    journal on a device: writing it costs the unit a write and wakes nobody here.
    ``report_pins``: the outputs the analyser watches (None: all).
    """

    def __init__(self, config: Path, state_dir: Path,
                 report_pins: tuple[int, ...] | None = None) -> None:
        from tests.benchmarks.common import PYTHON, ROOT, unit_env

        self.state_dir = state_dir
        self.log_path = state_dir.with_suffix(".log")
        report_read, report_write = os.pipe()
        command_read, self._command_write = os.pipe()
        env = unit_env()
        env.pop("GPIOZERO_PIN_FACTORY", None)  # the launcher installs its own factory
        probe = [] if report_pins is None else \
            ["--report-pins", ",".join(str(pin) for pin in report_pins)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "tests.benchmarks.wired", "--report-fd", str(report_write),
                 "--command-fd", str(command_read), *probe, "--", "run", "--config",
                 str(config)],
                cwd=ROOT, env=env, pass_fds=(report_write, command_read), text=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        os.close(report_write)
        os.close(command_read)
        self._report_read = report_read
        #: (perf_counter, pin, value) of every output edge, in order.
        self.edges: list[tuple[float, int, float]] = []
        #: (perf_counter, pin, level) of the edges the finger put on the inputs, once reported.
        self.driven: list[tuple[float, int, int]] = []
        self._changed = threading.Condition()
        self._reports = 0
        self._threads = [threading.Thread(target=self._read_edges, daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def lines(self) -> list[str]:
        """The unit's log so far."""
        return self.log_path.read_text(errors="replace").splitlines()

    def _read_edges(self) -> None:
        with os.fdopen(self._report_read, "r") as edges:
            for line in edges:
                fields = line.split()
                with self._changed:
                    if len(fields) == 4:    # an input edge, as the finger reports it
                        self.driven.append((float(fields[0]), int(fields[1]), int(fields[2])))
                    elif len(fields) == 3:
                        self.edges.append((float(fields[0]), int(fields[1]), float(fields[2])))
                    if not fields:          # the empty line that ends a report
                        self._reports += 1
                    self._changed.notify_all()

    def press(self, pin: int) -> float:
        """Press and release at once; returns the perf_counter just before the press."""
        started = time.perf_counter()
        os.write(self._command_write, f"{pin} 0\n{pin} 1\n".encode())
        return started

    def tap(self, pin: int, hold: float) -> float:
        """Press, hold ``hold`` seconds, release; returns the perf_counter just before the
        release."""
        os.write(self._command_write, f"{pin} 0\n".encode())
        time.sleep(hold)
        released = time.perf_counter()
        os.write(self._command_write, f"{pin} 1\n".encode())
        return released

    def driven_at(self, pin: int, level: int, after: float, timeout: float = 10.0) -> float:
        """When the finger put ``pin`` at ``level`` on the wire, the first time after
        ``after`` (asks the finger for its notes: call it once the round is over)."""
        with self._changed:
            self.driven.clear()
            reports = self._reports
        os.write(self._command_write, b"report\n")
        self._wait(lambda: self._reports > reports, timeout, "the finger's report")
        return next(at for at, p, driven in self.driven
                    if p == pin and driven == level and at > after)

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
        """Until the log has a line with ``text`` (looked at every 10 ms: start-up only)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._fail(repr(text), timeout)
            time.sleep(0.01)

    def _wait(self, condition: Any, timeout: float, what: str) -> None:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: condition() or self.process.poll() is not None, timeout)
            if not ok or not condition():
                self._fail(what, timeout)

    def _fail(self, what: str, timeout: float) -> None:
        tail = "\n".join(self.lines[-15:])
        raise RuntimeError(f"unit {self.process.pid}: {what} not seen within {timeout}s "
                           f"(exit {self.process.poll()}):\n{tail}")

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
