"""The display adapter: one luma device made from the config, plus a terminal stand-in.

Translate only. Screens decide what to draw and the runtime decides when; this module pushes
frames, sets the contrast and switches the panel off and on. It also turns luma's and the
kernel's failures into a one-line ``HardwareError`` that says what was tried and what to do,
because on a device without a keyboard a traceback helps nobody.

luma is imported inside ``open_display`` only: importing luma.oled costs tens of milliseconds
that a Pi Zero should not spend when the command is ``status`` or ``doctor``.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from PIL import Image

from micromance.config import OLED_DRIVERS, DisplayConfig
from micromance.errors import ConfigError, HardwareError

log = logging.getLogger(__name__)

EMULATOR_DRIVERS = ("capture", "gifanim", "pygame")
EMULATOR_HINT = "install the emulator extra: .venv/bin/pip install 'micromance[emulator]'"
DESKTOP_HINT = 'on a desktop set display.driver = "dummy" or "terminal"'

#: Errors a bus reports when nothing answers (121 Remote I/O, 5 I/O, 6 no such device).
_NO_ANSWER_ERRNOS = (errno.EREMOTEIO, errno.EIO, errno.ENXIO)


class LumaDevice(Protocol):
    """What ``Display`` needs from a device: luma's own interface, nothing more."""

    size: tuple[int, int]
    mode: str

    def display(self, image: Image.Image) -> None: ...
    def contrast(self, level: int) -> None: ...
    def hide(self) -> None: ...
    def show(self) -> None: ...
    def cleanup(self) -> None: ...


SerialFactory = Callable[[DisplayConfig], Any]


class Display:
    """One panel: push frames, set contrast, switch off and on, and leave it dark at exit.

    Frames must have ``size`` (luma's logical size: with ``rotate`` 1 or 3 a 128x64 panel
    takes 64x128 frames); luma rotates them for the panel itself.
    """

    def __init__(self, device: LumaDevice, *, description: str = "display") -> None:
        self._device = device
        self._description = description
        self._contrast: int | None = None
        self._asleep = False
        self._closed = False
        self._last_image: Image.Image | None = None
        self.frames_shown = 0

    @property
    def device(self) -> LumaDevice:
        """The wrapped luma (or terminal) device, for tests and diagnostics."""
        return self._device

    @property
    def size(self) -> tuple[int, int]:
        """The frame size ``show`` accepts (width and height swapped for rotate 1 and 3)."""
        width, height = self._device.size
        return (width, height)

    @property
    def description(self) -> str:
        """What the panel is and where, e.g. ``ssd1306 on I2C bus 1 at 0x3C``."""
        return self._description

    @property
    def last_image(self) -> Image.Image | None:
        """A copy of the last frame shown, as it was passed in (None before the first)."""
        return self._last_image

    @property
    def contrast(self) -> int | None:
        """The contrast last set through this adapter (None: the driver's own default)."""
        return self._contrast

    @property
    def asleep(self) -> bool:
        return self._asleep

    @property
    def closed(self) -> bool:
        return self._closed

    def show(self, image: Image.Image) -> None:
        """Push one full frame; converted when the device wants another mode than "1"."""
        if tuple(image.size) != self.size:
            width, height = self.size
            raise ValueError(
                f"frame is {image.width}x{image.height} but {self._description} takes "
                f"{width}x{height}: render screens at Display.size"
            )
        frame = image if image.mode == self._device.mode else image.convert(self._device.mode)
        with self._translating("showing a frame"):
            self._device.display(frame)
        self._last_image = image.copy()
        self.frames_shown += 1

    def set_contrast(self, level: int) -> None:
        """Set the panel contrast 0-255; an unchanged level sends nothing over the bus."""
        if not 0 <= level <= 255:
            raise ValueError(f"contrast {level} is out of range: it must be from 0 to 255")
        if level == self._contrast:
            return
        with self._translating("setting the contrast"):
            self._device.contrast(level)
        self._contrast = level

    def sleep(self) -> None:
        """Switch the panel off (quiet hours); the frame memory is kept."""
        if self._asleep:
            return
        with self._translating("switching the panel off"):
            self._device.hide()
        self._asleep = True

    def wake(self) -> None:
        """Switch the panel back on, at the contrast last set."""
        if not self._asleep:
            return
        with self._translating("switching the panel on"):
            self._device.show()
            # luma.emulator's show() resets contrast to 255; re-sending costs two bytes.
            if self._contrast is not None:
                self._device.contrast(self._contrast)
        self._asleep = False

    def close(self) -> None:
        """Leave the panel off on a clean exit, so no static image burns in; idempotent.

        luma's ``cleanup()`` blanks and switches off unless the device's ``persist`` is set,
        then closes the bus. A failure here is logged, not raised: it must not hide the
        reason the program is stopping.
        """
        if self._closed:
            return
        self._closed = True
        device = self._device
        try:
            _finish_recording(device)
            device.cleanup()
        except Exception as error:  # the bus may be gone already; exit cleanly anyway
            if not _is_hardware_failure(error):
                raise
            log.warning("display: could not switch %s off: %s", self._description,
                        _one_line(error))
        finally:
            # luma registered an atexit hook that calls cleanup() again; make it a no-op so
            # it does not write to a bus that is already closed.
            device.cleanup = _already_closed  # type: ignore[method-assign]

    def _translating(self, action: str) -> _FailureTranslator:
        return _FailureTranslator(self._description, action)


