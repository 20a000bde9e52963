"""The display adapter: luma's dummy, the real drivers over a mocked bus, failures, terminal."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import luma.core.error
import luma.core.interface.serial
import pytest
from PIL import Image, ImageChops

import micromance
from micromance.config import DisplayConfig
from micromance.errors import ConfigError, HardwareError
from micromance.hardware.display import (
    Display,
    TerminalDevice,
    add_border,
    open_display,
    to_braille,
)

DISPLAYOFF, DISPLAYON, SETCONTRAST = 0xAE, 0xAF, 0x81
FULL, BLANK = chr(0x28FF), chr(0x2800)


def config(**changes: object) -> DisplayConfig:
    return dataclasses.replace(DisplayConfig(), **changes)


def pattern(width: int = 128, height: int = 64) -> Image.Image:
    """A frame with a lit corner pixel, a box and a diagonal, so rotations are visible."""
    image = Image.new("1", (width, height))
    image.putpixel((0, 0), 1)
    for x in range(10, 30):
        image.putpixel((x, 5), 1)
    for i in range(min(width, height)):
        image.putpixel((i, i), 1)
    return image


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.convert("1").tobytes() == b.convert("1").tobytes()


def mock_serial() -> mock.Mock:
    return mock.Mock(spec=["command", "data", "cleanup"])


def commands(serial: mock.Mock) -> list[tuple[int, ...]]:
    return [c.args for c in serial.command.call_args_list]


def data_lengths(serial: mock.Mock) -> list[int]:
    return [len(c.args[0]) for c in serial.data.call_args_list]


# --- luma dummy -------------------------------------------------------------------------------


def test_dummy_keeps_the_frame_and_counts_frames() -> None:
    display = open_display(config(driver="dummy"))
    frame = pattern()

    display.show(frame)
    display.show(frame)

    assert display.frames_shown == 2
    assert display.device.image.tobytes() == frame.tobytes()
    assert display.last_image.tobytes() == frame.tobytes()
    assert display.last_image is not frame  # a copy: later drawing on frame cannot change it
    assert display.size == (128, 64)


def test_dummy_applies_the_configured_contrast_and_skips_unchanged_levels() -> None:
    display = open_display(config(driver="dummy", contrast=200))
    spy = mock.Mock(wraps=display.device.contrast)
    display.device.contrast = spy

    display.set_contrast(200)
    display.set_contrast(8)
    display.set_contrast(8)

    assert display.contrast == 8
    assert spy.call_args_list == [mock.call(8)]
    with pytest.raises(ValueError, match="0 to 255"):
        display.set_contrast(256)


def test_dummy_rotate_2_turns_the_frame_for_the_panel() -> None:
    display = open_display(config(driver="dummy", rotate=2))
    frame = pattern()

    display.show(frame)

    assert same_pixels(display.device.image, frame.rotate(180))
    assert display.device.image.getpixel((127, 63))  # the corner pixel moved
    assert same_pixels(display.last_image, frame)  # last_image is what the screens drew


def test_rotate_1_takes_portrait_frames() -> None:
    display = open_display(config(driver="dummy", rotate=1))

    assert display.size == (64, 128)
    display.show(pattern(64, 128))
    assert display.device.image.size == (128, 64)
    with pytest.raises(ValueError, match=r"render screens at Display\.size"):
        display.show(pattern(128, 64))


def test_dummy_128x32() -> None:
    display = open_display(config(driver="dummy", height=32))
    frame = pattern(128, 32)

    display.show(frame)

    assert display.size == (128, 32)
    assert display.device.image.tobytes() == frame.tobytes()


def test_sleep_and_wake_skip_when_unchanged_and_restore_contrast() -> None:
    device = mock.Mock(size=(128, 64), mode="1")
    display = Display(device)
    display.set_contrast(40)

    display.sleep()
    display.sleep()
    assert display.asleep
    display.wake()
    display.wake()

    assert not display.asleep
    assert device.hide.call_count == 1
    assert device.show.call_count == 1
    assert device.contrast.call_args_list == [mock.call(40), mock.call(40)]


def test_show_converts_to_the_mode_the_device_wants() -> None:
    device = mock.Mock(size=(128, 64), mode="RGB")
    display = Display(device)

    display.show(pattern())

    sent = device.display.call_args.args[0]
    assert sent.mode == "RGB"
    assert sent.getpixel((0, 0)) == (255, 255, 255)
    assert sent.getpixel((1, 0)) == (0, 0, 0)
    assert display.last_image.mode == "1"


# --- real drivers over a mocked bus -----------------------------------------------------------


@pytest.mark.parametrize(("driver", "height", "frame_bytes"), [
    ("ssd1306", 64, 1024),
    ("ssd1306", 32, 512),
    ("sh1106", 64, 1024),
    ("sh1106", 32, 512),
])
def test_oled_driver_talks_to_the_bus(driver: str, height: int, frame_bytes: int) -> None:
    serial = mock_serial()
    factory = mock.Mock(return_value=serial)
    cfg = config(driver=driver, height=height, contrast=200)

    display = open_display(cfg, serial_factory=factory)

    factory.assert_called_once_with(cfg)
    init = commands(serial)
    assert init[0][0] == DISPLAYOFF  # the init sequence starts with the panel off ...
    assert (DISPLAYON,) in init  # ... and ends with it on
    assert init[-1] == (SETCONTRAST, 200)  # then our configured contrast
    assert sum(data_lengths(serial)) == frame_bytes  # luma clears the panel at init

    serial.reset_mock()
    display.show(pattern(128, height))
    assert sum(data_lengths(serial)) == frame_bytes
    sent = bytes(b for c in serial.data.call_args_list for b in c.args[0])
    assert sent[0] & 0x01  # pixel (0,0) is bit 0 of the first byte of page 0
    assert display.frames_shown == 1

    serial.reset_mock()
    display.set_contrast(8)
    display.set_contrast(8)
    assert commands(serial) == [(SETCONTRAST, 8)]

    serial.reset_mock()
    display.sleep()
    display.wake()
    assert commands(serial) == [(DISPLAYOFF,), (DISPLAYON,), (SETCONTRAST, 8)]


def test_close_switches_the_panel_off_once() -> None:
    serial = mock_serial()
    display = open_display(config(), serial_factory=lambda _: serial)
    serial.reset_mock()

    display.close()
    display.close()
    display.device.cleanup()  # what luma's atexit hook calls: must not touch the bus again

    assert commands(serial)[0] == (DISPLAYOFF,)
    assert sum(data_lengths(serial)) == 1024  # luma blanks the frame memory too
    assert serial.cleanup.call_count == 1
    assert display.closed


def test_close_keeps_the_image_when_the_device_persists() -> None:
    serial = mock_serial()
    display = open_display(config(), serial_factory=lambda _: serial)
    display.device.persist = True
    serial.reset_mock()

    display.close()

    assert (DISPLAYOFF,) not in commands(serial)
    assert serial.cleanup.call_count == 1


def test_close_survives_a_bus_that_is_gone() -> None:
    serial = mock_serial()
    display = open_display(config(), serial_factory=lambda _: serial)
    serial.command.side_effect = OSError(errno.EREMOTEIO, "Remote I/O error")

    display.close()

    assert display.closed


def test_spi_config_reaches_the_serial_factory() -> None:
    serial = mock_serial()
    factory = mock.Mock(return_value=serial)
    cfg = config(driver="sh1106", interface="spi", spi_port=0, spi_device=1, gpio_dc=23)

    display = open_display(cfg, serial_factory=factory)
    display.show(pattern())

    assert factory.call_args.args[0].interface == "spi"
    assert factory.call_args.args[0].spi_device == 1
    assert display.description == "sh1106 on SPI 0.1"
    assert sum(data_lengths(serial)) == 2 * 1024


def test_spi_uses_luma_spi_with_the_configured_pins(monkeypatch: pytest.MonkeyPatch) -> None:
    spi = mock.Mock(return_value=mock_serial())
    monkeypatch.setattr(luma.core.interface.serial, "spi", spi)

    open_display(config(interface="spi", spi_port=1, spi_device=0, gpio_dc=5, gpio_reset=6))

    spi.assert_called_once_with(port=1, device=0, gpio_DC=5, gpio_RST=6)


def test_i2c_uses_luma_i2c_with_the_configured_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    i2c = mock.Mock(return_value=mock_serial())
    monkeypatch.setattr(luma.core.interface.serial, "i2c", i2c)

    display = open_display(config(i2c_port=3, i2c_address=0x3D))

    i2c.assert_called_once_with(port=3, address=0x3D)
    assert display.description == "ssd1306 on I2C bus 3 at 0x3D"


def test_luma_noop_works_as_the_serial_interface() -> None:
    display = open_display(config(driver="ssd1309"),
                           serial_factory=lambda _: luma.core.interface.serial.noop())
    display.show(pattern())
    display.close()
    assert display.frames_shown == 1


def test_unsupported_size_is_a_config_error() -> None:
    serial = mock_serial()
    with pytest.raises(ConfigError) as caught:
        open_display(config(width=100, height=64), serial_factory=lambda _: serial)

    assert caught.value.exit_code == 78
    assert "100x64" in str(caught.value) and "display.width" in str(caught.value)
    serial.cleanup.assert_called_once()


# --- failures ---------------------------------------------------------------------------------


def assert_one_line_hardware_error(error: pytest.ExceptionInfo[HardwareError]) -> str:
    message = str(error.value)
    assert error.value.exit_code == 69
    assert "\n" not in message
    return message


def test_missing_i2c_bus_on_this_machine() -> None:
    assert not Path("/dev/i2c-99").exists()
    with pytest.raises(HardwareError) as caught:
        open_display(config(i2c_port=99))

    message = assert_one_line_hardware_error(caught)
    assert message.startswith("no I2C bus 99 (/dev/i2c-99)")
    assert "raspi-config nonint do_i2c 0" in message
    assert 'display.driver = "dummy" or "terminal"' in message
    assert isinstance(caught.value.__cause__, luma.core.error.DeviceNotFoundError)


def test_i2c_permission_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    denied = luma.core.error.DevicePermissionError("I2C device permission denied: /dev/i2c-1")
    monkeypatch.setattr(luma.core.interface.serial, "i2c", mock.Mock(side_effect=denied))

    with pytest.raises(HardwareError) as caught:
        open_display(config())

    message = assert_one_line_hardware_error(caught)
    assert "/dev/i2c-1" in message
    assert "i2c group" in message and "usermod -aG i2c" in message


def test_i2c_raw_remote_io_error(monkeypatch: pytest.MonkeyPatch) -> None:
    remote_io = OSError(errno.EREMOTEIO, "Remote I/O error")
    monkeypatch.setattr(luma.core.interface.serial, "i2c", mock.Mock(side_effect=remote_io))

    with pytest.raises(HardwareError) as caught:
        open_display(config())

    message = assert_one_line_hardware_error(caught)
    assert "no display answers at I2C address 0x3C on bus 1" in message
    assert "i2cdetect -y 1" in message


def test_nothing_at_the_address_fails_at_the_first_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real path: smbus2 opens, the first write gets errno 121, luma rewraps it."""
    import smbus2

    class EmptyBus:
        def __init__(self, port: int) -> None:
            self.closed = False

        def write_i2c_block_data(self, *args: object) -> None:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

        def close(self) -> None:
            self.closed = True

    opened: list[EmptyBus] = []
    monkeypatch.setattr(smbus2, "SMBus", lambda port: opened.append(EmptyBus(port)) or opened[-1])

    with pytest.raises(HardwareError) as caught:
        open_display(config(i2c_address=0x3D))

    message = assert_one_line_hardware_error(caught)
    assert "no display answers at I2C address 0x3D on bus 1" in message
    assert "i2cdetect -y 1" in message
    assert str(caught.value.__cause__) == "I2C device not found on address: 0x3D"
    assert opened[0].closed  # the bus was released


