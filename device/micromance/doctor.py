"""``micromance doctor``: find out what is wrong with a unit without reading code.

The checks run in the order a unit needs things (config, I2C, display, GPIO, pins, clock,
broker, pairing, Wi-Fi) and print one line each: ``✓`` pass, ``!`` warning, ``✗`` failure
with a fix, ``-`` skipped because an earlier check failed. The exit status is 1 when
anything failed (warnings allowed), so scripts can use it too.

Every contact with the outside world goes through :class:`Probes`, so the tests simulate each
failure without a Pi; the defaults talk to the real kernel, gpiozero and broker.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from micromance.config import OLED_DRIVERS, BrokerConfig, Config, load_config, resolve_path
from micromance.errors import ConfigError, LinkError, MicromanceError
from micromance.link.client import connect_properties, new_client, tls_context
from micromance.status import read_live_facts

#: How long one network step (DNS excepted) may take before doctor calls it a failure.
NETWORK_TIMEOUT = 5.0
#: The other address these panels are strapped to.
OTHER_OLED_ADDRESS = {0x3C: 0x3D, 0x3D: 0x3C}
#: Header pins of I2C bus 1, for wiring hints.
BUS1_WIRING = "SDA to pin 3, SCL to pin 5, VCC to pin 1 (3.3 V), GND to pin 6"
BOOT_CONFIGS = ("/boot/firmware/config.txt", "/boot/config.txt")
SBIN_PATH = "/usr/sbin:/sbin"
RUN_AS_ROOT = "run doctor as root (sudo micromance doctor) or as the service user"


class Outcome(Enum):
    PASS = "✓"
    WARN = "!"
    FAIL = "✗"
    SKIP = "-"


@dataclass(frozen=True)
class Result:
    name: str
    outcome: Outcome
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.outcome.value} {self.name}: {self.message}"
        return f"{text} — fix: {self.fix}" if self.fix else text


def passed(name: str, message: str) -> Result:
    return Result(name, Outcome.PASS, message)


def warned(name: str, message: str, fix: str = "") -> Result:
    return Result(name, Outcome.WARN, message, fix)


def failed(name: str, message: str, fix: str) -> Result:
    return Result(name, Outcome.FAIL, message, fix)


def skipped(name: str, message: str) -> Result:
    return Result(name, Outcome.SKIP, message)


# --- the broker session's findings --------------------------------------------------------


class BrokerRefused(Exception):
    """The broker answered but said no (CONNACK, SUBACK or PUBACK with a failure code)."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class SessionPlan:
    """What the MQTT step does: log in, subscribe, ping ``ping_topic`` and read retained ones."""

    client_id: str
    ping_topic: str
    watch_topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionReport:
    round_trip_ms: float
    retained: Mapping[str, bytes] = field(default_factory=dict)


# --- probes: the outside world, injectable -------------------------------------------------


@dataclass
class Probes:
    """Everything doctor touches outside Python. Each failure is an exception, as in real life."""

    exists: Callable[[str], bool] = os.path.exists
    read_text: Callable[[str], str] = lambda path: Path(path).read_text()
    list_paths: Callable[[str], list[str]] = lambda pattern: sorted(glob.glob(pattern))
    open_rw: Callable[[str], None] = lambda path: os.close(os.open(path, os.O_RDWR))
    #: (bus, address): returns when a device acknowledges, OSError otherwise.
    i2c_answers: Callable[[int, int], None] = lambda bus, address: _i2c_quick_write(bus, address)
    pin_factory: Callable[[], Any] = lambda: _default_pin_factory()
    #: (factory, BCM pin, as_output): claim the pin and release it again.
    claim_pin: Callable[[Any, int, bool], None] = lambda f, pin, out: _claim_pin(f, pin, out)
    #: Run a command; its stdout, or None when it is missing or fails.
    command: Callable[[list[str]], str | None] = lambda argv: _run_command(argv)
    resolve: Callable[[str, int], list[str]] = lambda host, port: _resolve(host, port)
    tcp_connect: Callable[[str, int, float], None] = lambda a, p, t: _tcp_connect(a, p, t)
    tls_handshake: Callable[[BrokerConfig, float], None] = lambda b, t: _tls_handshake(b, t)
    mqtt_session: Callable[[BrokerConfig, SessionPlan, float], SessionReport] = (
        lambda b, plan, t: _mqtt_session(b, plan, t))
    #: What the running daemon last wrote (status.json), or None when it is not running.
    live_facts: Callable[[Config], dict[str, Any] | None] = read_live_facts
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    timeout: float = NETWORK_TIMEOUT


