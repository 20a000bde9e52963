"""The pairing rendezvous: one MQTT topic per room where units looking for a partner meet.

An adapter only: it relays payloads between the room topic and the runtime's queue. What the
payloads mean (and whether to trust them: nobody should) is decided by ``protocol.pairing``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

from micromance.config import BrokerConfig
from micromance.link.mqtt import new_client, set_nodelay

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
                                   keepalive=self._broker.keepalive)
        self._client.loop_start()

    def publish(self, payload: bytes) -> None:
        # While still connecting paho keeps it in memory; the protocol resends anyway.
        self._last_publish = self._client.publish(self.topic, payload, qos=1)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Disconnect once the last payload (often a ``cancel``) reached the broker.

        paho's network thread writes what is queued; stopping it at once could drop the
        last message and leave the other unit waiting minutes for an answer.
        """
        last = self._last_publish
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
