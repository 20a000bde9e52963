"""The store on a bad day: damaged files, a damaged write-ahead log, full or read-only storage,
a lost database under a standing pair; and sequence numbers that cost one write per block."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest

from micromance.errors import StoreError
from micromance.link.pair_file import pair_locally
from micromance.store import DB_NAME, Store

OUTBOX_PAIR = "f" * 32


def filled(state: Path, messages: int = 200) -> Store:
    """A store with counters, rotation, one outbox row and one event per message."""
    store = Store.open(state)
    store.device_id()
    for n in range(1, messages + 1):
        with store.transaction():
            store.outbox_add(store.next_seq(), OUTBOX_PAIR, "thanks", f'{{"n":"{n:05}"}}', "now")
            store.log_event("12:00:00", "sent", f"#{n}")
    store.put("counters", '{"sent_total": 200}')
    store.save_rotation("", "p1", 3)
    return store


def damage_page_holding(path: Path, marker: bytes) -> int:
    """Overwrite the 1 KiB page that holds ``marker`` (the file header stays intact)."""
    data = path.read_bytes()
    page = data.index(marker) // 1024
    assert page > 0, "the marker is on page 1 (the header)"
    with path.open("r+b") as handle:
        handle.seek(page * 1024)
        handle.write(b"\xa5" * 1024)
    return page + 1


def damage_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"\xff" * 100)


def assert_says_damaged(error: StoreError) -> None:
    assert "damaged" in error.message
    assert "micromance repair" in error.fix
    assert "writable" not in str(error) and "disk" not in error.fix  # not a permission hint


# --- damage found when opening ------------------------------------------------------------


def test_a_damaged_header_is_damage_not_a_permission_problem(tmp_path):
    filled(tmp_path).close()
    damage_header(tmp_path / DB_NAME)
    with pytest.raises(StoreError) as raised:
        Store.open(tmp_path)
    assert_says_damaged(raised.value)
    with pytest.raises(StoreError) as raised:
        Store.open_readonly(tmp_path)
    assert_says_damaged(raised.value)


def test_damage_inside_the_file_is_found_when_opening(tmp_path):
    """Header intact, one page of the outbox overwritten: quick_check finds it at once."""
    filled(tmp_path).close()
    damage_page_holding(tmp_path / DB_NAME, b'"n":"00100"')
    for open_ in (Store.open, Store.open_readonly):
        with pytest.raises(StoreError) as raised:
            open_(tmp_path)
        assert_says_damaged(raised.value)


def test_reading_a_damaged_page_is_a_store_error_too(tmp_path):
    """Damage that appears while running (no check at open) still leaves as a StoreError."""
    filled(tmp_path).close()
    store = Store.open(tmp_path)  # checked: fine
    damage_page_holding(tmp_path / DB_NAME, b'"n":"00100"')
    other = sqlite3.connect(tmp_path / DB_NAME)
    with other:  # another writer: the store's page cache is stale and the page is read again
        other.execute("INSERT INTO kv VALUES ('x', 'y')")
    other.close()
    try:
        with pytest.raises(StoreError) as raised:
            store.outbox(OUTBOX_PAIR)
        assert_says_damaged(raised.value)
    finally:
        store.close()


def test_an_unusable_path_gives_no_permission_hint_when_permissions_are_fine(tmp_path):
    (tmp_path / DB_NAME).mkdir()  # SQLite cannot open it, and permissions are not the reason
    with pytest.raises(StoreError) as raised:
        Store.open(tmp_path)
    assert "permission" not in str(raised.value) and "writable" not in str(raised.value)
    assert "disk" not in str(raised.value)


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    store = filled(tmp_path, messages=1)
    real_statvfs = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self.f_flag = real_statvfs(path).f_flag | os.ST_RDONLY

    store._db.execute("PRAGMA query_only = 1")  # SQLite refuses writes, like an EROFS mount
    monkeypatch.setattr(os, "statvfs", ReadOnly)
    try:
        with pytest.raises(StoreError) as raised:
            store.put("x", "y")
        assert "read-only" in raised.value.message
    finally:
        store.close()


# --- every failed write is a StoreError ------------------------------------------------------


def test_a_full_disk_is_a_store_error_and_the_step_is_rolled_back(tmp_path):
    store = filled(tmp_path, messages=1)
    (pages,) = store._db.execute("PRAGMA page_count").fetchone()
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as on a full card
    published = []
    try:
        with pytest.raises(StoreError) as raised, store.transaction():
            store.after_commit(lambda: published.append("thanks"))
            store.outbox_add(store.next_seq(), OUTBOX_PAIR, "thanks", "x" * 5000, "now")
        assert "disk is full" in raised.value.message
        assert published == []
        assert store.outbox_size(OUTBOX_PAIR) == 1
        store._db.execute(f"PRAGMA max_page_count = {pages + 100}")  # room again
        store.check_writable()
        store.outbox_add(store.next_seq(), OUTBOX_PAIR, "thanks", "x" * 5000, "now")
    finally:
        store.close()


def test_check_writable_makes_one_durable_write_and_leaves_nothing(tmp_path):
    store = filled(tmp_path, messages=1)
    try:
        before = store._db.total_changes
        store.check_writable()
        assert store._db.total_changes > before
        assert store.get("writable") == ""
        store._db.execute("PRAGMA query_only = 1")
        with pytest.raises(StoreError):
            store.check_writable()
    finally:
        store.close()


def test_a_rehearsal_is_committed_only_for_its_key_and_then_keeps_its_promises(tmp_path):
    from micromance.core.counters import Counters

    store, reader = Store.open(tmp_path), None
    try:
        done: list[str] = []

        def writes() -> None:
            store.save_counters(Counters(sent_total=1))
            store.after_commit(lambda: done.append("published"))

        assert store.rehearse("press", writes)
        reader = Store.open_readonly(tmp_path)
        assert reader is not None
        assert reader.load_counters().sent_total == 0 and done == []  # nothing exists yet
        statements: list[str] = []
        store._db.set_trace_callback(statements.append)
        assert store.commit_rehearsal("press")
        assert statements == ["COMMIT"] and done == ["published"]
        assert reader.load_counters().sent_total == 1
        assert not store.commit_rehearsal("press")  # once
    finally:
        store.close()
        if reader is not None:
            reader.close()


def test_any_other_use_of_the_store_rolls_a_rehearsal_back(tmp_path):
    from micromance.core.counters import Counters

    store = Store.open(tmp_path)
    try:
        done: list[str] = []
        rehearsal = lambda total: lambda: (  # noqa: E731
            store.save_counters(Counters(sent_total=total)),
            store.after_commit(lambda: done.append(f"#{total}")))
        assert store.rehearse("one", rehearsal(1))
        assert store.load_counters().sent_total == 0  # a read never sees it...
        assert not store.commit_rehearsal("one")      # ...and it is gone
        assert store.rehearse("two", rehearsal(2))
        store.put("other", "x")                       # a write of another step
        assert not store.commit_rehearsal("two")
        assert store.rehearse("three", rehearsal(3))
        assert not store.commit_rehearsal("four")     # another step's writes: rolled back
        assert store.rehearse("five", rehearsal(5))
        store.abandon_rehearsal()
        assert not store.commit_rehearsal("five")
        assert store.load_counters().sent_total == 0 and store.get("other") == "x"
        assert done == []
    finally:
        store.close()


def test_a_rehearsal_holds_the_write_lock_until_it_ends_and_dies_with_the_process(tmp_path):
    from micromance.core.counters import Counters

    store = Store.open(tmp_path)
    other = sqlite3.connect(tmp_path / "state.db", timeout=0, isolation_level=None)
    try:
        assert store.rehearse("press", lambda: store.save_counters(Counters(sent_total=1)))
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")  # another process waits for it
        store.abandon_rehearsal()
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        assert store.rehearse("press", lambda: store.save_counters(Counters(sent_total=1)))
        store.close()  # as kill -9: an open rehearsal is no commit
        store = Store.open(tmp_path)
        assert store.load_counters().sent_total == 0
    finally:
        other.close()
        store.close()


def test_a_rehearsal_that_cannot_be_written_leaves_nothing_open(tmp_path):
    store = Store.open(tmp_path)
    try:
        def failing() -> None:
            store.put("half", "written")
            raise StoreError("disk full", fix="free some space")

        assert not store.rehearse("press", failing)
        assert not store.commit_rehearsal("press") and not store._db.in_transaction
        assert store.get("half") == ""
        with pytest.raises(RuntimeError), store.transaction():
            store.rehearse("inside", lambda: None)
    finally:
        store.close()


# --- the write-ahead log: checkpointed by the unit, not inside a commit ----------------------


def database_file_alone(state: Path, copy_to: Path) -> Store:
    """The database file without its write-ahead log: what a checkpoint has copied back."""
    copy_to.mkdir()
    shutil.copy(state / DB_NAME, copy_to / DB_NAME)
    store = Store.open_readonly(copy_to)
    assert store is not None
    return store


def test_sqlite_checkpoints_only_as_a_backstop(tmp_path):
    from micromance.store import WAL_BACKSTOP_PAGES

    store = Store.open(tmp_path)
    try:
        (pages,) = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages == WAL_BACKSTOP_PAGES >= 1000  # no sooner than SQLite's own default
    finally:
        store.close()


def test_a_checkpoint_copies_the_log_into_the_database_file(tmp_path):
    state = tmp_path / "state"
    store = filled(state, messages=3)
    try:
        assert store.changes_since_checkpoint() >= 6  # an outbox row and an event each
        assert store.checkpoint()
        assert store.changes_since_checkpoint() == 0
        with store.transaction():
            store.outbox_add(store.next_seq(), OUTBOX_PAIR, "thanks", "{}", "now")
        assert store.changes_since_checkpoint() == 1
        before = database_file_alone(state, tmp_path / "before")
        assert before.outbox_size(OUTBOX_PAIR) == 3  # the last commit lives in the log only
        before.close()
        assert store.checkpoint()
        after = database_file_alone(state, tmp_path / "after")
        assert after.outbox_size(OUTBOX_PAIR) == 4
        assert after.get("counters") == '{"sent_total": 200}'
        after.close()
    finally:
        store.close()


def test_a_checkpoint_never_touches_an_open_transaction_or_rehearsal(tmp_path):
    from micromance.core.counters import Counters

    store = Store.open(tmp_path)
    try:
        with store.transaction():
            store.put("inside", "yes")
            assert not store.checkpoint()
        assert store.rehearse("press", lambda: store.save_counters(Counters(sent_total=1)))
        changes = store.changes_since_checkpoint()
        assert not store.checkpoint()
        assert store.changes_since_checkpoint() == changes  # refused: nothing forgotten
        assert store.commit_rehearsal("press")  # still open, committed by its release
        assert store.load_counters().sent_total == 1
        assert store.checkpoint()
    finally:
        store.close()


def test_a_failing_checkpoint_is_logged_and_leaves_the_store_usable(tmp_path, caplog):
    class FailingCheckpoints:
        """The connection, but a checkpoint fails as on a card that stopped taking writes."""

        def __init__(self, connection: sqlite3.Connection) -> None:
            self.connection = connection

        def execute(self, sql: str, *args):
            if "wal_checkpoint" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return self.connection.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.connection, name)

    store = filled(tmp_path, messages=2)
    real = store._db
    store._db = FailingCheckpoints(real)
    try:
        with caplog.at_level(logging.WARNING, logger="micromance.store"):
            assert not store.checkpoint()
        assert "state.db" in caplog.text and "Traceback" not in caplog.text
        assert store.changes_since_checkpoint() == 0  # tried again once more is written
        store.put("after", "ok")
        assert store.get("after") == "ok"
    finally:
        store._db = real
        store.close()


# --- sequence numbers: reserved in blocks ---------------------------------------------------


def kv_writes(store: Store) -> list[str]:
    """The kv writes the store makes from now on (the statements as SQLite runs them)."""
    written: list[str] = []
    store._db.set_trace_callback(
        lambda sql: written.append(sql) if sql.startswith("INSERT INTO kv") else None)
    return written


def test_next_seq_writes_once_per_block_not_once_per_message(tmp_path):
    from micromance.store import SEQ_BLOCK

    store = Store.open(tmp_path, clock=lambda: 0)
    try:
        writes = kv_writes(store)
        seqs = [store.next_seq() for _ in range(100)]
        assert seqs == list(range(1, 101))
        # One write per block; the first block was reserved when the store opened.
        assert len(writes) == -(-100 // SEQ_BLOCK) - 1
        assert int(store.get("seq")) >= 100  # the reserved ceiling is on the disk
    finally:
        store.close()


def test_a_restart_goes_on_after_the_reserved_ceiling(tmp_path):
    store = Store.open(tmp_path, clock=lambda: 0)
    used = [store.next_seq() for _ in range(5)]
    ceiling = int(store.get("seq"))
    store.close()
    again = Store.open(tmp_path, clock=lambda: 0)  # a clock that stands still (no NTP yet)
    try:
        assert again.next_seq() == again.run_first_seq() == ceiling + 1 > max(used)
    finally:
        again.close()


def test_a_run_starts_from_the_clock_above_a_forgotten_run(tmp_path):
    """A store that went back in time must not number new messages with the seqs of the run
    it forgot (its partner saw those): each run starts from the wall clock."""
    from micromance.protocol import SEQS_PER_SECOND

    store = Store.open(tmp_path, clock=lambda: 1000.0)
    store.close()
    forgotten = Store.open(tmp_path, clock=lambda: 2000.0)
    lost = [forgotten.next_seq() for _ in range(300)]  # then the card loses this run
    forgotten.close()
    again = Store.open(tmp_path, clock=lambda: 2010.0)
    try:
        assert again.run_first_seq() == 2010 * SEQS_PER_SECOND > max(lost)
    finally:
        again.close()


def test_two_stores_on_one_file_never_hand_out_the_same_seq(tmp_path):
    """The daemon and ``pair --forget`` may both number messages at once."""
    daemon, shell = Store.open(tmp_path), Store.open(tmp_path)
    try:
        seqs = [daemon.next_seq()] + [shell.next_seq()] + [daemon.next_seq() for _ in range(70)]
        assert len(seqs) == len(set(seqs))
    finally:
        daemon.close()
        shell.close()


def test_a_rolled_back_reservation_is_never_trusted(tmp_path):
    from micromance.store import SEQ_BLOCK

    store = Store.open(tmp_path, clock=lambda: 0)
    try:
        for _ in range(SEQ_BLOCK):  # use up the block reserved at opening
            store.next_seq()
        with pytest.raises(RuntimeError), store.transaction():
            inside = store.next_seq()  # reserves a block inside the step's transaction
            raise RuntimeError("the step fails")
        assert int(store.get("seq", "0")) < inside  # the reservation went with the rollback
        after = store.next_seq()
        assert int(store.get("seq")) >= after >= inside
    finally:
        store.close()


def test_a_rollback_that_reserved_nothing_keeps_the_block(tmp_path):
    """A thank-you rehearsed and rolled back (numbered from the block in memory) costs the
    next message no new reservation, and no seq is handed out twice."""
    from micromance.core.counters import Counters

    store = Store.open(tmp_path, clock=lambda: 0)
    try:
        first = store.next_seq()
        assert store.rehearse("press", lambda: store.save_counters(Counters(sent_total=1)))
        store.abandon_rehearsal()
        with pytest.raises(RuntimeError), store.transaction():
            store.put("x", "y")
            raise RuntimeError("the step fails")
        writes = kv_writes(store)
        assert store.next_seq() == first + 1 and writes == []
    finally:
        store.close()


def test_advance_seq_moves_past_and_survives_a_restart(tmp_path):
    store = Store.open(tmp_path, clock=lambda: 0)
    store.next_seq()
    store.advance_seq(10000)
    assert store.next_seq() == 10001
    store.advance_seq(10)  # never back
    assert store.next_seq() == 10002
    store.close()
    again = Store.open(tmp_path, clock=lambda: 0)
    try:
        assert again.next_seq() > 10002
    finally:
        again.close()


# --- the identity lives with the pair --------------------------------------------------------


def forget_database(state: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (state / f"{DB_NAME}{suffix}").unlink(missing_ok=True)


def test_a_lost_database_keeps_the_paired_identity(tmp_path):
    pair_a, _ = pair_locally(tmp_path / "a", tmp_path / "b")
    forget_database(tmp_path / "a")
    store = Store.open(tmp_path / "a")
    try:
        assert store.device_id() == pair_a.device_id
        assert store.get("device_id") == pair_a.device_id  # written back
    finally:
        store.close()


def test_the_pair_wins_over_a_different_id_in_the_database(tmp_path, caplog):
    pair_a, _ = pair_locally(tmp_path / "a", tmp_path / "b")
    store = Store.open(tmp_path / "a")
    try:
        store.put("device_id", "0123456789abcdef")
        with caplog.at_level(logging.WARNING):
            assert store.device_id() == pair_a.device_id
        assert "0123456789abcdef" in caplog.text
    finally:
        store.close()


# --- a damaged write-ahead log ---------------------------------------------------------------


def crashed_copy(store: Store, where: Path) -> Path:
    """The files as a power cut would leave them: the WAL not yet checkpointed."""
    where.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(store.path.with_name(DB_NAME + suffix), where / (DB_NAME + suffix))
    return where


def wal_frames(wal: Path) -> list[tuple[int, int]]:
    """(offset, commit size) of each frame of the current generation."""
    data = wal.read_bytes()
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    frames = []
    for offset in range(32, len(data) - 24 - page_size + 1, 24 + page_size):
        if data[offset + 8:offset + 16] != salts:
            break
        frames.append((offset, struct.unpack(">I", data[offset + 4:offset + 8])[0]))
    return frames


def test_a_damaged_frame_in_the_wal_is_said_and_the_wal_kept(tmp_path, caplog):
    store = Store.open(tmp_path / "live")
    for n in range(1, 21):
        store.log_event("12:00:00", "sent", f"#{n}")
    crash = crashed_copy(store, tmp_path / "crash")
    store.close()
    wal = crash / f"{DB_NAME}-wal"
    frames = wal_frames(wal)
    offset, _ = frames[len(frames) // 2]
    with wal.open("r+b") as handle:  # one byte of the middle frame's page
        handle.seek(offset + 24 + 500)
        byte = handle.read(1)
        handle.seek(offset + 24 + 500)
        handle.write(bytes([byte[0] ^ 0xFF]))
    kept = wal.read_bytes()
    with caplog.at_level(logging.WARNING):
        damaged = Store.open(crash)
    try:
        events = damaged.recent_events(50)
    finally:
        damaged.close()
    assert len(events) < 20  # SQLite did drop the commits after the damaged frame
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, caplog.text
    line = warnings[0].getMessage()
    assert "\n" not in line and "may be lost" in line
    copies = list(crash.glob(f"{DB_NAME}-wal.damaged-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == kept
    assert copies[0].name in line


def test_an_intact_wal_and_older_frames_raise_no_warning(tmp_path, caplog):
    """Frames left from an older generation (other salts) are ignored by design, not damage."""
    store = Store.open(tmp_path / "live")
    for n in range(30):
        store.log_event("12:00:00", "sent", f"#{n}")
    store._db.execute("PRAGMA wal_checkpoint(RESTART)")
    store.log_event("12:00:00", "sent", "after the restart")  # a new generation, at the start
    crash = crashed_copy(store, tmp_path / "crash")
    store.close()
    with caplog.at_level(logging.WARNING):
        Store.open(crash).close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not list(crash.glob("*.damaged-*"))


def test_quick_check_and_the_wal_check_are_cheap(tmp_path):
    """Both run at every start; on this machine they take well under 50 ms."""
    import time

    from micromance.store import wal_damage

    store = filled(tmp_path / "live", messages=500)
    crash = crashed_copy(store, tmp_path / "crash")
    store.close()
    wal = (crash / f"{DB_NAME}-wal").read_bytes()
    connection = sqlite3.connect(crash / DB_NAME)
    try:
        started = time.perf_counter()
        wal_damage(wal)
        assert connection.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        assert time.perf_counter() - started < 0.5
    finally:
        connection.close()


def test_a_permission_problem_is_named_as_one(tmp_path, monkeypatch):
    (tmp_path / DB_NAME).mkdir()  # SQLite cannot open it...
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # ...and this user may not
    with pytest.raises(StoreError) as raised:
        Store.open(tmp_path)
    assert "permission denied" in raised.value.message
    assert "user" in raised.value.fix


def test_recent_events_keep_the_newest_fifty_to_fifty_nine(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    try:
        for n in range(1, 76):
            store.log_event(f"2026-12-01T10:{n:02d}:00", "sent", f"#{n}")
        kept = store.recent_events(1000)
        assert 50 <= len(kept) <= 59
        assert [e["detail"] for e in kept[:3]] == ["#75", "#74", "#73"]  # newest first
        assert kept[-1]["detail"] == f"#{76 - len(kept)}"                 # no gap
    finally:
        store.close()