@dataclass
class Context:
    """What the checks learn and hand on to later ones."""

    probes: Probes
    config_arg: str | None = None
    config: Config | None = None
    i2c_ok: bool = False
    pin_factory: Any = None
    broker_reports: list[SessionReport] = field(default_factory=list)  # brokers that answered
    cleanups: list[Callable[[], None]] = field(default_factory=list)


# --- the checks, in order -----------------------------------------------------------------


def check_config(ctx: Context) -> Result:
    path = resolve_path(ctx.config_arg)
    try:
        ctx.config = load_config(path)
    except ConfigError as error:
        return failed("config", error.message, error.fix or "correct the file (see the "
                      "example: firmware_config/micromance.toml)")
    if path is None:
        return warned("config", "no config file (/etc/micromance/config.toml): using the "
                      "built-in defaults (the public brokers, reference wiring)",
                      "sudo cp firmware_config/micromance.toml /etc/micromance/config.toml "
                      "and edit it (install.sh does this)")
    return passed("config", f"{path} is valid")


def check_i2c(ctx: Context) -> Result:
    display = _config(ctx).display
    if display.driver not in OLED_DRIVERS:
        return skipped("i2c", f'display.driver = "{display.driver}" needs no bus')
    if display.interface == "spi":
        return _check_spi(ctx)
    path = f"/dev/i2c-{display.i2c_port}"
    probes = ctx.probes
    if not probes.exists(path):
        if display.i2c_port == 1 and _i2c_in_boot_config(probes):
            return failed("i2c", f"I2C is switched on in config.txt but {path} is missing",
                          "reboot (the firmware reads config.txt at power-on): sudo reboot")
        return failed("i2c", f"I2C bus {display.i2c_port} is off ({path} is missing)",
                      "sudo ./install.sh switches it on (or: sudo raspi-config nonint do_i2c "
                      "0), then sudo reboot")
    try:
        probes.open_rw(path)
    except PermissionError:
        return failed("i2c", f"no permission to open {path}",
                      f"sudo usermod -aG i2c micromance (install.sh does), or {RUN_AS_ROOT}")
    except OSError as error:
        return failed("i2c", f"cannot open {path} ({_reason(error)})",
                      "check that I2C is enabled (sudo raspi-config nonint do_i2c 0) and reboot")
    ctx.i2c_ok = True
    return passed("i2c", f"I2C bus {display.i2c_port} is on ({path})")


def _check_spi(ctx: Context) -> Result:
    display = _config(ctx).display
    path = f"/dev/spidev{display.spi_port}.{display.spi_device}"
    if not ctx.probes.exists(path):
        return failed("i2c", f"the SPI display's {path} is missing",
                      "switch SPI on: sudo raspi-config nonint do_spi 0, then sudo reboot")
    return passed("i2c", f"SPI display: {path} is there (not I2C)")


def check_display(ctx: Context) -> Result:
    display = _config(ctx).display
    if display.driver not in OLED_DRIVERS:
        return skipped("display", f'display.driver = "{display.driver}": nothing to probe')
    if display.interface == "spi":
        return skipped("display", "an SPI panel cannot be probed (SPI has no acknowledge)")
    if not ctx.i2c_ok:
        return skipped("display", "skipped: the I2C bus is not usable (see i2c)")
    bus, address = display.i2c_port, display.i2c_address
    try:
        ctx.probes.i2c_answers(bus, address)
    except OSError as error:
        return _display_silent(ctx, bus, address, error)
    return passed("display", f"{display.driver} answers at 0x{address:02X} on I2C bus {bus}")


