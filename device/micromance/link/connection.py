"""A paho client driven by the unit's one loop: connecting, keepalive, reconnects, backoff.

paho runs as an *external event loop* on the runtime's loop thread: the loop watches the
socket (``socket``, ``wants_write``), hands readiness to ``handle_io`` and wakes at
``deadline`` for keepalive and reconnects. Only the blocking part, opening the connection
(DNS, TCP, TLS), runs on a short-lived thread, so a broker that cannot be reached never
freezes the buttons or the screen. A broker that accepts TCP and never answers CONNECT is
given up after ``CONNACK_SECONDS`` and retried with this unit's capped, jittered backoff.

``LoopConnection`` is that machinery and nothing else; the partner link (``mqtt.MqttLink``)
and the home broker link (``homeassistant.HomeAssistantLink``) say what a connection is for
through a few hooks: ``_prepare_attempt`` (before each attempt), ``_connect_options``,
``_when_connected``, ``_when_lost``, ``_before_disconnect`` and ``_report``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from micromance.config import BrokerConfig
from micromance.link.client import CONNECT_ERRORS, Backoff, failure_step, new_client, set_nodelay

log = logging.getLogger(__name__)

#: A broker that accepts TCP but never answers CONNECT is left after this long (and retried
#: with backoff): it must not hold up anything, and paho alone would wait a keepalive.
CONNACK_SECONDS = 10.0

#: Ends the runtime loop's wait (any thread).
Wake = Callable[[], None]


class LoopConnection:
    """One broker connection served by the runtime's loop (a ``loop.Source``).

    Every method runs on the loop thread, except the connection attempt itself, which runs
    on its own short-lived thread while the loop leaves the client alone (``socket`` is None).
    Times are ``time.monotonic()``: network pacing, not the core's injected clock.
    """

    def __init__(self, broker: BrokerConfig, client_id: str, *, wake: Wake | None = None,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._broker = broker
        self.where = f"{broker.host}:{broker.port}"
        self._wake = wake or (lambda: None)
        self._connected = threading.Event()
        self._stopping = False
        self._backoff = Backoff.for_this_unit()
        self._client = new_client(broker, client_id, client_factory, self._backoff)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._open = False                     # the loop may use the socket
        self._attempt: threading.Thread | None = None
        self._attempt_result: BaseException | bool | None = None  # set by the attempt thread
        self._connect_at: float | None = None  # next attempt (after a failure or a drop)
        self._connack_by: float | None = None  # the CONNACK must come by then
        self._misc_at: float | None = None     # next keepalive check
        self._misc_every = max(1.0, broker.keepalive / 4)
        self._unacked: list[tuple[int, int]] = []  # (mid, qos) received, not yet PUBACKed

    # --- hooks ------------------------------------------------------------------------

    def _prepare_attempt(self) -> None:
        """Before each connection attempt (the socket is closed): set the Last Will."""

    def _connect_options(self) -> tuple[bool, Any]:
        """``(clean_start, properties)`` of the next CONNECT."""
        from micromance.link.client import connect_properties

        return True, connect_properties()

    def _when_connected(self, client: Any) -> None:
        """The broker accepted us: subscribe, publish what is due, then set ``_connected``
        (on the loop thread, inside the CONNACK callback)."""

    def _when_lost(self, reason: Any) -> None:
        """A connection that was up has gone (we reconnect by ourselves)."""

    def _before_disconnect(self) -> None:
        """A clean stop while connected: say goodbye (the Last Will is not sent)."""

    def _report(self, error: str) -> None:
        """This broker is not (or no longer) usable, and why (for status, the core)."""

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._begin_attempt()

    def stop(self, timeout: float = 2.0) -> None:
        """Say goodbye while we still can, then disconnect."""
        self._stopping = True
        if self._attempt is not None:
            self._attempt.join(timeout)  # a daemon thread: never holds the exit up for long
            self._take_attempt_result()
        if self._open:
            self.flush()
        if self._open:
            if self._connected.is_set():
                self._before_disconnect()
                self._drain(time.monotonic() + timeout)
            self._client.disconnect(properties=self._disconnect_properties())
        self._open = False
        self._connected.clear()

    def _disconnect_properties(self) -> Any:
        return None

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

        With ``manual_ack_set(True)`` the PUBACK waits until the loop has carried the
        message's event out (committed it), so the broker forgets nothing we had not kept.
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
        self._prepare_attempt()
        clean_start, properties = self._connect_options()
        self._client.connect_async(self._broker.host, self._broker.port,
                                   keepalive=self._broker.keepalive, clean_start=clean_start,
                                   properties=properties)

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

    # --- paho callbacks (on the loop, inside handle_io) -----------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        self._connack_by = None
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.where, reason)
            self._report(f"login: {reason}")
            return
        self._backoff.reset()
        set_nodelay(client)
        self._when_connected(client)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if self._stopping:
            return
        if was_connected:
            self._when_lost(reason)
