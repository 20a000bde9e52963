"""Faults a unit on a kitchen counter meets: a store that went back in time, storage that
stops taking writes, and what the log says about a press. Real units, a real mosquitto."""

from __future__ import annotations

import logging
import shutil

from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.runtime import Runtime
from micromance.screens import views as v
from tests.test_link import THANKS, Home, _wait_outbox_empty, _wait_received
from tests.test_link import homes as homes
from tests.units import Running, desk_config, names_of, partner_names_of, press

DB_FILES = ("state.db", "state.db-wal", "state.db-shm")


def snapshot(home: Home, into) -> None:
    into.mkdir()
    for name in DB_FILES:
        if (home.state_dir / name).exists():
            shutil.copy2(home.state_dir / name, into / name)


def restore(home: Home, snapshot_dir) -> None:
    """What a lying SD card or a damaged journal leaves: the database of some commits ago."""
    for name in DB_FILES:
        (home.state_dir / name).unlink(missing_ok=True)
        if (snapshot_dir / name).exists():
            shutil.copy2(snapshot_dir / name, home.state_dir / name)


def test_a_sender_whose_store_went_back_in_time_loses_no_new_press(homes, tmp_path):
    a, b = homes
    a.start().connected()
    b.start().connected()
    for _ in range(5):
        a.press(THANKS)
    _wait_received(b, 5)
    _wait_outbox_empty(a)
    a.stop()
    snapshot(a, tmp_path / "five")
    a.start().connected()
    for _ in range(2):
        a.press(THANKS)
    _wait_received(b, 7)
    _wait_outbox_empty(a)
    a.stop()
    restore(a, tmp_path / "five")           # back to 5 sent, its last seqs forgotten
    a.start()
    for _ in range(3):                       # pressed at once, before it hears from B
        a.press(THANKS)
    _wait_received(b, 10, timeout=60)        # every new press counted
    a.wait_until(lambda: a.state.counters.sent_total == 10)
    _wait_outbox_empty(a, timeout=60)
    a.press(THANKS)
    _wait_received(b, 11)
    # Its presence of the first moments had old seqs (taken for replays, at most a couple);
    # after catching up it connected again with fresh ones: online for B again.
    b.wait_until(lambda: b.state.partner.online is True)
    assert b.state.partner.rejected <= 2


def test_a_restored_sender_that_hears_first_jumps_ahead(homes, tmp_path):
    a, b = homes
    a.start().connected()
    b.start().connected()
    a.stop()
    snapshot(a, tmp_path / "zero")
    a.start().connected()
    for _ in range(4):
        a.press(THANKS)
    _wait_received(b, 4)
    _wait_outbox_empty(a)
    a.stop()
    restore(a, tmp_path / "zero")
    a.start().connected()
    a.wait_until(lambda: a.state.counters.sent_total == 4)  # B's summary said so
    a.press(THANKS)
    _wait_received(b, 5)


def test_storage_that_stops_taking_writes_is_shown_refused_and_recovered(tmp_path,
                                                                         mock_factory, clock,
                                                                         caplog):
    caplog.set_level(logging.INFO, "micromance")
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory, clock=clock)
    with Running(runtime) as unit:
        press(mock_factory, 17)
        unit.wait_for(lambda c: c == cmd.SendThanks(total=1))
        db = runtime.store._db
        db.execute("PRAGMA query_only = 1")   # every write fails, as on a read-only remount
        mark = unit.mark()
        press(mock_factory, 17)
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and isinstance(c.frame.view, v.ProblemView), since=mark)
        assert runtime.state.counters.sent_total == 1  # not counted: it was not saved
        assert unit.thread.is_alive()
        clock.advance(5)
        mark = unit.mark()
        runtime.post(ev.Tick)
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and c.frame.view == v.ProblemView("Can't save", "the storage fails"),
                      since=mark)
        mark = unit.mark()
        press(mock_factory, 17)                 # refused, visibly: no second failure
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and c.frame.view.reason == "Not sent", since=mark)
        assert not any(isinstance(c, cmd.SendThanks) for c in unit.seen[mark:])
        assert runtime.state.counters.sent_total == 1
        db.execute("PRAGMA query_only = 0")   # space again
        clock.advance(31)
        runtime.post(ev.Tick)
        unit.wait_until(lambda: runtime.state.storage == "")
        press(mock_factory, 17)
        unit.wait_for(lambda c: c == cmd.SendThanks(total=2))
    assert "Traceback" not in caplog.text
    assert sum("cannot save" in r.message for r in caplog.records) == 1  # once per outage
    assert any("can be saved again" in r.message for r in caplog.records)


