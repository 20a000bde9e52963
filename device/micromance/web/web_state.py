"""``<state_dir>/web.json``: what the web page must remember, and only hashes of secrets.

Two processes write it (the page, and ``micromance web --pin`` from a shell), so every change
is a read-modify-write under an exclusive ``flock`` on ``web.lock``, and the file is replaced
atomically (temporary file, fsync, rename), mode 0600. A file that is missing or damaged
starts afresh: the worst case is that every browser signs in again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micromance.errors import StoreError

log = logging.getLogger(__name__)

STATE_FILE = "web.json"
LOCK_FILE = "web.lock"


@dataclass
class AccessCode:
    """A one-time code: its salted hash, when it stops working, and where it was shown."""

    salt: str
    digest: str
    expires: float
    shown_on: str  # "unit" (the screen) or "shell" (`micromance web --pin`)


@dataclass
class WebState:
    """The contents of web.json. ``key`` signs CSRF tokens; ``sessions`` maps a session
    token's SHA-256 to its expiry (epoch seconds)."""

    key: str = field(default_factory=lambda: secrets.token_hex(32))
    sessions: dict[str, float] = field(default_factory=dict)
    codes: list[AccessCode] = field(default_factory=list)
    failures: int = 0
    locked_until: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> WebState:
        if not isinstance(data, dict):
            return cls()
        state = cls()
        if isinstance(data.get("key"), str) and len(data["key"]) >= 32:
            state.key = data["key"]
        sessions = data.get("sessions")
        if isinstance(sessions, dict):
            state.sessions = {str(k): float(v) for k, v in sessions.items()
                              if isinstance(v, (int, float))}
        for code in data.get("codes") or []:
            with contextlib.suppress(TypeError, ValueError, KeyError):
                state.codes.append(AccessCode(str(code["salt"]), str(code["digest"]),
                                              float(code["expires"]), str(code["shown_on"])))
        if isinstance(data.get("failures"), int):
            state.failures = max(0, data["failures"])
        if isinstance(data.get("locked_until"), (int, float)):
            state.locked_until = float(data["locked_until"])
        return state

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "sessions": self.sessions,
                "codes": [vars(code) for code in self.codes],
                "failures": self.failures, "locked_until": self.locked_until}


class WebStateFile:
    """Reading and changing web.json in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE
        self._lock_path = state_dir / LOCK_FILE

    def read(self) -> WebState:
        """The state as last written (a missing or damaged file: a fresh one, unsaved)."""
        try:
            return WebState.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return WebState()
        except (OSError, ValueError) as error:
            log.warning("%s unreadable (%s): starting afresh", self.path, error)
            return WebState()

    @contextlib.contextmanager
    def change(self) -> Iterator[WebState]:
        """Read, let the caller change, write back atomically; one writer at a time."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise _cannot_write(self.path, error) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            yield state
            self._write(state)
        finally:
            os.close(lock)  # closing releases the lock

    def _write(self, state: WebState) -> None:
        temporary = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(state.to_json(), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise _cannot_write(self.path, error) from None


def _cannot_write(path: Path, error: OSError) -> StoreError:
    return StoreError(f"cannot write {path} ({error.strerror or error})",
                      fix="run the web page as the service user (micromance), whose state "
                          "directory it is")
