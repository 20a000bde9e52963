"""The pairing rendezvous: one MQTT topic per room where units looking for a partner meet.

An adapter only: it relays payloads between the room topic and the runtime's queue. What the
payloads mean (and whether to trust them: nobody should) is decided by ``protocol.pairing``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.link.client import connect_properties, new_client, set_nodelay
from micromance.protocol.pairing import ENTROPY_BYTES

log = logging.getLogger(__name__)

DEFAULT_ROOM = "lobby"
#: How long ``stop`` waits for the last payload to reach the broker.
STOP_TIMEOUT = 2.0


def room_topic(room: str) -> str:
    name = room or DEFAULT_ROOM
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(f"room {name!r}: use letters, digits, - and _ (at most 64)")
    return f"micromance/v1/pairing/{name}"


class Rendezvous:
    """A short-lived connection for one pairing attempt."""

    def __init__(self, broker: BrokerConfig, device_id: str, room: str,
                 on_payload: Callable[[bytes], None], *,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self.topic = room_topic(room)
        self._broker = broker
        self._on_payload = on_payload
        self._client = new_client(broker, f"micromance-pair-{device_id}", client_factory)
        self._client.on_connect = self._on_connect
        self._client.on_message = lambda _client, _userdata, message: self._on_payload(
            bytes(message.payload))
        self._last_publish: Any = None

    def start(self) -> None:
        log.info("pairing: looking for the other unit in %s", self.topic)
        self._client.connect_async(self._broker.host, self._broker.port,
                                   keepalive=self._broker.keepalive,
                                   properties=connect_properties())
        self._client.loop_start()

    def publish(self, payload: bytes) -> None:
        # While still connecting paho keeps it in memory; the protocol resends anyway.
        self._last_publish = self._client.publish(self.topic, payload, qos=1)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Disconnect once the last payload (often a ``cancel``) reached the broker.

        paho's network thread writes what is queued; stopping it at once could drop the
        last message and leave the other unit waiting minutes for an answer. With
        ``timeout=0`` nothing blocks (the unit's loop): paho's thread writes what is queued,
        the DISCONNECT last, and then ends by itself.
        """
        last = self._last_publish
        if not timeout:
            self._client.disconnect()
            return
        if last is not None and self._client.is_connected():
            with contextlib.suppress(RuntimeError, ValueError):  # lost meanwhile: no wait
                last.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            log.warning("pairing: the broker refused the connection: %s", reason)
            return
        set_nodelay(client)
        client.subscribe(self.topic, qos=1)


class PairingRoom:
    """The rendezvous as a unit uses it: opened by ``StartPairing``, closed by ``StopPairing``.

    Lives as long as the unit; each attempt gets a fresh connection and fresh randomness
    (``PairingBegin``), and every payload from the room becomes a ``PairingMessage``.
    """

    def __init__(self, broker: BrokerConfig, device_id: str, post: Callable[..., None], *,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._broker = broker
        self._device_id = device_id
        self._post = post
        self._client_factory = client_factory
        self._rendezvous: Rendezvous | None = None

    def open(self) -> None:
        self.close()
        self._rendezvous = Rendezvous(
            self._broker, self._device_id, self._broker.room,
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
