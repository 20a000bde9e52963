"""systemd integration: READY/STOPPING/WATCHDOG notifications over $NOTIFY_SOCKET.

A few lines of the sd_notify protocol instead of a dependency; silent when not under systemd.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        #: Ping at half the watchdog period; None when no watchdog is asked for.
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and mine else None
        self._clock = clock
        self._pinged_at: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, message: str) -> None:
        if not self._address:
            return
        address = self._address
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.connect(address)
                sock.sendall(message.encode())
            except OSError:
                pass  # systemd went away: nothing useful to do about it

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        """WATCHDOG=1, at most once per half ping interval: the loop calls this on every turn,
        and a burst of events should not cost four syscalls each. The loop never sleeps longer
        than the interval, so pings stay under 1.5 intervals (0.75 of WatchdogSec) apart."""
        if not self._address or self.watchdog_interval is None:
            return
        now = self._clock()
        if self._pinged_at is not None and now - self._pinged_at < self.watchdog_interval / 2:
            return
        self._pinged_at = now
        self.notify("WATCHDOG=1")
