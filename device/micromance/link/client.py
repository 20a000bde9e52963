"""The one way to reach the broker: TLS trust, password and a paho client set up from the config.

The daemon (``MqttLink``), the pairing rendezvous, ``micromance pair --forget`` and doctor all
build their connection here, so doctor's verdict is the service's: a ``broker.ca_file`` doctor
can use (``~`` and all), the service uses the same way, and every CONNECT carries the same
Maximum Packet Size (``connect_properties``). How a connection is *driven* (the runtime's own
loop, or paho's thread) stays with each caller.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from micromance.config import BrokerConfig
from micromance.errors import LinkError

#: Messages paho keeps while offline (pairing and the shell; MqttLink has its outbox).
MAX_QUEUED_MESSAGES = 1000
#: The largest MQTT packet any client of ours accepts, announced to the broker as the MQTT 5
#: Maximum Packet Size in every CONNECT: the broker then drops a larger message instead of
#: sending it (paho reads a whole packet into memory before our 4096-byte check can refuse
#: it; one 64 MB publish took a unit from 49 to 250 MB). Our largest legitimate packet is a
#: sealed payload (4096 bytes) plus its topic (~80) and a few bytes of MQTT header and
#: properties; pairing payloads are at most 1024 bytes. 8 KiB leaves ample margin.
MAX_PACKET_BYTES = 8192
TLS_FILES_FIX = "check broker.ca_file, broker.client_cert and broker.client_key"
#: The errors an attempt to connect ends with (DNS, refused, unreachable, timeout, TLS).
CONNECT_ERRORS = (OSError, ssl.SSLError, ValueError)


@dataclass
class Backoff:
    """Capped exponential delays between connection attempts, this unit's own.

    Each unit draws its first delay (1-2 s) and its cap (50-70 s) once: after a broker
    restart, a fleet's reconnects spread out instead of arriving together.
    """

    first: float
    cap: float
    current: float = 0.0

    @classmethod
    def for_this_unit(cls) -> Backoff:
        return cls(first=1 + random.random(), cap=50 + int(random.random() * 20))

    def next_delay(self) -> float:
        self.current = self.first if not self.current else min(self.cap, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def tls_context(broker: BrokerConfig) -> ssl.SSLContext:
    """The trust every connection uses: ``broker.ca_file`` or the system CAs, and the client
    certificate when there is one; paths may start with ``~`` (paho's ``tls_set`` would take
    them literally). Missing or bad files raise ``OSError`` / ``ssl.SSLError``."""
    context = ssl.create_default_context(cafile=_expand(broker.ca_file) or None)
    if broker.client_cert:
        context.load_cert_chain(_expand(broker.client_cert), _expand(broker.client_key) or None)
    return context


def read_password(broker: BrokerConfig) -> str:
    """The broker password from ``broker.password_file`` (never from the config itself)."""
    if not broker.password_file:
        return ""
    path = Path(broker.password_file).expanduser()
    try:
        return path.read_text().strip()
    except OSError as error:
        raise LinkError(f"cannot read broker.password_file {path} ({error.strerror})",
                        fix="make it readable for the service user") from None


def new_client(broker: BrokerConfig, client_id: str,
               client_factory: Callable[..., Any] | None = None,
               backoff: Backoff | None = None) -> Any:
    """A paho client set up from the config: MQTT 5, credentials, TLS, jittered backoff.

    Not connected yet: each caller connects and drives it its own way, always with
    ``properties=connect_properties(...)`` (the packet size limit protects the unit's memory).
    """
    import paho.mqtt.client as mqtt

    factory = client_factory or mqtt.Client
    client = factory(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                     protocol=mqtt.MQTTv5)
    backoff = backoff or Backoff.for_this_unit()
    # For clients on paho's own loop thread (pairing, the shell); MqttLink keeps its own.
    client.reconnect_delay_set(min_delay=backoff.first,  # type: ignore[arg-type]
                               max_delay=int(backoff.cap))
    client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
    if broker.username:
        client.username_pw_set(broker.username, read_password(broker))
    if broker.tls:
        try:
            client.tls_set_context(tls_context(broker))
        except (OSError, ssl.SSLError) as error:
            raise LinkError(f"cannot set up TLS for the broker ({_one_line(error)})",
                            fix=TLS_FILES_FIX) from None
    return client


def connect_properties(*, session_expiry: int = 0) -> Any:
    """The CONNECT properties of every client of ours (pass them to ``connect`` or
    ``connect_async``): the Maximum Packet Size, and the SessionExpiryInterval when the
    session should outlive the connection (the partner link)."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.MaximumPacketSize = MAX_PACKET_BYTES
    if session_expiry:
        properties.SessionExpiryInterval = session_expiry
    return properties


def set_nodelay(client: Any) -> None:
    """Nagle's algorithm held each small message back ~40 ms on loopback: switch it off."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a websocket wrapper): nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def failure_step(error: BaseException | bool | None, *, tls: bool = False) -> str:
    """Which step of opening a connection failed, in a few words (status, pairing, logs).

    ``tls``: the connection was to speak TLS. Then a connection closed on us is the
    handshake failing (a port without TLS hangs up on a ClientHello), not TCP."""
    if isinstance(error, socket.gaierror):
        return f"DNS: cannot resolve ({error.strerror or error})"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {getattr(error, 'reason', None) or error}"
    if tls and isinstance(error, ConnectionResetError | ConnectionAbortedError
                          | BrokenPipeError):
        return "TLS: the broker closed the connection in the handshake (is this its TLS port?)"
    if isinstance(error, ConnectionRefusedError):
        return "TCP: connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "TCP: no answer"
    if isinstance(error, OSError):
        return f"TCP: {error.strerror or error}"
    return f"connection failed ({error})"


def _expand(path: str) -> str:
    return str(Path(path).expanduser()) if path else ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
