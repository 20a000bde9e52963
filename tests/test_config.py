"""The device config: defaults, every error class and its message, the CLI's exit 78, examples.

Every message must name the file, the dotted key, the offending value and a fix, and reach
the user through the CLI as exactly one ``micromance: ...`` line on stderr with exit code 78.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import luma.oled.device
import pytest

from micromance import config as config_module
from micromance.config import (
    DEFAULT_PATH,
    DESKTOP_DRIVERS,
    ENV_VAR,
    LOG_LEVELS,
    OLED_DRIVERS,
    PRACTICES,
    RULES,
    SECTIONS,
    BrokerConfig,
    Config,
    DeviceConfig,
    DisplayConfig,
    HomeAssistantConfig,
    LoggingConfig,
    PairingConfig,
    PathsConfig,
    PinsConfig,
    PromptsConfig,
    QuietHoursConfig,
    load_config,
    parse_config,
    resolve_path,
)
from micromance.errors import EX_CONFIG, ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "firmware_config" / "micromance.toml"
DESKTOP = REPO / "firmware_config" / "desktop.toml"

ALL_FIELDS = [
    (section, f.name)
    for section, section_type in SECTIONS.items()
    for f in dataclasses.fields(section_type)
]


# --- helpers ---------------------------------------------------------------------------------


def write(tmp_path: Path, content: str | bytes, name: str = "config.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_from(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_code == EX_CONFIG == 78
    return str(caught.value)


def cli(*args: str, cwd: Path, env_config: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if env_config is not None:
        env[ENV_VAR] = env_config
    return subprocess.run(
        [sys.executable, "-m", "micromance", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def assert_one_line_config_error(result: subprocess.CompletedProcess) -> str:
    """Exit 78, nothing on stdout, one ``micromance: `` line on stderr; returns its text."""
    assert result.returncode == 78, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("micromance: ")
    return lines[0].removeprefix("micromance: ")


# --- the error table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A config text, the dotted key and the value its message must show, and more fragments."""

    id: str
    text: str
    key: str
    value: str
    extra: tuple[str, ...] = ()