class _FailureTranslator:
    """Turns bus errors while running (a loose wire) into one-line HardwareErrors."""

    def __init__(self, description: str, action: str) -> None:
        self._description = description
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        if error is None or not _is_hardware_failure(error):
            return  # not ours to translate: it goes on as it is
        raise HardwareError(
            f"{self._description} failed while {self._action} ({_one_line(error)}): check "
            "its wiring and power, then restart micromance"
        ) from error


def _already_closed() -> None:
    return None


def _finish_recording(device: Any) -> None:
    """gifanim writes its GIF in an atexit hook; write it now, once, instead."""
    write_animation = getattr(device, "write_animation", None)
    if callable(write_animation):
        atexit.unregister(write_animation)
        write_animation()


# --- building the device ----------------------------------------------------------------------


def open_display(
    config: DisplayConfig,
    *,
    serial_factory: SerialFactory | None = None,
    stream: TextIO | None = None,
    title: str = "",
) -> Display:
    """Build the display the config names, with its contrast applied.

    ``serial_factory(config)`` replaces luma's I2C/SPI interface (tests pass a Mock or luma's
    ``noop``); ``stream`` and ``title`` are for the terminal driver. Raises HardwareError
    (exit 69) when the panel or its bus is missing, ConfigError when the driver cannot drive
    the configured size.
    """
    driver = config.driver
    if driver in OLED_DRIVERS:
        device = _open_oled(config, serial_factory)
    elif driver == "dummy":
        from luma.core.device import dummy

        device = dummy(width=config.width, height=config.height, rotate=config.rotate,
                       mode="1")
    elif driver == "terminal":
        device = TerminalDevice(config.width, config.height, config.rotate, stream=stream,
                                title=title)
    elif driver in EMULATOR_DRIVERS:
        device = _open_emulator(config)
    else:
        raise ValueError(f'unknown display driver "{driver}"')
    display = Display(device, description=_describe(config))
    display.set_contrast(config.contrast)
    log.debug("display: %s, %dx%d, rotate %d", display.description, config.width,
             config.height, config.rotate)
    return display


def _open_oled(config: DisplayConfig, serial_factory: SerialFactory | None) -> LumaDevice:
    import luma.core.error
    import luma.oled.device

    device_class = getattr(luma.oled.device, config.driver)
    try:
        serial = serial_factory(config) if serial_factory else _luma_serial(config)
    except Exception as error:
        if not _is_hardware_failure(error):
            raise
        raise HardwareError(_explain_bus_failure(error, config)) from error
    try:
        return device_class(serial, width=config.width, height=config.height,
                            rotate=config.rotate)
    except luma.core.error.DeviceDisplayModeError as error:
        _close_quietly(serial)
        raise ConfigError(
            f'display.driver = "{config.driver}" cannot drive a {config.width}x{config.height} '
            f"panel ({error})",
            fix="set display.width and display.height to the panel's size (e.g. 128x64 or "
            "128x32) or pick the driver that matches the panel"
        ) from error
    except Exception as error:
        _close_quietly(serial)
        if not _is_hardware_failure(error):
            raise
        raise HardwareError(_explain_init_failure(error, config)) from error


