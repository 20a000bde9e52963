"""``micromance repair`` and the daemon's own repair: keep the damaged files, rebuild the rest."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from micromance.errors import StoreError
from micromance.link.pair_file import Pair, pair_locally
from micromance.store import DB_NAME, Store
from tests.test_store import damage_header, damage_page_holding
from tests.units import desk_config

SUFFIXES = ("", "-wal", "-shm")


def repair(state: Path) -> list[str]:
    from micromance.repair import repair as repair_

    return repair_(state)


def paired_unit_with_a_crashed_database(tmp_path: Path, messages: int = 200) -> tuple[Path, Pair]:
    """Unit ``a``, paired, its database as a power cut leaves it (WAL and -shm beside it),
    with outbox rows, counters, rotation, a replay window and recent events."""
    pair, _ = pair_locally(tmp_path / "a", tmp_path / "b")
    live = Store.open(tmp_path / "live", clock=lambda: 0)  # seqs from 1 on
    live.put("device_id", "0123456789abcdef")  # not the pair's: the pair must win
    for n in range(1, messages + 1):
        with live.transaction():
            live.outbox_add(live.next_seq(), pair.pair_id, "thanks", f'{{"n":"{n:05}"}}', "now")
            live.log_event("12:00:00", "sent", f"#{n}")
    live.save_window(pair.pair_id, pair.partner_id, '{"highest":4,"bitmap":15}')
    live.save_rotation("", "p1", 3)
    live._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows are in state.db now
    live.put(f"counters/{pair.pair_id}", '{"sent_total": 200}')  # and this in the WAL
    state = tmp_path / "a"
    for suffix in SUFFIXES:
        shutil.copyfile(live.path.with_name(DB_NAME + suffix), state / (DB_NAME + suffix))
    live.close()
    return state, pair


def test_repair_keeps_the_damaged_files_and_salvages_what_it_can_read(tmp_path):
    state, pair = paired_unit_with_a_crashed_database(tmp_path)
    damage_page_holding(state / DB_NAME, b'"n":"00100"')
    before = {s: (state / (DB_NAME + s)).read_bytes() for s in SUFFIXES}

    lines = repair(state)

    kept = {s: list(state.glob(f"{DB_NAME}{s}.damaged-*")) for s in SUFFIXES}
    assert all(len(paths) == 1 for paths in kept.values()), kept
    assert len({p[0].name.rsplit(".damaged-", 1)[1] for p in kept.values()}) == 1  # one stamp
    assert {s: p[0].read_bytes() for s, p in kept.items()} == before  # untouched copies
    assert "state.db.damaged-" in lines[0]

    store = Store.open(state)  # checked again: the new file is sound
    try:
        waiting = store.outbox(pair.pair_id)
        assert 150 <= len(waiting) < 200  # only the rows of the damaged page are gone
        assert all(int(json.loads(text)["n"]) == seq for seq, text in waiting)
        assert store.load_counters(pair.pair_id).sent_total == 200
        assert store.load_rotation() == ("", "p1", 3)
        assert store.load_window(pair.pair_id, pair.partner_id)
        assert store.device_id() == pair.device_id
        assert store.next_seq() > 200  # a seq of a waiting message is never used again
    finally:
        store.close()
    assert any(line.startswith("lost: some outbox") for line in lines)
    assert "kept: the totals" in lines
    assert f"device id {pair.device_id} (from pair.json)" in lines
    assert not list(state.glob("repair-*"))  # the scratch copy is gone


def test_an_unreadable_file_is_rebuilt_around_the_pair(tmp_path):
    state, pair = paired_unit_with_a_crashed_database(tmp_path, messages=5)
    for suffix in ("-wal", "-shm"):
        (state / (DB_NAME + suffix)).unlink()
    damage_header(state / DB_NAME)

    lines = repair(state)

    assert any(line.startswith("lost: everything in the database") for line in lines)
    assert "lost: the totals; the partner's next sealed state brings them back" in lines
    store = Store.open(state)
    try:
        assert store.device_id() == pair.device_id
        assert store.outbox_size(pair.pair_id) == 0
    finally:
        store.close()


def test_the_daemon_repairs_by_itself_in_one_log_line(tmp_path, caplog):
    from micromance.repair import open_store

    state, pair = paired_unit_with_a_crashed_database(tmp_path, messages=50)
    damage_page_holding(state / DB_NAME, b'"n":"00020"')
    with caplog.at_level(logging.INFO):
        store = open_store(state)
    try:
        assert store.device_id() == pair.device_id
    finally:
        store.close()
    assert len(caplog.records) == 1, caplog.text
    line = caplog.records[0].getMessage()
    assert "\n" not in line
    assert "damaged" in line and "repaired" in line
    (copy,) = state.glob(f"{DB_NAME}.damaged-*")
    assert copy.name in line


def test_the_runtime_starts_on_a_damaged_database(tmp_path, mock_factory):
    from micromance.runtime import Runtime
    from tests.units import Running

    state = tmp_path / "state"
    store = Store.open(state)
    store.put("counters", '{"sent_total": 3}')
    store.close()
    damage_header(state / DB_NAME)
    runtime = Runtime(desk_config(state), pin_factory=mock_factory)
    with Running(runtime):
        assert runtime.state is not None
    assert list(state.glob(f"{DB_NAME}.damaged-*"))


def test_repair_from_the_shell_says_when_there_is_nothing_to_repair(tmp_path):
    from micromance.repair import repair_from_shell

    config = desk_config(tmp_path)
    Store.open(tmp_path).close()
    out = io.StringIO()
    assert repair_from_shell(config, out=out) == 0
    assert "nothing to repair" in out.getvalue()
    assert not list(tmp_path.glob("*.damaged-*"))


def test_repair_from_the_shell_refuses_while_the_unit_runs(tmp_path, monkeypatch):
    from micromance.repair import repair_from_shell

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    (tmp_path / "status.json").write_text(json.dumps(
        {"pid": os.getpid(), "state_dir": str(tmp_path), "link": "offline",
         "partner": "unknown", "rejected": 0}))
    with pytest.raises(StoreError) as raised:
        repair_from_shell(desk_config(tmp_path), out=io.StringIO())
    assert "systemctl stop" in raised.value.fix


def test_a_repaired_database_passes_sqlites_integrity_check(tmp_path):
    state, _ = paired_unit_with_a_crashed_database(tmp_path, messages=80)
    damage_page_holding(state / DB_NAME, b'"n":"00040"')
    repair(state)
    connection = sqlite3.connect(state / DB_NAME)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