BAD = [
    # wrong types
    Bad("string-for-pin", '[pins]\nthanks = "17"\n', "pins.thanks", '"17"',
        ("wrong type", "a whole number", "got a string", "thanks = 17")),
    Bad("float-for-width", "[display]\nwidth = 12.5\n", "display.width", "12.5",
        ("wrong type", "a whole number", "a decimal number", "width = 128")),
    Bad("string-for-bool", '[quiet_hours]\nenabled = "yes"\n', "quiet_hours.enabled", '"yes"',
        ("wrong type", "true or false", "enabled = true")),
    Bad("bool-for-int", "[display]\nwidth = true\n", "display.width", "true",
        ("wrong type", "a whole number")),
    Bad("int-for-string", "[broker]\nhost = 10\n", "broker.host", "10",
        ("wrong type", "a quoted string", 'host = "localhost"')),
    Bad("string-for-list", '[prompts]\ndisabled_practices = "calm"\n',
        "prompts.disabled_practices", '"calm"', ("a list of strings",)),
    Bad("numbers-in-list", "[prompts]\ndisabled_practices = [1, 2]\n",
        "prompts.disabled_practices", "[1, 2]", ("a list of strings",)),
    Bad("table-for-key", "[pins.thanks]\nbcm = 17\n", "pins.thanks", "{...}",
        ("wrong type", "a table")),
    Bad("bare-toml-time", "[quiet_hours]\nstart = 22:30:00\n", "quiet_hours.start", "22:30:00",
        ("wrong type", 'start = "22:30"')),
    # out of range
    Bad("pin-too-high", "[pins]\nled = 40\n", "pins.led", "40", ("out of range", "0 to 27", "BCM")),
    Bad("pin-negative", "[pins]\nthanks = -1\n", "pins.thanks", "-1", ("out of range",)),
    Bad("i2c-address", "[display]\ni2c_address = 0x99\n", "display.i2c_address", "153",
        ("out of range", "7-bit I2C address", "0x3C")),
    Bad("port-zero", "[broker]\nport = 0\n", "broker.port", "0",
        ("out of range", "1 to 65535", "default (8883)")),
    Bad("port-too-high", "[broker]\nport = 70000\n", "broker.port", "70000", ("1 to 65535",)),
    Bad("width-too-small", "[display]\nwidth = 8\n", "display.width", "8", ("32 to 256",)),
    Bad("interval-zero", "[prompts]\ninterval_minutes = 0\n", "prompts.interval_minutes", "0",
        ("out of range",)),
    Bad("rotate-degrees", "[display]\nrotate = 90\n", "display.rotate", "90",
        ("not a rotation", "2 (180°)")),
    # choices, with "did you mean"
    Bad("driver-typo", '[display]\ndriver = "ssd1360"\n', "display.driver", '"ssd1360"',
        ("not one of", "ssd1306", "did you mean", 'default ("ssd1306")')),
    Bad("driver-sh1106-typo", '[display]\ndriver = "sh1160"\n', "display.driver", '"sh1160"',
        ("did you mean",)),
    Bad("level-typo", '[logging]\nlevel = "warn"\n', "logging.level", '"warn"',
        ("not one of debug, info, warning, error", 'did you mean "warning"?')),
    Bad("interface", '[display]\ninterface = "ic2"\n', "display.interface", '"ic2"',
        ('did you mean "i2c"?',)),
    # clock times
    Bad("hour-25", '[quiet_hours]\nstart = "25:00"\n', "quiet_hours.start", '"25:00"',
        ("not a time of day", "HH:MM", '"22:30"')),
    Bad("no-leading-zero", '[quiet_hours]\nend = "7:00"\n', "quiet_hours.end", '"7:00"',
        ("HH:MM",)),
    Bad("focus-am-pm", '[prompts]\nfocus_time = "7:30am"\n', "prompts.focus_time", '"7:30am"',
        ("HH:MM",)),
    # other value rules
    Bad("long-name", '[device]\nname = "Samantha Alexandra"\n', "device.name",
        '"Samantha Alexandra"', ("1 to 16 characters",)),
    Bad("blank-name", '[device]\nname = "   "\n', "device.name", '"   "', ("1 to 16",)),
    Bad("empty-host", '[broker]\nhost = ""\n', "broker.host", '""', ("empty",)),
    Bad("room-space", '[broker]\nroom = "our room"\n', "broker.room", '"our room"',
        ("letters, digits",)),
    Bad("empty-state-dir", '[paths]\nstate_dir = ""\n', "paths.state_dir", '""',
        ("writable directory",)),
    Bad("unknown-practice", '[prompts]\ndisabled_practices = ["calm", "nope"]\n',
        "prompts.disabled_practices", '["calm", "nope"]', ("unknown practices", "'nope'")),
    Bad("every-practice-off", f"[prompts]\ndisabled_practices = {json.dumps(list(PRACTICES))}\n",
        "prompts.disabled_practices", json.dumps(list(PRACTICES)), ("keep at least one",)),
    # unknown names
    Bad("key-typo", "[display]\nwidht = 128\n", "display.widht", "128",
        ("unknown key", "did you mean display.width?", "display.height")),
    Bad("key-other-section", '[device]\nhost = "x"\n', "device.host", '"x"', ("unknown key",)),
    Bad("section-typo", "[pin]\nthanks = 17\n", "pin", "pin",
        ("unknown section pin", "did you mean pins?", "known: device, display, pins")),
    Bad("section-far-off", "[zzz]\n", "zzz", "zzz", ("unknown section zzz",)),
    Bad("section-as-value", "pins = 17\n", "pins", "17",
        ("pins = 17", "should be a section", "[pins]")),
    # combinations
    Bad("led-on-thanks-pin", "[pins]\nled = 17\n", "pins.led", "17",
        ("already used by pins.thanks", "its own GPIO")),
    Bad("two-buttons-one-pin", "[pins]\nthanks = 5\nnext = 5\n", "pins.next", "5",
        ("already used by pins.thanks",)),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_error_names_file_key_value_and_fix(bad: Bad, tmp_path: Path) -> None:
    path = write(tmp_path, bad.text)
    message = error_from(path)
    assert message.startswith(f"{path}: ")
    assert bad.key in message
    assert bad.value in message
    assert "fix" in message
    for fragment in bad.extra:
        assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_cli_prints_the_same_error_as_one_line_and_exits_78(bad: Bad, tmp_path: Path) -> None:
    path = write(tmp_path, bad.text)
    expected = error_from(path)
    shown = assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))
    assert shown == expected