def _luma_serial(config: DisplayConfig) -> Any:
    from luma.core.interface import serial

    if config.interface == "spi":
        return serial.spi(port=config.spi_port, device=config.spi_device,
                          gpio_DC=config.gpio_dc, gpio_RST=config.gpio_reset)
    return serial.i2c(port=config.i2c_port, address=config.i2c_address)


def _open_emulator(config: DisplayConfig) -> LumaDevice:
    driver = config.driver
    try:
        from luma.emulator import device as emulators
    except ImportError as error:
        raise HardwareError(
            f'display.driver = "{driver}" needs luma.emulator, which is not installed: '
            f"{EMULATOR_HINT}"
        ) from error
    if driver == "pygame":
        _require_graphical_session()
    try:
        return getattr(emulators, driver)(width=config.width, height=config.height,
                                          rotate=config.rotate)
    except ImportError as error:
        raise HardwareError(f'display.driver = "{driver}" needs pygame: {EMULATOR_HINT}') from error
    except RuntimeError as error:  # pygame.error is a RuntimeError too
        if "requires pygame" in str(error):
            raise HardwareError(
                f'display.driver = "{driver}" needs pygame, which is not installed: '
                f"{EMULATOR_HINT}"
            ) from error
        raise HardwareError(
            f'display.driver = "{driver}" could not start ({_one_line(error)}): run it in a '
            'desktop session, or set display.driver = "terminal"'
        ) from error


def _require_graphical_session() -> None:
    """pygame opens a window: without a display server SDL fails with a vague message."""
    if not sys.platform.startswith("linux"):
        return
    if any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")):
        return
    raise HardwareError(
        'display.driver = "pygame" needs a graphical desktop, but neither $DISPLAY nor '
        '$WAYLAND_DISPLAY is set: run it in a desktop session, or set display.driver = '
        '"terminal" (or "capture" to write PNG files)'
    )


# --- explaining failures ----------------------------------------------------------------------


def _explain_bus_failure(error: BaseException, config: DisplayConfig) -> str:
    """Opening the bus failed: it is missing, forbidden, or the SPI helpers are absent."""
    if config.interface == "spi":
        return _explain_spi_bus_failure(error, config)
    port = config.i2c_port
    path = f"/dev/i2c-{port}"
    kind = _kind(error)
    if kind == "permission":
        return (f"no permission to open {path}: add the user to the i2c group (sudo usermod "
                "-aG i2c $USER) and log in again")
    if kind == "address":
        return (f"invalid I2C address {config.i2c_address!r} ({_one_line(error)}): set "
                "display.i2c_address to the address i2cdetect shows, e.g. 0x3C")
    if kind == "no-answer":
        return _no_answer(config)
    if kind == "missing":
        check_port = "" if port == 1 else " check display.i2c_port (the Pi's header is bus 1),"
        return (f"no I2C bus {port} ({path}):{check_port} enable I2C (sudo raspi-config "
                f"nonint do_i2c 0, or run install.sh) and reboot; {DESKTOP_HINT}")
    return (f"cannot open I2C bus {port} ({path}): {_one_line(error)}; check that I2C is "
            f"enabled; {DESKTOP_HINT}")


def _explain_spi_bus_failure(error: BaseException, config: DisplayConfig) -> str:
    path = f"/dev/spidev{config.spi_port}.{config.spi_device}"
    kind = _kind(error)
    if isinstance(error, ImportError):
        missing = error.name or "a module"
        return (f"the SPI display needs the Python modules spidev and RPi.GPIO ({missing} is "
                "missing): sudo apt install python3-spidev python3-rpi-lgpio (the venv must "
                'see system packages), or wire the panel for I2C and set display.interface = '
                f'"i2c"; {DESKTOP_HINT}')
    if kind == "unsupported":
        return (f"no GPIO access for the SPI display's DC and RST pins ({_one_line(error)}): "
                f"run on a Raspberry Pi; {DESKTOP_HINT}")
    if kind == "permission":
        return (f"no permission to open {path} or the GPIO chip: add the user to the spi and "
                "gpio groups (sudo usermod -aG spi,gpio $USER) and log in again")
    if kind == "missing":
        return (f"no SPI device {config.spi_port}.{config.spi_device} ({path}): enable SPI "
                f"(sudo raspi-config nonint do_spi 0) and reboot; {DESKTOP_HINT}")
    return f"cannot open SPI device {path}: {_one_line(error)}; {DESKTOP_HINT}"


