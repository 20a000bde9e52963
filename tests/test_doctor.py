"""``micromance doctor``: each check's failure simulated through injected probes (or a real
broker), and the line a person reads: what is wrong and how to fix it."""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import ssl
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from micromance import config as config_module
from micromance import doctor, protocol
from micromance.doctor import Outcome, Probes, SessionReport
from micromance.link.pair_file import load_pair, pair_locally
from micromance.simulator.private_broker import free_loopback_port
from micromance.status import read_live_facts
from tests.selfhosted import PASSWORD, start_selfhosted
from tests.units import partner_names_of


class FakeFactory:
    """Stands for a gpiozero pin factory: doctor only hands it to ``claim_pin`` and closes it."""

    closed = False

    def close(self) -> None:
        self.closed = True


def healthy_probes(**changes) -> Probes:
    """Probes of a unit where everything is fine: Pi hardware there, broker answering."""
    answers = {"timedatectl": "yes\n", "iw": "Power save: off\n"}
    probes = Probes(
        exists=lambda path: path == "/dev/i2c-1",
        read_text=lambda path: (_ for _ in ()).throw(FileNotFoundError(path)),
        list_paths=lambda pattern: ["/dev/gpiochip0"],
        open_rw=lambda path: None,
        i2c_answers=lambda bus, address: None,
        pin_factory=FakeFactory,
        claim_pin=lambda factory, pin, as_output: None,
        command=lambda argv: answers.get(argv[0]),
        resolve=lambda host, port: ["127.0.0.1"],
        tcp_connect=lambda address, port, timeout: None,
        tls_handshake=lambda broker, timeout: None,
        mqtt_session=lambda broker, plan, timeout: SessionReport(1.5, {}),
        live_facts=lambda config: None,
        environ={},
        timeout=2.0,
    )
    return replace(probes, **changes)


def write_config(path: Path, state_dir: Path, broker: str = "", extra: str = "") -> Path:
    broker = broker or 'host = "broker.example.org"\nport = 8883\ntls = true'
    path.write_text(f'[display]\ndriver = "ssd1306"\n[broker]\n{broker}\n'
                    f'[paths]\nstate_dir = "{state_dir}"\n{extra}')
    return path


@pytest.fixture
def unit(tmp_path) -> Path:
    """A paired unit's config (its partner's state directory is beside it)."""
    pair_locally(tmp_path / "a", tmp_path / "b")
    return write_config(tmp_path / "a.toml", tmp_path / "a")


def diagnose(config: Path | str | None, probes: Probes) -> tuple[int, dict, str]:
    out = io.StringIO()
    code = doctor.run_doctor(str(config) if config else None, probes, out=out)
    results = {r.name: r for r in doctor.diagnose(str(config) if config else None, probes)}
    return code, results, out.getvalue()


def sealed_presence(pair, online: bool, seq: int = 9,
                    time: str = "2026-11-24T20:10:00+01:00") -> bytes:
    """The partner's presence as its unit publishes it: sealed, on its presence topic."""
    partner = partner_names_of(pair)
    presence = partner.presence
    message = protocol.Message(type="presence", sender=partner.member, seq=seq, time=time,
                               name="Kim", sent_total=0, online=online)
    return protocol.seal(message, key=pair.key, topic=presence)


def online_partner(config: Path) -> doctor.SessionReport:
    pair = load_pair(config.parent / "a")
    presence = partner_names_of(pair).presence
    return SessionReport(1.5, {presence: sealed_presence(pair, online=True)})


def test_a_healthy_unit_passes_every_check(unit):
    probes = healthy_probes(mqtt_session=lambda b, plan, t: online_partner(unit))
    code, results, out = diagnose(unit, probes)
    assert code == 0, out
    assert [r.name for r in results.values()] == [name for name, *_ in doctor.CHECKS]
    assert all(r.outcome is Outcome.PASS for r in results.values()), out
    assert f"✓ config: {unit} is valid" in out
    assert "✓ display: ssd1306 answers at 0x3C on I2C bus 1" in out
    assert "ping round trip 1.5 ms" in out
    assert "partner online now" in out
    assert out.rstrip().endswith("no problems found")


