"""The executor on real adapters: every command type is handled, in the promised order."""

from __future__ import annotations

import typing
from dataclasses import replace
from datetime import datetime

import pytest

from micromance.config import DisplayConfig, PinsConfig
from micromance.core import commands as cmd
from micromance.core.commands import LightMode, LiveFacts
from micromance.core.counters import Counters
from micromance.executor import Executor
from micromance.hardware.display import open_display
from micromance.hardware.panel import Panel
from micromance.link.courier import Courier
from micromance.link.pair_file import load_pair
from micromance.protocol.pairing import PairResult
from micromance.protocol.replay import ReplayWindow
from micromance.screens import views as v
from micromance.status import LiveFactsFile
from micromance.store import Store
from tests.conftest import ZONE
from tests.units import desk_config

WALL = datetime(2026, 11, 25, 12, 0, tzinfo=ZONE)
PARTNER = "0123456789abcdef"

#: One instance of every command the core can emit.
SAMPLES: dict[type, object] = {
    cmd.ShowFrame: cmd.ShowFrame(v.Frame(v.SentView())),
    cmd.SetContrast: cmd.SetContrast(100),
    cmd.SetPanelPower: cmd.SetPanelPower(False),
    cmd.SetLight: cmd.SetLight(LightMode.PULSE),
    cmd.ReportLiveFacts: cmd.ReportLiveFacts(LiveFacts("connected", "online", "Alex", 0, 0)),
    cmd.ReportHome: cmd.ReportHome(cmd.HomeFacts(True, 1, 0, 1, 0, 0, 0, "Smile", True, 0)),
    cmd.SaveCounters: cmd.SaveCounters(Counters(sent_total=1)),
    cmd.SaveRotation: cmd.SaveRotation("", "abc", 1),
    cmd.SaveWindow: cmd.SaveWindow(ReplayWindow().accept(1)),
    cmd.PrepareThanks: cmd.PrepareThanks(counters=Counters(sent_total=1)),
    cmd.DropPrepared: cmd.DropPrepared(),
    cmd.SendThanks: cmd.SendThanks(total=1),
    cmd.SendSeen: cmd.SendSeen(sent_total=1),
    cmd.SendDone: cmd.SendDone(streak=1, sent_total=1),
    cmd.SendAck: cmd.SendAck((1,), sent_total=1),
    cmd.PublishState: cmd.PublishState(sent_total=1, streak=1, seen_seq=3, seen_total=2),
    cmd.CheckStorage: cmd.CheckStorage(),
    cmd.DropFromOutbox: cmd.DropFromOutbox((1,)),
    cmd.Redeliver: cmd.Redeliver(),
    cmd.NoteRejected: cmd.NoteRejected("replayed", True, 1),
    cmd.StartPairing: cmd.StartPairing(),
    cmd.PublishPairing: cmd.PublishPairing(b"{}"),
    cmd.StopPairing: cmd.StopPairing(),
    cmd.SavePair: cmd.SavePair(PairResult("ab" * 16, bytes(32), "a")),
    cmd.SendUnpair: cmd.SendUnpair(sent_total=1),
    cmd.ForgetPair: cmd.ForgetPair(),
}