def test_parse_config_names_whatever_path_it_is_given() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[pins]\nled = 40\n", Path("/somewhere/else.toml"))
    assert str(caught.value).startswith("/somewhere/else.toml: pins.led = 40 is out of range")


def test_first_error_wins_in_file_order(tmp_path: Path) -> None:
    message = error_from(write(tmp_path, "[display]\nwidht = 1\n[pins]\nled = 40\n"))
    assert "display.widht" in message
    assert "pins.led" not in message


@pytest.mark.parametrize(("section", "name"), ALL_FIELDS, ids=[f"{s}.{n}" for s, n in ALL_FIELDS])
def test_every_key_rejects_a_value_of_the_wrong_type(section: str, name: str) -> None:
    default = getattr(getattr(Config(), section), name)
    wrong = {bool: "1", int: '"1"', str: "1", tuple: "1"}[type(default)]
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[{section}]\n{name} = {wrong}\n", Path("c.toml"))
    message = str(caught.value)
    assert message.startswith(f"c.toml: {section}.{name} = {wrong} has the wrong type")
    assert f"fix: write it like {name} = " in message


# --- file-level errors -----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    message = error_from(path)
    assert message.startswith(f"{path}: config file not found")
    assert "fix" in message
    assert "firmware_config/micromance.toml" in message
    assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.mkdir()
    message = error_from(path)
    assert message.startswith(f"{path}: cannot read the config file")
    assert "directory" in message.lower()
    assert "fix: make it a readable UTF-8 text file" in message
    assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b'[device]\nname = "S\xe9bastien"\n')
    message = error_from(path)
    assert message.startswith(f"{path}: cannot read the config file")
    assert "utf-8" in message.lower()
    assert "0xe9" in message
    assert "fix" in message
    assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))


def test_bad_toml_syntax_gives_the_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, '[device]\nname = "Sam"\n[display\nwidth = 128\n')
    message = error_from(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 3" in message
    assert "fix" in message
    shown = assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))
    assert shown == message


def test_unquoted_string_is_a_syntax_error_with_a_hint(tmp_path: Path) -> None:
    message = error_from(write(tmp_path, "[device]\nname = Sam\n"))
    assert "line 2" in message
    assert 'strings need quotes, e.g. name = "Sam"' in message


def test_unknown_key_lists_every_known_key_of_its_section(tmp_path: Path) -> None:
    message = error_from(write(tmp_path, "[pins]\nbuzzer = 4\n"))
    assert "unknown key pins.buzzer = 4" in message
    assert message.endswith("(known: pins.thanks, pins.next, pins.led)")


# --- defaults and valid files ----------------------------------------------------------------


def test_no_file_means_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.source is None


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "[pins]\n[display]\n"],
                         ids=["empty", "blank-lines", "comment", "empty-sections"])
def test_empty_file_is_all_defaults(text: str, tmp_path: Path) -> None:
    path = write(tmp_path, text)
    config = load_config(path)
    assert config == replace(Config(), source=path)
    assert config.source == path


