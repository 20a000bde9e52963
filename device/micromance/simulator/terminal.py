"""``micromance simulate``: two paired units side by side in one terminal.

Everything is real but the hardware: a private mosquitto on a free loopback port, two full
runtimes with their own config files (``<state>/sam.toml``, ``alex.toml``, see
``unit_files``) and state directories, gpiozero mock pins and luma dummy displays. The
screens are drawn with braille characters; keys press each unit's buttons.

However it ends (`q`, Ctrl-C, the end of piped input, SIGTERM, or SIGHUP when the terminal
is closed) both units stop, the private mosquitto stops and the terminal is restored. Only a
SIGKILL leaves the mosquitto running; the next run in the same state directory stops it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

from micromance.config import Config
from micromance.core import commands as cmd
from micromance.core.commands import LightMode
from micromance.core.events import Gesture
from micromance.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_STATE = Path(".state/simulate")
#: Keys for the left and right unit: THANKS, NEXT, hold NEXT (done), hold THANKS, both (pair).
KEYMAPS = (
    {"t": Gesture.THANKS_PRESS, "n": Gesture.NEXT_PRESS, "N": Gesture.NEXT_HOLD,
     "T": Gesture.THANKS_HOLD, "w": Gesture.BOTH_PRESS, "p": Gesture.BOTH_HOLD},
    {"y": Gesture.THANKS_PRESS, "m": Gesture.NEXT_PRESS, "M": Gesture.NEXT_HOLD,
     "Y": Gesture.THANKS_HOLD, "i": Gesture.BOTH_PRESS, "o": Gesture.BOTH_HOLD},
)
NAMES = ("Sam", "Alex")
QUIT_KEYS = {"q", "\x03", "\x04"}
#: Signals that end a simulation cleanly, like `q`: the terminal closed, or `kill`.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
SETTLE_SECONDS = 10.0   # scripted input: how long to let messages land before exiting


class Simulation:
    """Two units, one broker, one screen."""

    def __init__(self, base: Config, state_root: Path, out: TextIO) -> None:
        self.base = base
        self.state_root = state_root
        self.out = out
        self.units: list[Runtime] = []
        self.changed: queue.SimpleQueue[str] = queue.SimpleQueue()
        #: Each unit's gpiozero MockFactory (the web page presses their pins).
        self.pin_factories: list[Any] = []

    def _unit_config(self, index: int, port: int) -> Config:
        """The unit's config, from its file ``<state>/<name>.toml`` (see ``unit_files``)."""
        from micromance.simulator.unit_files import unit_config

        return unit_config(self.base, self.config_path(index), name=NAMES[index],
                           state_dir=self.state_root / "ab"[index], broker_port=port)

    def config_path(self, index: int) -> Path:
        """Where unit ``index`` keeps its config file (its web page saves Settings there)."""
        return self.state_root / f"{NAMES[index].lower()}.toml"

    @contextmanager
    def running(self) -> Iterator[Simulation]:
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        from micromance.link.pair_file import load_pair, pair_locally
        from micromance.simulator.private_broker import PrivateBroker

        with ExitStack() as stack:
            broker = stack.enter_context(PrivateBroker(directory=self.state_root / "broker"))
            dirs = [self.state_root / "a", self.state_root / "b"]
            pairs = [load_pair(d) if d.exists() else None for d in dirs]
            if not (pairs[0] and pairs[1] and pairs[0].pair_id == pairs[1].pair_id):
                pair_locally(*dirs)
            threads = []
            for index in range(2):
                factory = MockFactory(pin_class=MockPWMPin)
                stack.callback(factory.close)
                self.pin_factories.append(factory)
                runtime = Runtime(self._unit_config(index, broker.port), pin_factory=factory)
                runtime.observers.append(self._observer(index))
                thread = threading.Thread(target=runtime.run, name=f"unit-{index}", daemon=True)
                thread.start()
                self.units.append(runtime)
                threads.append(thread)
            for runtime in self.units:
                runtime.wait_started(10)
            try:
                yield self
            finally:
                for runtime in self.units:
                    runtime.stop()
                for thread in threads:
                    thread.join(10)

    def _observer(self, index: int):
        def observe(command: cmd.Command) -> None:
            if isinstance(command, cmd.ShowFrame | cmd.SetLight | cmd.DropFromOutbox):
                self.changed.put("draw")
        return observe

    def press(self, key: str) -> bool:
        for runtime, keymap in zip(self.units, KEYMAPS, strict=True):
            if key in keymap:
                runtime.on_gesture(keymap[key])
                return True
        return False

    def settled(self) -> bool:
        """Both linked and nothing left to deliver on either side."""
        from micromance.core.events import LinkState

        return all(unit.state is not None and unit.state.partner.link is LinkState.CONNECTED
                   and unit.state.partner.outbox == 0 for unit in self.units)

    # --- drawing --------------------------------------------------------------------------

    def render(self) -> str:
        from micromance.hardware.display import add_border, to_braille

        panels = []
        for index, unit in enumerate(self.units):
            display = unit.display
            image = display.last_image if display is not None else None
            if image is None or display.asleep:
                from PIL import Image

                image = Image.new("1", display.size if display else (128, 64))
            lines = to_braille(image)
            state = unit.state
            mode = unit.panel.light_mode if unit.panel else LightMode.OFF
            light = {LightMode.PULSE: "♥ light pulsing", LightMode.ON: "● light on"}.get(
                mode, "  light off")
            link = state.partner.link.value if state else "starting"
            title = f" {unit.config.device.name} · {link} "
            keys = KEYMAPS[index]
            legend = "  ".join(f"{k}:{_KEY_WORDS[g]}" for k, g in keys.items())
            body = add_border(lines, title)
            panels.append([*body, f" {light}", f" {legend}"])
        width = shutil.get_terminal_size((140, 40)).columns
        if width >= 2 * max(len(line) for line in panels[0]) + 4:
            left = max(len(line) for line in panels[0])
            rows = [a.ljust(left) + "    " + b for a, b in zip(*panels, strict=False)]
        else:
            rows = [*panels[0], "", *panels[1]]
        return "\n".join([*rows, "", " q: quit"])


