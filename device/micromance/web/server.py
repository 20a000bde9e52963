"""Serving the page with waitress: on a TCP port, or on the socket systemd hands over.

Socket activation (``micromance-web.socket``) means the process only exists while someone
looks: systemd listens on port 80, starts the service on the first connection and passes
the listening socket as fd 3 (``LISTEN_FDS``/``LISTEN_PID``). After ``IDLE_EXIT_SECONDS``
without a request the process exits and systemd listens alone again.

The serving loop is waitress's own asyncore loop, run one turn (at most a second) at a time,
so SIGTERM and the idle limit are noticed within a second without a thread of our own.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger("micromance.web")

#: systemd passes the first socket as this descriptor (sd_listen_fds(3)).
LISTEN_FDS_START = 3
IDLE_EXIT_SECONDS = 600.0
DEFAULT_PORT = 8080
#: Few threads: a phone or two at a time, and each thread costs memory on a Pi Zero.
THREADS = 2
LOOP_TURN_SECONDS = 1.0


def systemd_socket(environ: Mapping[str, str] | None = None) -> socket.socket | None:
    """The listening socket systemd passed to this very process, or None. The variables are
    removed so a child process cannot take them for its own."""
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    return socket.socket(fileno=LISTEN_FDS_START)


class IdleClock:
    """Wraps the app: when the last request ended, and how many are being served."""

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.clock = clock
        self.last = clock()
        self.busy = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        with self._lock:
            self.busy += 1
        try:
            return list(self.app(environ, start_response))  # pages are small
        finally:
            with self._lock:
                self.busy -= 1
                self.last = self.clock()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self.busy else self.clock() - self.last


class WebServer:
    """waitress on ``sock`` (systemd's) or on ``host:port``; ``idle_exit`` seconds without a
    request end ``serve`` (None: never)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], *, sock: socket.socket | None = None,
                 host: str = "0.0.0.0", port: int = DEFAULT_PORT,
                 idle_exit: float | None = None) -> None:
        from waitress.server import create_server

        self.idle = IdleClock(app)
        self.idle_exit = idle_exit
        self._stop = threading.Event()
        options: dict[str, Any] = {"threads": THREADS, "ident": "micromance",
                                   "asyncore_use_poll": True}
        if sock is not None:
            options["sockets"] = [sock]
        else:
            options.update(host=host, port=port)
        self._server = create_server(self.idle, **options)
        self._map = getattr(self._server, "map", None) or self._server._map

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port a test asked to be chosen, too)."""
        return (str(self._server.effective_host), int(self._server.effective_port))

    def serve(self) -> str:
        """Serve until ``stop``, SIGTERM or the idle limit; returns why it ended."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self._stop.set())
        why = "stopped"
        try:
            while not self._stop.is_set():
                self._server.asyncore.loop(timeout=LOOP_TURN_SECONDS, map=self._map,
                                           use_poll=True, count=1)
                if self.idle_exit is not None and self.idle.idle_for() >= self.idle_exit:
                    why = f"idle for {self.idle_exit / 60:g} minutes"
                    break
        finally:
            self.close()
        return why

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        for dispatcher in list(self._map.values()):
            dispatcher.close()
        self._server.task_dispatcher.shutdown()