def test_defaults_match_the_contract() -> None:
    c = Config()
    assert c.device.name == "Sam"
    assert (c.display.driver, c.display.interface) == ("ssd1306", "i2c")
    assert (c.display.width, c.display.height, c.display.rotate) == (128, 64, 0)
    assert (c.display.i2c_port, c.display.i2c_address) == (1, 0x3C)
    assert (c.pins.thanks, c.pins.next, c.pins.led) == (17, 27, 18)
    assert c.prompts.interval_minutes == 45
    assert c.prompts.extra_file == ""
    assert c.quiet_hours.enabled is True
    assert (c.quiet_hours.start, c.quiet_hours.end) == ("22:30", "07:00")
    assert (c.broker.host, c.broker.port, c.broker.tls) == ("localhost", 8883, True)
    assert (c.broker.ca_file, c.broker.username, c.broker.password_file, c.broker.room) == (
        "", "", "", "")
    assert c.paths.state_dir == "/var/lib/micromance"
    assert c.state_dir == Path("/var/lib/micromance")
    assert c.logging.level == "info"
    assert str(DEFAULT_PATH) == "/etc/micromance/config.toml"
    assert str(ENV_VAR) == "MICROMANCE_CONFIG"


FULL = """\
[device]
name = "Alex"
received_timeout_minutes = 30

[display]
driver = "sh1106"
interface = "spi"
width = 96
height = 32
rotate = 2
i2c_port = 3
i2c_address = 0x3D
spi_port = 1
spi_device = 1
gpio_dc = 23
gpio_reset = 22
contrast = 255
dim_contrast = 0
dim_after_minutes = 1
pixel_shift = false

[pins]
thanks = 5
next = 6
led = 13

[prompts]
interval_minutes = 1440
focus_time = "06:05"
extra_file = "/home/alex/prompts.toml"
disabled_practices = ["calm", "delight"]

[quiet_hours]
enabled = false
start = "23:59"
end = "00:00"

[broker]
host = "mqtt.example.org"
port = 65535
tls = false
ca_file = "/etc/ssl/ca.pem"
client_cert = "/etc/micromance/client.pem"
client_key = "/etc/micromance/client.key"
username = "alex"
password_file = "/etc/micromance/password"
room = "alex-and-sam_2"
keepalive = 3600

[pairing]
room = "kitchen-lobby"

[homeassistant]
enabled = true
host = "ha.home.arpa"
port = 8884
tls = true
ca_file = "/etc/ssl/home-ca.pem"
client_cert = "/etc/micromance/ha.crt"
client_key = "/etc/micromance/ha.key"
username = "micromance"
password_file = "/etc/micromance/ha-password"
keepalive = 120
prefix = "ha/discovery"

[paths]
state_dir = "/srv/micromance"

[logging]
level = "debug"
"""