class Room:
    """The pairing room, recorded (opening a real one needs a broker)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def open(self, topic: str = "") -> None:
        self.calls.append("open")

    def publish(self, payload: bytes) -> None:
        self.calls.append("publish")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def parts(tmp_path, mock_factory):
    config = desk_config(tmp_path)
    store = Store.open(tmp_path)
    display = open_display(DisplayConfig(driver="dummy"))
    panel = Panel(PinsConfig(), lambda *_: None, mock_factory)
    posted: list[object] = []
    courier = Courier(config, store, store.device_id(), lambda *a, **k: posted.append(a),
                      lambda: None)
    room = Room()
    executor = Executor(config, store=store, display=display, panel=panel, courier=courier,
                        room=room, live=LiveFactsFile(config), device_id=store.device_id(),
                        post=lambda *a, **k: posted.append(a))
    yield executor, store, room, panel
    courier.disconnect()
    panel.close()
    display.close()
    store.close()


def test_every_command_type_has_a_sample():
    assert set(SAMPLES) == set(typing.get_args(cmd.Command))


@pytest.mark.parametrize("kind", list(SAMPLES), ids=lambda kind: kind.__name__)
def test_every_command_type_is_carried_out(parts, kind):
    executor, store, room, _ = parts
    executor.carry_out([SAMPLES[kind]], WALL)
    if kind is cmd.SavePair:
        assert load_pair(store.path.parent).partner_id == SAMPLES[cmd.SavePair].result.partner_id
    if kind in (cmd.StartPairing, cmd.PublishPairing, cmd.StopPairing):
        assert room.calls


def test_an_unknown_command_fails_loudly(parts):
    executor, *_ = parts
    with pytest.raises(AssertionError):
        executor.carry_out([object()], WALL)  # type: ignore[list-item]


def test_a_received_thanks_lights_before_the_commit(parts, monkeypatch):
    executor, store, _, panel = parts
    order: list[str] = []
    lit, transaction = panel.set_light, store.transaction
    monkeypatch.setattr(panel, "set_light", lambda mode: (order.append("light"), lit(mode)))

    def recorded():
        order.append("commit")
        return transaction()

    monkeypatch.setattr(store, "transaction", recorded)
    executor.carry_out([cmd.SaveCounters(Counters(received_total=1, pending=1)),
                        cmd.SendAck((1,), sent_total=0), cmd.SetLight(LightMode.PULSE)], WALL)
    assert order[0] == "light" and "commit" in order
    order.clear()
    executor.carry_out([cmd.SaveCounters(Counters(sent_total=1)), cmd.SendThanks(total=1),
                        cmd.SetLight(LightMode.ON)], WALL)
    assert order[0] == "commit" and order[-1] == "light"  # news first, the blink after


def test_a_release_asking_for_what_its_press_rehearsed_only_commits(parts):
    executor, store, *_ = parts
    counted = Counters(sent_total=1, today=1)
    release = [cmd.SaveCounters(counted), cmd.SendThanks(total=1), cmd.DropPrepared()]
    executor.carry_out([cmd.PrepareThanks(counters=counted)], WALL)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    executor.carry_out(release, WALL.replace(microsecond=400_000))
    assert statements == ["COMMIT"]
    store._db.set_trace_callback(None)
    assert store.load_counters() == counted
    assert [e["kind"] for e in store.recent_events()] == ["sent"]

    executor.carry_out([cmd.PrepareThanks(counters=replace(counted, sent_total=2))],
                       WALL)
    executor.carry_out(release, WALL)  # the same writes again: another step's (total 1)
    assert store.load_counters() == counted
    executor.carry_out([cmd.PrepareThanks(counters=counted)], WALL)
    store._db.set_trace_callback(statements.append)
    statements.clear()
    executor.carry_out(release, WALL.replace(second=1))  # the next second: written anew
    assert statements[0] == "ROLLBACK" and len(statements) > 2
    store._db.set_trace_callback(None)
    executor.carry_out([cmd.PrepareThanks(counters=counted)], WALL)
    executor.carry_out([cmd.DropPrepared()], WALL)  # held on: rolled back
    assert not store._db.in_transaction


def test_what_was_sent_ahead_of_a_step_is_left_out_of_it(parts, caplog):
    executor, store, *_ = parts
    counted = Counters(sent_total=1, today=1)
    ahead = [cmd.SaveCounters(counted), cmd.SendThanks(total=1)]
    executor.carry_out([cmd.PrepareThanks(counters=counted)], WALL)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    executor.send_ahead(ahead, WALL)
    assert statements == ["COMMIT"] and store.load_counters() == counted
    statements.clear()
    executor.carry_out([*ahead, cmd.SetLight(LightMode.ON), cmd.DropPrepared()], WALL)
    assert statements == []  # its step: nothing left to write
    store._db.set_trace_callback(None)
    assert [e["kind"] for e in store.recent_events()] == ["sent"]

    executor.send_ahead(ahead, WALL)  # nothing rehearsed: nothing sent ahead...
    executor.carry_out(ahead, WALL)   # ...and the step writes it all
    assert [e["kind"] for e in store.recent_events()] == ["sent", "sent"]

    executor.carry_out([cmd.PrepareThanks(counters=counted)], WALL)
    executor.send_ahead(ahead, WALL)
    more = Counters(sent_total=1, today=1, streak=1)
    executor.carry_out([cmd.SaveCounters(more)], WALL)  # a step that broke the promise
    assert store.load_counters() == more and "did not ask for" in caplog.text