def test_nothing_answers_an_injected_serial() -> None:
    serial = mock_serial()
    serial.command.side_effect = OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(HardwareError, match="no display answers at I2C address 0x3C"):
        open_display(config(), serial_factory=lambda _: serial)


def test_missing_spi_device(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = luma.core.error.DeviceNotFoundError("SPI device not found")
    monkeypatch.setattr(luma.core.interface.serial, "spi", mock.Mock(side_effect=missing))

    with pytest.raises(HardwareError) as caught:
        open_display(config(interface="spi"))

    message = assert_one_line_hardware_error(caught)
    assert message.startswith("no SPI device 0.0 (/dev/spidev0.0)")
    assert "raspi-config nonint do_spi 0" in message


def test_spi_without_its_python_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    absent = ModuleNotFoundError("No module named 'RPi'", name="RPi")
    monkeypatch.setattr(luma.core.interface.serial, "spi", mock.Mock(side_effect=absent))

    with pytest.raises(HardwareError) as caught:
        open_display(config(interface="spi"))

    message = assert_one_line_hardware_error(caught)
    assert "RPi is missing" in message and "python3-spidev" in message


def test_a_bus_failure_while_running_is_one_line() -> None:
    serial = mock_serial()
    display = open_display(config(), serial_factory=lambda _: serial)
    serial.data.side_effect = OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(HardwareError) as caught:
        display.show(pattern())

    message = assert_one_line_hardware_error(caught)
    assert "ssd1306 on I2C bus 1 at 0x3C failed while showing a frame" in message
    assert display.frames_shown == 0


def test_bugs_are_not_disguised_as_hardware_errors() -> None:
    serial = mock_serial()
    serial.command.side_effect = TypeError("a bug")

    with pytest.raises(TypeError):
        open_display(config(), serial_factory=lambda _: serial)


def test_luma_oled_is_not_imported_with_the_module() -> None:
    source_root = str(Path(micromance.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": source_root}
    check = ("import sys, micromance.hardware.display; "
             "sys.exit('luma.oled' in sys.modules or 'luma.core.device' in sys.modules)")

    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                            text=True, check=False)

    assert result.returncode == 0, result.stderr


# --- luma.emulator ----------------------------------------------------------------------------


def hide_luma_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "luma.emulator", None)
    monkeypatch.setitem(sys.modules, "luma.emulator.device", None)


def fake_luma_emulator(monkeypatch: pytest.MonkeyPatch, **classes: object) -> None:
    package = types.ModuleType("luma.emulator")
    module = types.ModuleType("luma.emulator.device")
    for name, cls in classes.items():
        setattr(module, name, cls)
    package.device = module
    monkeypatch.setitem(sys.modules, "luma.emulator", package)
    monkeypatch.setitem(sys.modules, "luma.emulator.device", module)


@pytest.mark.parametrize("driver", ["capture", "gifanim", "pygame"])
def test_emulator_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch, driver: str) -> None:
    hide_luma_emulator(monkeypatch)

    with pytest.raises(HardwareError) as caught:
        open_display(config(driver=driver))

    message = assert_one_line_hardware_error(caught)
    assert f'"{driver}" needs luma.emulator' in message
    assert ".venv/bin/pip install 'micromance[emulator]'" in message


