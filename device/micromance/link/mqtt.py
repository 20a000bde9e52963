"""The partner link over MQTT: a thin wrapper around a paho-mqtt 2 client.

It only translates. paho runs as an *external event loop* on the runtime's own loop thread:
the loop watches the socket (``socket``, ``wants_write``), hands readiness to ``handle_io``
and wakes at ``deadline`` for keepalive and reconnects. So a publish goes out on the thread
that committed it, and a message arrives on the thread that acts on it: no hand-off to and
from a network thread, no second thread wanting the GIL, no wake-up every second. Only the
blocking part, opening the connection (DNS, TCP, TLS), runs on a short-lived thread, so a
broker that cannot be reached never freezes the buttons or the screen.

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
import threading
import time
from collections.abc import Callable
from typing import Any

from micromance import protocol
from micromance.config import BrokerConfig
from micromance.core import events as ev
from micromance.errors import StoreError
from micromance.link.client import (
    CONNECT_ERRORS,
    Backoff,
    connect_properties,
    failure_step,
    new_client,
    set_nodelay,
)
from micromance.link.pair_file import Pair
from micromance.protocol import Message, MessageType, ProtocolError

log = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 14 * 24 * 3600   # the broker keeps our queue for two weeks away
#: A broker that accepts TCP but never answers CONNECT is left after this long (and retried
#: with backoff): it must not hold up anything, and paho alone would wait a keepalive.
CONNACK_SECONDS = 10.0

#: Puts an event built from a factory and fields on the runtime's queue (stamped there).
Post = Callable[..., None]
#: Ends the runtime loop's wait (any thread).
Wake = Callable[[], None]


class MqttLink:
    """One unit's connection to the broker, bound to its pair, driven by the runtime's loop.

    Every method runs on the loop thread, except the connection attempt itself, which runs
    on its own short-lived thread while the loop leaves the client alone (``socket`` is None).
    Times are ``time.monotonic()``: network pacing, not the core's injected clock.
    """

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
        self._broker = broker
        self._pair = pair
        self._post = post
        self.index = index                     # which of the unit's brokers this is
        self.where = f"{broker.host}:{broker.port}"
        self._connack_by: float | None = None  # the CONNACK must come by then
        self._next_seq = next_seq
        self._name = name
        self._online = self._offline = b""     # this connection's sealed presence
        self._wake = wake or (lambda: None)
        self.mine, self.partner = protocol.pair_names(pair.key, pair.device_id, pair.partner_id)
        self._connected = threading.Event()
        self._stopping = False
        self._backoff = Backoff.for_this_unit()
        self._client = self._make_client(client_factory)
        self._open = False                     # the loop may use the socket
        self._attempt: threading.Thread | None = None
        self._attempt_result: BaseException | bool | None = None  # set by the attempt thread
        self._connect_at: float | None = None  # next attempt (after a failure or a drop)
        self._misc_at: float | None = None     # next keepalive check
        self._misc_every = max(1.0, broker.keepalive / 4)
        self._unacked: list[tuple[int, int]] = []  # (mid, qos) received, not yet PUBACKed
        self._fresh = fresh_session            # the next connection starts a clean session
        self._leftovers = leftovers
        self._on_settled = on_settled
        self._clearing: set[int] = set()       # mids of the leftovers' empty retained payloads
        self._leaving = False                  # a pair change: nothing of this pair stays
        self._leave_acks: set[int] = set()     # mids the broker has yet to confirm on leaving

    # --- set-up -------------------------------------------------------------------------

    def _make_client(self, client_factory: Callable[..., Any] | None) -> Any:
        client = new_client(self._broker, self.mine.client_id, client_factory,
                            self._backoff)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.manual_ack_set(True)  # PUBACK once the loop has acted: see flush()
        return client

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._report("connecting")  # status lists every broker from the first moment
        self._begin_attempt()

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

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``offline`` (retained) while we still can, then disconnect."""
        self._stopping = True
        if self._attempt is not None:
            self._attempt.join(timeout)  # a daemon thread: never holds the exit up for long
            self._take_attempt_result()
        if self._open:
            self.flush()
        if self._open:
            if self._connected.is_set():
                if not self._leaving and self._offline:
                    # The Last Will itself: if the connection is lost meanwhile, the broker
                    # says the same, and the partner sees one offline either way.
                    self._client.publish(self.mine.presence, self._offline, qos=1, retain=True)
                self._drain(time.monotonic() + timeout)
            self._client.disconnect(properties=self._end_session() if self._leaving else None)
        self._open = False
        self._connected.clear()

    @staticmethod
    def _end_session() -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.DISCONNECT)
        properties.SessionExpiryInterval = 0
        return properties

    def _drain(self, until: float) -> None:
        """Write what paho still holds (a full socket buffer), for at most ``until``."""
        import select

        while self._open and self._client.want_write() and time.monotonic() < until:
            sock = self._client.socket()
            if sock is None:
                return
            select.select([], [sock], [], max(0.0, until - time.monotonic()))
            self._client.loop_write()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- the runtime loop's side --------------------------------------------------------

    def socket(self) -> Any:
        """The socket the loop should watch, or None while there is none (or it is being made)."""
        return self._client.socket() if self._open else None

    def wants_write(self) -> bool:
        return self._open and self._client.want_write()

    def flush(self) -> None:
        """Before the loop sleeps: acknowledge to the broker what arrived and was acted on.

        The PUBACK waits until the loop has carried the message's event out (committed it),
        so the broker forgets nothing we had not kept, and the light is not held up by it.
        """
        unacked, self._unacked = self._unacked, []
        if not self._open:
            return
        for mid, qos in unacked:
            self._client.ack(mid, qos)
        self._write_pending()

    def deadline(self) -> float | None:
        """When ``handle_timers`` has work: a keepalive check, the next connection attempt,
        or the moment a silent broker is given up."""
        if self._attempt_result is not None:
            return time.monotonic()
        times = [t for t in (self._misc_at if self._open else None, self._connect_at,
                             self._connack_by) if t is not None]
        return min(times, default=None)

    def handle_io(self, readable: bool) -> None:
        """The socket is ready: read if it is readable (callbacks run here, on the loop), then
        send whatever paho still holds (the answer to a writable socket, too)."""
        if readable and self._open:
            self._client.loop_read()
            sock = self._client.socket()
            while sock is not None and getattr(sock, "pending", lambda: 0)() > 0:
                self._client.loop_read()  # TLS may hold decrypted bytes select cannot see
                sock = self._client.socket()
        self._write_pending()

    def handle_timers(self) -> None:
        now = time.monotonic()
        self._take_attempt_result()
        if self._open and self._misc_at is not None and now >= self._misc_at:
            self._misc_at = now + self._misc_every
            self._client.loop_misc()  # PINGREQ when due; a lost PINGRESP closes the socket
            self._write_pending()
        if self._connect_at is not None and now >= self._connect_at:
            self._begin_attempt()
        if self._connack_by is not None and now >= self._connack_by:
            self._connack_by = None
            if self._open and not self._connected.is_set():
                self._report(f"no answer to CONNECT within {CONNACK_SECONDS:.0f} s")
                self._client.disconnect()  # closes the socket once written
                self._write_pending()

    def _write_pending(self) -> None:
        """Send what paho queued without writing it (from inside a callback, or a full
        socket buffer), then notice if that, or what came before, closed the socket."""
        if self._open and self._client.want_write():
            self._client.loop_write()
        self._check_closed()

    # --- connecting (off the loop) --------------------------------------------------------

    def _begin_attempt(self) -> None:
        """Open the connection on a short-lived thread: DNS, TCP and TLS may block for seconds."""
        if self._stopping or self._attempt is not None:
            return
        self._connect_at = None
        self._seal_presence()
        # Set before every attempt (the socket is closed): clean_start stays True until a
        # fresh session has settled, whatever the attempts in between ended with.
        self._client.connect_async(
            self._broker.host, self._broker.port, keepalive=self._broker.keepalive,
            clean_start=self._fresh,
            properties=connect_properties(session_expiry=SESSION_EXPIRY_SECONDS))

        def attempt() -> None:
            try:
                self._client.reconnect()  # sends CONNECT; CONNACK arrives on the loop
                self._attempt_result = True
            except CONNECT_ERRORS as error:
                self._attempt_result = error
            except Exception as error:  # anything else must not end the retries either
                log.debug("connection attempt failed unexpectedly", exc_info=True)
                self._attempt_result = error
            self._wake()

        self._attempt = threading.Thread(target=attempt, name="micromance-connect",
                                         daemon=True)
        self._attempt.start()

    def _seal_presence(self) -> None:
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

    def _take_attempt_result(self) -> None:
        """On the loop: adopt the socket the attempt opened, or plan the next attempt."""
        result = self._attempt_result
        if result is None:
            return
        self._attempt_result = None
        if self._attempt is not None:
            self._attempt.join()
            self._attempt = None
        if result is True and not self._stopping:
            self._open = True
            self._unacked.clear()
            self._misc_at = time.monotonic() + self._misc_every
            self._connack_by = time.monotonic() + CONNACK_SECONDS
            return
        if result is True:  # stopped meanwhile: close what the attempt opened
            self._client.disconnect()
            return
        first_failure = not self._backoff.current
        delay = self._backoff.next_delay()
        # Once per outage in the journal (an SD card), every attempt at debug level.
        log.log(logging.INFO if first_failure else logging.DEBUG,
                "broker %s not reachable (%s): next attempt in %.0f s", self.where, result,
                delay)
        self._connect_at = time.monotonic() + delay
        self._report(failure_step(result, tls=self._broker.tls))

    def _check_closed(self) -> None:
        """paho closed the socket (lost, refused, keepalive): plan a reconnect."""
        if self._open and self._client.socket() is None:
            self._open = False
            self._misc_at = None
            self._connack_by = None
            self._unacked.clear()  # message ids of a closed connection; the broker resends
            if not self._stopping:
                self._connect_at = time.monotonic() + self._backoff.next_delay()

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

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        self._connack_by = None
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.where, reason)
            self._report(f"login: {reason}")
            return
        self._backoff.reset()
        set_nodelay(client)
        if self._fresh:
            self._clear_leftovers(client)
        client.subscribe([(self.partner.events, 1), (self.partner.state, 1),
                          (self.partner.presence, 1)])
        if self._online:
            client.publish(self.mine.presence, self._online, qos=1, retain=True)
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

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._stopping:
            return
        if was_connected:
            log.info("link down: %s (%s): reconnecting", self.where, reason)
            self._report(f"connection lost ({reason})")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.qos:
            self._unacked.append((message.mid, message.qos))
        if self._leaving:
            return  # the old pair's, read while leaving it
        topic, payload = message.topic, message.payload
        if topic not in (self.partner.events, self.partner.state, self.partner.presence):
            self._post(ev.Rejected, reason="unexpected_topic")
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
