"""Durable state in SQLite: counters, rotation, outbox, replay windows, recent events.

WAL with ``synchronous=FULL``: a commit that returned is on the disk, so a press survives a
power cut the moment it was confirmed. Nothing is written unless something changed, so an
idle unit does not wear its SD card.

One step's writes are one transaction; a thank-you's are rehearsed while THANKS is held
(``rehearse``: written in a transaction left open, committed by the release that asks for
exactly them, rolled back by anything else that uses the store).

Opening checks the file (``PRAGMA quick_check``, and the write-ahead log's checksums, which
SQLite would otherwise skip silently); damage comes out as :class:`StoreDamaged`, whose fix is
``micromance repair`` (``repair.py``). Every SQLite error leaves the store as a ``StoreError``
in plain words, so callers catch one type.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from micromance.core.counters import Counters
from micromance.errors import StoreError
from micromance.link.pair_file import load_pair

log = logging.getLogger(__name__)

DB_NAME = "state.db"
SCHEMA_VERSION = 1
RECENT_EVENTS_KEPT = 50
#: ...trimmed to that on every this many rows (so between 50 and 59 are kept).
RECENT_EVENTS_TRIM = 10
#: Sequence numbers are reserved this many at a time: one write per block, not per message.
SEQ_BLOCK = 32
#: SQLite copies the write-ahead log back into the database (a checkpoint: page writes and
#: an fsync) inside whichever commit takes the log past this many pages. The unit does it
#: itself once quiet (``checkpoints.py``), well before; this is only the backstop.
WAL_BACKSTOP_PAGES = 1000
REPAIR_FIX = "run micromance repair (it keeps a copy of the damaged file and rebuilds the rest)"

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
#: The columns of each table, as the schema above has them (``repair`` copies them over).
COLUMNS = {
    "kv": ("key", "value"),
    "outbox": ("seq", "pair_id", "type", "message", "created"),
    "replay_windows": ("pair_id", "sender", "window"),
    "recent_events": ("id", "at", "kind", "detail"),
}


class StoreDamaged(StoreError):
    """The state database is damaged; ``micromance repair`` (or the daemon) rebuilds it."""


class Store:
    """One SQLite database in the state directory; use from the loop thread only."""

    def __init__(self, connection: sqlite3.Connection, path: Path, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = connection
        self.path = path
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        self._seq_next = 0       # next seq to hand out; 0: read the reserved ceiling first
        self._seq_ceiling = 0    # highest seq reserved on the disk
        self._run_first = 0      # the first seq of this run (0: none handed out yet)
        self._reserved_open = False  # a block was reserved inside the open transaction
        self._clock = clock      # wall-clock seconds: where a run's seqs start
        #: A rehearsed transaction left open (``rehearse``): its key, and what it promised
        #: to do once committed.
        self._rehearsal: tuple[object, list[Callable[[], None]]] | None = None
        self._changes_checkpointed = 0  # the connection's total_changes at the last checkpoint

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: Path, *, clock: Callable[[], float] = time.time) -> Store:
        """Open (creating if needed) and check the store; the directory is private to the service.

        Raises :class:`StoreDamaged` when the file is damaged, another ``StoreError`` when it
        cannot be used (permissions, a full or read-only disk).
        """
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the state directory {state_dir} ({error.strerror})",
                fix="create it writable for this user, or set paths.state_dir in the config"
            ) from None
        path = state_dir / DB_NAME
        check_wal(path)
        connection = None
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Small pages: a press touches a few rows in a few tables, and every page it
            # changes is written whole to the WAL (4 KiB pages cost ~33 KiB a press; 1 KiB
            # pages under 16). Only a new database takes it; an old one keeps its size.
            connection.execute("PRAGMA page_size=1024")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA busy_timeout=2000")
            connection.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            _quick_check(connection, path)
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            os.chmod(path, 0o600)
        except (sqlite3.Error, StoreError, OSError) as error:
            if connection is not None:
                connection.close()
            raise _plain(error, path, writing=True) from None
        store = cls(connection, path, clock=clock)
        try:
            store.run_first_seq()  # durable now, before any step's transaction could undo it
        except StoreError:
            store.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Store | None:
        """For ``status``: read what the daemon wrote without creating anything."""
        path = state_dir / DB_NAME
        if not path.exists():
            return None
        connection = None
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            _quick_check(connection, path)
        except (sqlite3.Error, StoreError) as error:
            if connection is not None:
                connection.close()
            raise _plain(error, path, writing=False) from None
        return cls(connection, path)

    def close(self) -> None:
        self._rehearsal = None  # an open rehearsal goes with the connection (rolled back)
        self._db.close()

    # --- statements: every SQLite error leaves as a StoreError ---------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._rehearsal is not None and not self._depth:
            self.abandon_rehearsal()  # it must never be read as if it had happened
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise _plain(error, self.path, writing=False) from None

    def _insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT; returns the new row's id."""
        try:
            return self._db.execute(sql, params).lastrowid or 0
        except sqlite3.Error as error:
            raise _plain(error, self.path, writing=True) from None

    def _change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a write; returns how many rows it changed."""
        try:
            return self._db.execute(sql, params).rowcount
        except sqlite3.Error as error:
            raise _plain(error, self.path, writing=True) from None

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
        self.abandon_rehearsal()
        self._change("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._roll_back()
            raise
        finally:
            self._depth = 0
        self._commit(self._take_after_commit())

    def _commit(self, promised: list[Callable[[], None]]) -> None:
        """Commit the open transaction, then do what its writes ``promised`` (after_commit).
        A commit that fails rolls back, and nothing promised happens."""
        try:
            self._change("COMMIT")
        except BaseException:
            self._roll_back()
            raise
        self._reserved_open = False
        self._run(promised)

    def _roll_back(self) -> None:
        """Undo the open transaction and forget what it promised."""
        self._after_commit.clear()  # what the rolled-back writes promised never happens
        if self._reserved_open:     # the block it reserved goes with it: read the disk again
            self._seq_next, self._reserved_open = 0, False
        if self._db.in_transaction:  # SQLite may have rolled back by itself (disk full)
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _take_after_commit(self) -> list[Callable[[], None]]:
        actions, self._after_commit = self._after_commit, []
        return actions

    @staticmethod
    def _run(actions: list[Callable[[], None]]) -> None:
        for action in actions:
            action()

    # --- a transaction rehearsed ahead ----------------------------------------------------

    def rehearse(self, key: object, writes: Callable[[], None]) -> bool:
        """Run ``writes`` now in a transaction that is left open, for ``commit_rehearsal(key)``
        to make durable later with nothing left to do but the commit.

        Until then nothing of it exists: nobody else sees it (other processes read the last
        commit; this store rolls it back before any other use, read or write) and what it
        promised ``after_commit`` waits. It holds SQLite's write lock, so keep it short: other
        processes that write wait (``busy_timeout``). False when it could not be written
        (then nothing is open).
        """
        if self._depth:
            raise RuntimeError("a rehearsal cannot run inside a transaction")
        self.abandon_rehearsal()
        try:
            self._change("BEGIN IMMEDIATE")
        except StoreError:
            return False
        self._depth = 1
        try:
            writes()
        except StoreError:
            self._roll_back()
            return False
        except BaseException:
            self._roll_back()
            raise
        finally:
            self._depth = 0
        self._rehearsal = (key, self._take_after_commit())
        return True

    def commit_rehearsal(self, key: object) -> bool:
        """Commit the open rehearsal if it is ``key``'s, then do what it promised; True if it
        was. Any other rehearsal is rolled back, and False says: write it all now. A commit
        that fails rolls back and raises, as ``transaction`` does."""
        rehearsal = self._rehearsal
        if rehearsal is None or rehearsal[0] != key:
            self.abandon_rehearsal()
            return False
        self._rehearsal = None
        self._commit(rehearsal[1])
        return True

    def abandon_rehearsal(self) -> None:
        """Roll back an open rehearsal, if any: as if it had never been written."""
        if self._rehearsal is not None:
            self._rehearsal = None
            self._roll_back()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current transaction is on the disk (at once outside one).

        Publishing goes through here: nothing leaves the unit before the commit that records
        it, so a crash in between loses nothing and never tells the partner what we forgot.
        """
        if self._depth:
            self._after_commit.append(action)
        else:
            action()

    # --- the write-ahead log ----------------------------------------------------------------

    def changes_since_checkpoint(self) -> int:
        """Rows written (or rehearsed) since the last ``checkpoint``: it grows with the log."""
        return self._db.total_changes - self._changes_checkpointed

    def checkpoint(self) -> bool:
        """Copy the write-ahead log back into the database file, so the next commit starts
        the log afresh instead of SQLite doing it inside that commit. False while a
        transaction or a rehearsal is open (nothing is touched) or the checkpoint failed
        (logged: SQLite's backstop still bounds the log); True once done."""
        if self._depth or self._rehearsal is not None:
            return False
        self._changes_checkpointed = self._db.total_changes
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            log.warning("%s", _plain(error, self.path, writing=True))
            return False
        return True

    def check_writable(self) -> None:
        """One tiny durable write (a row written and deleted in one commit).

        Raises ``StoreError`` while the disk is full or read-only; used to notice that it
        has room again.
        """
        with self.transaction():
            self._change("INSERT OR REPLACE INTO kv (key, value) VALUES ('writable', '')")
            self._change("DELETE FROM kv WHERE key = 'writable'")

    # --- key/value ----------------------------------------------------------------------

    def get(self, key: str, default: str = "") -> str:
        rows = self._query("SELECT value FROM kv WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self._change(
                "INSERT INTO kv (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def device_id(self) -> str:
        """This unit's id, never secret (it appears in topics).

        A paired unit's id is the one in pair.json, which survives the loss of this database:
        an empty or rebuilt database never makes a new identity while the pair stands, and
        the daemon and ``status`` agree that the unit is paired. Unpaired, it is random and
        made once.
        """
        stored = self.get("device_id")
        try:
            pair = load_pair(self.path.parent)
        except StoreError:
            pair = None  # a damaged pair.json stops whoever uses the pair, with its own fix
        if pair is not None and pair.device_id != stored:
            if stored:
                log.warning("device id %s in the database is not pair.json's (%s): "
                            "using the pair's", stored, pair.device_id)
            else:
                log.info("device id %s taken from pair.json", pair.device_id)
            self.put("device_id", pair.device_id)
            return pair.device_id
        if stored:
            return stored
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
            return Counters.from_stored(json.loads(raw))
        except (ValueError, TypeError, AttributeError):
            log.warning("stored counters unreadable; starting from zero")
            return Counters()

    def save_counters(self, counters: Counters, pair_id: str = "") -> None:
        self.put(self._counters_key(pair_id), _counters_json(counters))

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
        """Our next sequence number, never used twice, also across restarts.

        The kv row ``seq`` holds the highest seq *reserved*; seqs are handed out from memory
        and the row is written once per ``SEQ_BLOCK`` (so a replayed message, answered with
        a fresh ack, costs no write). After a restart the rest of the last block is skipped.
        """
        if not self._seq_next or self._seq_next > self._seq_ceiling:
            self._reserve(self._seq_next)
        seq = self._seq_next
        self._seq_next += 1
        return seq

    def advance_seq(self, past: int) -> None:
        """Make every later ``next_seq()`` greater than ``past``, durably."""
        if not self._seq_next or past >= self._seq_ceiling:
            self._reserve(past + 1)
        self._seq_next = max(self._seq_next, past + 1)

    def _reserve(self, start: int) -> None:
        """A new block from ``start`` on, above what is reserved on the disk.

        The disk is read again (another process, ``micromance pair --forget``, may have
        reserved since); inside the caller's transaction it commits with it, and a rollback
        makes the next call read the disk again.
        """
        with self.transaction():
            reserved = _as_int(self.get("seq", "0"))
            start = max(start, reserved + 1)
            if not self._run_first:
                # Late: readers of the store (status, the web page) need no cryptography.
                from micromance.protocol import SEQS_PER_SECOND

                start = max(start, int(self._clock() * SEQS_PER_SECOND))
            ceiling = start + SEQ_BLOCK - 1
            self.put("seq", str(ceiling))
            self._seq_next, self._seq_ceiling = start, ceiling
            self._run_first = self._run_first or start
            self._reserved_open = True  # until this (or the caller's) transaction commits

    def run_first_seq(self) -> int:
        """The first seq of this run (reserved now if need be): everything below it was
        numbered by an earlier run, everything from it on by this one."""
        if not self._run_first:
            self._reserve(0)
        return self._run_first

    def outbox_add(self, seq: int, pair_id: str, kind: str, message: str, created: str) -> None:
        with self.transaction():
            self._change(
                "INSERT INTO outbox (seq, pair_id, type, message, created) VALUES (?, ?, ?, ?, ?)",
                (seq, pair_id, kind, message, created))

    def outbox_remove(self, pair_id: str, seqs: Iterable[int]) -> int:
        """Forget delivered messages; returns how many were still waiting."""
        removed = 0
        with self.transaction():
            for seq in seqs:
                removed += self._change("DELETE FROM outbox WHERE pair_id = ? AND seq = ?",
                                        (pair_id, seq))
        return removed

    def outbox_clear(self, pair_id: str) -> int:
        """Drop what waits for a partner we are no longer paired with."""
        with self.transaction():
            return self._change("DELETE FROM outbox WHERE pair_id = ?", (pair_id,))

    def outbox(self, pair_id: str) -> list[tuple[int, str]]:
        """Waiting messages, oldest first: (seq, message JSON)."""
        rows = self._query("SELECT seq, message FROM outbox WHERE pair_id = ? ORDER BY seq",
                           (pair_id,))
        return [(int(seq), str(message)) for seq, message in rows]

    def outbox_size(self, pair_id: str) -> int:
        ((count,),) = self._query("SELECT COUNT(*) FROM outbox WHERE pair_id = ?", (pair_id,))
        return int(count)

    def load_window(self, pair_id: str, sender: str) -> str:
        rows = self._query(
            "SELECT window FROM replay_windows WHERE pair_id = ? AND sender = ?",
            (pair_id, sender))
        return str(rows[0][0]) if rows else ""

    def save_window(self, pair_id: str, sender: str, window: str) -> None:
        with self.transaction():
            self._change(
                "INSERT INTO replay_windows (pair_id, sender, window) VALUES (?, ?, ?) "
                "ON CONFLICT(pair_id, sender) DO UPDATE SET window = excluded.window",
                (pair_id, sender, window))

    # --- recent events (for ``status``) --------------------------------------------------

    def log_event(self, at: str, kind: str, detail: str = "") -> None:
        """One row; the oldest go on every ``RECENT_EVENTS_TRIM``-th row (a second statement
        in every press's commit cost more than the few rows it saved)."""
        with self.transaction():
            row = self._insert("INSERT INTO recent_events (at, kind, detail) VALUES (?, ?, ?)",
                               (at, kind, detail))
            if row % RECENT_EVENTS_TRIM == 0:
                self._change("DELETE FROM recent_events WHERE id <= ?",
                             (row - RECENT_EVENTS_KEPT,))

    def recent_events(self, limit: int = 10) -> list[dict[str, str]]:
        rows = self._query(
            "SELECT at, kind, detail FROM recent_events ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at": at, "kind": kind, "detail": detail} for at, kind, detail in rows]

    # --- rebuilding (``repair``) ---------------------------------------------------------

    def restore_rows(self, table: str, rows: Iterable[Sequence[Any]]) -> None:
        """Put rows salvaged from a damaged database back (columns as in ``COLUMNS``)."""
        columns = COLUMNS[table]
        sql = (f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        with self.transaction():
            for row in rows:
                self._change(sql, row)


def _as_int(text: str) -> int:
    try:
        return max(0, int(text))
    except ValueError:
        return 0


def _quick_check(connection: sqlite3.Connection, path: Path) -> None:
    """SQLite's own check of every page (cheap on this small database; see storage.md)."""
    rows = connection.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        first = str(rows[0][0]).splitlines()[-1] if rows else "no answer"
        raise StoreDamaged(f"the state database {path} is damaged ({first})", fix=REPAIR_FIX)


# --- errors in plain words -----------------------------------------------------------------

_DAMAGE = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_MAYBE_OS = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM,
             sqlite3.SQLITE_IOERR, sqlite3.SQLITE_AUTH)


