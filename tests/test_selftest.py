"""``micromance selftest`` on gpiozero's mock pins and luma's dummy display, with a scripted
builder at the buttons: presses injected on the pins, one missing, wrong answers too."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from micromance.config import header_pin_hint, load_config
from micromance.doctor import Probes
from micromance.errors import ConfigError
from micromance.selftest import Bench, pattern_image, run_selftest

MOCK_ENV = {"GPIOZERO_PIN_FACTORY": "mock"}


class Builder:
    """A person at the unit: presses the pin named for each instruction (None: presses
    nothing), answers the questions, and remembers what they were told."""

    def __init__(self, factory, presses: dict[str, int | None] | None = None,
                 answers: dict[str, bool | None] | None = None) -> None:
        self.factory = factory
        self.presses = {"THANKS": 17, "NEXT": 27, **(presses or {})}
        self.answers = {"frame": True, "light": True, **(answers or {})}
        self.told: list[str] = []
        self.asked: list[str] = []
        self.threads: list[threading.Thread] = []

    def tell(self, text: str) -> None:
        self.told.append(text)
        for name, pin in self.presses.items():
            if text.startswith(f"Press {name} ") and pin is not None:
                # A moment later, on another thread, as a finger would.
                thread = threading.Timer(0.05, self.press, (pin,))
                thread.start()
                self.threads.append(thread)

    def press(self, pin: int) -> None:
        mock = self.factory.pin(pin)
        mock.drive_low()
        time.sleep(0.02)
        mock.drive_high()

    def confirm(self, question: str) -> bool | None:
        self.asked.append(question)
        return self.answers["frame" if "frame" in question else "light"]


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[display]\ndriver = "dummy"\n\n[paths]\nstate_dir = "{tmp_path}/state"\n'
                    f"{extra}")
    return path


class Commands:
    """``systemctl`` as the test sees it."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: list[str]) -> str | None:
        self.calls.append(argv)
        return None if self.fail else ""


def bench(factory, *, live=None, root=True, commands: Commands | None = None,
          seconds: float = 2.0, displays: list | None = None, sleep=None,
          **probe_changes) -> Bench:
    probes = Probes(live_facts=lambda config: live, pin_factory=lambda: factory,
                    environ=MOCK_ENV, command=commands or Commands(), **probe_changes)

    def open_display(config):
        from micromance.hardware.display import open_display as real

        display = real(config)
        if displays is not None:
            displays.append(display)
        return display

    return Bench(probes=probes, open_display=open_display,
                 sleep=sleep or (lambda s: time.sleep(0.001)),
                 is_root=lambda: root, press_seconds=seconds)


def run(config: Path, the_bench: Bench, builder: Builder) -> tuple[int, str]:
    out = io.StringIO()
    code = run_selftest(str(config), bench=the_bench, person=builder, out=out)
    for thread in builder.threads:
        thread.join()
    return code, out.getvalue()


def line(output: str, name: str) -> str:
    found = [ln for ln in output.splitlines() if ln[2:].startswith(f"{name}:")]
    assert found, f"no line for {name} in:\n{output}"
    return found[-1]


def test_a_builder_who_presses_both_buttons_gets_a_pass_for_every_part(tmp_path, mock_factory):
    displays: list = []
    builder = Builder(mock_factory)
    code, output = run(write_config(tmp_path), bench(mock_factory, displays=displays), builder)
    assert code == 0, output
    assert line(output, "THANKS") == "✓ THANKS: press came in on GPIO17 (header pin 11)"
    assert line(output, "NEXT") == "✓ NEXT: press came in on GPIO27 (header pin 13)"
    assert line(output, "LED").startswith("✓ LED: GPIO18 (header pin 12) blinked and faded")
    assert line(output, "display").startswith("✓ display: dummy")
    assert line(output, "gpio").startswith("! gpio: gpiozero uses mock pins")
    assert output.splitlines()[-1] == "no problems, 1 warning(s)"
    assert [t.split(" now")[0] for t in builder.told if t.startswith("Press")] == [
        "Press THANKS", "Press NEXT"]