def _explain_init_failure(error: BaseException, config: DisplayConfig) -> str:
    """The bus opened but the first commands failed: nothing (or the wrong thing) answers."""
    if config.interface == "spi":
        return (f"{_describe(config)} did not accept its start-up commands "
                f"({_one_line(error)}): check the wiring (MOSI, SCLK, CE{config.spi_device}, "
                f"DC on BCM {config.gpio_dc}, RST on BCM {config.gpio_reset}) and power")
    if _kind(error) in ("no-answer", "missing"):
        return _no_answer(config)
    if _kind(error) == "permission":
        return _explain_bus_failure(error, config)
    return (f"{_describe(config)} did not accept its start-up commands ({_one_line(error)}): "
            f"check the wiring and the address with i2cdetect -y {config.i2c_port}")


def _no_answer(config: DisplayConfig) -> str:
    port = config.i2c_port
    return (f"no display answers at I2C address 0x{config.i2c_address:02X} on bus {port}: "
            f"check the wiring (SDA, SCL, 3.3V, GND) and the address with i2cdetect -y {port} "
            "(these panels use 0x3C or 0x3D), then set display.i2c_address")


def _kind(error: BaseException) -> str:
    """Sort luma's and the kernel's errors into the few cases a user can act on."""
    name = type(error).__name__
    if name == "DevicePermissionError" or isinstance(error, PermissionError):
        return "permission"
    if name == "DeviceAddressError":
        return "address"
    if name == "UnsupportedPlatform":
        return "unsupported"
    if name == "DeviceNotFoundError":
        return "no-answer" if "on address" in str(error) else "missing"
    if isinstance(error, OSError):
        if error.errno == errno.ENOENT:
            return "missing"
        if error.errno in (errno.EACCES, errno.EPERM):
            return "permission"
        if error.errno in _NO_ANSWER_ERRNOS:
            return "no-answer"
    return "other"


def _is_hardware_failure(error: BaseException) -> bool:
    """OSErrors, luma's own errors and missing SPI/GPIO modules; anything else is a bug."""
    if isinstance(error, (OSError, ImportError)):
        return True
    luma_error = sys.modules.get("luma.core.error")  # a luma error implies luma is loaded
    return luma_error is not None and isinstance(error, luma_error.Error)


def _close_quietly(serial: Any) -> None:
    try:
        serial.cleanup()
    except Exception as error:  # already failing: keep the first error
        log.debug("display: closing the interface failed too: %s", error)


def _describe(config: DisplayConfig) -> str:
    if config.driver not in OLED_DRIVERS:
        return f"{config.driver} display"
    if config.interface == "spi":
        return f"{config.driver} on SPI {config.spi_port}.{config.spi_device}"
    return f"{config.driver} on I2C bus {config.i2c_port} at 0x{config.i2c_address:02X}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


# --- terminal rendering -----------------------------------------------------------------------

