"""The pairing rendezvous: one room topic, on every broker at once, where two units meet.

An adapter only: it relays payloads between the room topic and a callback, and says how each
broker is doing. What the payloads mean (and whether to trust them: nobody should) is decided
by ``protocol.pairing``.

Each broker gets its own short-lived paho client on paho's thread. The connection is opened
by hand first (``reconnect`` on a small thread) so that a failure comes back with its reason
(DNS, TCP, TLS), which paho's own retry loop would swallow; a refused login comes with the
CONNACK. A payload goes out on every broker; the copies that come back through the others
are dropped here, so the protocol sees each payload once (its answers to a repeat would
otherwise multiply with every broker). A genuine resend comes seconds later and passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import LinkError
from micromance.link.client import (
    CONNECT_ERRORS,
    connect_properties,
    failure_step,
    new_client,
    set_nodelay,
)
from micromance.protocol import new_client_id, room_topic
from micromance.protocol.pairing import ENTROPY_BYTES, RESEND_EVERY

log = logging.getLogger(__name__)

#: How long ``stop`` waits for the last payload to reach each broker.
STOP_TIMEOUT = 2.0
#: A broker that takes TCP (and TLS) but says nothing to CONNECT this long is reported.
CONNACK_SECONDS = 5.0
#: Between attempts to open a connection that failed (pairing lasts minutes, not weeks).
RETRY_SECONDS = 5.0
#: The same payload again within this is a copy through another broker, not a resend.
COPY_SECONDS = RESEND_EVERY * 0.75


@dataclass(frozen=True)
class BrokerReport:
    """How one broker of the rendezvous is doing: connected, or why not (``error``)."""

    index: int
    where: str          # host:port
    connected: bool
    error: str = ""


class Rendezvous:
    """One pairing attempt's connections: ``topic`` on each of ``brokers``."""

    def __init__(self, brokers: Sequence[BrokerConfig], topic: str,
                 on_payload: Callable[[bytes], None], *,
                 on_report: Callable[[BrokerReport], None] | None = None,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self.topic = topic
        self._on_payload = on_payload
        self._copies = _Copies()
        self.rooms = [_Room(index, broker, topic, self._deliver,
                            on_report or (lambda report: None), client_factory)
                      for index, broker in enumerate(brokers)]

    def start(self) -> None:
        log.info("pairing: looking for the other unit in %s on %d broker(s)", self.topic,
                 len(self.rooms))
        for room in self.rooms:
            room.start()

    def publish(self, payload: bytes) -> None:
        """On every broker (paho keeps it while a connection is still opening)."""
        for room in self.rooms:
            room.publish(payload)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Leave every broker once the last payload (often a ``cancel``) reached it.

        With ``timeout=0`` nothing blocks (the unit's loop): paho's threads write what is
        queued, the DISCONNECT last, and then end by themselves.
        """
        for room in self.rooms:
            room.stop(timeout)

    def _deliver(self, payload: bytes) -> None:
        if self._copies.first(payload):
            self._on_payload(payload)


class _Copies:
    """Which payloads arrived in the last ``COPY_SECONDS`` (paho threads call ``first``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[bytes, float] = {}

    def first(self, payload: bytes) -> bool:
        digest = hashlib.sha256(payload).digest()
        now = time.monotonic()
        with self._lock:
            self._seen = {d: at for d, at in self._seen.items() if now - at < COPY_SECONDS}
            if digest in self._seen:
                return False
            self._seen[digest] = now
            return True


class _Room:
    """The room on one broker: a paho client with a random client id, linked to nothing."""

    def __init__(self, index: int, broker: BrokerConfig, topic: str,
                 deliver: Callable[[bytes], None], report: Callable[[BrokerReport], None],
                 client_factory: Callable[..., Any] | None) -> None:
        self.index = index
        self.where = f"{broker.host}:{broker.port}"
        self._broker = broker
        self._topic = topic
        self._deliver = deliver
        self._report = report
        self._stopped = threading.Event()
        self._connected = threading.Event()
        self._last_publish: Any = None
        self._client: Any = None
        try:
            self._client = new_client(broker, new_client_id(), client_factory)
        except LinkError as error:  # an unreadable password file, a bad TLS file
            self._setup_error = f"set-up: {error.message}"
            return
        self._setup_error = ""
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = lambda _c, _u, message: self._deliver(bytes(message.payload))

    def start(self) -> None:
        if self._client is None:
            self._say(False, self._setup_error)
            return
        # Stored now, used by every attempt (ours first, then paho's own reconnects).
        self._client.connect_async(self._broker.host, self._broker.port,
                                   keepalive=self._broker.keepalive,
                                   properties=connect_properties())
        threading.Thread(target=self._open, name="micromance-room", daemon=True).start()

    def publish(self, payload: bytes) -> None:
        if self._client is not None:
            self._last_publish = self._client.publish(self._topic, payload, qos=1)

    def stop(self, timeout: float) -> None:
        self._stopped.set()
        if self._client is None:
            return
        last = self._last_publish
        if timeout and last is not None and self._client.is_connected():
            with contextlib.suppress(RuntimeError, ValueError):  # lost meanwhile: no wait
                last.wait_for_publish(timeout)
        self._client.disconnect()
        if timeout:
            self._client.loop_stop()

    def _open(self) -> None:
        """DNS, TCP and TLS by hand until they work, then paho's thread takes over."""
        while not self._stopped.is_set():
            try:
                self._client.reconnect()
            except CONNECT_ERRORS as error:
                self._say(False, failure_step(error, tls=self._broker.tls))
                self._stopped.wait(RETRY_SECONDS)
                continue
            except Exception as error:  # never a traceback from a pairing attempt
                self._say(False, f"connection failed ({error})")
                self._stopped.wait(RETRY_SECONDS)
                continue
            if self._stopped.is_set():
                self._client.disconnect()
                return
            self._client.loop_start()
            if not self._connected.wait(CONNACK_SECONDS) and not self._stopped.is_set():
                self._say(False, f"no answer to CONNECT within {CONNACK_SECONDS:.0f} s")
            return

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            self._say(False, f"login: refused ({reason})")
            return
        self._connected.set()
        set_nodelay(client)
        client.subscribe(self._topic, qos=1)
        self._say(True)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if not self._stopped.is_set() and self._connected.is_set():
            self._say(False, f"connection lost ({reason})")

    def _say(self, connected: bool, error: str = "") -> None:
        if not connected:
            log.info("pairing: broker %s: %s", self.where, error)
        self._report(BrokerReport(self.index, self.where, connected, error))


class PairingRoom:
    """The rendezvous as a unit uses it: opened by ``StartPairing``, closed by ``StopPairing``.

    Lives as long as the unit; each attempt gets fresh connections and fresh randomness
    (``PairingBegin``), and every payload from the room becomes a ``PairingMessage``.
    """

    def __init__(self, brokers: Sequence[BrokerConfig], room: str, post: Callable[..., None],
                 *, client_factory: Callable[..., Any] | None = None) -> None:
        self._brokers = tuple(brokers)
        self._topic = room_topic(room)
        self._post = post
        self._client_factory = client_factory
        self._rendezvous: Rendezvous | None = None

    def reconfigure(self, brokers: Sequence[BrokerConfig], room: str) -> None:
        """A reloaded config: the next attempt meets there (one under way is not moved)."""
        self._brokers = tuple(brokers)
        self._topic = room_topic(room)

    def open(self, topic: str = "") -> None:
        """A fresh attempt in the room with ``topic`` (an invite's, a named room's), or in the
        config's room when it is ""."""
        self.close()
        self._rendezvous = Rendezvous(
            self._brokers, topic or self._topic,
            lambda payload: self._post(ev.PairingMessage, payload=payload),
            client_factory=self._client_factory)
        self._rendezvous.start()
        self._post(ev.PairingBegin, entropy=os.urandom(ENTROPY_BYTES))

    def publish(self, payload: bytes) -> None:
        if self._rendezvous is not None:
            self._rendezvous.publish(payload)

    def close(self) -> None:
        """Leave the room without blocking the loop (see ``Rendezvous.stop``)."""
        if self._rendezvous is not None:
            self._rendezvous.stop(timeout=0)
            self._rendezvous = None