def _plain(error: Exception, path: Path, *, writing: bool) -> StoreError:
    """A SQLite (or OS) error as one StoreError that says what is wrong in plain words.

    The permission and disk-space hints appear only when that is the cause: SQLite's own
    code says so (full, damaged), else the file system is asked (read-only, not ours).
    """
    if isinstance(error, StoreError):
        return error
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    verb = "written" if writing else "read"
    if code in _DAMAGE:
        return StoreDamaged(f"the state database {path} is damaged ({error})", fix=REPAIR_FIX)
    if code == sqlite3.SQLITE_FULL:
        return StoreError(f"the disk is full: the state database {path} cannot be written",
                          fix="free some space on the SD card", short="the disk is full")
    if code in _MAYBE_OS or isinstance(error, OSError):
        cause = _os_cause(path, writing)
        if cause is not None:
            return cause
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"the state database {path} cannot be {verb}: the storage reports "
                          f"an I/O error ({error})",
                          fix=f"the SD card may be failing (see dmesg); if this stays, "
                              f"{REPAIR_FIX}")
    return StoreError(f"the state database {path} cannot be {verb} ({error})",
                      fix="check the state directory and the SD card (dmesg)")


def _os_cause(path: Path, writing: bool) -> StoreError | None:
    """A read-only file system, or files this user may not use (EROFS, EACCES), if so."""
    directory = path.parent
    with suppress(OSError):
        if writing and os.statvfs(directory).f_flag & os.ST_RDONLY:
            return StoreError(f"the storage is read-only: {path} cannot be written",
                              fix="the SD card may be failing or mounted read-only (see dmesg); "
                                  "remount it read-write or move the state to a new card",
                              short="the storage is read-only")
    mode = os.R_OK | (os.W_OK if writing else 0)
    files = [p for p in (path, _sibling(path, "-wal"), _sibling(path, "-shm")) if p.exists()]
    if not os.access(directory, mode | os.X_OK) or not all(os.access(p, mode) for p in files):
        return StoreError(f"permission denied: {path} cannot be {'written' if writing else 'read'}"
                          " as this user",
                          fix="run it as the user that runs the service (e.g. with sudo), or "
                              f"give that user {directory}", short="no permission to save")
    return None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def kept_name(path: Path, stamp: str) -> Path:
    """Where a damaged file is kept: ``state.db-wal`` -> ``state.db-wal.damaged-<stamp>``."""
    return path.with_name(f"{path.name}.damaged-{stamp}")


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- the write-ahead log -------------------------------------------------------------------
# SQLite reads the WAL up to the first frame whose checksum fails and silently ignores the
# rest, committed transactions included. It is checked here before SQLite opens it, so damage
# is at least said and the log kept. Format: https://www.sqlite.org/fileformat2.html#walformat