def _display_silent(ctx: Context, bus: int, address: int, error: OSError) -> Result:
    if error.errno == errno.EBUSY:
        return failed("display", f"0x{address:02X} on I2C bus {bus} is taken by a kernel driver",
                      "remove any dtoverlay=ssd1306 line from config.txt and reboot")
    other = OTHER_OLED_ADDRESS.get(address)
    if other is not None and _answers(ctx, bus, other):
        return failed("display", f"nothing answers at 0x{address:02X} on I2C bus {bus}, but "
                      f"something does at 0x{other:02X}",
                      f"set display.i2c_address = 0x{other:02X} in the config")
    wiring = f"check wiring ({BUS1_WIRING})" if bus == 1 else "check the wiring"
    return failed("display", f"nothing answers at 0x{address:02X} on I2C bus {bus}",
                  f"{wiring} and run i2cdetect -y {bus}")


def _answers(ctx: Context, bus: int, address: int) -> bool:
    try:
        ctx.probes.i2c_answers(bus, address)
    except OSError:
        return False
    return True


def check_gpio(ctx: Context) -> Result:
    probes = ctx.probes
    mock = probes.environ.get("GPIOZERO_PIN_FACTORY", "") == "mock"
    if not mock:
        chip_problem = _gpio_chip_problem(probes)
        if chip_problem is not None:
            return chip_problem
    try:
        factory = probes.pin_factory()
    except ImportError as error:  # gpiozero's BadPinFactory is an ImportError
        return failed("gpio", f"gpiozero found no pin library ({_one_line(error)})",
                      "sudo apt install python3-lgpio; the venv must see system packages "
                      "(install.sh makes it with --system-site-packages)")
    except PermissionError as error:
        return failed("gpio", f"no permission for the GPIO chip ({_one_line(error)})",
                      f"sudo usermod -aG gpio micromance (install.sh does), or {RUN_AS_ROOT}")
    except Exception as error:  # pin libraries raise their own kinds
        return failed("gpio", f"gpiozero cannot use the GPIO chip ({_one_line(error)})",
                      "check that python3-lgpio is installed and you are on a Raspberry Pi")
    ctx.pin_factory = factory
    ctx.cleanups.append(lambda: _close_quietly(factory))
    if mock:
        return warned("gpio", "gpiozero uses mock pins (GPIOZERO_PIN_FACTORY=mock): no real "
                      "GPIO checked", "unset GPIOZERO_PIN_FACTORY on the Pi")
    return passed("gpio", f"GPIO chip usable through {type(factory).__name__}")


def _gpio_chip_problem(probes: Probes) -> Result | None:
    chips = probes.list_paths("/dev/gpiochip*")
    if not chips:
        return failed("gpio", "no GPIO chip (/dev/gpiochip* is missing)",
                      "run on a Raspberry Pi; on a desktop set GPIOZERO_PIN_FACTORY=mock "
                      "GPIOZERO_MOCK_PIN_CLASS=mockpwmpin")
    try:
        probes.open_rw(chips[0])
    except PermissionError:
        return failed("gpio", f"no permission to open {chips[0]}",
                      f"sudo usermod -aG gpio micromance (install.sh does), or {RUN_AS_ROOT}")
    except OSError as error:
        return failed("gpio", f"cannot open {chips[0]} ({_reason(error)})",
                      "check the kernel's GPIO support (ls -l /dev/gpiochip*)")
    return None


def check_pins(ctx: Context) -> Result:
    pins = _config(ctx).pins
    named = (("THANKS", pins.thanks, False), ("NEXT", pins.next, False), ("LED", pins.led, True))
    listing = ", ".join(f"{name} GPIO{pin}" for name, pin, _ in named)
    if ctx.pin_factory is None:
        return skipped("pins", "skipped: no usable GPIO (see gpio)")
    live = ctx.probes.live_facts(_config(ctx))
    if live is not None:
        return passed("pins", f"{listing} are held by the running service (pid "
                      f"{live.get('pid')}), as they should be")
    for name, pin, as_output in named:
        problem = _claim(ctx, name, pin, as_output)
        if problem is not None:
            return problem
    return passed("pins", f"{listing} are free")