def test_emulator_without_pygame(monkeypatch: pytest.MonkeyPatch) -> None:
    no_pygame = mock.Mock(side_effect=RuntimeError("Emulator requires pygame to be installed"))
    fake_luma_emulator(monkeypatch, capture=no_pygame)

    with pytest.raises(HardwareError, match=r"needs pygame.*micromance\[emulator\]"):
        open_display(config(driver="capture"))


def test_pygame_without_a_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    window = mock.Mock()
    fake_luma_emulator(monkeypatch, pygame=window)
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(HardwareError) as caught:
        open_display(config(driver="pygame"))

    message = assert_one_line_hardware_error(caught)
    assert "$DISPLAY" in message and '"terminal"' in message
    window.assert_not_called()


def test_emulator_gets_the_config_and_colour_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = mock.Mock(size=(128, 64), mode="RGB")
    capture = mock.Mock(return_value=emulator)
    fake_luma_emulator(monkeypatch, capture=capture)

    display = open_display(config(driver="capture", rotate=2))
    display.show(pattern())

    capture.assert_called_once_with(width=128, height=64, rotate=2)
    assert emulator.display.call_args.args[0].mode == "RGB"


def test_gifanim_writes_its_file_at_close_once(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = mock.Mock(size=(128, 64), mode="RGB")
    fake_luma_emulator(monkeypatch, gifanim=mock.Mock(return_value=recorder))

    display = open_display(config(driver="gifanim"))
    cleanup = recorder.cleanup
    display.close()
    display.close()

    recorder.write_animation.assert_called_once_with()
    cleanup.assert_called_once_with()


# --- terminal ---------------------------------------------------------------------------------


def test_braille_of_a_lit_and_a_dark_panel() -> None:
    lit = to_braille(Image.new("1", (128, 64), 1))
    dark = to_braille(Image.new("1", (128, 64), 0))

    assert lit == [FULL * 64] * 16
    assert dark == [BLANK * 64] * 16
    assert to_braille(Image.new("1", (128, 32), 1)) == [FULL * 64] * 8


@pytest.mark.parametrize(("pixel", "char"), [
    ((0, 0), 0x2801),  # dot 1
    ((0, 1), 0x2802),  # dot 2
    ((0, 2), 0x2804),  # dot 3
    ((1, 0), 0x2808),  # dot 4
    ((1, 1), 0x2810),  # dot 5
    ((1, 2), 0x2820),  # dot 6
    ((0, 3), 0x2840),  # dot 7
    ((1, 3), 0x2880),  # dot 8
])
def test_braille_dot_numbering(pixel: tuple[int, int], char: int) -> None:
    image = Image.new("1", (128, 64))
    image.putpixel(pixel, 1)

    lines = to_braille(image)

    assert lines[0][0] == chr(char)
    assert lines[0][1:] == BLANK * 63
    assert lines[1:] == [BLANK * 64] * 15


def test_braille_pads_odd_sizes_and_thresholds_other_modes() -> None:
    grey = Image.new("L", (3, 5), 0)
    grey.putpixel((2, 4), 200)
    grey.putpixel((0, 0), 100)  # below half: dark

    assert to_braille(grey) == [BLANK * 2, BLANK + chr(0x2801)]


def test_border_and_title() -> None:
    framed = add_border(["ab", "cd"], title="")
    assert framed == ["┌──┐", "│ab│", "│cd│", "└──┘"]

    titled = add_border([BLANK * 10], title="Sam")
    assert titled[0] == "┌─ Sam ────┐"
    assert len({len(line) for line in titled}) == 1


def test_terminal_prints_each_frame_once_when_not_a_tty() -> None:
    stream = io.StringIO()
    display = open_display(config(driver="terminal"), stream=stream, title="Sam")

    lit = Image.new("1", (128, 64), 1)
    display.show(lit)
    display.show(Image.new("1", (128, 64)))

    frames = stream.getvalue().split("\n\n")
    assert frames[-1] == ""  # every frame ends with a blank line
    frames = frames[:-1]
    assert len(frames) == 2
    first = frames[0].split("\n")
    assert len(first) == 18 and all(len(line) == 66 for line in first)
    assert first[0].startswith("┌─ Sam ")
    assert first[1] == "│" + FULL * 64 + "│"
    assert frames[1].split("\n")[1] == "│" + BLANK * 64 + "│"
    assert "\x1b" not in stream.getvalue()


def test_terminal_rotate_2_reverses() -> None:
    stream = io.StringIO()
    device = TerminalDevice(128, 64, rotate=2, stream=stream)
    image = Image.new("1", (128, 64))
    image.putpixel((0, 0), 1)

    device.display(image)

    rows = stream.getvalue().split("\n")[1:17]
    assert rows[0] == "│" + BLANK * 64 + "│"
    assert rows[15] == "│" + BLANK * 63 + chr(0x2880) + "│"  # dot 8: bottom right


def test_terminal_rotate_1_is_portrait() -> None:
    stream = io.StringIO()
    display = open_display(config(driver="terminal", rotate=1), stream=stream)

    display.show(Image.new("1", (64, 128), 1))

    rows = stream.getvalue().split("\n")[1:17]
    assert display.size == (64, 128)
    assert rows == ["│" + FULL * 64 + "│"] * 16  # the panel itself stays 128x64


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_redraws_in_place_on_a_tty() -> None:
    stream = FakeTty()
    device = TerminalDevice(128, 32, stream=stream)

    device.display(Image.new("1", (128, 32), 1))
    first_length = len(stream.getvalue())
    device.display(Image.new("1", (128, 32)))

    output = stream.getvalue()
    second = output[first_length:]
    assert not output.startswith("\x1b[")  # the first frame is simply printed
    assert second.startswith("\x1b[10A\r")  # 8 braille rows + 2 border lines back up
    assert second.count("\n") == 10
    assert BLANK * 64 in second


def test_terminal_dims_on_a_tty_when_contrast_is_low() -> None:
    stream = FakeTty()
    device = TerminalDevice(stream=stream)
    device.display(Image.new("1", (128, 64), 1))
    before = len(stream.getvalue())

    device.contrast(200)  # still bright: nothing to redraw
    assert len(stream.getvalue()) == before
    device.contrast(8)

    assert "\x1b[2m" in stream.getvalue()[before:]


def test_terminal_hide_shows_a_dark_panel_and_show_restores_it() -> None:
    stream = io.StringIO()
    display = open_display(config(driver="terminal"), stream=stream)
    display.show(Image.new("1", (128, 64), 1))

    display.sleep()
    display.show(Image.new("1", (128, 64), 1))  # panel off: nothing drawn
    display.wake()
    display.close()

    frames = stream.getvalue().split("\n\n")[:-1]
    middle_rows = [frame.split("\n")[8] for frame in frames]
    lit, dark = "│" + FULL * 32, "│" + BLANK * 32
    assert [row[:33] for row in middle_rows] == [lit, dark, lit, dark]  # the last: close()
    assert display.frames_shown == 2


def test_pixels_survive_the_terminal_round_trip() -> None:
    """Each braille cell decodes back to the 2x4 pixels it came from."""
    frame = pattern()
    lines = to_braille(frame)
    decoded = Image.new("1", frame.size)
    bits = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
    for row, line in enumerate(lines):
        for column, char in enumerate(line):
            code = ord(char) - 0x2800
            for dy, pair in enumerate(bits):
                for dx, bit in enumerate(pair):
                    if code & bit:
                        decoded.putpixel((column * 2 + dx, row * 4 + dy), 1)

    assert ImageChops.difference(decoded, frame).getbbox() is None