_WAL_HEADER = 32
_FRAME_HEADER = 24
_WAL_MAGIC = 0x377F0682  # checksums over little-endian words; +1: big-endian


def check_wal(path: Path) -> None:
    """Warn in one line, and keep a copy, when the WAL of ``path`` has damaged frames."""
    wal = _sibling(path, "-wal")
    try:
        data = wal.read_bytes()
    except OSError:
        return  # no WAL (a closed database), or unreadable: SQLite says so itself
    problem = wal_damage(data)
    if problem:
        copy = kept_name(wal, utc_stamp())
        with suppress(OSError):
            shutil.copyfile(wal, copy)
        log.warning("%s: %s; the last changes may be lost (the partner's unit resends what "
                    "it knows); copy kept as %s", wal, problem, copy.name)


def wal_damage(data: bytes) -> str:
    """What is damaged in this WAL's current generation, or "" when SQLite will read it all.

    Frames of the current generation carry the header's salts; each checksum continues the
    one before. A frame is judged against its predecessor's *stored* checksum, so frames after
    a damaged one can still be told intact, and what SQLite drops with it is counted.
    """
    if len(data) < _WAL_HEADER:
        return ""
    magic, _, page_size, _, salt1, salt2, sum1, sum2 = struct.unpack(">8I", data[:32])
    order = ">" if magic == _WAL_MAGIC + 1 else "<"
    header_ok = (magic in (_WAL_MAGIC, _WAL_MAGIC + 1)
                 and _wal_checksum(data[:24], (0, 0), order) == (sum1, sum2))
    frame_size = _FRAME_HEADER + page_size
    if not header_ok or page_size < 512 or page_size & (page_size - 1):
        return "its header is damaged" if len(data) > _WAL_HEADER else ""
    first_bad, frames, commits_after = 0, 0, 0
    previous = (sum1, sum2)
    for offset in range(_WAL_HEADER, len(data) - frame_size + 1, frame_size):
        _, commit, salt_1, salt_2, check1, check2 = struct.unpack_from(">6I", data, offset)
        if (salt_1, salt_2) != (salt1, salt2):
            break  # the end of the current generation: older frames, ignored by design
        frames += 1
        content = data[offset:offset + 8] + data[offset + _FRAME_HEADER:offset + frame_size]
        intact = _wal_checksum(content, previous, order) == (check1, check2)
        if not intact and not first_bad:
            first_bad = frames
        elif intact and first_bad and commit:
            commits_after += 1
        previous = (check1, check2)
    if not first_bad:
        return ""
    return (f"frame {first_bad} of {frames} fails its checksum: SQLite ignores it and all after "
            f"it ({commits_after} later commit(s))")


def _wal_checksum(data: bytes, start: tuple[int, int], order: str) -> tuple[int, int]:
    s0, s1 = start
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _counters_json(counters: Counters) -> str:
    # Its fields as they are, not ``asdict``: its deep copy of the history's tuples took
    # 0.15 ms of every press's commit; the JSON is the same (Counters holds no records, and a
    # frozen dataclass without slots keeps exactly its fields in ``__dict__``).
    return json.dumps(vars(counters), sort_keys=True)