def test_full_file_round_trips_every_key(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    assert load_config(path) == Config(
        device=DeviceConfig(name="Alex", received_timeout_minutes=30),
        display=DisplayConfig(
            driver="sh1106", interface="spi", width=96, height=32, rotate=2, i2c_port=3,
            i2c_address=0x3D, spi_port=1, spi_device=1, gpio_dc=23, gpio_reset=22,
            contrast=255, dim_contrast=0, dim_after_minutes=1, pixel_shift=False),
        pins=PinsConfig(thanks=5, next=6, led=13),
        prompts=PromptsConfig(interval_minutes=1440, focus_time="06:05",
                              extra_file="/home/alex/prompts.toml",
                              disabled_practices=("calm", "delight")),
        quiet_hours=QuietHoursConfig(enabled=False, start="23:59", end="00:00"),
        broker=BrokerConfig(
            host="mqtt.example.org", port=65535, tls=False, ca_file="/etc/ssl/ca.pem",
            client_cert="/etc/micromance/client.pem", client_key="/etc/micromance/client.key",
            username="alex", password_file="/etc/micromance/password", room="alex-and-sam_2",
            keepalive=3600),
        broker_named=True,
        pairing=PairingConfig(room="kitchen-lobby"),
        homeassistant=HomeAssistantConfig(
            enabled=True, host="ha.home.arpa", port=8884, tls=True,
            ca_file="/etc/ssl/home-ca.pem", client_cert="/etc/micromance/ha.crt",
            client_key="/etc/micromance/ha.key", username="micromance",
            password_file="/etc/micromance/ha-password", keepalive=120,
            prefix="ha/discovery"),
        paths=PathsConfig(state_dir="/srv/micromance"),
        logging=LoggingConfig(level="debug"),
        source=path,
    )


def test_full_file_sets_every_key() -> None:
    """FULL above must keep covering every key, or the round trip proves less than it says."""
    data = tomllib.loads(FULL)
    assert {(s, k) for s, table in data.items() for k in table} == set(ALL_FIELDS)
    defaults = Config()
    for section, name in ALL_FIELDS:
        default = getattr(getattr(defaults, section), name)
        assert data[section][name] != default, f"{section}.{name} is left at its default"


def test_a_partial_section_keeps_the_other_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[pins]\nled = 12\n[display]\nheight = 32\n"))
    assert config.pins == PinsConfig(led=12)
    assert config.display == DisplayConfig(height=32)
    assert config.broker == BrokerConfig()


def test_values_are_normalised(tmp_path: Path) -> None:
    config = load_config(write(
        tmp_path, '[device]\nname = "  Sam  "\n[prompts]\ndisabled_practices = ["calm"]\n'))
    assert config.device.name == "Sam"
    assert config.prompts.disabled_practices == ("calm",)
    assert isinstance(config.prompts.disabled_practices, tuple)


def test_i2c_address_can_be_written_in_hex_or_decimal(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[display]\ni2c_address = 0x3d\n")).display.i2c_address \
        == 0x3D
    assert load_config(write(tmp_path, "[display]\ni2c_address = 61\n")).display.i2c_address \
        == 0x3D


def test_relative_state_dir_is_used_as_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[paths]\nstate_dir = ".state/unit"\n'))
    assert config.paths.state_dir == ".state/unit"
    assert config.state_dir == Path(".state/unit")
    assert not config.state_dir.is_absolute()


def test_quiet_window_may_cross_midnight_or_be_empty(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[quiet_hours]\nstart = "00:00"\nend = "00:00"\n'))
    assert (config.quiet_hours.start, config.quiet_hours.end) == ("00:00", "00:00")


def test_every_pixel_driver_is_a_luma_oled_device() -> None:
    for name in OLED_DRIVERS:
        assert hasattr(luma.oled.device, name), name
        assert isinstance(getattr(luma.oled.device, name), type), name
    assert not set(OLED_DRIVERS) & set(DESKTOP_DRIVERS)


@pytest.mark.parametrize("driver", OLED_DRIVERS + DESKTOP_DRIVERS)
def test_every_listed_driver_is_accepted(driver: str) -> None:
    config = parse_config(f'[display]\ndriver = "{driver}"\n', Path("c.toml"))
    assert config.display.driver == driver


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_every_log_level_is_accepted(level: str) -> None:
    assert parse_config(f'[logging]\nlevel = "{level}"\n', Path("c.toml")).logging.level == level


def test_rules_only_name_real_keys_and_defaults_pass_them() -> None:
    """A rule filed under a misspelt key would silently never run."""
    dotted = {f"{s}.{n}" for s, n in ALL_FIELDS}
    assert set(RULES) <= dotted
    defaults = Config()
    for key, rule in RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(defaults, section), name)
        assert rule(value) == value, key


def test_every_section_and_key_has_a_default() -> None:
    for section_type in SECTIONS.values():
        for f in dataclasses.fields(section_type):
            assert f.default is not dataclasses.MISSING, f"{section_type.__name__}.{f.name}"
    assert list(SECTIONS) == ["device", "display", "pins", "prompts", "quiet_hours", "broker",
                              "pairing", "homeassistant", "paths", "logging"]


# --- where the config comes from -------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(ENV_VAR, raising=False)
    return monkeypatch


def test_resolve_prefers_the_command_line(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    etc = write(tmp_path, "", "etc.toml")
    no_env.setattr(config_module, "DEFAULT_PATH", etc)
    no_env.setenv(ENV_VAR, str(tmp_path / "env.toml"))
    assert resolve_path(str(tmp_path / "cli.toml")) == tmp_path / "cli.toml"
    assert resolve_path(tmp_path / "cli.toml") == tmp_path / "cli.toml"


def test_resolve_then_the_environment(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    etc = write(tmp_path, "", "etc.toml")
    no_env.setattr(config_module, "DEFAULT_PATH", etc)
    no_env.setenv(ENV_VAR, str(tmp_path / "env.toml"))
    assert resolve_path(None) == tmp_path / "env.toml"
    assert resolve_path("") == tmp_path / "env.toml"


def test_resolve_then_etc_if_it_exists(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    etc = tmp_path / "etc.toml"
    no_env.setattr(config_module, "DEFAULT_PATH", etc)
    assert resolve_path(None) is None
    etc.write_text("")
    assert resolve_path(None) == etc
    no_env.setenv(ENV_VAR, "")
    assert resolve_path(None) == etc


def test_resolve_none_means_defaults(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_env.setattr(config_module, "DEFAULT_PATH", tmp_path / "absent.toml")
    assert resolve_path(None) is None
    assert load_config(resolve_path(None)) == Config()


def test_cli_reads_the_environment_variable(tmp_path: Path) -> None:
    bad = write(tmp_path, "[pins]\nled = 40\n", "env.toml")
    shown = assert_one_line_config_error(cli("status", cwd=tmp_path, env_config=str(bad)))
    assert shown.startswith(f"{bad}: pins.led = 40")


def test_cli_config_option_beats_the_environment(tmp_path: Path) -> None:
    bad = write(tmp_path, "[pins]\nled = 40\n", "env.toml")
    good = write(tmp_path, '[paths]\nstate_dir = "state"\n', "good.toml")
    result = cli("status", "--json", "--config", str(good), cwd=tmp_path, env_config=str(bad))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"] == str(good)
    assert report["state_dir"] == "state"


# --- the shipped example configs -------------------------------------------------------------


def test_example_config_is_exactly_the_defaults() -> None:
    assert load_config(EXAMPLE) == replace(Config(), source=EXAMPLE)


def commented(text: str, section: str) -> dict:
    """A table of the example that is commented out (the broker: so that the public brokers
    are used; Home Assistant: off unless asked for)."""
    start = text.index(f"# [{section}]\n")
    block = []
    for line in text[start:].splitlines():
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else "")
    return tomllib.loads("\n".join(block))[section]


def test_example_config_lists_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = {**tomllib.loads(text), "broker": commented(text, "broker"),
            "homeassistant": commented(text, "homeassistant")}
    assert sorted(data) == sorted(SECTIONS)
    for section, section_type in SECTIONS.items():
        assert list(data[section]) == [f.name for f in dataclasses.fields(section_type)], section
    assert BrokerConfig(**data["broker"]) == BrokerConfig()  # the commented values: defaults
    # ...but `enabled`: uncommenting the table switches it on
    assert HomeAssistantConfig(**data["homeassistant"]) == HomeAssistantConfig(enabled=True)


def test_example_config_explains_every_key() -> None:
    """Each key line has a comment on it or directly above it (a comment block may cover two)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    assignment = re.compile(r"^(\w+)\s*=")
    for number, line in enumerate(lines):
        if not assignment.match(line):
            continue
        above = number - 1
        while above >= 0 and assignment.match(lines[above]):
            above -= 1
        assert "#" in line or lines[above].startswith("#"), f"line {number + 1}: {line}"
    assert max(len(line) for line in lines) <= 100


def test_example_config_gives_header_pins_for_the_wiring() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for bcm, header in ((17, 11), (27, 13), (18, 12)):
        assert re.search(rf"BCM{bcm} = physical pin {header}\b", text), bcm
    for fragment in ("SDA -> pin 3", "SCL -> pin 5", "VCC -> pin 1 (3.3V)", "pin 9 (GND)"):
        assert fragment in text


def test_desktop_config() -> None:
    config = load_config(DESKTOP)
    assert config.source == DESKTOP
    assert config.display.driver == "terminal"
    assert config.display.driver in DESKTOP_DRIVERS
    assert (config.display.width, config.display.height) == (128, 64)
    assert config.paths.state_dir == ".state/unit"
    assert config.state_dir == Path(".state/unit")
    assert (config.broker.host, config.broker.port, config.broker.tls) == ("localhost", 1883,
                                                                           False)
    assert config.quiet_hours.enabled is False
    assert config.device.name == "Sam"
    # Everything it does not mention keeps the shipped default.
    assert config.pins == PinsConfig()
    assert config.prompts == PromptsConfig()
    assert replace(config.broker, port=1883, tls=False) == config.broker


def test_desktop_config_through_the_cli(tmp_path: Path) -> None:
    result = cli("status", "--json", "--config", str(DESKTOP), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["config"] == str(DESKTOP)
    assert report["state_dir"] == ".state/unit"
    assert report["name"] == "Sam"
    assert not (tmp_path / ".state").exists()  # status reads, it never creates state


# --- edge cases found while writing these tests ------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [("ssd1360", "ssd1306"), ("sh1160", "sh1106")])
def test_driver_typo_suggests_the_common_driver(typo: str, meant: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[display]\ndriver = "{typo}"\n', Path("c.toml"))
    assert f'did you mean "{meant}"?' in str(caught.value)


def test_upper_case_choice_gets_a_hint() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[logging]\nlevel = "INFO"\n', Path("c.toml"))
    assert 'did you mean "info"?' in str(caught.value)


def test_key_outside_any_section_names_its_section() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('name = "Sam"\n[pins]\n', Path("c.toml"))
    assert "device.name" in str(caught.value) or "[device]" in str(caught.value)


def test_value_with_a_newline_still_gives_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[device]\nname = "Sam\\nand a very long tail"\n')
    shown = assert_one_line_config_error(cli("status", "--config", str(path), cwd=tmp_path))
    assert "device.name" in shown


@pytest.mark.parametrize("text", [
    '[display]\ninterface = "spi"\n[pins]\nthanks = 24\n',  # SPI DC line (display.gpio_dc)
    "[pins]\nnext = 2\n",  # I2C SDA (BCM2, header pin 3) of the default i2c panel
], ids=["button-on-spi-dc", "button-on-i2c-sda"])
def test_pin_shared_with_the_display_is_rejected(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(text, Path("c.toml"))


def test_state_dir_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = parse_config('[paths]\nstate_dir = "~/micromance"\n', Path("c.toml"))
    assert config.state_dir == tmp_path / "micromance"


# --- several brokers (array of tables) -------------------------------------------------------


def test_no_broker_named_means_the_shipped_public_brokers(tmp_path: Path) -> None:
    from micromance.config import PUBLIC_BROKERS

    config = load_config(write(tmp_path, '[device]\nname = "Sam"\n'))
    assert config.brokers == ()
    assert len(PUBLIC_BROKERS) >= 3 and all(b.tls and b.port in (8883, 8886)
                                            for b in PUBLIC_BROKERS)


def test_one_broker_table_works_as_before(tmp_path: Path) -> None:
    config = load_config(write(
        tmp_path, '[broker]\nhost = "mqtt.example.org"\nport = 1883\ntls = false\n'
                  'room = "kitchen"\n'))
    assert config.brokers == (BrokerConfig(host="mqtt.example.org", port=1883, tls=False,
                                           room="kitchen"),)
    assert config.room == "kitchen"


def test_several_brokers_as_an_array_of_tables(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '''\
[[broker]]
host = "127.0.0.1"
port = 18831
tls = false

[[broker]]
host = "127.0.0.1"
port = 18832
tls = false

[pairing]
room = "sam-and-alex"
'''))
    assert [(b.host, b.port, b.tls) for b in config.brokers] == [
        ("127.0.0.1", 18831, False), ("127.0.0.1", 18832, False)]
    assert config.room == "sam-and-alex"


def test_mixing_broker_and_brokers_says_how_to_fix_it(tmp_path: Path) -> None:
    path = write(tmp_path, '[broker]\nhost = "a"\n\n[[broker]]\nhost = "b"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in caught.value.message and "[[broker]]" in caught.value.message
    assert "[pairing] room" in caught.value.fix


def test_each_broker_of_the_array_is_checked_and_the_room_lives_in_pairing(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"broker\.port = 0 .*out of range"):
        load_config(write(tmp_path, '[[broker]]\nhost = "a"\nport = 0\n'))
    with pytest.raises(ConfigError, match=r"\[pairing\] room"):
        load_config(write(tmp_path, '[[broker]]\nhost = "a"\nroom = "x"\n'))
    with pytest.raises(ConfigError, match=r"unknown key broker\.hots"):
        load_config(write(tmp_path, '[[broker]]\nhots = "a"\n'))


def test_a_broker_named_twice_or_too_many_brokers_are_refused(tmp_path: Path) -> None:
    twice = '[[broker]]\nhost = "a"\n\n[[broker]]\nhost = "b"\n\n[[broker]]\nhost = "a"\n'
    with pytest.raises(ConfigError, match=r"number 3 is a:8883 again \(number 1 is too\)"):
        load_config(write(tmp_path, twice))
    many = "".join(f'[[broker]]\nhost = "h{i}"\n' for i in range(9))
    with pytest.raises(ConfigError, match=r"9 \[\[broker\]\] tables") as caught:
        load_config(write(tmp_path, many))
    assert "at most 8" in caught.value.fix


def test_home_assistant_is_off_unless_its_table_is_there(tmp_path: Path) -> None:
    assert not load_config(write(tmp_path, "")).homeassistant.enabled
    on = load_config(write(tmp_path, '[homeassistant]\nhost = "ha.local"\n')).homeassistant
    assert (on.enabled, on.host, on.port, on.tls, on.prefix) == (
        True, "ha.local", 1883, False, "homeassistant")
    off = load_config(write(tmp_path, "[homeassistant]\nenabled = false\n")).homeassistant
    assert not off.enabled
    assert on.broker == BrokerConfig(host="ha.local", port=1883, tls=False)
    with pytest.raises(ConfigError, match=r'homeassistant\.prefix = "a/#" is not a topic'):
        load_config(write(tmp_path, '[homeassistant]\nprefix = "a/#"\n'))
    with pytest.raises(ConfigError, match=r"unknown key homeassistant\.room"):
        load_config(write(tmp_path, '[homeassistant]\nroom = "lobby"\n'))


def test_a_pin_clash_blames_the_line_edited_last(tmp_path: Path) -> None:
    """Moving THANKS onto the LED's pin names pins.thanks (the line that changed), not the LED."""
    with pytest.raises(ConfigError) as moved:
        load_config(write(tmp_path, "[pins]\nthanks = 18\n"))
    assert "pins.thanks = 18 (line 2) is already used by pins.led" in moved.value.message
    with pytest.raises(ConfigError) as later:
        load_config(write(tmp_path, "[pins]\nled = 5\nnext = 6\nthanks = 5\n"))
    assert "pins.thanks = 5 (line 4) is already used by pins.led" in later.value.message
