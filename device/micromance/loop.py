"""The one loop: an event queue, a wake-up pipe, a selector on the network sockets, deadlines.

Adapters call back on their own threads (gpiozero, the key reader) and only ``post`` events;
the network connections are *sources* the loop serves itself (paho as an external event loop),
so their callbacks post the same way without a thread hand-off. The loop is the single
consumer: it hands each event to one handler, one at a time. It sleeps until the next event,
the next network traffic or the next moment a timer or a source asked for — never a fixed
polling interval.

One at a time is the loop's *turn*, a lock the loop thread holds except while it sleeps in
``select``. An event that cannot wait for the loop to wake (a button edge: the press is
committed and published at once) is handed over with ``handle_now``: when the loop sleeps and
nothing is queued, the calling thread takes the turn and runs the handler itself, so no
thread hand-off lies between the edge and the publish; otherwise the event is queued. Either
way the handler never runs on two threads at once, and events keep their order.
"""

from __future__ import annotations

import os
import queue
import selectors
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, Protocol

#: Longest the loop sleeps with nothing scheduled (a safety net, not a poll: ~once an hour).
MAX_SLEEP_SECONDS = 3600.0


class Source(Protocol):
    """A network connection served on the loop's thread.

    Times are ``time.monotonic()``: network pacing, not the core's injected clock.
    """

    def socket(self) -> Any:
        """The socket to watch, or None while there is none (or it is being opened)."""

    def wants_write(self) -> bool:
        """True while bytes wait to be written (the loop then watches for writability)."""

    def handle_io(self, readable: bool) -> None:
        """The socket is ready: read if readable, then write what is pending."""

    def deadline(self) -> float | None:
        """When ``handle_timers`` has work (keepalive, a reconnect), or None."""

    def handle_timers(self) -> None:
        """Do what is due (cheap when nothing is)."""

    def flush(self) -> None:
        """The loop is about to sleep: acknowledge and send what the last steps produced."""


class Timer(Protocol):
    """Something that wants the loop to wake at a time of its own."""

    def seconds_until_due(self) -> float | None:
        """Seconds from now (may be negative when overdue), or None for never."""

    def run_due(self) -> None:
        """Do what is due (cheap when nothing is)."""


class _Stop:
    """Sentinel: end the loop."""


STOP = _Stop()