def test_the_test_pattern_reaches_the_panel_and_the_light_blinks_then_fades(tmp_path,
                                                                           mock_factory):
    displays: list = []
    run(write_config(tmp_path), bench(mock_factory, displays=displays, sleep=time.sleep),
        Builder(mock_factory))  # real time: the fade is gpiozero's thread at 25 steps a second
    assert displays and displays[0].closed  # left dark at the end
    pattern = pattern_image(128, 64)
    for corner in ((0, 0), (127, 0), (0, 63), (127, 63), (3, 3), (124, 60)):
        assert pattern.getpixel(corner)  # the frame and the corner squares
    assert displays[0].frames_shown >= 4  # pattern, "Press THANKS", "Press NEXT", the light
    states = [value for _, value in mock_factory.pin(18).states]
    ons = sum(1 for a, b in itertools.pairwise(states) if a == 0 and b == 1)
    assert ons >= 3                                       # three blinks
    assert any(0 < value < 1 for value in states)         # and a fade (PWM)
    assert states[-1] == 0                                # dark at the end


def test_a_missing_press_names_the_likely_wiring_mistakes(tmp_path, mock_factory):
    builder = Builder(mock_factory, presses={"NEXT": None})
    started = time.monotonic()
    code, output = run(write_config(tmp_path), bench(mock_factory, seconds=0.5), builder)
    assert code == 1
    assert time.monotonic() - started < 10
    assert line(output, "THANKS").startswith("✓ THANKS")
    next_line = line(output, "NEXT")
    assert next_line.startswith("✗ NEXT: nothing came in on GPIO27 (header pin 13) within 0.5 s")
    assert "GND (pin 14" in next_line and "3.3 V instead of GND" in next_line
    assert line(output, "LED").startswith("✓ LED")  # the rest is still tested
    assert output.splitlines()[-1].startswith("1 problem(s)")


def test_swapped_buttons_are_named(tmp_path, mock_factory):
    builder = Builder(mock_factory, presses={"THANKS": 27, "NEXT": 17})
    code, output = run(write_config(tmp_path), bench(mock_factory, seconds=0.5), builder)
    assert code == 1
    thanks = line(output, "THANKS")
    assert "no press on GPIO17, but one on GPIO27 (the NEXT pin)" in thanks
    assert "swapped" in thanks


def test_a_header_pin_number_for_a_pin_gets_a_hint(tmp_path, mock_factory):
    """thanks = 11 counts header pins: the button on header pin 11 is GPIO17."""
    config = write_config(tmp_path, "\n[pins]\nthanks = 11\n")
    builder = Builder(mock_factory, presses={"THANKS": 17})
    code, output = run(config, bench(mock_factory, seconds=0.5), builder)
    assert code == 1
    assert line(output, "pins").startswith("! pins: pins.thanks = 11 may be a header pin")
    thanks = line(output, "THANKS")
    assert thanks.startswith("✗ THANKS: nothing came in on GPIO11 (header pin 23)")
    assert "header pin 11 is GPIO17, so write thanks = 17" in thanks


