"""A "broker" that accepts TCP and never says a word: how a hung broker looks to a client."""

from __future__ import annotations

import contextlib
import socket
import threading


class HangingBroker:
    """Listens on loopback, accepts every connection and holds it, silent."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                connection, _ = self.server.accept()
                self.held.append(connection)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        for connection in self.held:
            connection.close()
        self.server.close()

    def __enter__(self) -> HangingBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
