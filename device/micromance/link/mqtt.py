"""The partner link over MQTT: a thin wrapper around a paho-mqtt 2 client.

It only translates. paho calls back on its own thread; the callbacks open sealed messages
(CPU only, no shared state) and put events on the runtime's queue. Nothing here blocks in a
callback, decides what a message means, or touches the store.

Choices that matter (see DESIGN.md, Known pitfalls):
- MQTT 5 with ``clean_start=False`` *and* a SessionExpiryInterval, and a fixed client id, so
  the broker keeps our subscriptions and queued QoS 1 messages while we are away;
- subscribe inside ``on_connect`` so every reconnect resubscribes;
- TCP_NODELAY on the socket once connected (Nagle cost 88 ms per round trip on loopback);
- retained presence with a Last Will ``offline``; ``offline`` published on clean shutdown;
- reconnect with capped exponential backoff; each unit draws its own base delay, which
  spreads a fleet's reconnects after a broker restart (jitter).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import LinkError
from micromance.link import protocol
from micromance.link.pair import Pair
from micromance.link.protocol import Message, ProtocolError, Topics

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 14 * 24 * 3600   # the broker keeps our queue for two weeks away
ONLINE, OFFLINE = b"online", b"offline"

#: Puts an event built from a factory and fields on the runtime's queue (stamped there).
Post = Callable[..., None]


def new_client(broker: BrokerConfig, client_id: str,
               client_factory: Callable[..., Any] | None = None) -> Any:
    """A paho client set up from the config: MQTT 5, TLS, credentials, jittered backoff."""
    import paho.mqtt.client as mqtt

    factory = client_factory or mqtt.Client
    client = factory(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                     protocol=mqtt.MQTTv5)
    client.reconnect_delay_set(min_delay=1 + random.random(),  # type: ignore[arg-type]
                               max_delay=50 + int(random.random() * 20))
    client.max_queued_messages_set(1000)
    if broker.username:
        client.username_pw_set(broker.username, read_password(broker))
    if broker.tls:
        try:
            client.tls_set(ca_certs=broker.ca_file or None, certfile=broker.client_cert or None,
                           keyfile=broker.client_key or None, cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError) as error:
            raise LinkError(
                f"cannot set up TLS for the broker ({error}); fix: check broker.ca_file, "
                "broker.client_cert and broker.client_key") from None
    return client


def set_nodelay(client: Any) -> None:
    """Nagle's algorithm held each small message back ~40 ms on loopback: switch it off."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):  # not TCP (a websocket wrapper): nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def read_password(broker: BrokerConfig) -> str:
    """The broker password from ``broker.password_file`` (never from the config itself)."""
    if not broker.password_file:
        return ""
    path = Path(broker.password_file).expanduser()
    try:
        return path.read_text().strip()
    except OSError as error:
        raise LinkError(f"cannot read broker.password_file {path} ({error.strerror}); fix: "
                        "make it readable for the service user") from None


class MqttLink:
    """One unit's connection to the broker, bound to its pair."""

    def __init__(self, broker: BrokerConfig, pair: Pair, post: Post, *,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._broker = broker
        self._pair = pair
        self._post = post
        self.mine = Topics(pair.pair_id, pair.device_id)
        self.partner = Topics(pair.pair_id, pair.partner_id)
        self._connected = threading.Event()
        self._stopping = False
        self._client = self._make_client(client_factory)

    # --- set-up -------------------------------------------------------------------------

    def _make_client(self, client_factory: Callable[..., Any] | None) -> Any:
        client = new_client(self._broker, f"micromance-{self._pair.device_id}", client_factory)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.will_set(self.mine.presence, OFFLINE, qos=1, retain=True)
        return client

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self._post(ev.LinkChanged, link=ev.LinkState.CONNECTING)
        self._client.connect_async(self._broker.host, self._broker.port,
                                   keepalive=self._broker.keepalive, clean_start=False,
                                   properties=properties)
        self._client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``offline`` (retained) while we still can, then disconnect."""
        self._stopping = True
        if self._connected.is_set():
            info = self._client.publish(self.mine.presence, OFFLINE, qos=1, retain=True)
            # If the connection is lost meanwhile, the Last Will says the same.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- sending (loop thread) ----------------------------------------------------------

    def publish(self, message: Message) -> None:
        """Seal and publish one event (QoS 1). Skipped while offline: the outbox redelivers."""
        if not self.connected:
            return
        topic = self.mine.events
        payload = protocol.seal(message, key=self._pair.key, topic=topic)
        self._client.publish(topic, payload, qos=1)

    def publish_state(self, message: Message) -> None:
        """The retained summary the partner reads on every (re)connect."""
        if not self.connected:
            return
        topic = self.mine.state
        payload = protocol.seal(message, key=self._pair.key, topic=topic)
        self._client.publish(topic, payload, qos=1, retain=True)

    # --- paho callbacks (paho's thread: translate and enqueue only) ---------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self._broker.host,
                        self._broker.port, reason)
            return
        set_nodelay(client)
        client.subscribe([(self.partner.events, 1), (self.partner.state, 1),
                          (self.partner.presence, 1)])
        client.publish(self.mine.presence, ONLINE, qos=1, retain=True)
        self._connected.set()
        log.info("link up: %s:%d", self._broker.host, self._broker.port)
        self._post(ev.LinkChanged, link=ev.LinkState.CONNECTED)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._stopping:
            return
        if was_connected:
            log.info("link down (%s): reconnecting", reason)
        self._post(ev.LinkChanged, link=ev.LinkState.CONNECTING)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic, payload = message.topic, message.payload
        if topic == self.partner.presence:
            if payload in (ONLINE, OFFLINE):
                self._post(ev.PartnerPresence, online=payload == ONLINE)
            return
        if topic not in (self.partner.events, self.partner.state):
            self._post(ev.Rejected, reason="unexpected_topic")
            return
        try:
            opened = protocol.open_sealed(payload, key=self._pair.key, topic=topic,
                                          expected_sender=self._pair.partner_id)
        except ProtocolError as error:
            self._post(ev.Rejected, reason=error.reason)
            return
        if (topic == self.partner.state) != (opened.type == "state"):
            self._post(ev.Rejected, reason="wrong_channel")
            return
        self._post(ev.Delivery, message=opened)
