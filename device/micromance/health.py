"""Is the daemon healthy enough to tell systemd's watchdog so?

The loop sends WATCHDOG=1 on every iteration. A loop that runs while the threads feeding it
are dead would keep the unit "alive" yet deaf: a dead gpiozero or lgpio notification thread
(the FIFO pitfall in docs/pitfalls.md) stops the buttons. So the runtime tracks the threads its
adapters start and stops pinging when one of them is gone; systemd then kills and restarts the
unit after WatchdogSec. (The partner link has no thread to watch: its network I/O runs on the
loop itself, so a loop that pings is a loop that serves the link.)

Threads are found by difference (those that appeared while an adapter was being opened), not
by name: paho, gpiozero and lgpio name their threads as they like, and mock pins start none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def threads_now() -> frozenset[threading.Thread]:
    """The live threads at this moment."""
    return frozenset(threading.enumerate())


def threads_started_since(before: frozenset[threading.Thread]) -> tuple[threading.Thread, ...]:
    """Threads alive now that were not in ``before``."""
    return tuple(t for t in threading.enumerate() if t not in before and t.is_alive())


def threads_alive(threads: Iterable[threading.Thread]) -> bool:
    """True when every given thread is still running (none given: trivially true)."""
    return all(thread.is_alive() for thread in threads)


class ThreadWatch:
    """The adapter threads, by adapter name, whose death must stop the watchdog pings."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[threading.Thread, ...]] = {}
        self._lock = threading.Lock()
        self._reported = False

    def track(self, name: str, open_adapter: Callable[[], T]) -> T:
        """Open an adapter and watch the threads it started (replacing earlier ones of ``name``)."""
        before = threads_now()
        adapter = open_adapter()
        with self._lock:
            self._groups[name] = threads_started_since(before)
        return adapter

    def forget(self, name: str) -> None:
        """Stop watching an adapter that is being closed on purpose."""
        with self._lock:
            self._groups.pop(name, None)

    def watched(self) -> dict[str, tuple[str, ...]]:
        """Adapter name -> names of its threads (for logs and tests)."""
        with self._lock:
            return {name: tuple(t.name for t in threads) for name, threads in self._groups.items()}

    def dead(self) -> list[str]:
        """``adapter: thread`` for every watched thread that has ended."""
        with self._lock:
            groups = list(self._groups.items())
        return [f"{name}: {thread.name}" for name, threads in groups for thread in threads
                if not thread.is_alive()]

    def alive(self) -> bool:
        """True while all watched threads run; the first death is logged once, at ERROR."""
        dead = self.dead()
        if not dead:
            return True
        if not self._reported:
            self._reported = True
            log.error("adapter thread ended (%s): no more watchdog pings, so systemd restarts "
                      "the unit", ", ".join(dead))
        return False
