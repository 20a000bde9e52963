"""A self-hosted broker as the README describes it: mosquitto with the example config from
firmware_config/mosquitto (TLS listener, password file, ACL), on a loopback port, with a
throw-away CA. Used by the firmware config and doctor tests.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from micromance.simulator import private_broker as broker_adapter
from tests.conftest import require_mosquitto, require_tool

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "firmware_config" / "mosquitto"
PASSWORD = "correct horse battery staple"


@dataclass
class SelfHostedBroker:
    port: int
    ca_file: Path
    directory: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def write_certificates(directory: Path, names: tuple[str, ...] = ("localhost",)) -> Path:
    """A CA and a server certificate for ``names``; returns the CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "micromance test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt_names = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
                 for n in names]
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "fullchain.pem").write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    (directory / "privkey.pem").write_bytes(server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "ca.pem"


def example_config(directory: Path, port: int) -> str:
    """The shipped example with its paths moved into ``directory`` and a loopback port."""
    text = (EXAMPLE / "micromance.conf").read_text()
    replacements = {
        "/etc/mosquitto/micromance.passwd": str(directory / "passwd"),
        "/etc/mosquitto/micromance.acl": str(directory / "acl"),
        "/etc/mosquitto/certs/": f"{directory}/",
        "listener 8883": f"listener {port} 127.0.0.1",
    }
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    text += f"\nlog_dest file {directory / 'mosquitto.log'}\n"
    if os.geteuid() == 0:
        text += "user root\n"  # else mosquitto drops to a user that cannot read tmp_path
    return text


def start_selfhosted(directory: Path, users: Iterable[str], acl: str | None = None,
                     names: tuple[str, ...] = ("localhost",)) -> SelfHostedBroker:
    """mosquitto with the example config and a login for each of ``users`` (password
    ``PASSWORD``); ``acl`` replaces the shipped ACL."""
    executable = require_mosquitto()
    passwd = require_tool("mosquitto_passwd",
                          "mosquitto_passwd is missing (Debian package mosquitto)")
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = write_certificates(directory, names)
    for index, user in enumerate(users):
        flags = ["-b", "-c"] if index == 0 else ["-b"]
        subprocess.run([passwd, *flags, str(directory / "passwd"), user, PASSWORD], check=True,
                       capture_output=True)
    (directory / "acl").write_text((EXAMPLE / "micromance.acl").read_text() if acl is None
                                   else acl)
    port = broker_adapter.free_loopback_port()
    (directory / "mosquitto.conf").write_text(example_config(directory, port))
    with open(directory / "mosquitto.out", "ab") as output:
        process = subprocess.Popen([executable, "-c", str(directory / "mosquitto.conf")],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    broker = SelfHostedBroker(port, ca_file, directory, process)
    _wait_until_listening(broker)
    return broker


def _wait_until_listening(broker: SelfHostedBroker, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            break
        if broker_adapter._accepts_connections("127.0.0.1", broker.port):
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            broker.process.wait(timeout=0.01)  # an early exit ends the wait at once
    broker.stop()
    output = (broker.directory / "mosquitto.out").read_text(errors="replace")
    log = broker.directory / "mosquitto.log"
    output += log.read_text(errors="replace") if log.exists() else ""
    raise AssertionError(f"mosquitto with the example config did not start:\n{output}")
