"""``micromance repair``: a damaged state database is set aside and rebuilt.

What can be rebuilt comes back: the pair and the device identity from ``pair.json``, every row
that can still be read from the damaged file, and the totals from the partner's next sealed
state. The damaged files stay beside the new one (``state.db.damaged-<UTC time>``, the same
suffix for ``-wal`` and ``-shm``) for a post-mortem. The daemon does the same by itself when
the check at start-up fails (``open_store``), so a damaged card never leaves it dead.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import count
from pathlib import Path
from typing import Any, TextIO

from micromance.config import Config
from micromance.errors import StoreError
from micromance.link.pair_file import Pair, load_pair
from micromance.store import COLUMNS, DB_NAME, Store, StoreDamaged, kept_name, utc_stamp

log = logging.getLogger("micromance")

SUFFIXES = ("", "-wal", "-shm")
#: What each table's rows must look like to be put back (anything else is lost with its page).
TYPES: dict[str, tuple[type, ...]] = {
    "kv": (str, str),
    "outbox": (int, str, str, str, str),
    "replay_windows": (str, str, str),
    "recent_events": (int, str, str, str),
}
WHAT = {"kv": "stored values", "outbox": "outbox message(s)",
        "replay_windows": "replay window(s)", "recent_events": "recent event(s)"}


def open_store(state_dir: Path) -> Store:
    """The daemon's way in: a damaged database is repaired at once (one log line), then opened."""
    try:
        return Store.open(state_dir)
    except StoreDamaged as damage:
        lines = repair(state_dir)
        log.warning("%s: repaired it by itself; %s", damage.message, "; ".join(lines))
        return Store.open(state_dir)


def repair_from_shell(config: Config, *, out: TextIO) -> int:
    """``micromance repair``: check, and rebuild when damaged; one line per thing kept or lost."""
    from micromance.status import read_live_facts

    if read_live_facts(config):
        raise StoreError("the unit is running", fix="stop it first (sudo systemctl stop "
                                                   "micromance), then run micromance repair")
    state_dir = config.state_dir
    existed = (state_dir / DB_NAME).exists()
    try:
        store = Store.open(state_dir)
    except StoreDamaged as damage:
        out.write(f"{damage.message}\n")
        lines = repair(state_dir)
    else:
        try:
            lines = ["the state database is fine (quick_check): nothing to repair" if existed
                     else "there was no state database: made a new one",
                     _identity(store, _pair(state_dir, []))]
        finally:
            store.close()
    out.write("".join(f"{line}\n" for line in lines))
    return 0


def repair(state_dir: Path) -> list[str]:
    """Set the damaged files aside, build a fresh database with what can be read; the report.

    One line per thing kept or lost, the first saying where the damaged files are.
    """
    kept = _set_aside(state_dir / DB_NAME)
    lines = [f"damaged files kept as {', '.join(p.name for p in kept.values())}"]
    rows, problems = _salvage(kept, state_dir) if "" in kept else ({}, {})
    pair = _pair(state_dir, lines)
    store = Store.open(state_dir)
    try:
        with store.transaction():
            for table, good in rows.items():
                store.restore_rows(table, good)
            if pair is not None:  # the pair's identity, whatever the damaged file said
                store.put("device_id", pair.device_id)
        lines += _account(store, rows, problems, pair)
        lines.append(_identity(store, pair))
    finally:
        store.close()
    return lines


def _set_aside(path: Path) -> dict[str, Path]:
    """Rename state.db, -wal and -shm with one UTC time suffix (never over an older copy)."""
    stamp = utc_stamp()
    for n in count(2):
        names = {s: kept_name(path.with_name(path.name + s), stamp) for s in SUFFIXES}
        if not any(p.exists() for p in names.values()):
            break
        stamp = f"{utc_stamp()}-{n}"
    kept = {}
    for suffix, target in names.items():
        with suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), target)
            kept[suffix] = target
    return kept