BRAILLE_BLANK = 0x2800
#: Bit of each pixel in a 2x4 braille cell, indexed [row][column] (dots 1-3, 7 left; 4-6, 8 right).
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def to_braille(image: Image.Image) -> list[str]:
    """Lines of braille characters, 2x4 pixels a cell: 128x64 becomes 16 lines of 64.

    Lit pixels (non-zero after conversion to 1 bit) become raised dots. Sizes that are not a
    multiple of 2x4 are padded with dark pixels.
    """
    mono = image if image.mode == "1" else image.convert("1", dither=Image.Dither.NONE)
    columns, rows = -(-mono.width // 2), -(-mono.height // 4)
    padded_width = columns * 2
    if mono.size != (padded_width, rows * 4):
        canvas = Image.new("1", (padded_width, rows * 4))
        canvas.paste(mono, (0, 0))
        mono = canvas
    pixels = mono.convert("L").tobytes()
    lines = []
    for row in range(rows):
        top = row * 4 * padded_width
        pixel_rows = [pixels[top + dy * padded_width: top + (dy + 1) * padded_width]
                      for dy in range(4)]
        cells = []
        for column in range(columns):
            x = column * 2
            code = BRAILLE_BLANK
            for pixel_row, bits in zip(pixel_rows, _BRAILLE_BITS, strict=True):
                if pixel_row[x]:
                    code |= bits[0]
                if pixel_row[x + 1]:
                    code |= bits[1]
            cells.append(chr(code))
        lines.append("".join(cells))
    return lines


def add_border(lines: list[str], title: str = "") -> list[str]:
    """Frame text lines with a thin box; a title sits in the top edge if it fits."""
    width = max((len(line) for line in lines), default=0)
    label = f" {title} " if title else ""
    if len(label) > width - 1:
        label = label[: max(width - 1, 0)]
    top = "┌" + ("─" + label if label else "") + "─" * (width - len(label) - (1 if label else 0))
    body = ["│" + line.ljust(width) + "│" for line in lines]
    return [top + "┐", *body, "└" + "─" * width + "┘"]


class TerminalDevice:
    """A luma-like device that draws the panel in a terminal with braille cells.

    On a TTY each frame redraws in place (cursor up, no scrolling); on anything else (a pipe,
    a log, a StringIO) each frame is printed once followed by a blank line. ``rotate`` is
    applied like luma does, so the terminal shows what the panel's pixels would show.
    """

    #: Below this contrast a TTY shows the panel faint, like a dimmed OLED.
    DIM_BELOW = 128

    def __init__(self, width: int = 128, height: int = 64, rotate: int = 0, *,
                 stream: TextIO | None = None, title: str = "") -> None:
        if rotate not in (0, 1, 2, 3):
            raise ValueError(f"rotate must be 0, 1, 2 or 3, not {rotate!r}")
        self._panel_size = (width, height)
        self.width, self.height = (width, height) if rotate % 2 == 0 else (height, width)
        self.size = (self.width, self.height)
        self.rotate = rotate
        self.mode = "1"
        self.persist = False
        self.stream: TextIO = stream if stream is not None else sys.stdout
        self.title = title
        self.level = 255
        self.hidden = False
        self._panel: Image.Image | None = None  # the last frame as the panel holds it
        self._lines_on_screen = 0
        self._interactive = _is_tty(self.stream)

    def preprocess(self, image: Image.Image) -> Image.Image:
        """Rotate as luma's ``capabilities.preprocess`` does (clockwise quarter turns)."""
        if self.rotate == 0:
            return image
        turned = image.rotate(self.rotate * -90, expand=True)
        return turned.crop((0, 0, *self._panel_size))

    def display(self, image: Image.Image) -> None:
        if tuple(image.size) != self.size:
            raise ValueError(f"frame is {image.width}x{image.height}, the terminal panel "
                             f"takes {self.width}x{self.height}")
        mono = image if image.mode == "1" else image.convert("1")
        self._panel = self.preprocess(mono)
        if not self.hidden:
            self._draw(self._panel)

    def clear(self) -> None:
        self.display(Image.new("1", self.size))

    def contrast(self, level: int) -> None:
        if not 0 <= level <= 255:
            raise ValueError(f"contrast {level} is out of range 0-255")
        was_dim = self.level < self.DIM_BELOW
        self.level = level
        panel = self._panel if self._interactive and not self.hidden else None
        if panel is not None and was_dim != (level < self.DIM_BELOW):
            self._draw(panel)

    def hide(self) -> None:
        """The panel goes dark: draw it blank (the last frame is kept for ``show``)."""
        self.hidden = True
        self._draw(Image.new("1", self._panel_size))

    def show(self) -> None:
        self.hidden = False
        self._draw(self._panel if self._panel is not None else Image.new("1", self._panel_size))

    def cleanup(self) -> None:
        if not self.persist and not self.hidden:
            self.hide()

    def _draw(self, panel: Image.Image) -> None:
        lines = add_border(to_braille(panel), self.title)
        if self._interactive:
            style, reset = ("\x1b[2m", "\x1b[0m") if self.level < self.DIM_BELOW else ("", "")
            back = f"\x1b[{self._lines_on_screen}A\r" if self._lines_on_screen else ""
            text = back + "".join(f"{style}{line}{reset}\x1b[K\n" for line in lines)
            self._lines_on_screen = len(lines)
        else:
            text = "\n".join(lines) + "\n\n"
        self.stream.write(text)
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed or detached streams
        return False