def test_the_log_says_sent_after_the_commit_and_queued_when_offline(homes, caplog):
    a, _ = homes
    caplog.set_level(logging.INFO, "micromance")
    a.broker.stop()
    a.start()
    a.press(THANKS)
    a.wait_for(lambda c: c == cmd.SendThanks(total=1))
    a.wait_until(lambda: any("thank-you #1 queued" in r.message for r in caplog.records))
    assert not any("thank-you #1 sent" in r.message for r in caplog.records)
    a.stop()
    lines = [r.message for r in caplog.records]
    commit_failed = Runtime(desk_config(a.state_dir, broker_port=a.broker.port),
                            pin_factory=a.factory)
    with Running(commit_failed) as unit:
        commit_failed.store._db.execute("PRAGMA query_only = 1")
        mark = unit.mark()
        press(a.factory, 17)
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and isinstance(c.frame.view, v.ProblemView), since=mark)
    new_lines = [r.message for r in caplog.records][len(lines):]
    assert not any("thank-you #2" in line for line in new_lines)  # rolled back: never said


def test_forged_presence_changes_nothing_and_sends_nothing(homes):
    """Anyone on the broker can publish on a presence topic; only the partner can seal."""
    import paho.mqtt.publish as publish

    from micromance.link.pair_file import load_pair

    a, b = homes
    a.start().connected()
    b.start().connected()
    b.wait_until(lambda: b.state.partner.online is True)
    pair = load_pair(a.state_dir)
    presence = names_of(pair).presence   # A's, as B reads it
    publish.single(presence, b"offline", qos=1, retain=True, hostname="127.0.0.1",
                   port=a.broker.port)                                  # a forged Last Will
    b.wait_until(lambda: b.state.partner.rejected >= 1)
    assert b.state.partner.online is True                               # B is not fooled
    # A flood of forged "online" while 20 thank-yous wait for B: nothing is sent again.
    b.stop()
    for _ in range(20):
        a.press(THANKS)
    a.wait_until(lambda: a.state.partner.outbox == 20)
    mark = a.running.mark()
    own = partner_names_of(pair).presence       # B's, as A reads it
    publish.multiple([{"topic": own, "payload": b"online", "qos": 1}] * 200,
                     hostname="127.0.0.1", port=a.broker.port)
    a.wait_until(lambda: a.state.partner.rejected >= 200)
    assert not any(isinstance(c, cmd.Redeliver) for c in a.running.seen[mark:])


def test_a_timer_that_wants_to_save_while_storage_fails_does_not_loop(tmp_path, mock_factory,
                                                                       clock):
    """A prompt rotation falls due while nothing can be saved: the unit keeps running."""
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory, clock=clock)
    with Running(runtime) as unit:
        runtime.store._db.execute("PRAGMA query_only = 1")
        press(mock_factory, 17)
        unit.wait_until(lambda: runtime.state.storage != "")
        prompt = runtime.state.rotation.prompt
        mark = unit.mark()
        for _ in range(3):
            runtime.post(ev.RotatePrompt)
            clock.advance(31)                   # the change falls due: it wants to save
            runtime.post(ev.Tick)
        unit.wait_for(lambda c: isinstance(c, cmd.CheckStorage), since=mark)
        assert unit.thread.is_alive() and runtime.state.storage
        assert runtime.state.rotation.prompt != prompt  # shown, though not saved