def test_an_invalid_config_fails_and_the_checks_that_need_it_wait(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[display]\ndriverr = "ssd1306"\n')
    code, results, out = diagnose(config, healthy_probes())
    assert code == 1
    assert results["config"].outcome is Outcome.FAIL
    assert "did you mean display.driver?" in out
    assert "— fix: rename or remove it" in out
    for name in ("i2c", "display", "gpio", "pins", "broker", "pairing"):
        assert results[name].outcome is Outcome.SKIP
    assert results["clock"].outcome is Outcome.PASS  # needs no config
    assert "Traceback" not in out


def test_no_config_file_is_a_warning_with_the_copy_command(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "DEFAULT_PATH", tmp_path / "missing.toml")
    monkeypatch.delenv(config_module.ENV_VAR, raising=False)
    _, results, _ = diagnose(None, healthy_probes())
    assert results["config"].outcome is Outcome.WARN
    assert "cp firmware_config/micromance.toml /etc/micromance/config.toml" in \
        results["config"].fix


def test_i2c_off(unit):
    code, results, out = diagnose(unit, healthy_probes(exists=lambda path: False))
    assert code == 1
    assert ("✗ i2c: I2C bus 1 is off (/dev/i2c-1 is missing) — fix: sudo ./install.sh "
            "switches it on") in out
    assert "sudo reboot" in results["i2c"].fix
    assert results["display"].outcome is Outcome.SKIP


def test_i2c_on_in_config_txt_but_not_live_asks_for_a_reboot(unit):
    probes = healthy_probes(exists=lambda path: False,
                            read_text=lambda path: "[all]\ndtparam=i2c_arm=on\n")
    _, results, _ = diagnose(unit, probes)
    assert "switched on in config.txt" in results["i2c"].message
    assert results["i2c"].fix.startswith("reboot")


def test_i2c_without_permission(unit):
    def forbidden(path):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    _, results, _ = diagnose(unit, healthy_probes(open_rw=forbidden))
    assert results["i2c"].message == "no permission to open /dev/i2c-1"
    assert "usermod -aG i2c micromance" in results["i2c"].fix


def test_nothing_answers_at_the_display_address(unit):
    def silent(bus, address):
        raise OSError(errno.EREMOTEIO, "Remote I/O error")

    code, _, out = diagnose(unit, healthy_probes(i2c_answers=silent))
    assert code == 1
    assert ("✗ display: nothing answers at 0x3C on I2C bus 1 — fix: check wiring (SDA to pin "
            "3, SCL to pin 5, VCC to pin 1 (3.3 V), GND to pin 6) and run i2cdetect -y 1") in out


def test_the_display_at_the_other_address(unit):
    def only_3d(bus, address):
        if address != 0x3D:
            raise OSError(errno.ENXIO, "No such device or address")

    _, results, _ = diagnose(unit, healthy_probes(i2c_answers=only_3d))
    assert "but something does at 0x3D" in results["display"].message
    assert results["display"].fix == "set display.i2c_address = 0x3D in the config"


def test_no_gpio_chip(unit):
    code, results, out = diagnose(unit, healthy_probes(list_paths=lambda pattern: []))
    assert code == 1
    assert "✗ gpio: no GPIO chip (/dev/gpiochip* is missing)" in out
    assert "GPIOZERO_PIN_FACTORY=mock" in results["gpio"].fix
    assert results["pins"].outcome is Outcome.SKIP


def test_no_pin_library(unit):
    from gpiozero.exc import BadPinFactory

    def no_lgpio():
        raise BadPinFactory("Unable to load any default pin factory!")

    _, results, _ = diagnose(unit, healthy_probes(pin_factory=no_lgpio))
    assert results["gpio"].outcome is Outcome.FAIL
    assert "sudo apt install python3-lgpio" in results["gpio"].fix
    assert "--system-site-packages" in results["gpio"].fix


def test_gpio_chip_without_permission(unit):
    def forbidden(path):
        if "gpiochip" in path:
            raise PermissionError(errno.EACCES, "Permission denied", path)

    _, results, _ = diagnose(unit, healthy_probes(open_rw=forbidden))
    assert results["gpio"].message == "no permission to open /dev/gpiochip0"
    assert "usermod -aG gpio micromance" in results["gpio"].fix


def test_mock_pins_are_a_warning(unit):
    from gpiozero.pins.mock import MockFactory

    probes = healthy_probes(environ={"GPIOZERO_PIN_FACTORY": "mock"},
                            list_paths=lambda pattern: [], pin_factory=MockFactory)
    _, results, _ = diagnose(unit, probes)
    assert results["gpio"].outcome is Outcome.WARN
    assert results["pins"].outcome is Outcome.PASS


def test_a_pin_in_use(unit):
    from gpiozero.exc import GPIOPinInUse

    def busy(factory, pin, as_output):
        if pin == 27:
            raise GPIOPinInUse("pin GPIO27 is already in use by <gpiozero.Button object>")

    code, results, out = diagnose(unit, healthy_probes(claim_pin=busy))
    assert code == 1
    assert "✗ pins: NEXT GPIO27 is in use by another program" in out
    assert "sudo systemctl stop micromance" in results["pins"].fix
    assert "choose other pins in [pins]" in results["pins"].fix


def test_a_pin_held_by_lgpio_in_another_process_is_busy_too(unit):
    class LgpioError(Exception):
        pass

    def busy(factory, pin, as_output):
        raise LgpioError("'GPIO busy'")

    _, results, _ = diagnose(unit, healthy_probes(claim_pin=busy))
    assert "is in use by another program" in results["pins"].message


def test_pins_held_by_the_running_service_are_fine(unit):
    def claimed(factory, pin, as_output):
        raise AssertionError("doctor must not grab the running service's pins")

    probes = healthy_probes(claim_pin=claimed, live_facts=lambda config: {"pid": 4321})
    _, results, _ = diagnose(unit, probes)
    assert results["pins"].outcome is Outcome.PASS
    assert "running service (pid 4321)" in results["pins"].message


def test_the_pin_factory_is_closed_afterwards(unit):
    factories = []

    def factory():
        factories.append(FakeFactory())
        return factories[-1]

    diagnose(unit, healthy_probes(pin_factory=factory))
    assert factories and all(f.closed for f in factories)


def test_clock_not_synchronised(unit):
    answers = {"timedatectl": "no\n", "iw": "Power save: off\n"}
    code, results, out = diagnose(unit, healthy_probes(command=lambda argv: answers[argv[0]]))
    assert code == 1
    assert "✗ clock: not synchronised" in out
    assert "systemd-timesyncd" in results["clock"].fix


def test_clock_unknown_is_a_warning_unless_timesyncd_says_so(unit):
    _, results, _ = diagnose(unit, healthy_probes(command=lambda argv: None))
    assert results["clock"].outcome is Outcome.WARN
    synchronised = healthy_probes(
        command=lambda argv: None,
        exists=lambda path: path in ("/dev/i2c-1", "/run/systemd/timesync/synchronized"))
    _, results, _ = diagnose(unit, synchronised)
    assert results["clock"].outcome is Outcome.PASS


def test_broker_name_does_not_resolve(unit):
    def no_dns(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    code, results, out = diagnose(unit, healthy_probes(resolve=no_dns))
    assert code == 1
    assert ('✗ broker: cannot resolve broker.host "broker.example.org" (DNS: Name or service '
            "not known) — fix: check broker.host for typos") in out
    assert results["pairing"].outcome is Outcome.WARN
    assert "fix the broker first" in results["pairing"].fix


def test_broker_port_times_out(unit):
    def firewalled(address, port, timeout):
        raise TimeoutError("timed out")

    _, results, _ = diagnose(unit, healthy_probes(tcp_connect=firewalled))
    assert "no answer from broker.example.org:8883 within 2 s" in results["broker"].message
    assert "firewall" in results["broker"].fix


def test_broker_certificate_expired_points_at_the_clock(unit):
    def expired(broker, timeout):
        error = ssl.SSLCertVerificationError(1, "certificate verify failed")
        error.verify_message = "certificate has expired"
        raise error

    _, results, _ = diagnose(unit, healthy_probes(tls_handshake=expired))
    assert "certificate is not trusted" in results["broker"].message
    assert "check the clock" in results["broker"].fix


def test_a_check_that_crashes_is_a_failed_line_not_a_traceback(unit):
    def broken(broker, plan, timeout):
        raise KeyError("surprise")

    code, results, out = diagnose(unit, healthy_probes(mqtt_session=broken))
    assert code == 1
    assert "the check itself broke (KeyError" in results["broker"].message
    assert "Traceback" not in out


def test_not_paired(tmp_path):
    config = write_config(tmp_path / "c.toml", tmp_path / "lonely")
    code, _, out = diagnose(config, healthy_probes())
    assert code == 1
    assert ("✗ pairing: not paired yet — fix: hold both buttons for 5 s on both units") in out


def test_damaged_pairing_file(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "pair.json").write_text("{not json")
    config = write_config(tmp_path / "c.toml", tmp_path / "state")
    _, results, _ = diagnose(config, healthy_probes())
    assert results["pairing"].outcome is Outcome.FAIL
    assert "pair again" in results["pairing"].fix


def test_a_state_directory_only_the_service_user_may_read(unit, monkeypatch):
    """Run as a normal user, doctor cannot see the pairing: it says to use sudo, not to re-pair."""
    state_dir = str(unit.parent / "a")
    real_access = os.access
    monkeypatch.setattr(doctor.os, "access",
                        lambda path, mode: str(path) != state_dir and real_access(path, mode))
    _, results, _ = diagnose(unit, healthy_probes())
    assert results["pairing"].message == f"cannot read the state directory {state_dir} as this user"
    assert "sudo micromance doctor" in results["pairing"].fix


def test_wifi_power_saving_is_a_warning_only(unit):
    answers = {"timedatectl": "yes\n", "iw": "Power save: on\n"}
    probes = healthy_probes(command=lambda argv: answers.get(argv[0]),
                            mqtt_session=lambda b, plan, t: online_partner(unit))
    code, results, out = diagnose(unit, probes)
    assert code == 0
    assert "! wifi: Wi-Fi power saving is on (wlan0)" in out
    assert "sudo iw dev wlan0 set power_save off" in results["wifi"].fix
    assert out.rstrip().endswith("no problems, 1 warning(s)")


# --- against a real broker ---------------------------------------------------------------------


def real_network(**changes) -> Probes:
    """Healthy hardware, but DNS, TCP, TLS and MQTT for real."""
    defaults = Probes()
    return healthy_probes(resolve=defaults.resolve, tcp_connect=defaults.tcp_connect,
                          tls_handshake=defaults.tls_handshake,
                          mqtt_session=defaults.mqtt_session, **changes)


def plain_broker_config(tmp_path: Path, port: int, tls: str = "false") -> Path:
    return write_config(tmp_path / "a.toml", tmp_path / "a",
                        f'host = "127.0.0.1"\nport = {port}\ntls = {tls}')


def test_private_broker_ping_and_a_partner_who_never_came(tmp_path, broker):
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = plain_broker_config(tmp_path, broker.port)
    _, results, out = diagnose(config, real_network())
    assert results["broker"].outcome is Outcome.PASS, out
    assert f"127.0.0.1:{broker.port} reachable" in results["broker"].message
    assert "ping round trip" in results["broker"].message
    assert results["pairing"].outcome is Outcome.WARN
    assert "never reached this broker" in results["pairing"].message


def brokers_config(tmp_path: Path, ports: list[int]) -> Path:
    tables = "".join(f'[[broker]]\nhost = "127.0.0.1"\nport = {port}\ntls = false\n'
                     for port in ports)
    path = tmp_path / "a.toml"
    path.write_text(f'[display]\ndriver = "ssd1306"\n{tables}'
                    f'[paths]\nstate_dir = "{tmp_path / "a"}"\n')
    return path


def test_one_line_per_broker_and_a_dead_one_beside_a_live_one_is_a_warning(tmp_path, broker):
    pair_locally(tmp_path / "a", tmp_path / "b")
    closed = free_loopback_port()
    code, results, out = diagnose(brokers_config(tmp_path, [broker.port, closed]),
                                  real_network())
    assert results["broker 1"].outcome is Outcome.PASS, out
    assert f"127.0.0.1:{broker.port} reachable" in results["broker 1"].message
    assert results["broker 2"].outcome is Outcome.WARN
    assert f"127.0.0.1:{closed} refused the connection (TCP)" in results["broker 2"].message
    assert code == 0, out
    assert [line.split(":")[0] for line in out.splitlines() if "broker" in line.split(":")[0]] \
        == ["✓ broker 1", "! broker 2"]


def test_no_broker_that_answers_is_a_failure_for_each(tmp_path):
    pair_locally(tmp_path / "a", tmp_path / "b")
    closed = [free_loopback_port(), free_loopback_port()]
    code, results, out = diagnose(brokers_config(tmp_path, closed), real_network())
    assert code == 1
    assert all(results[f"broker {n}"].outcome is Outcome.FAIL for n in (1, 2)), out
    assert "partner last seen: unknown" in results["pairing"].message


def test_with_no_broker_configured_doctor_checks_the_brokers_the_pair_was_made_with(tmp_path):
    """No [broker] in the config: the unit uses the pair's list (the public brokers when the
    pair was made without a config); doctor checks exactly those (here faked: no test goes
    out to the internet)."""
    from micromance.config import PUBLIC_BROKERS

    pair_locally(tmp_path / "a", tmp_path / "b")
    path = tmp_path / "a.toml"
    path.write_text(f'[display]\ndriver = "ssd1306"\n[paths]\nstate_dir = "{tmp_path / "a"}"\n')
    asked = []

    def resolve(host, port):
        asked.append((host, port))
        raise socket.gaierror(-2, "Name or service not known")

    _, results, out = diagnose(path, healthy_probes(resolve=resolve))
    pair = load_pair(tmp_path / "a")
    expected = pair.brokers or PUBLIC_BROKERS
    assert sorted(set(asked)) == sorted({(b.host, b.port) for b in expected})
    assert len([r for r in results if r.startswith("broker ")]) == len(expected), out


def publish_retained(port: int, topic: str, payload: bytes) -> None:
    import paho.mqtt.publish as publish

    publish.single(topic, payload, qos=1, retain=True, hostname="127.0.0.1", port=port)


def test_partner_presence_and_last_seen_come_from_the_broker(tmp_path, broker):
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = plain_broker_config(tmp_path, broker.port)
    pair = load_pair(tmp_path / "a")
    partner = partner_names_of(pair)
    summary = protocol.Message(type="state", sender=partner.member, seq=7,
                               time="2026-11-24T20:15:00+01:00", name="Kim", sent_total=3,
                               streak=2, last_seq=7)
    publish_retained(broker.port, partner.state,
                     protocol.seal(summary, key=pair.key, topic=partner.state))
    publish_retained(broker.port, partner.presence, sealed_presence(pair, online=False))
    _, results, _ = diagnose(config, real_network())
    assert results["pairing"].outcome is Outcome.WARN
    assert "partner offline, last seen 2026-11-24T20:15:00+01:00" in results["pairing"].message

    publish_retained(broker.port, partner.presence, b"online")  # forged: says nothing
    _, results, _ = diagnose(config, real_network())
    assert results["pairing"].outcome is Outcome.WARN

    publish_retained(broker.port, partner.presence, sealed_presence(pair, online=True))
    _, results, _ = diagnose(config, real_network())
    assert results["pairing"].outcome is Outcome.PASS
    assert results["pairing"].message.endswith("partner online now")


def test_broker_that_is_down(tmp_path, broker):
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = plain_broker_config(tmp_path, broker.port)
    broker.stop()
    code, results, out = diagnose(config, real_network())
    assert code == 1
    assert f"✗ broker: 127.0.0.1:{broker.port} refused the connection (TCP)" in out
    assert "is the broker running" in results["broker"].fix


def test_tls_to_a_port_without_tls(tmp_path, broker):
    pair_locally(tmp_path / "a", tmp_path / "b")
    config = plain_broker_config(tmp_path, broker.port, tls="true")
    _, results, _ = diagnose(config, real_network())
    assert "TLS handshake failed" in results["broker"].message
    assert "set broker.tls = false" in results["broker"].fix


@pytest.fixture
def selfhosted(tmp_path, request):
    """The example mosquitto config with TLS, logins and the ACL; this unit logs in as home-a."""
    pair_locally(tmp_path / "a", tmp_path / "b")
    broker = start_selfhosted(tmp_path / "mosquitto", ("home-a", "home-b"),
                              acl=getattr(request, "param", None))
    (tmp_path / "password").write_text(PASSWORD + "\n")
    broker.username = "home-a"
    yield broker
    broker.stop()


def selfhosted_config(tmp_path: Path, broker, *, host: str = "localhost", ca: bool = True,
                      username: str = "") -> Path:
    ca_line = f'ca_file = "{broker.ca_file}"\n' if ca else ""
    return write_config(
        tmp_path / "a.toml", tmp_path / "a",
        f'host = "{host}"\nport = {broker.port}\ntls = true\n{ca_line}'
        f'username = "{username or broker.username}"\n'
        f'password_file = "{tmp_path / "password"}"')


def test_selfhosted_broker_with_tls_login_and_acl_passes(tmp_path, selfhosted):
    _, results, out = diagnose(selfhosted_config(tmp_path, selfhosted), real_network())
    assert results["broker"].outcome is Outcome.PASS, out
    assert "DNS, TCP, TLS and login ok" in results["broker"].message


def test_untrusted_certificate(tmp_path, selfhosted):
    config = selfhosted_config(tmp_path, selfhosted, ca=False)
    _, results, _ = diagnose(config, real_network())
    assert "certificate is not trusted" in results["broker"].message
    assert "set broker.ca_file" in results["broker"].fix


def test_certificate_for_another_name(tmp_path, selfhosted):
    config = selfhosted_config(tmp_path, selfhosted, host="127.0.0.1")
    _, results, _ = diagnose(config, real_network())
    assert "certificate is not trusted" in results["broker"].message
    assert "broker.host must be a name in the broker's certificate" in results["broker"].fix


def test_wrong_password(tmp_path, selfhosted):
    (tmp_path / "password").write_text("not it\n")
    code, results, _ = diagnose(selfhosted_config(tmp_path, selfhosted), real_network())
    assert code == 1
    assert f'refused the login as "{selfhosted.username}"' in results["broker"].message
    assert "mosquitto_passwd" in results["broker"].fix


@pytest.mark.parametrize("selfhosted", ["pattern read +\n"], indirect=True)
def test_acl_that_forbids_the_units_topics(tmp_path, selfhosted):
    """An ACL that lets the unit read but not write: doctor names the step and the ACL."""
    _, results, out = diagnose(selfhosted_config(tmp_path, selfhosted), real_network())
    assert results["broker"].outcome is Outcome.FAIL, out
    assert "does not let" in results["broker"].message
    assert "ACL" in results["broker"].fix


def test_a_ca_file_under_home_works_for_the_daemon_as_for_doctor(tmp_path, selfhosted,
                                                                monkeypatch):
    """broker.ca_file = "~/...": doctor expanded it but paho's tls_set took it literally, so
    doctor passed while the service could not connect. Both build the connection alike now."""
    import threading

    from micromance.link.client import new_client

    monkeypatch.setenv("HOME", str(tmp_path))
    ca_file = f"~/{selfhosted.ca_file.relative_to(tmp_path)}"
    path = write_config(
        tmp_path / "a.toml", tmp_path / "a",
        f'host = "localhost"\nport = {selfhosted.port}\ntls = true\nca_file = "{ca_file}"\n'
        f'username = "{selfhosted.username}"\npassword_file = "~/password"')
    _, results, out = diagnose(path, real_network())
    assert results["broker"].outcome is Outcome.PASS, out

    broker = config_module.load_config(path).broker
    assert broker.ca_file == ca_file
    answered = threading.Event()
    reasons = []
    client = new_client(broker, "micromance-home-ca")  # the daemon's (MqttLink's) client
    client.on_connect = lambda c, userdata, flags, reason, properties=None: (
        reasons.append(reason), answered.set())
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK over TLS"
        assert not reasons[0].is_failure, reasons[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_unreadable_password_file(tmp_path, selfhosted):
    (tmp_path / "password").unlink()
    _, results, _ = diagnose(selfhosted_config(tmp_path, selfhosted), real_network())
    assert "cannot read broker.password_file" in results["broker"].message


# --- the command line ----------------------------------------------------------------------------


def test_cli_doctor_exits_1_with_lines_and_no_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[pins]\nthanks = 99\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GPIOZERO")}
    result = subprocess.run([sys.executable, "-m", "micromance", "doctor", "--config",
                             str(config)], capture_output=True, text=True, env=environment,
                            timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("✗ config: ") and "pins.thanks = 99" in first and "fix:" in first


def test_live_facts_are_read_from_the_runtime_directory(tmp_path, monkeypatch, unit):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    (tmp_path / "status.json").write_text(json.dumps({"pid": os.getpid(), "link": "connected"}))
    config = config_module.load_config(unit)
    assert read_live_facts(config)["link"] == "connected"
    (tmp_path / "status.json").write_text(json.dumps({"pid": 2**22 + 12345}))
    assert read_live_facts(config) is None