@pytest.mark.parametrize(("setting", "hint"), [
    ("led = 32", "header pin 32 is GPIO12, so write led = 12"),
    ("next = 39", "header pin 39 is GND, not a GPIO"),
])
def test_a_header_pin_number_beyond_the_gpios_is_a_config_error_with_the_hint(
        tmp_path, mock_factory, setting, hint):
    config = write_config(tmp_path, f"\n[pins]\n{setting}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert hint in raised.value.fix
    code, output = run(config, bench(mock_factory), Builder(mock_factory))
    assert code == 1 and line(output, "config").startswith("✗ config") and hint in output
    assert "✓ THANKS" not in output and "✗ THANKS" not in output  # nothing else is tried


def test_a_header_pin_that_clashes_with_the_display_gets_the_hint_too(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[display]\ninterface = "spi"\n\n[pins]\nthanks = 11\n')
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert "already used by the display's SPI SCLK" in raised.value.message
    assert "header pin 11 is GPIO17" in raised.value.fix


def test_only_numbers_that_look_like_header_pins_get_a_hint():
    assert header_pin_hint("thanks", 17) == ""   # the reference wiring, in BCM
    assert header_pin_hint("thanks", 5) == ""
    assert "GPIO17" in header_pin_hint("thanks", 11)
    assert "GPIO27" in header_pin_hint("next", 13)
    assert "GPIO18" in header_pin_hint("led", 12)
    assert header_pin_hint("led", 11) == ""      # GPIO11 is a fine LED pin


def test_the_running_service_is_stopped_for_the_test_and_started_again(tmp_path, mock_factory):
    commands = Commands()
    live = {"pid": 4321}
    builder = Builder(mock_factory, presses={"NEXT": None})
    code, output = run(write_config(tmp_path),
                       bench(mock_factory, live=live, commands=commands, seconds=0.3), builder)
    assert commands.calls == [["systemctl", "stop", "micromance"],
                              ["systemctl", "start", "micromance"]]
    assert "stopped the running service (pid 4321)" in output
    assert output.splitlines()[-2] == "✓ service: started again"
    assert code == 1  # the missing press still counts


def test_the_service_is_started_again_after_ctrl_c(tmp_path, mock_factory):
    commands = Commands()

    class Impatient(Builder):
        def tell(self, text: str) -> None:
            if text.startswith("Press NEXT"):
                raise KeyboardInterrupt
            super().tell(text)

    with pytest.raises(KeyboardInterrupt):
        run(write_config(tmp_path), bench(mock_factory, live={"pid": 1}, commands=commands),
            Impatient(mock_factory))
    assert commands.calls[-1] == ["systemctl", "start", "micromance"]


def test_a_running_service_and_no_root_says_how_and_touches_nothing(tmp_path, mock_factory):
    commands = Commands()
    displays: list = []
    builder = Builder(mock_factory)
    code, output = run(write_config(tmp_path),
                       bench(mock_factory, live={"pid": 7}, root=False, commands=commands,
                             displays=displays), builder)
    assert code == 1 and commands.calls == [] and displays == [] and builder.told == []
    service = line(output, "service")
    assert service.startswith("✗ service: the micromance service is running (pid 7)")
    assert "sudo micromance selftest" in service


def test_what_the_builder_did_not_see_is_a_failure_with_a_fix(tmp_path, mock_factory):
    builder = Builder(mock_factory, answers={"frame": False, "light": False})
    code, output = run(write_config(tmp_path), bench(mock_factory), builder)
    assert code == 1
    assert 'driver = "sh1106"' in line(output, "display")
    led = line(output, "LED")
    assert led.startswith("✗ LED: GPIO18 (header pin 12) was switched, but the light stayed dark")
    assert "330 Ω" in led and "turn it round" in led


def test_nobody_to_ask_is_a_warning_not_a_failure(tmp_path, mock_factory):
    builder = Builder(mock_factory, answers={"frame": None, "light": None})
    code, output = run(write_config(tmp_path), bench(mock_factory), builder)
    assert code == 0
    assert line(output, "display").startswith("! display")
    assert line(output, "LED").startswith("! LED")


def test_a_panel_at_the_other_address_is_found_on_the_bus(tmp_path, mock_factory):
    """doctor's probes: nothing at 0x3C, something at 0x3D. The buttons are still tested."""
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path}/state"\n')

    def answers(bus: int, address: int) -> None:
        if address != 0x3D:
            raise OSError(121, "Remote I/O error")

    the_bench = bench(mock_factory, exists=lambda path: True, open_rw=lambda path: None,
                      i2c_answers=answers)
    code, output = run(config, the_bench, Builder(mock_factory))
    assert code == 1
    display = line(output, "display")
    assert "nothing answers at 0x3C on I2C bus 1, but something does at 0x3D" in display
    assert "display.i2c_address = 0x3D" in display
    assert line(output, "THANKS").startswith("✓ THANKS")


def test_selftest_keeps_the_order_of_parts(tmp_path, mock_factory):
    code, output = run(write_config(tmp_path), bench(mock_factory), Builder(mock_factory))
    names = [ln[2:].split(":")[0] for ln in output.splitlines()[:-1] if ln[:1] in "✓!✗-"]
    assert code == 0
    assert names == ["config", "service", "display", "gpio", "THANKS", "NEXT", "LED"]


def test_the_command_line_runs_it_on_mock_pins(tmp_path):
    """No presses come (stdin is no terminal, nobody is there): two ✗ lines, exit 1."""
    config = write_config(tmp_path)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock",
           "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
    result = subprocess.run(
        [sys.executable, "-m", "micromance", "selftest", "--config", str(config),
         "--seconds", "0.2"], capture_output=True, text=True, env=env, timeout=60,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 1, result.stderr
    assert "✗ THANKS: nothing came in on GPIO17 (header pin 11) within 0.2 s" in result.stdout
    assert "! LED: GPIO18 (header pin 12) blinked and faded; nobody answered" in result.stdout
    assert "Traceback" not in result.stderr
