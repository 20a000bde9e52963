"""The partner link over MQTT: a thin wrapper around a paho-mqtt 2 client.

It only translates. paho runs as an *external event loop* on the runtime's own loop thread
(``connection.LoopConnection``: connecting, keepalive, reconnects): a publish goes out on the
thread that committed it, and a message arrives on the thread that acts on it: no hand-off to
and from a network thread, no second thread wanting the GIL, no wake-up every second.

Callbacks open sealed messages and put events on the runtime's queue; nothing here decides
what a message means or touches the store.

Choices that matter (see docs/pitfalls.md):
- MQTT 5 with ``clean_start=False`` *and* a SessionExpiryInterval, and a fixed client id, so
  the broker keeps our subscriptions and queued QoS 1 messages while we are away;
- but that session belongs to one pair: after a pair change the first connection starts a
  clean session and clears the retained topics the previous pair left (``fresh_session``,
  ``leftovers``), and a link that is replaced while connected takes its pair off the broker
  itself (``leave``);
- a Maximum Packet Size in the CONNECT, so the broker never hands us more than 8 KiB;
- subscribe inside ``on_connect`` so every reconnect resubscribes;
- TCP_NODELAY on the socket once connected (Nagle cost 88 ms per round trip on loopback);
- sealed, retained presence: before every connection attempt the link seals an ``online``
  and, with the next seq, the Last Will ``offline``; it publishes ``online`` once connected and
  the very same ``offline`` on a clean stop (so the partner, which keeps the newest presence,
  sees one offline whichever way the connection ends, and nobody can forge or replay either);
- reconnect with capped exponential backoff; each unit draws its own base delay and cap, which
  spreads a fleet's reconnects after a broker restart (jitter).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from micromance import protocol
from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import StoreError
from micromance.link.client import connect_properties
from micromance.link.connection import LoopConnection, Wake
from micromance.link.pair_file import Pair
from micromance.protocol import Message, MessageType, ProtocolError

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 14 * 24 * 3600   # the broker keeps our queue for two weeks away

#: Puts an event built from a factory and fields on the runtime's queue (stamped there).
Post = Callable[..., None]


class MqttLink(LoopConnection):
    """One unit's connection to one broker, bound to its pair, driven by the runtime's loop
    (the connection machinery is ``LoopConnection``'s)."""

    def __init__(self, broker: BrokerConfig, pair: Pair, post: Post, *,
                 next_seq: Callable[[], int], name: str, index: int = 0,
                 wake: Wake | None = None,
                 client_factory: Callable[..., Any] | None = None,
                 fresh_session: bool = False, leftovers: tuple[str, ...] = (),
                 on_settled: Callable[[], None] | None = None) -> None:
        """``fresh_session``: the broker's session under our client id is not this pair's (a
        pair change, or nothing known): connect with ``clean_start=True`` until a connection
        has succeeded, clear ``leftovers`` (our retained ``state`` and ``presence`` of an
        earlier pair) on it, and call ``on_settled`` (on the loop thread) once the broker has
        acknowledged that; from then on the session is kept as usual."""
        self._pair = pair
        self._post = post
        self.index = index                     # which of the unit's brokers this is
        self._next_seq = next_seq
        self._name = name
        self._online = self._offline = b""     # this connection's sealed presence
        self.mine, self.partner = protocol.pair_names(pair.key, pair.device_id, pair.partner_id)
        super().__init__(broker, self.mine.client_id, wake=wake, client_factory=client_factory)
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._client.manual_ack_set(True)  # PUBACK once the loop has acted: see flush()
        self._fresh = fresh_session            # the next connection starts a clean session
        self._leftovers = leftovers
        self._on_settled = on_settled
        self._clearing: set[int] = set()       # mids of the leftovers' empty retained payloads
        self._leaving = False                  # a pair change: nothing of this pair stays
        self._leave_acks: set[int] = set()     # mids the broker has yet to confirm on leaving
        #: How many connections this link has made (the courier's summary is per connection).
        self.connections = 0

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._report("connecting")  # status lists every broker from the first moment
        super().start()

    def leave(self, timeout: float = 2.0) -> None:
        """The pair changes: take this pair off the broker while we can, then disconnect.

        Unsubscribes the partner's topics, clears our retained ``state`` and ``presence``
        (empty retained payloads, no ``offline``), waits (at most ``timeout``) until the
        broker has acknowledged that, and ends the broker session (a SessionExpiryInterval of
        0 on DISCONNECT, so the Last Will is not sent either). Offline this does nothing but
        stop: the next link starts a clean session and clears these topics then
        (``fresh_session``, ``leftovers``). Runs on the loop thread; what still arrives for
        the old pair meanwhile is dropped.
        """
        self._leaving = self._stopping = True  # no events from here on, no reconnecting
        until = time.monotonic() + timeout
        if self._open and self._connected.is_set():
            self._client.on_unsubscribe = lambda _c, _u, mid, *_: self._leave_acks.discard(mid)
            _, mid = self._client.unsubscribe([self.partner.events, self.partner.state,
                                               self.partner.presence])
            self._leave_acks = {mid, *(self._client.publish(topic, b"", qos=1, retain=True).mid
                                       for topic in (self.mine.state, self.mine.presence))}
            # Read up to the acknowledgements: the broker then sends nothing more, and the
            # socket closes with nothing unread. (Closing with unread bytes sends a TCP RST;
            # the broker may then lose our DISCONNECT and publish the Last Will.)
            self._await_leave_acks(until)
            log.info("left pair %s on the broker%s", self._pair.pair_id[:8],
                     "" if not self._leave_acks else " (not confirmed)")
        self.stop(max(0.0, until - time.monotonic()))

    def _await_leave_acks(self, until: float) -> None:
        import select

        while self._open and self._leave_acks and (left := until - time.monotonic()) > 0:
            sock = self._client.socket()
            if sock is None:
                break
            readable, _, _ = select.select([sock], [sock] if self.wants_write() else [], [],
                                           left)
            self.handle_io(readable=bool(readable))

    def _before_disconnect(self) -> None:
        """Say ``offline`` (retained): the Last Will itself, so that if the connection is
        lost meanwhile the broker says the same, and the partner sees one offline either
        way. Not when leaving the pair: nothing of it stays."""
        if not self._leaving and self._offline:
            self._client.publish(self.mine.presence, self._offline, qos=1, retain=True)

    def _disconnect_properties(self) -> Any:
        return self._end_session() if self._leaving else None

    @staticmethod
    def _end_session() -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
        return properties

    # --- connecting -----------------------------------------------------------------------

    def _connect_options(self) -> tuple[bool, Any]:
        # clean_start stays True until a fresh session has settled, whatever the attempts in
        # between ended with.
        return self._fresh, connect_properties(session_expiry=SESSION_EXPIRY_SECONDS)

    def _prepare_attempt(self) -> None:
        """This connection's ``online`` and, one seq later, its Last Will ``offline``.

        The partner keeps the newest presence: the will must be newer than the ``online``
        it answers, and the next connection's ``online`` newer than this will.
        """
        try:
            self._online = self._presence(online=True)
            self._offline = self._presence(online=False)
        except StoreError as error:  # no seq to be had (a full disk): no presence this time
            log.warning("no presence for this connection: %s", error)
            self._online = self._offline = b""
            self._client.will_clear()
            return
        self._client.will_set(self.mine.presence, self._offline, qos=1, retain=True)

    def _presence(self, *, online: bool) -> bytes:
        from datetime import datetime

        message = Message(type=MessageType.PRESENCE, sender=self.mine.member,
                          seq=self._next_seq(),
                          time=protocol.format_time(datetime.now().astimezone()),
                          name=self._name, sent_total=0, online=online)
        return protocol.seal(message, key=self._pair.key, topic=self.mine.presence)

    # --- sending (loop thread) ----------------------------------------------------------

    def publish_raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish what the courier sealed once for every broker. Skipped while offline."""
        if self.connected:
            self._client.publish(topic, payload, qos=1, retain=retain)

    def publish(self, message: Message) -> None:
        """Seal and publish one event (QoS 1). Skipped while offline: the outbox redelivers."""
        if not self.connected:
            return
        topic = self.mine.events
        payload = protocol.seal(message, key=self._pair.key, topic=topic)
        self._client.publish(topic, payload, qos=1)  # written at once, on this thread

    def publish_state(self, message: Message) -> None:
        """The retained summary the partner reads on every (re)connect."""
        if not self.connected:
            return
        topic = self.mine.state
        payload = protocol.seal(message, key=self._pair.key, topic=topic)
        self._client.publish(topic, payload, qos=1, retain=True)

    # --- paho callbacks (on the loop, inside handle_io: translate and enqueue only) -----

    def _when_connected(self, client: Any) -> None:
        if self._fresh:
            self._clear_leftovers(client)
        client.subscribe([(self.partner.events, 1), (self.partner.state, 1),
                          (self.partner.presence, 1)])
        if self._online:
            client.publish(self.mine.presence, self._online, qos=1, retain=True)
        self.connections += 1
        self._connected.set()
        log.info("link up: %s", self.where)
        self._post(ev.BrokerChanged, broker=self.index, where=self.where, connected=True)

    def _clear_leftovers(self, client: Any) -> None:
        """A clean session is up: clear what an earlier pair left retained on the broker."""
        self._clearing = {client.publish(topic, b"", qos=1, retain=True).mid
                          for topic in self._leftovers}
        if not self._clearing:
            self._settled()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None,
                    properties: Any = None) -> None:
        self._leave_acks.discard(mid)
        if mid in self._clearing:
            self._clearing.discard(mid)
            if not self._clearing and self._fresh:
                self._settled()

    def _report(self, error: str) -> None:
        """This broker is not (or no longer) usable, and why: for status and the core."""
        self._post(ev.BrokerChanged, broker=self.index, where=self.where, connected=False,
                   error=error)

    def _settled(self) -> None:
        """The broker session is this pair's now and the leftovers are gone: keep it."""
        self._fresh = False
        self._leftovers = ()
        if self._on_settled is not None:
            self._on_settled()

    def _when_lost(self, reason: Any) -> None:
        log.info("link down: %s (%s): reconnecting", self.where, reason)
        self._report(f"connection lost ({reason})")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.qos:
            self._unacked.append((message.mid, message.qos))
        if self._leaving:
            return  # the old pair's, read while leaving it
        topic, payload = message.topic, message.payload
        if topic not in (self.partner.events, self.partner.state, self.partner.presence):
            self._post(ev.OldPairMessage)  # the session's old subscriptions: not an attack
            return
        if not payload:
            return  # how a retained topic is cleared (an unpair, a pair change): no message
        try:
            opened = protocol.open_sealed(payload, key=self._pair.key, topic=topic,
                                          expected_sender=self.partner.member)
        except ProtocolError as error:
            self._post(ev.Rejected, reason=error.reason)
            return
        self._post(ev.Delivery, message=opened, broker=self.index)  # sealed for this topic