class Wakeup:
    """A self-pipe: a post from any thread (or a signal handler) ends the loop's wait."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        with suppress(OSError):  # a full pipe is already set; a closed one has no reader
            os.write(self._write, b"\0")

    def clear(self) -> None:
        with suppress(OSError):  # BlockingIOError: empty now
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        fds, (self._read, self._write) = (self._read, self._write), (-1, -1)
        for fd in fds:  # a late ``set`` then fails harmlessly, never writes to a reused fd
            with suppress(OSError):
                os.close(fd)


class Loop:
    """Queue in, one handler out. Exists before the unit runs (events posted early wait in
    the queue) and is closed with it (a context manager)."""

    def __init__(self) -> None:
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sources: Callable[[], Iterable[Source]] = tuple
        self._idle: Callable[[], None] = lambda: None
        self._timers: list[Timer] = []
        self._wakeup = Wakeup()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wakeup, selectors.EVENT_READ)
        self._watched: dict[int, tuple[Any, int]] = {}  # fd -> (socket, events)
        self._thread: int | None = None
        self._turn = threading.Lock()  # held by whoever runs a handler or serves a source
        self._handle: Callable[[Any], None] | None = None  # while ``run`` runs
        self._failure: BaseException | None = None  # a handler's, raised on the loop thread
        self._look_again = False  # set by ``handle_now``: its wake-up is no Tick
        #: How often the loop woke up, for tests and benchmarks.
        self.wakeups = 0
        #: True from taking an event off the queue until its handler returned, so "queue
        #: empty, then not busy" (read in that order) means nothing is pending.
        self.busy = False

    # --- any thread ----------------------------------------------------------------------

    def post(self, event: object) -> None:
        """Queue ``event`` (thread-safe, never blocks) and wake the loop if it sleeps."""
        self.events.put(event)
        if threading.get_ident() != self._thread:  # the loop itself looks next anyway
            self._wakeup.set()

    def handle_now(self, event: object) -> None:
        """Run the handler on ``event`` on this thread if the loop sleeps with nothing queued
        (the loop wakes afterwards to look at its sockets and deadlines again); else ``post``.

        Never from a signal handler (it may run on the loop's thread, inside its wait).
        """
        handle = self._handle
        if handle is None or not self.events.empty() or not self._turn.acquire(blocking=False):
            self.post(event)
            return
        try:
            if self._handle is None:  # the loop ended meanwhile
                self.events.put(event)
                return
            self.busy = True
            handle(event)
        except BaseException as error:  # the loop thread raises it, as if it had run there
            self._failure = error
            self.events.put(STOP)
        finally:
            self.busy = False
            self._look_again = True  # the loop wakes to serve what the handler left, no Tick
            self._turn.release()
        self._wakeup.set()

    def next_up(self) -> bool:
        """True on the loop's own thread with nothing queued: an event posted now is the next
        one handled, so the state its handler will see is the state of this moment."""
        return threading.get_ident() == self._thread and self.events.empty()

    def stop(self) -> None:
        """End the loop (safe from signal handlers: SimpleQueue.put is reentrant)."""
        self.events.put(STOP)
        self._wakeup.set()  # always: a signal handler runs on the loop's thread, in its wait

    def wake(self) -> None:
        """End the loop's wait, so it looks at the sources and timers again."""
        self._wakeup.set()

    # --- the loop's thread ---------------------------------------------------------------

    def run(self, handle: Callable[[Any], None], tick: Callable[[], Any], *,
            sources: Callable[[], Iterable[Source]] = tuple, timers: Iterable[Timer] = (),
            heartbeat: Callable[[], None] = lambda: None,
            idle: Callable[[], None] = lambda: None) -> None:
        """Hand every event to ``handle`` until ``stop``; a wake-up with no event is ``tick()``.

        ``sources()`` names the network connections to serve now (they come and go with the
        pair); ``timers`` wake the loop when due; ``heartbeat`` runs after every event;
        ``idle`` runs once the queue is empty, before the loop sleeps (what can wait for a
        burst of events to end: drawing).
        """
        self._thread = threading.get_ident()
        self._sources, self._timers, self._idle = sources, list(timers), idle
        with self._turn:
            self._handle = handle
            try:
                while True:
                    event = self._next_event(tick)
                    if event is STOP:
                        break
                    if event is None:
                        continue  # woken after ``handle_now``: flush, draw, plan again
                    handle(event)
                    self.busy = False
                    heartbeat()
            finally:
                self._handle = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def close(self) -> None:
        self._selector.close()
        self._wakeup.close()
        self._watched.clear()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_event(self, tick: Callable[[], Any]) -> Any:
        """The next queued event; else wait for one, for the network or for a deadline (None:
        look again, after ``handle_now``).

        An event that arrives is acted on first; the timers and the sources' timers run once
        nothing waits in the queue (they keep seconds and minutes, not milliseconds).
        """
        if self.events.empty():
            sources = list(self._sources())
            for source in sources:
                source.flush()  # acknowledge what the loop acted on (may plan a reconnect)
            self._idle()
            # Posts made while the loop was busy left wake-up bytes behind: their events were
            # taken already. Cleared before the queue is looked at, a later post still wakes.
            self._wakeup.clear()
            timeout = self._sleep_budget(sources) if self.events.empty() else 0.0
            if timeout > 0:
                self._wait(timeout, sources)
            self.wakeups += 1
        if self.events.empty():
            for timer in self._timers:
                timer.run_due()  # calendar jobs post their events; they come next
            for source in self._sources():
                source.handle_timers()
        self.busy = True  # before taking the event: see ``busy``
        try:
            return self.events.get_nowait()
        except queue.Empty:
            if self._look_again:
                self._look_again = self.busy = False
                return None  # the next pass sleeps again, or ticks at once if a time is due
            return tick()

    def sleep_budget(self) -> float:
        """How long the loop would sleep now, if nothing happened meanwhile."""
        return self._sleep_budget(list(self._sources()))

    def _sleep_budget(self, sources: list[Source]) -> float:
        budgets = [MAX_SLEEP_SECONDS]
        for timer in self._timers:
            seconds = timer.seconds_until_due()
            if seconds is not None:
                budgets.append(seconds)
        now = time.monotonic()
        for source in sources:
            deadline = source.deadline()
            if deadline is not None:
                budgets.append(deadline - now)
        return max(0.0, min(budgets))

    def _wait(self, timeout: float, sources: list[Source]) -> None:
        """Sleep until woken, until a source's socket is ready (then serve it), or ``timeout``."""
        by_fd = self._watch(sources)
        ready: list[tuple[Source, int]] = []
        self._turn.release()  # asleep: ``handle_now`` may run a handler meanwhile
        try:
            selected = self._selector.select(timeout)
        finally:
            self._turn.acquire()
        for key, mask in selected:
            if key.fileobj is self._wakeup:
                self._wakeup.clear()
            elif key.fd in by_fd:
                ready.append((by_fd[key.fd], mask))
        for source, mask in ready:
            source.handle_io(readable=bool(mask & selectors.EVENT_READ))

    def _watch(self, sources: list[Source]) -> dict[int, Source]:
        """Keep the selector on the sources' current sockets (they change on reconnects).

        A socket is known by the object, not only its number: a reconnect may reuse the fd
        of a socket that was closed (and so silently dropped by epoll).
        """
        wanted: dict[int, tuple[Source, Any, int]] = {}
        for source in sources:
            sock = source.socket()
            if sock is None:
                continue
            events = selectors.EVENT_READ | (
                selectors.EVENT_WRITE if source.wants_write() else 0)
            wanted[sock.fileno()] = (source, sock, events)
        for fd, (_, sock, events) in wanted.items():
            if self._watched.get(fd) == (sock, events):
                continue
            if fd in self._watched:
                with suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(fd)
            self._selector.register(fd, events)
            self._watched[fd] = (sock, events)
        for fd in [fd for fd in self._watched if fd not in wanted]:
            with suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)
            del self._watched[fd]
        return {fd: source for fd, (source, _, _) in wanted.items()}
