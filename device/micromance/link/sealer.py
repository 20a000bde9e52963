"""Sealing beside the commit: a message is sealed on a thread of its own while the store's
commit waits for the disk, so the publish right after the commit finds it ready.

Sealing is CPU work (JSON, ChaCha20-Poly1305, base64) and the commit's fsync holds no GIL: one
after the other they added up on the way to the partner's light (on a Pi the fsync of an SD
card takes milliseconds, the seal about one); side by side the seal costs the press nothing.
Nothing leaves the unit earlier for it: the sealed bytes wait here until the courier
publishes them, after the commit.
"""

from __future__ import annotations

import queue
import threading

from micromance.protocol import Message, seal

#: How long a publish waits for a seal before it seals the message itself (a sealer that
#: stopped; a seal takes about a millisecond on a Pi Zero).
WAIT_SECONDS = 2.0


class Sealing:
    """One message being sealed: ``payload()`` gives the sealed bytes (waiting for them if
    need be) or raises what :func:`protocol.seal` raised."""

    __slots__ = ("_done", "_error", "_key", "_message", "_payload", "_topic")

    def __init__(self, message: Message, key: bytes, topic: str) -> None:
        self._message, self._key, self._topic = message, key, topic
        self._payload: bytes | None = None
        self._error: Exception | None = None
        self._done = threading.Lock()
        self._done.acquire()  # released by the sealer's thread once the payload is there

    def run(self) -> None:
        try:
            self._payload = seal(self._message, key=self._key, topic=self._topic)
        except Exception as error:
            self._error = error
        finally:
            self._done.release()

    def payload(self) -> bytes:
        if not self._done.acquire(timeout=WAIT_SECONDS):
            return seal(self._message, key=self._key, topic=self._topic)
        self._done.release()  # asking again answers at once
        if self._error is not None:
            raise self._error
        assert self._payload is not None
        return self._payload


class Sealer:
    """A thread that seals what it is given, in order. It sleeps on its queue between
    messages (no wake-ups); ``start`` it with the unit (else the first message does)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Sealing | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> Sealer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sealer", daemon=True)
            self._thread.start()
        return self

    def seal(self, message: Message, *, key: bytes, topic: str) -> Sealing:
        """Start sealing ``message`` for ``topic`` (as :func:`protocol.seal`)."""
        self.start()
        job = Sealing(message, key, topic)
        self._jobs.put(job)
        return job

    def close(self, timeout: float = WAIT_SECONDS) -> None:
        """Seal what was given, then end the thread (a later ``seal`` starts it again)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()
