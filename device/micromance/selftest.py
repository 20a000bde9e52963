"""``micromance selftest``: check a unit's wiring part by part, with a person at the buttons.

For builders, after wiring: run on the Pi as root (``sudo micromance selftest``) or as the
service user. It prints one line per part like ``doctor`` (``✓`` fine, ``!`` worth a look,
``✗`` broken, with ``— fix:`` and what to do) and exits 1 when a part is broken:

1. **config**: the file loads; pin numbers that look like header pin numbers rather than BCM
   numbers (``thanks = 11``) get a hint.
2. **service**: the running daemon holds the display and the pins. As root the test stops it
   and starts it again at the end (also after Ctrl-C); as another user it says how.
3. **display**: found on its bus (doctor's probes: the bus, the address, the other address),
   then a test pattern: a frame round the edge, stripes and ``Self-test``. The person says
   whether it looks right.
4. **THANKS**, **NEXT**: the person presses each when asked; the line names the GPIO the
   press came in on, or says that nothing came within 15 s and the likely wiring mistakes
   (a press on the other button's pin: swapped wires).
5. **LED**: blinks three times, then fades in and out; the person says whether it lit.

Everything outside Python goes through :class:`Bench` (doctor's ``Probes``, the display and
panel factories, sleeping) and :class:`Person`, so the tests run it on gpiozero's mock pins,
luma's dummy display and a scripted person.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from micromance.config import (
    HEADER_TO_BCM,
    OLED_DRIVERS,
    Config,
    DisplayConfig,
    PinsConfig,
    header_pin_hint,
    load_config,
    resolve_path,
)
from micromance.core.commands import LightMode
from micromance.core.events import Button
from micromance.doctor import (
    Context,
    Outcome,
    Probes,
    Result,
    check_display,
    check_gpio,
    check_i2c,
    failed,
    passed,
    skipped,
    summary,
    warned,
)
from micromance.errors import ConfigError, MicromanceError

if TYPE_CHECKING:
    from PIL.Image import Image

    from micromance.hardware.display import Display
    from micromance.hardware.panel import EdgeSink, Panel

#: How long the person has for each press.
PRESS_SECONDS = 15.0
BLINKS = 3
BLINK_SECONDS = 0.3
SERVICE = "micromance"
BCM_TO_HEADER = {gpio: header for header, gpio in HEADER_TO_BCM.items()}
#: The ground pin beside each part in the README's wiring.
REFERENCE_GROUND = {"thanks": 9, "next": 14, "led": 20}


class Person(Protocol):
    """The builder at the unit: reads instructions, presses buttons, answers yes or no."""

    def tell(self, text: str) -> None: ...

    def confirm(self, question: str) -> bool | None:
        """Yes or no; None when nobody can answer (no terminal)."""
        ...


class TerminalPerson:
    """The person at a terminal: instructions on ``out``, answers from ``answers``."""

    def __init__(self, out: TextIO, answers: TextIO | None) -> None:
        self._out = out
        self._answers = answers

    def tell(self, text: str) -> None:
        print(f"  {text}", file=self._out, flush=True)

    def confirm(self, question: str) -> bool | None:
        if self._answers is None or not self._answers.isatty():
            return None
        print(f"  {question} [Y/n] ", end="", file=self._out, flush=True)
        answer = self._answers.readline().strip().lower()
        return not answer.startswith("n")


def _open_display(config: DisplayConfig) -> Display:
    from micromance.hardware.display import open_display

    return open_display(config)


def _make_panel(pins: PinsConfig, on_edge: EdgeSink, factory: Any) -> Panel:
    from micromance.hardware.panel import Panel

    return Panel(pins, on_edge, factory)


@dataclass
class Bench:
    """The world the self-test touches; the tests replace each part."""

    probes: Probes = field(default_factory=Probes)
    open_display: Callable[[DisplayConfig], Display] = _open_display
    make_panel: Callable[[PinsConfig, EdgeSink, Any], Panel] = _make_panel
    sleep: Callable[[float], None] = time.sleep
    is_root: Callable[[], bool] = lambda: os.geteuid() == 0
    press_seconds: float = PRESS_SECONDS


def run_selftest(config_arg: str | None = None, *, bench: Bench | None = None,
                 person: Person | None = None, out: TextIO | None = None) -> int:
    """Test every part, one line each, and a summary; 0 when nothing failed, else 1."""
    stream = out or sys.stdout
    test = SelfTest(bench or Bench(), person or TerminalPerson(stream, sys.stdin), stream)
    try:
        test.run(config_arg)
    finally:
        print(summary(test.results), file=stream, flush=True)
    return 1 if any(r.outcome is Outcome.FAIL for r in test.results) else 0


class SelfTest:
    def __init__(self, bench: Bench, person: Person, out: TextIO) -> None:
        self.bench = bench
        self.person = person
        self.out = out
        self.results: list[Result] = []
        self._edges: queue.Queue[tuple[Button, bool]] = queue.Queue()

    def report(self, result: Result) -> Result:
        self.results.append(result)
        print(result.line(), file=self.out, flush=True)
        return result

    # --- the parts, in order ----------------------------------------------------------

    def run(self, config_arg: str | None) -> None:
        config = self._config(config_arg)
        if config is None:
            return
        with self._service_stopped(config) as free:
            if not free:
                return
            with contextlib.ExitStack() as stack:
                display = self._display(config)
                if display is not None:
                    stack.callback(display.close)
                panel = self._panel(config)
                if panel is None:
                    return
                stack.callback(panel.close)
                for name, key, button in (("THANKS", "thanks", Button.THANKS),
                                          ("NEXT", "next", Button.NEXT)):
                    self._button(config, display, name, key, button)
                self._light(config, display, panel)

    def _config(self, config_arg: str | None) -> Config | None:
        path = resolve_path(config_arg)
        try:
            config = load_config(path)
        except ConfigError as error:
            self.report(failed("config", error.message, error.fix or "correct the file"))
            return None
        pins = config.pins
        where = str(path) if path else "built-in defaults"
        self.report(passed("config", f"{where}: THANKS GPIO{pins.thanks}, NEXT GPIO{pins.next}"
                           f", LED GPIO{pins.led}"))
        for key in ("thanks", "next", "led"):
            hint = header_pin_hint(key, getattr(pins, key))
            if hint:
                self.report(warned("pins", f"pins.{key} = {getattr(pins, key)} may be a "
                                   "header pin number", hint))
        return config

    @contextlib.contextmanager
    def _service_stopped(self, config: Config) -> Iterator[bool]:
        """Yields True when the display and the pins are free for the test."""
        live = self.bench.probes.live_facts(config)
        if live is None:
            self.report(passed("service", "not running: the display and the pins are free"))
            yield True
            return
        if not self.bench.is_root():
            self.report(failed(
                "service", f"the micromance service is running (pid {live.get('pid')}) and "
                "holds the display and the buttons",
                "run it as root (sudo micromance selftest): it stops the service for the test "
                "and starts it again; or sudo systemctl stop micromance first"))
            yield False
            return
        if self.bench.probes.command(["systemctl", "stop", SERVICE]) is None:
            self.report(failed("service", "the running service could not be stopped",
                               "sudo systemctl stop micromance, then run selftest again"))
            yield False
            return
        self.report(passed("service", f"stopped the running service (pid {live.get('pid')}) "
                           "for the test; it starts again at the end"))
        try:
            yield True
        finally:
            if self.bench.probes.command(["systemctl", "start", SERVICE]) is None:
                self.report(failed("service", "could not start the service again",
                                   "sudo systemctl start micromance"))
            else:
                self.report(passed("service", "started again"))

    def _display(self, config: Config) -> Display | None:
        display_config = config.display
        ctx = Context(probes=self.bench.probes, config=config)
        where = ""
        if display_config.driver in OLED_DRIVERS and display_config.interface == "i2c":
            for check in (check_i2c, check_display):
                result = check(ctx)
                if result.outcome is Outcome.FAIL:
                    self.report(Result("display", result.outcome, result.message, result.fix))
                    return None
            where = (f" at 0x{display_config.i2c_address:02X} on I2C bus "
                     f"{display_config.i2c_port}")
        try:
            display = self.bench.open_display(display_config)
        except MicromanceError as error:
            self.report(failed("display", error.message, error.fix or "check the wiring"))
            return None
        try:
            display.show(pattern_image(*display.size))
        except MicromanceError as error:
            display.close()
            self.report(failed("display", error.message, error.fix or "check the wiring"))
            return None
        self.person.tell("The screen shows a test pattern: a frame round the edge, stripes, "
                         "and the words Self-test.")
        seen = self.person.confirm("Do you see the whole frame and the words?")
        found = f"{display_config.driver}{where}" if where else display.description
        if seen is None:
            self.report(warned("display", f"{found}: test pattern drawn; nobody answered",
                               "look at the screen: a frame round the whole edge, stripes and "
                               "the words Self-test"))
        elif seen:
            self.report(passed("display", f"{found}: test pattern drawn and seen"))
        else:
            self.report(failed(
                "display", f"{found} takes frames, but the test pattern does not look right",
                'a frame cut off or shifted at the sides, noise at the right edge: driver = '
                '"sh1106" (1.3" panels); half the lines or squashed: check display.height '
                "(64 or 32); dark: check VCC on pin 1 (3.3 V) and GND on pin 6"))
        return display

    def _panel(self, config: Config) -> Panel | None:
        ctx = Context(probes=self.bench.probes, config=config)
        result = check_gpio(ctx)
        if result.outcome is Outcome.FAIL:
            self.report(result)
            for name in ("THANKS", "NEXT", "LED"):
                self.report(skipped(name, "skipped: no usable GPIO (see gpio)"))
            return None
        if result.outcome is Outcome.WARN:
            self.report(result)  # mock pins: said once
        try:
            return self.bench.make_panel(config.pins, self._on_edge, ctx.pin_factory)
        except MicromanceError as error:
            self.report(failed("buttons", error.message, error.fix or
                               "check [pins] and that nothing else uses them"))
            return None

    def _on_edge(self, button: Button, down: bool) -> None:
        self._edges.put((button, down))  # gpiozero's thread: hand over only

    def _button(self, config: Config, display: Display | None, name: str, key: str,
                button: Button) -> None:
        pins = config.pins
        pin = getattr(pins, key)
        other = Button.NEXT if button is Button.THANKS else Button.THANKS
        other_pin = pins.next if button is Button.THANKS else pins.thanks
        where = _where(pin)
        while not self._edges.empty():  # what bounced in before the question counts nothing
            self._edges.get_nowait()
        if display is not None:
            self._show(display, ["Press", name])
        seconds = self.bench.press_seconds
        self.person.tell(f"Press {name} now (GPIO{pin}{where}); you have {seconds:g} s.")
        pressed, elsewhere = self._wait_press(button, seconds)
        if pressed:
            self.report(passed(name, f"press came in on GPIO{pin}{where}"))
            return
        if elsewhere:
            self.report(failed(
                name, f"no press on GPIO{pin}, but one on GPIO{other_pin} (the "
                f"{other.value.upper()} pin)",
                "the buttons' wires are swapped: swap them, or swap thanks and next in "
                "[pins] (or the other button was pressed: run selftest again)"))
            return
        hint = header_pin_hint(key, pin)
        ground = REFERENCE_GROUND.get(key, 6)
        self.report(failed(
            name, f"nothing came in on GPIO{pin}{where} within {seconds:g} s",
            (f"{hint}; " if hint else "") +
            f"likely: one leg is not on GPIO{pin}{where} (count the header pins from pin 1, "
            f"the one with the square pad); the other leg is not on GND (pin {ground}, or "
            "another GND pin); or "
            "the button goes to 3.3 V instead of GND (the pin is pulled up, so only GND "
            "reads as pressed)"))

    def _wait_press(self, button: Button, seconds: float) -> tuple[bool, bool]:
        """(pressed, a press on the other button instead) within ``seconds``."""
        deadline = time.monotonic() + seconds
        elsewhere = False
        while (left := deadline - time.monotonic()) > 0:
            try:
                which, down = self._edges.get(timeout=left)
            except queue.Empty:
                break
            if down and which is button:
                self._edges_settle()
                return True, elsewhere
            if down:
                elsewhere = True
        return False, elsewhere

    def _edges_settle(self) -> None:
        """Let the release come in before the next question (bounce and the up edge)."""
        self.bench.sleep(0.3)
        while not self._edges.empty():
            self._edges.get_nowait()

    def _light(self, config: Config, display: Display | None, panel: Panel) -> None:
        pin = config.pins.led
        where = _where(pin)
        if display is not None:
            self._show(display, ["Watch", "the light"])
        self.person.tell(f"Watch the light (GPIO{pin}{where}): it blinks {BLINKS} times, then "
                         + ("fades in and out." if panel.can_fade else "blinks slowly."))
        for _ in range(BLINKS):
            panel.set_light(LightMode.ON)
            self.bench.sleep(BLINK_SECONDS)
            panel.set_light(LightMode.OFF)
            self.bench.sleep(BLINK_SECONDS)
        from micromance.hardware.panel import PULSE_FADE_SECONDS

        panel.set_light(LightMode.PULSE)  # a breath: fade out, in, out
        self.bench.sleep(PULSE_FADE_SECONDS * 2.5)
        panel.set_light(LightMode.OFF)
        how = "blinked and faded" if panel.can_fade else "blinked (no PWM on this pin: no fade)"
        seen = self.person.confirm("Did the light blink and then fade?")
        hint = header_pin_hint("led", pin)
        wiring = ((f"{hint}; " if hint else "") +
                  f"the long leg (+) goes through the 330 Ω resistor to GPIO{pin}{where}, the "
                  f"short leg (-) to GND (pin {REFERENCE_GROUND['led']}, or another GND pin); an "
                  "LED the wrong way "
                  "round stays dark: turn it round")
        if seen is None:
            self.report(warned("LED", f"GPIO{pin}{where} {how}; nobody answered whether it "
                               "lit", "watch it and run selftest in a terminal; if it stays "
                               "dark: " + wiring))
        elif seen:
            self.report(passed("LED", f"GPIO{pin}{where} {how}, and it was seen"))
        else:
            self.report(failed("LED", f"GPIO{pin}{where} was switched, but the light stayed "
                               "dark", wiring))

    def _show(self, display: Display, lines: list[str]) -> None:
        with contextlib.suppress(MicromanceError):  # the display line said what is wrong
            display.show(words_frame(lines, *display.size))


def _where(pin: int) -> str:
    header = BCM_TO_HEADER.get(pin)
    return f" (header pin {header})" if header is not None else ""


# --- what the screen shows ----------------------------------------------------------------


def pattern_image(width: int, height: int) -> Image:
    """A frame round the whole edge, corner squares, stripes and ``Self-test``: cut-off
    edges, a shifted picture (ssd1306 vs sh1106) and missing lines all show at a glance."""
    from PIL import Image, ImageDraw

    from micromance.screens import text

    image = Image.new("1", (width, height))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=255)
    for x, y in ((2, 2), (width - 6, 2), (2, height - 6), (width - 6, height - 6)):
        draw.rectangle((x, y, x + 3, y + 3), fill=255)
    for x in range(8, width - 8, 4):  # stripes along the bottom
        draw.line((x, height - 7, x, height - 4), fill=255)
    fnt = text.font(13 if height >= 48 else 11)
    label = f"Self-test {width}x{height}"
    x = max(2, (width - text.text_width(label, fnt)) // 2)
    text.draw_line(draw, (x, max(3, (height - 7 - text.cap_height(fnt)) // 2)), label, fnt)
    return image


def words_frame(lines: list[str], width: int, height: int) -> Image:
    """A few words, centred, as big as they fit: what to do now."""
    from PIL import Image, ImageDraw

    from micromance.screens.layout import MARGIN, Canvas, fit_block, stack

    image = Image.new("1", (width, height))
    canvas = Canvas(ImageDraw.Draw(image), MARGIN, MARGIN, width - 2 * MARGIN,
                    height - 2 * MARGIN)
    room = (canvas.height - 3 * (len(lines) - 1)) // max(1, len(lines))
    blocks = [fit_block(line, (20, 17, 13, 11), canvas.width, room, 1, True) for line in lines]
    stack(canvas, blocks, [3] * (len(blocks) - 1))
    return image
