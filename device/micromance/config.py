"""The device config: TOML in, frozen dataclasses out.

Every key has a shipped default, so an empty file is a valid config. Every mistake becomes a
``ConfigError`` that names the file, the key, the offending value and the fix; unknown keys
get a "did you mean" hint, because a typo that is silently ignored is the worst kind of bug
on a device without a keyboard.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micromance.errors import ConfigError

DEFAULT_PATH = Path("/etc/micromance/config.toml")
ENV_VAR = "MICROMANCE_CONFIG"

#: Drivers from luma.oled that draw pixels (character displays are left out).
OLED_DRIVERS = (
    "ssd1306", "ssd1305", "ssd1309", "ssd1315", "ssd1316", "ssd1322", "ssd1322_nhd",
    "ssd1325", "ssd1327", "ssd1331", "ssd1351", "ssd1362", "ssd1363", "sh1106", "sh1107",
    "ch1115",
)
#: Desktop stand-ins: luma's dummy, luma.emulator's three, and our own terminal renderer.
DESKTOP_DRIVERS = ("dummy", "terminal", "capture", "gifanim", "pygame")
PRACTICES = ("present", "reinforce", "closeness", "delight", "calm", "affirm", "attune")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class DeviceConfig:
    name: str = "Sam"
    received_timeout_minutes: int = 120


@dataclass(frozen=True)
class DisplayConfig:
    driver: str = "ssd1306"
    interface: str = "i2c"
    width: int = 128
    height: int = 64
    rotate: int = 0
    i2c_port: int = 1
    i2c_address: int = 0x3C
    spi_port: int = 0
    spi_device: int = 0
    gpio_dc: int = 24
    gpio_reset: int = 25
    contrast: int = 200
    dim_contrast: int = 8
    dim_after_minutes: int = 10
    pixel_shift: bool = True


@dataclass(frozen=True)
class PinsConfig:
    thanks: int = 17
    next: int = 27
    led: int = 18


@dataclass(frozen=True)
class PromptsConfig:
    interval_minutes: int = 45
    focus_time: str = "07:30"
    extra_file: str = ""
    disabled_practices: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuietHoursConfig:
    enabled: bool = True
    start: str = "22:30"
    end: str = "07:00"


@dataclass(frozen=True)
class BrokerConfig:
    host: str = "localhost"
    port: int = 8883
    tls: bool = True
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    username: str = ""
    password_file: str = ""
    room: str = ""
    keepalive: int = 60


@dataclass(frozen=True)
class HomeAssistantConfig:
    """The home's own broker, for Home Assistant's MQTT discovery (not the couple's): the keys
    of ``[broker]`` but the room, and the discovery prefix.

    Off unless the file has a ``[homeassistant]`` table; ``enabled = false`` there keeps the
    settings and takes the device out of Home Assistant at the next start or reload."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    tls: bool = False
    ca_file: str = ""
    client_cert: str = ""
    client_key: str = ""
    username: str = ""
    password_file: str = ""
    keepalive: int = 60
    prefix: str = "homeassistant"

    @property
    def broker(self) -> BrokerConfig:
        """The connection settings, in the form every broker client takes."""
        return BrokerConfig(host=self.host, port=self.port, tls=self.tls,
                            ca_file=self.ca_file, client_cert=self.client_cert,
                            client_key=self.client_key, username=self.username,
                            password_file=self.password_file, keepalive=self.keepalive)


#: The most ``[[broker]]`` tables a config may name.
MAX_BROKERS = 8

#: The brokers a unit uses when its config names none: free public brokers with TLS and the
#: system CAs (every message is sealed end to end, so the brokers read nothing; a unit uses
#: them all at once, so the loss of one changes nothing). A pair keeps the list it was made
#: with (pair.json), so a later change of this list cannot split it.
PUBLIC_BROKERS = (
    BrokerConfig(host="broker.emqx.io", port=8883),
    BrokerConfig(host="broker.hivemq.com", port=8883),
    BrokerConfig(host="test.mosquitto.org", port=8886),
)


@dataclass(frozen=True)
class PairingConfig:
    room: str = ""                 # the rendezvous for pairing with the buttons ("": lobby)


@dataclass(frozen=True)
class PathsConfig:
    state_dir: str = "/var/lib/micromance"


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = field(default_factory=DeviceConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    pins: PinsConfig = field(default_factory=PinsConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    quiet_hours: QuietHoursConfig = field(default_factory=QuietHoursConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    pairing: PairingConfig = field(default_factory=PairingConfig)
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    #: Several ``[[broker]]`` tables (empty: the file has none).
    broker_tables: tuple[BrokerConfig, ...] = ()
    #: The file has a ``[broker]`` table (even one that only repeats the defaults).
    broker_named: bool = False
    #: Where the values came from; ``None`` means shipped defaults only.
    source: Path | None = None

    @property
    def brokers(self) -> tuple[BrokerConfig, ...]:
        """The brokers the config names: several ``[[broker]]``, or the one ``[broker]``
        (also one given in code); empty: none named, so the pair's recorded list or
        ``PUBLIC_BROKERS``."""
        if self.broker_tables:
            return self.broker_tables
        if self.broker_named or self.broker != BrokerConfig():
            return (self.broker,)
        return ()

    @property
    def pairing_brokers(self) -> tuple[BrokerConfig, ...]:
        """Where a new pairing meets: the brokers the config names, else the public ones
        (a pair made there keeps that list, see ``Pair.brokers``)."""
        return self.brokers or PUBLIC_BROKERS

    @property
    def state_dir(self) -> Path:
        return Path(self.paths.state_dir).expanduser()

    @property
    def room(self) -> str:
        """The pairing room: ``[pairing] room``, else the single ``[broker]``'s ``room``."""
        return self.pairing.room or self.broker.room


SECTIONS: dict[str, type] = {
    f.name: f.type if isinstance(f.type, type) else globals()[f.type]
    for f in dataclasses.fields(Config)
    if f.name not in ("source", "broker_tables", "broker_named")
}
#: One table, or an array of tables of the same keys (several brokers at once).
ARRAY_SECTIONS = ("broker",)


# --- value rules -----------------------------------------------------------------------------
# A rule takes the (already type-checked) value and returns it, possibly normalised, or raises
# ValueError whose text completes "... is <text>" and may end with advice after a colon.

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _range(low: int, high: int, what: str = "") -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            suffix = f" ({what})" if what else ""
            raise ValueError(f"out of range: it must be from {low} to {high}{suffix}")
        return value

    return check


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in options:
            hint = _closest(value, options)
            near = f'; did you mean "{hint}"?' if hint else ""
            raise ValueError(f"not one of {', '.join(options)}{near}")
        return value

    return check


def _clock_time(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError('not a time of day: write "HH:MM" on the 24-hour clock, e.g. "22:30"')
    return value


def _name(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 16:
        raise ValueError("not a usable name: it must be 1 to 16 characters (it fits the screen)")
    return value


def _practices(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [v for v in value if v not in PRACTICES]
    if unknown:
        raise ValueError(f"naming unknown practices {unknown}: known are {', '.join(PRACTICES)}")
    if len(set(value)) == len(PRACTICES):
        raise ValueError("switching off every practice: keep at least one")
    return tuple(value)


def _rotation(value: int) -> int:
    if value not in (0, 1, 2, 3):
        raise ValueError("not a rotation: use 0 (none), 1 (90°), 2 (180°) or 3 (270°)")
    return value


BCM = _range(0, 27, "a BCM GPIO number on the 40-pin header")

#: The 40-pin header: which BCM GPIO each header pin carries, and the pins that carry power.
HEADER_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23,
                 18: 24, 19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5,
                 31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21}
HEADER_POWER = {1: "3.3 V", 2: "5 V", 4: "5 V", 6: "GND", 9: "GND", 14: "GND", 17: "3.3 V",
                20: "GND", 25: "GND", 30: "GND", 34: "GND", 39: "GND"}
#: Where the README's wiring puts each part, as header pins: ``thanks = 11`` is the header pin
#: of THANKS (GPIO17), written where the config wants the BCM number.
REFERENCE_HEADER_PINS = {"thanks": 11, "next": 13, "led": 12}


def header_pin_hint(key: str, value: int) -> str:
    """A hint when ``pins.<key> = value`` looks like a header pin number rather than a BCM
    GPIO number ("" when it does not): a number beyond GPIO27, or the header pin where the
    README's wiring puts that very part."""
    if value <= 27 and value != REFERENCE_HEADER_PINS.get(key):
        return ""
    gpio = HEADER_TO_BCM.get(value)
    if gpio is not None:
        return (f"{key} = {value} looks like a header pin number, but [pins] takes BCM GPIO "
                f"numbers: header pin {value} is GPIO{gpio}, so write {key} = {gpio}")
    if value in HEADER_POWER:
        return (f"{key} = {value} looks like a header pin number, but header pin {value} is "
                f"{HEADER_POWER[value]}, not a GPIO; [pins] takes BCM GPIO numbers (THANKS "
                "GPIO17 is header pin 11, NEXT GPIO27 pin 13, the LED GPIO18 pin 12)")
    return ""

RULES: dict[str, Callable[[Any], Any]] = {
    "device.name": _name,
    "device.received_timeout_minutes": _range(1, 24 * 60),
    "display.driver": _choice(OLED_DRIVERS + DESKTOP_DRIVERS),
    "display.interface": _choice(("i2c", "spi")),
    "display.width": _range(32, 256),
    "display.height": _range(16, 128),
    "display.rotate": _rotation,
    "display.i2c_port": _range(0, 255),
    "display.i2c_address": _range(0x03, 0x77, "a 7-bit I2C address such as 0x3C"),
    "display.spi_port": _range(0, 7),
    "display.spi_device": _range(0, 7),
    "display.gpio_dc": BCM,
    "display.gpio_reset": BCM,
    "display.contrast": _range(1, 255),
    "display.dim_contrast": _range(0, 255),
    "display.dim_after_minutes": _range(1, 24 * 60),
    "pins.thanks": BCM,
    "pins.next": BCM,
    "pins.led": BCM,
    "prompts.interval_minutes": _range(1, 24 * 60),
    "prompts.focus_time": _clock_time,
    "prompts.disabled_practices": _practices,
    "quiet_hours.start": _clock_time,
    "quiet_hours.end": _clock_time,
    "broker.host": lambda v: v if v.strip() else _fail("empty: name the broker's host"),
    "broker.port": _range(1, 65535),
    "broker.keepalive": _range(5, 3600),
    "broker.room": lambda v: v
    if re.fullmatch(r"[A-Za-z0-9_-]{0,64}", v)
    else _fail("not a usable room name: letters, digits, - and _ only, at most 64"),
    "pairing.room": lambda v: v
    if re.fullmatch(r"[A-Za-z0-9_-]{0,64}", v)
    else _fail("not a usable room name: letters, digits, - and _ only, at most 64"),
    "homeassistant.host": lambda v: v if v.strip() else _fail("empty: name the home's broker"),
    "homeassistant.port": _range(1, 65535),
    "homeassistant.keepalive": _range(5, 3600),
    "homeassistant.prefix": lambda v: v
    if re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", v)
    else _fail("not a topic prefix: letters, digits, - and _, levels separated by /, as "
               "Home Assistant's discovery prefix (default \"homeassistant\")"),
    "paths.state_dir": lambda v: v if v.strip() else _fail("empty: name a writable directory"),
    "logging.level": _choice(LOG_LEVELS),
}

_TYPE_NAMES = {bool: "true or false", int: "a whole number", str: "a quoted string",
               tuple: "a list of strings"}


def _fail(message: str) -> Any:
    raise ValueError(message)


# --- loading ---------------------------------------------------------------------------------


def resolve_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to read: ``--config``, then $MICROMANCE_CONFIG, then /etc if present.

    ``None`` means "no file: use the shipped defaults".
    """
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read and validate ``path``; ``None`` gives the shipped defaults."""
    if path is None:
        return _check_combinations(Config(), "defaults")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            fix="create it (an example with every key is firmware_config/micromance.toml) or "
            "point --config at an existing file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"{path}: cannot read the config file ({reason})",
                          fix="make it a readable UTF-8 text file") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML ``text`` read from ``path`` (named in every error)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        if _MIXED_BROKERS.search(text) and _ONE_BROKER.search(text):
            raise ConfigError(
                f"{path}: [broker] and [[broker]] are both used",
                fix="write one broker as a single [broker] table, or several as [[broker]] "
                    "tables (each with host, port, tls, ...) and the pairing room in "
                    "[pairing] room") from None
        raise ConfigError(
            f"{path}: not valid TOML: {error}",
            fix='correct the syntax there (strings need quotes, e.g. name = "Sam")') from None
    sections: dict[str, Any] = {}
    for section_name, table in data.items():
        if section_name in ARRAY_SECTIONS and isinstance(table, list):
            sections["broker_tables"] = _broker_list(path, table)
            continue
        section_type = SECTIONS.get(section_name)
        if section_type is None:
            if not isinstance(table, dict):
                owners = [name for name, kind in SECTIONS.items()
                          if section_name in {f.name for f in dataclasses.fields(kind)}]
                if owners:
                    raise ConfigError(
                        f"{path}: {section_name} = {_show(table)} is outside any section",
                        fix=f"move the line below [{owners[0]}] (it is "
                        f"{owners[0]}.{section_name})")
            raise _unknown(path, section_name, list(SECTIONS), "section")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section_name} = {_show(table)} should be a section",
                              fix=f"write it as a [{section_name}] table")
        sections[section_name] = _build_section(path, section_name, section_type, table)
        if section_name == "homeassistant":
            sections[section_name] = _home_assistant(path, table, sections[section_name])
    config = Config(**sections, broker_named="broker" in sections, source=path)
    return _check_combinations(config, str(path), _key_lines(text))


def _home_assistant(path: Path, table: dict[str, Any],
                    section: HomeAssistantConfig) -> HomeAssistantConfig:
    """A ``[homeassistant]`` table switches it on (unless it says ``enabled = false``)."""
    if "enabled" not in table:
        section = dataclasses.replace(section, enabled=True)
    return section


_MIXED_BROKERS = re.compile(r"^\s*\[\[\s*broker\s*\]\]", re.M)
_ONE_BROKER = re.compile(r"^\s*\[\s*broker\s*\](?!\])", re.M)


def _broker_list(path: Path, tables: list[Any]) -> tuple[BrokerConfig, ...]:
    """Several ``[[broker]]`` tables, each checked like ``[broker]`` (the room lives in
    ``[pairing]`` in this form: one room for all of them)."""
    brokers: list[BrokerConfig] = []
    for number, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: broker = {_show(table)} should be a section",
                              fix="write each broker as a [[broker]] table")
        if "room" in table:
            raise ConfigError(
                f"{path}: broker.room = {_show(table['room'])} in [[broker]] number {number}",
                fix="with several brokers the pairing room is one for all of them: move it to "
                    "[pairing] room", key="broker.room")
        broker = _build_section(path, "broker", BrokerConfig, table)
        twin = next((n for n, b in enumerate(brokers, 1)
                     if (b.host, b.port) == (broker.host, broker.port)), None)
        if twin is not None:
            raise ConfigError(
                f"{path}: [[broker]] number {number} is {broker.host}:{broker.port} again "
                f"(number {twin} is too)", fix="name each broker once")
        brokers.append(broker)
    if not brokers:
        raise ConfigError(f"{path}: broker is an empty list",
                          fix="name at least one [[broker]], or remove the line to use the "
                              "shipped public brokers")
    if len(brokers) > MAX_BROKERS:
        raise ConfigError(f"{path}: {len(brokers)} [[broker]] tables",
                          fix=f"name at most {MAX_BROKERS}: each one costs a connection and "
                              "a copy of every message")
    return tuple(brokers)


def _build_section(path: Path, section: str, section_type: type, table: dict) -> Any:
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise _unknown(path, f"{section}.{key}", [f"{section}.{k}" for k in fields], "key",
                           value)
        default = fields[key].default
        values[key] = _check_value(path, f"{section}.{key}", value, default)
    return section_type(**values)


def _check_value(path: Path, dotted: str, value: Any, default: Any) -> Any:
    expected = type(default)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value, ok = tuple(value), True
    if not ok:
        raise ConfigError(
            f"{path}: {dotted} = {_show(value)} has the wrong type: expected "
            f"{_TYPE_NAMES[expected]}, got {_type_word(value)}",
            fix=f"write it like {dotted.split('.')[1]} = {_show(default)}", key=dotted
        )
    rule = RULES.get(dotted)
    if rule is None:
        return value
    try:
        return rule(value)
    except ValueError as error:
        hint = header_pin_hint(dotted[5:], value) if dotted.startswith("pins.") else ""
        raise ConfigError(f"{path}: {dotted} = {_show(value)} is {error}",
                          fix=hint or "change it or remove the line to use the default "
                          f"({_show(default)})", key=dotted) from None


def _display_pins(display: DisplayConfig) -> list[tuple[int, str]]:
    """The GPIOs a real panel occupies (desktop drivers occupy none)."""
    if display.driver not in OLED_DRIVERS:
        return []
    if display.interface == "i2c":
        if display.i2c_port != 1:
            return []
        return [(2, "the display's I2C SDA (header pin 3)"),
                (3, "the display's I2C SCL (header pin 5)")]
    bus = [(7, "SPI CE1"), (8, "SPI CE0"), (9, "SPI MISO"), (10, "SPI MOSI"), (11, "SPI SCLK")]
    claims = [(pin, f"the display's {name} (SPI bus 0)") for pin, name in bus] \
        if display.spi_port == 0 else []
    return [*claims, (display.gpio_dc, "display.gpio_dc"),
            (display.gpio_reset, "display.gpio_reset")]


def _key_lines(text: str) -> dict[str, int]:
    """The line each ``section.key`` is set on (plain ``[section]`` tables; enough to say
    which of two conflicting lines is the offender)."""
    lines: dict[str, int] = {}
    section = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([A-Za-z_]+)\s*\]\s*(#.*)?$", line)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"\s*([A-Za-z_]+)\s*=", line)
        if key and section:
            lines[f"{section}.{key.group(1)}"] = number
    return lines


def _check_combinations(config: Config, where: str, lines: dict[str, int] | None = None
                        ) -> Config:
    """Two parts on one GPIO: the offender is the later of the two lines in the file (the one
    most likely edited last), or the one the file sets when the other is a default."""
    lines = lines or {}
    claims = _display_pins(config.display) + [
        (getattr(config.pins, key), f"pins.{key}") for key in ("thanks", "next", "led")]
    used: dict[int, str] = {}
    for pin, label in claims:
        if pin in used:
            other = used[pin]
            if lines.get(other, -1) > lines.get(label, -1):
                label, other = other, label
            hints = [header_pin_hint(name[5:], pin) for name in (label, other)
                     if name.startswith("pins.")]
            line = f" (line {lines[label]})" if label in lines else ""
            raise ConfigError(f"{where}: {label} = {pin}{line} is already used by {other}",
                              fix=next((h for h in hints if h), "give each part its own GPIO"),
                              key=label if label in RULES else "")
        used[pin] = label
    return config


def _closest(word: str, options: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The option most like ``word``, ignoring case; a tie goes to the earlier option.

    (``difflib.get_close_matches`` breaks ties by the larger string: "ssd1360" would get
    "ssd1363" rather than the far commoner "ssd1306", listed first.)
    """
    import difflib  # only on a mistake: the daemon's start-up does not need it

    scored = [(difflib.SequenceMatcher(None, word.lower(), option.lower()).ratio(), -i, option)
              for i, option in enumerate(options)]
    score, _, best = max(scored, default=(0.0, 0, None))
    return best if score >= cutoff else None


def _unknown(path: Path, dotted: str, known: list[str], what: str,
             value: Any = None) -> ConfigError:
    near = _closest(dotted, known)
    shown = f" = {_show(value)}" if what == "key" else ""
    hint = f"; did you mean {near}?" if near else ""
    return ConfigError(f"{path}: unknown {what} {dotted}{shown}{hint}",
                       fix=f"rename or remove it (known: {', '.join(known)})",
                       key=dotted if what == "key" else "")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # escapes quotes and newlines: one line
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _type_word(value: Any) -> str:
    for kind, word in ((bool, "true/false"), (int, "a number"), (float, "a decimal number"),
                       (str, "a string"), (list, "a list"), (dict, "a table")):
        if isinstance(value, kind):
            return word
    return type(value).__name__