def _claim(ctx: Context, name: str, pin: int, as_output: bool) -> Result | None:
    try:
        ctx.probes.claim_pin(ctx.pin_factory, pin, as_output)
    except Exception as error:  # gpiozero and lgpio have their own exception kinds
        if _is_busy(error):
            return failed("pins", f"{name} GPIO{pin} is in use by another program",
                          "stop it (if it is micromance: sudo systemctl stop micromance; "
                          "gpioinfo shows the holder) or choose other pins in [pins]")
        return failed("pins", f"cannot use {name} GPIO{pin} ({_one_line(error)})",
                      "use a BCM number from 2 to 27 in [pins] that nothing else uses")
    return None


def _is_busy(error: BaseException) -> bool:
    if type(error).__name__ == "GPIOPinInUse":
        return True
    if isinstance(error, OSError) and error.errno == errno.EBUSY:
        return True
    return "busy" in str(error).lower()


def check_clock(ctx: Context) -> Result:
    probes = ctx.probes
    answer = probes.command(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    synchronised = answer.strip() == "yes" if answer is not None else None
    if synchronised is None and probes.exists("/run/systemd/timesync/synchronized"):
        synchronised = True
    if synchronised:
        return passed("clock", "synchronised (NTP)")
    if synchronised is None:
        return warned("clock", "cannot tell whether the clock is synchronised (timedatectl "
                      "gave no answer)",
                      "check the date with: date; a Pi has no battery clock, so it needs NTP")
    return failed("clock", "not synchronised: the Pi has no battery clock, so TLS certificates "
                  "and quiet hours go wrong",
                  "connect to the network and wait a minute; check timedatectl "
                  "timesync-status; sudo systemctl restart systemd-timesyncd")


def check_brokers(ctx: Context) -> list[Result]:
    """One line per broker the unit uses, all probed at once (a dead one costs its timeout
    once, not once per broker). A broker that fails while another works is a warning: the
    unit gets through, only with one path less."""
    config = _config(ctx)
    pair = _pair_or_none(ctx)
    from micromance.link.courier import brokers_for

    brokers = brokers_for(config, pair)
    checks = [_BrokerCheck(ctx.probes, broker, pair) for broker in brokers]
    threads = [threading.Thread(target=check.run, daemon=True) for check in checks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ctx.broker_reports = [c.report for c in checks if c.report is not None]
    several = len(checks) > 1
    results = []
    for number, check in enumerate(checks, 1):
        result = check.result
        if several:
            result = replace(result, name=f"broker {number}")
            if result.outcome is Outcome.FAIL and ctx.broker_reports:
                result = replace(result, outcome=Outcome.WARN)
        results.append(result)
    return results


class _BrokerCheck:
    """DNS, TCP, TLS and an MQTT session with one broker; the first step that fails names the
    problem. Runs on its own thread: it only reads its inputs and sets ``result``."""

    def __init__(self, probes: Probes, broker: BrokerConfig, pair: Any) -> None:
        self.probes = probes
        self.broker = broker
        self.pair = pair
        self.where = f"{broker.host}:{broker.port}"
        self.report: SessionReport | None = None
        self.result = failed("broker", f"{self.where}: the check did not finish",
                             "please report this line as a bug")

    def run(self) -> None:
        try:
            self.result = self._check()
        except MicromanceError as error:
            self.result = failed("broker", error.message, error.fix or "see the message")
        except Exception as error:
            self.result = failed("broker", f"the check itself broke ({type(error).__name__}: "
                                 f"{_one_line(error)})", "please report this line as a bug")

    def _check(self) -> Result:
        broker = self.broker
        try:
            addresses = self.probes.resolve(broker.host, broker.port)
        except OSError as error:
            return failed("broker", f'cannot resolve broker.host "{broker.host}" (DNS: '
                          f"{_reason(error)})",
                          f"check broker.host for typos and the Pi's network: "
                          f"ping -c1 {broker.host}")
        problem = self._tcp_problem(addresses)
        if problem is None and broker.tls:
            problem = self._tls_problem()
        return problem or self._mqtt_result()

    def _tcp_problem(self, addresses: list[str]) -> Result | None:
        where, timeout = self.where, self.probes.timeout
        last: OSError | None = None
        for address in addresses:
            try:
                self.probes.tcp_connect(address, self.broker.port, timeout)
                return None
            except OSError as error:
                last = error
        if isinstance(last, ConnectionRefusedError):
            return failed("broker", f"{where} refused the connection (TCP)",
                          "is the broker running and listening on that port? check "
                          "broker.port (8883 for TLS, 1883 without)")
        if isinstance(last, TimeoutError):
            return failed("broker", f"no answer from {where} within {timeout:g} s (TCP)",
                          "a firewall may block the port; check broker.host and broker.port")
        reason = _reason(last) if last else "no address"
        return failed("broker", f"cannot connect to {where} (TCP: {reason})",
                      "check the Pi's network (ip route) and broker.host")

    def _tls_problem(self) -> Result | None:
        broker, where, timeout = self.broker, self.where, self.probes.timeout
        not_tls = ("the port may not speak TLS: use the broker's TLS port (usually 8883) or "
                   "set broker.tls = false")
        try:
            self.probes.tls_handshake(broker, timeout)
        except ssl.SSLCertVerificationError as error:
            return failed("broker", f"{where}: the broker's certificate is not trusted (TLS: "
                          f"{error.verify_message or _one_line(error)})",
                          _certificate_fix(error, broker))
        except FileNotFoundError as error:
            return failed("broker", f"a TLS file named in [broker] is missing "
                          f"({error.filename})",
                          "check broker.ca_file, broker.client_cert and broker.client_key")
        except (ssl.SSLError, ConnectionError) as error:
            return failed("broker", f"{where}: TLS handshake failed ({_one_line(error)})",
                          not_tls)
        except TimeoutError:
            return failed("broker", f"{where}: no TLS answer within {timeout:g} s", not_tls)
        except OSError as error:
            return failed("broker", f"{where}: TLS set-up failed ({_reason(error)})",
                          "check broker.ca_file, broker.client_cert and broker.client_key")
        return None

    def _mqtt_result(self) -> Result:
        broker, where = self.broker, self.where
        try:
            report = self.probes.mqtt_session(broker, _session_plan(self.pair),
                                              self.probes.timeout)
        except BrokerRefused as refused:
            return self._refusal(refused)
        except TimeoutError as error:
            return failed("broker", f"{where}: MQTT went silent ({_one_line(error)})",
                          "check that it is an MQTT broker and that its ACL lets this unit "
                          "use its topics (firmware_config/mosquitto/micromance.acl)")
        except MicromanceError as error:
            return failed("broker", error.message, error.fix or "check [broker] in the config")
        except OSError as error:
            return failed("broker", f"{where}: the MQTT connection failed ({_reason(error)})",
                          "try again; if it persists, look at the broker's log")
        self.report = report
        steps = "DNS, TCP, TLS and login ok" if broker.tls else "DNS, TCP and login ok (no TLS)"
        return passed("broker", f"{where} reachable: {steps}; ping round trip "
                      f"{report.round_trip_ms:.1f} ms")

    def _refusal(self, refused: BrokerRefused) -> Result:
        username = self.broker.username
        who = f'"{username}"' if username else "anonymous"
        if refused.step == "login":
            return failed("broker", f"{self.where} refused the login as {who} "
                          f"({refused.reason})",
                          "check broker.username and the password in broker.password_file "
                          "(on a mosquitto broker: mosquitto_passwd)")
        return failed("broker", f"{self.where} does not let {who} {refused.step} "
                      f"({refused.reason})",
                      "the broker's ACL must let a unit read and write one-level topics "
                      "(see firmware_config/mosquitto/micromance.acl)")


def _certificate_fix(error: ssl.SSLCertVerificationError, broker: BrokerConfig) -> str:
    text = (error.verify_message or str(error)).lower()
    if "hostname" in text or "ip address mismatch" in text:
        return (f'broker.host must be a name in the broker\'s certificate (not "{broker.host}"'
                " unless the certificate lists it)")
    if "expired" in text or "not yet valid" in text:
        return "check the clock (see clock above), or renew the broker's certificate"
    return ("set broker.ca_file to the CA that signed the broker's certificate (a self-hosted "
            "broker: its ca.crt)")


def _session_plan(pair: Any) -> SessionPlan:
    """Ping on a topic of our own that the partner never reads; watch the partner's retained."""
    from micromance.protocol import new_client_id, pair_names

    probe = secrets.token_hex(16)  # a topic nobody reads, named like any other
    if pair is None:
        return SessionPlan(new_client_id(), probe)
    _, partner = pair_names(pair.key, pair.device_id, pair.partner_id)
    return SessionPlan(new_client_id(), probe, (partner.presence, partner.state))


def check_pairing(ctx: Context) -> Result:
    config = _config(ctx)
    state_dir = config.state_dir
    if state_dir.is_dir() and not os.access(state_dir, os.R_OK | os.X_OK):
        return failed("pairing", f"cannot read the state directory {state_dir} as this user",
                      RUN_AS_ROOT)
    pair_file = state_dir / "pair.json"
    if pair_file.exists() and not os.access(pair_file, os.R_OK):
        return failed("pairing", f"cannot read {pair_file} as this user", RUN_AS_ROOT)
    try:
        pair = _load_pair(config)
    except MicromanceError as error:
        return failed("pairing", error.message, error.fix or "pair again")
    if pair is None:
        return failed("pairing", "not paired yet",
                      "hold both buttons for 5 s on both units and compare the codes (or run: "
                      "micromance pair)")
    return _partner_seen(ctx, pair)


def _partner_seen(ctx: Context, pair: Any) -> Result:
    from micromance.protocol import pair_names

    paired = f"paired (pair {pair.pair_id[:8]}, partner {pair.partner_id})"
    _, partner = pair_names(pair.key, pair.device_id, pair.partner_id)
    live = ctx.probes.live_facts(_config(ctx)) or {}
    presences = [_opened(pair, partner.presence, report.retained.get(partner.presence))
                 for report in ctx.broker_reports]
    presence = max((p for p in presences if p is not None), default=None, key=lambda p: p.seq)
    if (presence is not None and presence.online) or live.get("partner") == "online":
        return passed("pairing", f"{paired}; partner online now")
    if not ctx.broker_reports:
        return warned("pairing", f"{paired}; partner last seen: unknown",
                      "fix the broker first (see broker)")
    summaries = [_opened(pair, partner.state, report.retained.get(partner.state))
                 for report in ctx.broker_reports]
    last_seen = max((m.time for m in (presence, *summaries) if m is not None), default=None,
                    key=lambda time: datetime.fromisoformat(time))
    if last_seen is None:
        where = "this broker" if len(ctx.broker_reports) == 1 else "these brokers"
        return warned("pairing", f"{paired}; the partner never reached {where}",
                      "both units need a broker in common (micromance status lists them); "
                      "ask your partner to run micromance doctor")
    return warned("pairing", f"{paired}; partner offline, last seen {last_seen}",
                  "their unit may be off or without network: ask them to run micromance doctor")


def _opened(pair: Any, topic: str, payload: bytes | None) -> Any:
    """The partner's retained sealed message on ``topic`` (its presence or its summary), or
    None: absent, or not sealed by the partner (a forged presence says nothing)."""
    if not payload:
        return None
    from micromance import protocol

    try:
        _, partner = protocol.pair_names(pair.key, pair.device_id, pair.partner_id)
        return protocol.open_sealed(payload, key=pair.key, topic=topic,
                                    expected_sender=partner.member)
    except (protocol.ProtocolError, ValueError):
        return None


def check_wifi(ctx: Context) -> Result:
    answer = ctx.probes.command(["iw", "dev", "wlan0", "get", "power_save"])
    if answer is None:
        return skipped("wifi", "no Wi-Fi interface wlan0 (or iw is missing): nothing to check")
    if "on" in answer.lower().split():
        return warned("wifi", "Wi-Fi power saving is on (wlan0): thank-yous can arrive seconds "
                      "late and the link may drop",
                      "sudo iw dev wlan0 set power_save off; to keep it off after reboots: "
                      "sudo nmcli connection modify <Wi-Fi name> 802-11-wireless.powersave 2")
    return passed("wifi", "Wi-Fi power saving is off (wlan0)")


#: (name, check, needs a valid config), in the order a unit depends on them. A check returns
#: one result, or one per thing it checks (the brokers).
CHECKS: tuple[tuple[str, Callable[[Context], Any], bool], ...] = (
    ("config", check_config, False),
    ("i2c", check_i2c, True),
    ("display", check_display, True),
    ("gpio", check_gpio, True),
    ("pins", check_pins, True),
    ("clock", check_clock, False),
    ("broker", check_brokers, True),
    ("pairing", check_pairing, True),
    ("wifi", check_wifi, False),
)


# --- running them -------------------------------------------------------------------------


def diagnose(config_arg: str | None = None, probes: Probes | None = None) -> Iterator[Result]:
    """Run every check in order, yielding each result as soon as it is known."""
    ctx = Context(probes=probes or Probes(), config_arg=config_arg)
    try:
        for name, check, needs_config in CHECKS:
            if needs_config and ctx.config is None:
                yield skipped(name, "skipped: the config must be valid first")
                continue
            yield from _guarded(name, check, ctx)
    finally:
        for cleanup in ctx.cleanups:
            cleanup()


def _guarded(name: str, check: Callable[[Context], Any], ctx: Context) -> list[Result]:
    """A check that crashes is a failed check with its reason, never a traceback."""
    try:
        outcome = check(ctx)
    except MicromanceError as error:
        return [failed(name, error.message, error.fix or "see the message")]
    except Exception as error:
        return [failed(name, f"the check itself broke ({type(error).__name__}: "
                       f"{_one_line(error)})", "please report this line as a bug")]
    return outcome if isinstance(outcome, list) else [outcome]


def run_doctor(config_arg: str | None = None, probes: Probes | None = None,
               out: TextIO | None = None) -> int:
    """Print one line per check and a summary; 0 when nothing failed, else 1."""
    stream = out or sys.stdout
    results = []
    try:
        for result in diagnose(config_arg, probes):
            results.append(result)
            print(result.line(), file=stream, flush=True)
        print(summary(results), file=stream, flush=True)
    except BrokenPipeError:  # `micromance doctor | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if any(r.outcome is Outcome.FAIL for r in results) else 0


def summary(results: list[Result]) -> str:
    failures = sum(r.outcome is Outcome.FAIL for r in results)
    warnings = sum(r.outcome is Outcome.WARN for r in results)
    if failures:
        return (f"{failures} problem(s), {warnings} warning(s): fix the first ✗ first, later "
                "ones often follow from it")
    if warnings:
        return f"no problems, {warnings} warning(s)"
    return "no problems found"


# --- helpers ------------------------------------------------------------------------------


def _config(ctx: Context) -> Config:
    assert ctx.config is not None, "checks after config run only with a valid config"
    return ctx.config


def _load_pair(config: Config) -> Any:
    from micromance.link.pair_file import load_pair

    return load_pair(config.state_dir)


def _pair_or_none(ctx: Context) -> Any:
    try:
        return _load_pair(_config(ctx))
    except (MicromanceError, OSError):
        return None  # the pairing check reports it


def _i2c_in_boot_config(probes: Probes) -> bool:
    for path in BOOT_CONFIGS:
        try:
            text = probes.read_text(path)
        except OSError:
            continue
        lines = {line.split("#")[0].strip().replace(" ", "") for line in text.splitlines()}
        return bool(lines & {"dtparam=i2c_arm=on", "dtparam=i2c=on"})
    return False


def _reason(error: OSError | None) -> str:
    if error is None:
        return "unknown"
    return error.strerror or _one_line(error)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _close_quietly(thing: Any) -> None:
    with contextlib.suppress(Exception):
        thing.close()


# --- the real probes ----------------------------------------------------------------------


def _i2c_quick_write(bus: int, address: int) -> None:
    """What i2cdetect does for 0x3C: a quick write that the device acknowledges or not."""
    from smbus2 import SMBus

    with SMBus(bus) as smbus:
        smbus.write_quick(address)


def _default_pin_factory() -> Any:
    from gpiozero import Device

    return Device._default_pin_factory()


def _claim_pin(factory: Any, pin: int, as_output: bool) -> None:
    from gpiozero import DigitalOutputDevice, InputDevice

    device = (DigitalOutputDevice(pin, initial_value=False, pin_factory=factory) if as_output
              else InputDevice(pin, pull_up=True, pin_factory=factory))
    device.close()


def _run_command(argv: list[str]) -> str | None:
    search = os.pathsep.join(filter(None, (os.environ.get("PATH"), SBIN_PATH)))
    executable = shutil.which(argv[0], path=search)
    if executable is None:
        return None
    try:
        done = subprocess.run([executable, *argv[1:]], capture_output=True, text=True,
                              timeout=NETWORK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _tcp_connect(address: str, port: int, timeout: float) -> None:
    with socket.create_connection((address, port), timeout=timeout):
        pass


def _tls_handshake(broker: BrokerConfig, timeout: float) -> None:
    """The handshake alone, with the daemon's own trust (``tls_context``): a clear verdict on
    certificates before MQTT muddles it."""
    context = tls_context(broker)
    with socket.create_connection((broker.host, broker.port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=broker.host):
        pass


def _mqtt_session(broker: BrokerConfig, plan: SessionPlan, timeout: float) -> SessionReport:
    """Log in as the daemon does (its client, from ``new_client``), subscribe, ping, disconnect."""
    session = _PingSession(broker, plan)
    try:
        return session.run(timeout)
    finally:
        session.close()


class _PingSession:
    """One short paho session; callbacks only record and signal (paho's thread)."""

    def __init__(self, broker: BrokerConfig, plan: SessionPlan) -> None:
        self.plan = plan
        self.broker = broker
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.pong = threading.Event()
        self.refusal: BrokerRefused | None = None
        self.retained: dict[str, bytes] = {}
        try:
            self.client = new_client(broker, plan.client_id)
        except LinkError as error:  # files only the service user may read, often
            fix = f"{error.fix}, or {RUN_AS_ROOT}" if error.fix else RUN_AS_ROOT
            raise LinkError(error.message, fix=fix) from None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self._started = False

    def run(self, timeout: float) -> SessionReport:
        self.client.connect(self.broker.host, self.broker.port, keepalive=max(10, int(timeout)),
                            properties=connect_properties())
        self.client.loop_start()
        self._started = True
        self._wait(self.connected, timeout, "no answer to CONNECT")
        topics = [(self.plan.ping_topic, 1)] + [(t, 1) for t in self.plan.watch_topics]
        self.client.subscribe(topics)
        self._wait(self.subscribed, timeout, "no answer to SUBSCRIBE")
        started = time.perf_counter()
        self.client.publish(self.plan.ping_topic, b"ping", qos=1)
        self._wait(self.pong, timeout, "our ping never came back")
        elapsed_ms = (time.perf_counter() - started) * 1000
        return SessionReport(elapsed_ms, dict(self.retained))

    def _wait(self, event: threading.Event, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not event.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self.refusal is not None:
                raise self.refusal
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} within {timeout:g} s")
        if self.refusal is not None:
            raise self.refusal

    def close(self) -> None:
        if self._started:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            self.refusal = BrokerRefused("login", str(reason))
        self.connected.set()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      properties: Any = None) -> None:
        if reasons and reasons[0].is_failure:
            self.refusal = BrokerRefused("subscribe", f"{reasons[0]} on {self.plan.ping_topic}")
        self.subscribed.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            self.refusal = BrokerRefused("publish", f"{reason} on {self.plan.ping_topic}")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic == self.plan.ping_topic:
            self.pong.set()
        elif message.retain:
            self.retained[message.topic] = bytes(message.payload)