_KEY_WORDS = {
    Gesture.THANKS_PRESS: "THANKS", Gesture.NEXT_PRESS: "NEXT", Gesture.NEXT_HOLD: "done",
    Gesture.THANKS_HOLD: "hold", Gesture.BOTH_PRESS: "week", Gesture.BOTH_HOLD: "pair",
}


def run_simulation(base: Config, state_root: Path | None = None, *,
                   keys: TextIO | None = None, out: TextIO | None = None) -> int:
    """The ``simulate`` command: interactive on a terminal, scripted when stdin is piped."""
    keys = keys or sys.stdin
    out = out or sys.stdout
    state_root = state_root or DEFAULT_STATE
    simulation = Simulation(base, state_root, out)
    interactive = keys.isatty() and out.isatty()
    # The signal handlers come first and go last: a signal during start-up or clean-up waits
    # for its turn instead of killing the process between two steps (and a broker with it).
    with _quit_on_signals(simulation.changed) as received, simulation.running(), \
            _raw_keys(keys) if interactive else _nothing():
        reader = threading.Thread(target=_read_keys, args=(keys, simulation), daemon=True)
        reader.start()
        try:
            _show(simulation, out, interactive)
            while True:
                item = simulation.changed.get()
                if item == "quit" or (item == "eof" and interactive):  # a tty's end: hung up
                    break
                if item == "eof":
                    _settle(simulation)
                    _show(simulation, out, interactive=False)
                    break
                _drain(simulation.changed)
                if interactive:
                    _show(simulation, out, interactive)
        except OSError as error:
            if not interactive:
                raise
            log.info("the terminal is gone (%s): stopping", error)  # closed while drawing
    return 128 + received[0] if received else 0


def _read_keys(stream: TextIO, simulation: Simulation) -> None:
    try:
        while True:
            char = stream.read(1)
            if not char:
                simulation.changed.put("eof")
                return
            if char in QUIT_KEYS:
                simulation.changed.put("quit")
                return
            if not char.isspace() and not simulation.press(char):
                log.debug("key %r does nothing", char)
    except (OSError, ValueError):
        simulation.changed.put("quit")


def _settle(simulation: Simulation) -> None:
    """Scripted runs: let presses reach the other unit before the screens are printed."""
    done = threading.Event()

    def check(stepping: Runtime | None = None) -> None:
        """``stepping``: the unit whose observer calls, at the end of its (finished) step."""
        units = simulation.units
        idle = (all(unit.loop.events.empty() for unit in units)  # first the queues, then the steps
                and not any(unit.busy for unit in units if unit is not stepping))
        if idle and simulation.settled():
            done.set()

    def observer(unit: Runtime) -> Callable[[cmd.Command], None]:
        return lambda _command: check(unit)

    for unit in simulation.units:
        unit.observers.append(observer(unit))
    check()
    done.wait(SETTLE_SECONDS)


def _drain(changes: queue.SimpleQueue[str]) -> None:
    while True:
        try:
            item = changes.get_nowait()
        except queue.Empty:
            return
        if item in ("quit", "eof"):
            changes.put(item)
            return


def _show(simulation: Simulation, out: TextIO, interactive: bool) -> None:
    screen = simulation.render()
    if interactive:
        out.write("\x1b[H\x1b[2J" + screen.replace("\n", "\r\n") + "\r\n")
    else:
        out.write(screen + "\n")
    out.flush()


@contextmanager
def _quit_on_signals(changes: queue.SimpleQueue[str],
                     signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[list[int]]:
    """SIGHUP and SIGTERM (or ``signals``) become a "quit" (the list gets the signal, for the
    exit code).

    ``SimpleQueue.put`` may be called from a signal handler, and the main thread's ``get``
    wakes up for it. Only the main thread can set handlers; elsewhere (tests) nothing changes.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def quit_(signum: int, _frame: Any) -> None:
        received.append(signum)
        changes.put("quit")

    previous = {signum: signal.signal(signum, quit_) for signum in signals}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _raw_keys(stream: TextIO) -> Iterator[None]:
    """Single key presses without Enter, restored on exit whatever happens.

    After a hang-up the terminal is gone: restoring it fails then, and must not stop the
    clean-up that follows (the units, the broker).
    """
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        sys.stdout.write("\x1b[?25l")  # hide the cursor
        yield
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            sys.stdout.write("\x1b[?25h\n")
            sys.stdout.flush()


@contextmanager
def _nothing() -> Iterator[None]:
    yield
