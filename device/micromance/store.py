"""Durable state in SQLite: counters, rotation, outbox, replay windows, recent events.

WAL with ``synchronous=FULL``: a commit that returned is on the disk, so a press survives a
power cut the moment it was confirmed. Nothing is written unless something changed, so an
idle unit does not wear its SD card.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path

from micromance.core.counters import Counters
from micromance.errors import StoreError

log = logging.getLogger(__name__)

DB_NAME = "state.db"
SCHEMA_VERSION = 1
RECENT_EVENTS_KEPT = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,         -- our sequence number: the message's identity
    pair_id TEXT NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,           -- plaintext message (JSON); sealed afresh for each delivery
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS replay_windows (
    pair_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    window TEXT NOT NULL,
    PRIMARY KEY (pair_id, sender)
);
CREATE TABLE IF NOT EXISTS recent_events (
    id INTEGER PRIMARY KEY,          -- no AUTOINCREMENT: its sqlite_sequence page costs a write
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
"""


class Store:
    """One SQLite database in the state directory; use from the loop thread only."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open (creating if needed) the store; the directory is private to the service."""
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the state directory {state_dir} ({error.strerror})",
                fix="create it writable for this user, or set paths.state_dir in the config"
            ) from None
        path = state_dir / DB_NAME
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Small pages: a press touches a few rows in a few tables, and every page it
            # changes is written whole to the WAL (4 KiB pages cost ~33 KiB a press; 1 KiB
            # pages under 16). Only a new database takes it; an old one keeps its size.
            connection.execute("PRAGMA page_size=1024")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=2000")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise StoreError(
                f"cannot use the state database {path} ({error})",
                fix=f"check that {state_dir} is writable for this user and the disk is not full"
            ) from None
        os.chmod(path, 0o600)
        return cls(connection, path)

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Store | None:
        """For ``status``: read what the daemon wrote without creating anything."""
        path = state_dir / DB_NAME
        if not path.exists():
            return None
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            connection.execute("SELECT 1 FROM kv LIMIT 1")
        except sqlite3.Error as error:
            raise StoreError(f"cannot read {path} ({error})", fix="run status as the user "
                             "that runs the service (e.g. with sudo)") from None
        return cls(connection, path)

    def close(self) -> None:
        self._db.close()

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one durable commit (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._after_commit.clear()  # what the rolled-back writes promised never happens
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current transaction is on the disk (at once outside one).

        Publishing goes through here: nothing leaves the unit before the commit that records
        it, so a crash in between loses nothing and never tells the partner what we forgot.
        """
        if self._depth:
            self._after_commit.append(action)
        else:
            action()

    # --- key/value ----------------------------------------------------------------------

    def get(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def device_id(self) -> str:
        """This unit's id: random, made once, never secret (it appears in topics)."""
        existing = self.get("device_id")
        if existing:
            return existing
        fresh = secrets.token_hex(8)
        self.put("device_id", fresh)
        return fresh

    # --- counters and rotation ----------------------------------------------------------

    @staticmethod
    def _counters_key(pair_id: str) -> str:
        """Counters are kept per pair: a new partner starts from zero, the old ones stay."""
        return f"counters/{pair_id}" if pair_id else "counters"

    def load_counters(self, pair_id: str = "") -> Counters:
        raw = self.get(self._counters_key(pair_id))
        if not raw:
            return Counters()
        try:
            data = json.loads(raw)
            known = {f.name for f in fields(Counters)}
            return Counters(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError):
            log.warning("stored counters unreadable; starting from zero")
            return Counters()

    def save_counters(self, counters: Counters, pair_id: str = "") -> None:
        self.put(self._counters_key(pair_id), json.dumps(asdict(counters), sort_keys=True))

    def load_rotation(self) -> tuple[str, str, int]:
        """(bag JSON, id of the prompt on screen, number of draws so far)."""
        raw = self.get("rotation")
        try:
            data = json.loads(raw) if raw else {}
            return str(data.get("bag", "")), str(data.get("prompt", "")), int(data.get("draws", 0))
        except (ValueError, TypeError, AttributeError):
            return "", "", 0

    def save_rotation(self, bag_json: str, prompt_id: str, draws: int) -> None:
        self.put("rotation", json.dumps({"bag": bag_json, "prompt": prompt_id, "draws": draws}))

    # --- the link: sequence numbers, outbox, replay windows -----------------------------

    def next_seq(self) -> int:
        """Our next sequence number; durable, so a restart never reuses one."""
        with self.transaction():
            seq = int(self.get("seq", "0")) + 1
            self.put("seq", str(seq))
        return seq

    def outbox_add(self, seq: int, pair_id: str, kind: str, message: str, created: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO outbox (seq, pair_id, type, message, created) VALUES (?, ?, ?, ?, ?)",
                (seq, pair_id, kind, message, created))

    def outbox_remove(self, pair_id: str, seqs: Iterable[int]) -> int:
        """Forget delivered messages; returns how many were still waiting."""
        removed = 0
        with self.transaction():
            for seq in seqs:
                cursor = self._db.execute("DELETE FROM outbox WHERE pair_id = ? AND seq = ?",
                                          (pair_id, seq))
                removed += cursor.rowcount
        return removed

    def outbox_clear(self, pair_id: str) -> int:
        """Drop what waits for a partner we are no longer paired with."""
        with self.transaction():
            cursor = self._db.execute("DELETE FROM outbox WHERE pair_id = ?", (pair_id,))
        return cursor.rowcount

    def outbox(self, pair_id: str) -> list[tuple[int, str]]:
        """Waiting messages, oldest first: (seq, message JSON)."""
        rows = self._db.execute(
            "SELECT seq, message FROM outbox WHERE pair_id = ? ORDER BY seq", (pair_id,))
        return list(rows)

    def outbox_size(self, pair_id: str) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox WHERE pair_id = ?",
                                    (pair_id,)).fetchone()
        return int(count)

    def load_window(self, pair_id: str, sender: str) -> str:
        row = self._db.execute(
            "SELECT window FROM replay_windows WHERE pair_id = ? AND sender = ?",
            (pair_id, sender)).fetchone()
        return row[0] if row else ""

    def save_window(self, pair_id: str, sender: str, window: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO replay_windows (pair_id, sender, window) VALUES (?, ?, ?) "
                "ON CONFLICT(pair_id, sender) DO UPDATE SET window = excluded.window",
                (pair_id, sender, window))

    # --- recent events (for ``status``) --------------------------------------------------

    def log_event(self, at: str, kind: str, detail: str = "") -> None:
        with self.transaction():
            self._db.execute("INSERT INTO recent_events (at, kind, detail) VALUES (?, ?, ?)",
                             (at, kind, detail))
            self._db.execute(
                "DELETE FROM recent_events WHERE id <= "
                "(SELECT MAX(id) FROM recent_events) - ?", (RECENT_EVENTS_KEPT,))

    def recent_events(self, limit: int = 10) -> list[dict[str, str]]:
        rows = self._db.execute(
            "SELECT at, kind, detail FROM recent_events ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at": at, "kind": kind, "detail": detail} for at, kind, detail in rows]