@contextmanager
def _scratch_copy(kept: dict[str, Path], state_dir: Path) -> Iterator[sqlite3.Connection]:
    """The damaged database and its WAL, copied: reading must not change the kept files."""
    scratch = Path(tempfile.mkdtemp(prefix="repair-", dir=state_dir))
    try:
        shutil.copyfile(kept[""], scratch / "salvage.db")
        if "-wal" in kept:  # not the -shm: SQLite rebuilds it from the WAL
            shutil.copyfile(kept["-wal"], scratch / "salvage.db-wal")
        connection = sqlite3.connect(scratch / "salvage.db", isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _salvage(kept: dict[str, Path],
             state_dir: Path) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, str]]:
    """Every row that can still be read, table by table; and why a table was not read whole."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    problems: dict[str, str] = {}
    with _scratch_copy(kept, state_dir) as connection:
        for table, columns in COLUMNS.items():
            rows[table], problem = _read_table(connection, table, columns)
            if problem:
                problems[table] = problem
    return rows, problems


def _read_table(connection: sqlite3.Connection, table: str,
                columns: tuple[str, ...]) -> tuple[list[tuple[Any, ...]], str]:
    """Rows in rowid order up to the first unreadable page, then from the end back to it.

    ``NOT INDEXED``: the table itself is read, not an index that may be damaged instead.
    Rows of the wrong shape (garbage on a damaged page) are left out.
    """
    select = f"SELECT rowid, {', '.join(columns)} FROM {table} NOT INDEXED ORDER BY rowid"
    found: dict[int, tuple[Any, ...]] = {}
    problem = ""
    for order in ("ASC", "DESC"):
        try:
            for rowid, *values in connection.execute(f"{select} {order}"):
                found[rowid] = tuple(values)
        except sqlite3.Error as error:
            problem = problem or str(error)
            continue
        break  # read to the end: nothing left to read backwards
    good = [row for _, row in sorted(found.items()) if _shaped(table, row)]
    if len(good) < len(found):
        problem = problem or "rows with damaged values"
    return good, problem


def _shaped(table: str, row: tuple[Any, ...]) -> bool:
    return len(row) == len(TYPES[table]) and all(
        isinstance(value, kind) for value, kind in zip(row, TYPES[table], strict=True))


def _pair(state_dir: Path, lines: list[str]) -> Pair | None:
    try:
        pair = load_pair(state_dir)
    except StoreError as error:
        lines.append(f"lost: the pair ({error})")
        return None
    lines.append(f"kept: the pair {pair.pair_id[:8]} with {pair.partner_id} (pair.json)"
                 if pair else "not paired (no pair.json)")
    return pair


def _account(store: Store, rows: dict[str, list[tuple[Any, ...]]], problems: dict[str, str],
             pair: Pair | None) -> list[str]:
    """One line per table and per stored value that matters: kept, or lost and what follows."""
    if not any(rows.values()):
        why = next(iter(problems.values()), "there was no database file")
        lines = [f"lost: everything in the database ({why})"]
    else:
        lines = []
        for table, good in rows.items():
            if table != "kv":
                lines.append(f"kept: {len(good)} {WHAT[table]}")
            if table in problems:
                lines.append(f"lost: some {WHAT[table]} ({problems[table]})")
    keys = {row[0] for row in rows.get("kv", [])}
    outbox_seqs = [row[0] for row in rows.get("outbox", [])]
    if outbox_seqs:
        store.advance_seq(max(outbox_seqs))  # never reuse the seq of a message still waiting
    ceiling = store.get("seq", "0")
    for key, what, after in (
            (f"counters/{pair.pair_id}" if pair else "counters", "the totals",
             "the partner's next sealed state brings them back"),
            ("seq", "the last sequence number",
             f"numbering goes on after {ceiling} (the partner's unit says if it saw more)"),
            ("rotation", "the prompt rotation", "a fresh shuffle")):
        missing = "lost" if "kv" in problems or not rows.get("kv") else "none stored"
        lines.append(f"kept: {what}" if key in keys else f"{missing}: {what}; {after}")
    return lines


def _identity(store: Store, pair: Pair | None) -> str:
    """The device id, which ``Store.device_id`` takes from pair.json when paired."""
    before = store.get("device_id")
    device_id = store.device_id()
    if pair is not None:
        return f"device id {device_id} (from pair.json)"
    return f"kept: device id {device_id}" if before else f"new device id {device_id}"
