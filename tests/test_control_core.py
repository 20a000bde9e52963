"""The core's side of the control socket and of reload, on the fake clock: the access code on
the screen, pairing asked for from elsewhere, unpairing from here, new settings, and the 30
days of history in the counters."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta

from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.commands import LightMode
from micromance.core.counters import HISTORY_DAYS, Counters
from micromance.core.events import Gesture
from micromance.core.quiet import QuietHours
from micromance.core.report import OUTCOME_SECONDS, pairing_report, status_report
from micromance.core.state import Mode
from micromance.screens import views as v
from tests.conftest import ZONE
from tests.test_machine import LIBRARY, Unit, of

# --- the access code ----------------------------------------------------------------------


def test_the_access_code_shows_for_its_seconds_then_home(clock):
    unit = Unit(clock)
    unit.send(ev.ShowCode, code="482913", seconds=60)
    assert unit.view == v.AccessCodeView(code="482913")
    assert unit.state.screen.mode is Mode.ACCESS_CODE
    unit.run_for(59)
    assert unit.view == v.AccessCodeView(code="482913")
    unit.run_for(2)
    assert isinstance(unit.view, v.HomeView)
    assert unit.state.screen.access_code == ""


def test_next_hides_the_code_without_changing_the_prompt(clock):
    unit = Unit(clock)
    prompt = unit.state.rotation.prompt
    unit.send(ev.ShowCode, code="111222", seconds=300)
    out = unit.gesture(Gesture.NEXT_PRESS)
    assert isinstance(unit.view, v.HomeView) and unit.state.rotation.prompt == prompt
    assert not of(cmd.SaveRotation, out)


def test_hide_code_goes_back_and_does_nothing_elsewhere(clock):
    unit = Unit(clock)
    assert unit.send(ev.HideCode) == []          # nothing shown: nothing to do
    unit.send(ev.ShowCode, code="111222", seconds=300)
    unit.send(ev.HideCode)
    assert isinstance(unit.view, v.HomeView)


def test_a_thank_you_during_the_code_pulses_at_once_and_shows_after(clock):
    unit = Unit(clock)
    unit.send(ev.ShowCode, code="482913", seconds=30)
    unit.receive("thanks", total=1)
    assert unit.view == v.AccessCodeView(code="482913")       # the login is not cut short
    assert unit.state.outputs.light is LightMode.PULSE
    unit.run_for(31)
    assert isinstance(unit.view, v.ReceivedView)


def test_the_code_lights_the_screen_in_quiet_hours_and_never_covers_pairing(clock):
    clock.wall = datetime(2026, 11, 25, 23, 0, tzinfo=ZONE)
    unit = Unit(clock)
    assert unit.state.outputs.panel_on is False
    unit.send(ev.ShowCode, code="482913", seconds=20)
    assert unit.view == v.AccessCodeView(code="482913") and unit.state.outputs.panel_on
    unit.run_for(21)
    assert unit.state.outputs.panel_on is False
    unit.gesture(Gesture.BOTH_HOLD)
    unit.send(ev.ShowCode, code="482913", seconds=20)
    assert unit.state.screen.mode is Mode.PAIRING


# --- pairing from elsewhere -----------------------------------------------------------------


def test_pairing_requested_opens_the_named_room_and_an_answer_outside_is_nothing(clock):
    unit = Unit(clock)
    out = unit.send(ev.PairingAnswer, confirm=True)
    assert not of(cmd.SendThanks, out) and unit.state.counters.sent_total == 0
    assert pairing_report(unit.state, clock.mono)["phase"] == "idle"
    out = unit.send(ev.PairingRequested, topic="ab" * 16)
    assert of(cmd.StartPairing, out) == [cmd.StartPairing("ab" * 16)]
    assert pairing_report(unit.state, clock.mono)["phase"] == "searching"
    unit.send(ev.PairingBegin, entropy=bytes(range(64)))
    assert pairing_report(unit.state, clock.mono) == {"phase": "searching", "code": "",
                                                      "detail": ""}


def test_a_second_request_cancels_the_attempt_under_way_and_starts_afresh(clock):
    unit = Unit(clock)
    unit.send(ev.PairingRequested, topic="")
    unit.send(ev.PairingBegin, entropy=bytes(range(64)))
    out = unit.send(ev.PairingRequested, topic="cd" * 16)
    assert [type(c) for c in out if isinstance(c, (cmd.StopPairing, cmd.StartPairing))] == \
        [cmd.StopPairing, cmd.StartPairing]
    assert unit.state.session is None and unit.state.screen.mode is Mode.PAIRING


def test_cancel_is_reported_for_a_while_then_idle(clock):
    unit = Unit(clock)
    unit.send(ev.PairingRequested, topic="")
    unit.send(ev.PairingBegin, entropy=bytes(range(64)))
    out = unit.send(ev.PairingAnswer, confirm=False)
    assert cmd.StopPairing() in out and isinstance(unit.view, v.HomeView)
    assert pairing_report(unit.state, clock.mono)["phase"] == "cancelled"
    clock.advance(OUTCOME_SECONDS + 1)
    assert pairing_report(unit.state, clock.mono)["phase"] == "idle"


def test_a_search_that_times_out_says_so(clock):
    unit = Unit(clock)
    unit.send(ev.PairingRequested, topic="")
    unit.send(ev.PairingBegin, entropy=bytes(range(64)))
    unit.run_for(125)
    assert pairing_report(unit.state, clock.mono)["phase"] == "timed_out"


# --- unpairing from here ----------------------------------------------------------------------


def test_forget_tells_the_partner_then_drops_the_pair(clock):
    unit = Unit(clock)
    assert unit.send(ev.ForgetRequested) == [] or not of(cmd.ForgetPair, unit.log)
    unit.pair()
    unit.gesture(Gesture.THANKS_PRESS)
    out = unit.send(ev.ForgetRequested)
    assert [c for c in out if isinstance(c, (cmd.SendUnpair, cmd.ForgetPair))] == \
        [cmd.SendUnpair(sent_total=1), cmd.ForgetPair(ours=True)]
    assert not unit.state.partner.paired
    unit.run_for(5)
    assert unit.view.reason == "Unpaired"


# --- new settings ------------------------------------------------------------------------------


def test_new_settings_take_effect_at_once(clock):
    unit = Unit(clock)
    assert isinstance(unit.view, v.HomeView)
    quiet_now = QuietHours.parse("11:00", "13:00")   # the clock says 12:00
    out = unit.send(ev.SettingsChanged, settings=replace(unit.settings, quiet=quiet_now,
                                                         contrast=90))
    assert unit.state.outputs.panel_on is False and cmd.SetPanelPower(False) in out
    assert status_report(unit.state, clock.mono)["quiet"] is True
    unit.send(ev.SettingsChanged, settings=replace(unit.settings, contrast=90))
    assert unit.state.outputs.contrast == 90 and isinstance(unit.view, v.HomeView)


def test_a_prompt_the_new_library_lacks_is_replaced(clock):
    unit = Unit(clock)
    shown = unit.state.rotation.prompt
    others = tuple(p for p in LIBRARY if p.practice is not shown.practice)
    out = unit.send(ev.SettingsChanged, settings=replace(unit.settings, library=others))
    assert unit.state.rotation.prompt in others and of(cmd.SaveRotation, out)


def test_a_broker_change_forgets_what_the_old_brokers_said(clock):
    unit = Unit(clock)
    unit.pair()
    unit.send(ev.BrokerChanged, broker=0, where="127.0.0.1:1883", connected=True)
    unit.send(ev.SettingsChanged, settings=unit.settings, brokers_changed=True)
    assert unit.state.partner.links == () and unit.state.partner.link.value == "connecting"


# --- 30 days of history -----------------------------------------------------------------------


def test_history_counts_sent_received_and_done_per_day(clock):
    unit = Unit(clock)
    unit.gesture(Gesture.THANKS_PRESS)
    unit.gesture(Gesture.THANKS_PRESS)
    unit.receive("thanks", total=3)
    unit.gesture(Gesture.NEXT_HOLD)
    unit.gesture(Gesture.NEXT_HOLD)                      # done once a day
    assert unit.state.counters.history == (("2026-11-25", 2, 3, 1),)
    unit.run_for(24 * 3600)
    unit.gesture(Gesture.THANKS_PRESS)
    assert unit.state.counters.history == (("2026-11-25", 2, 3, 1), ("2026-11-26", 1, 0, 0))
    assert status_report(unit.state, clock.mono)["history"][-1] == ["2026-11-26", 1, 0, 0]


def test_history_keeps_the_last_30_days_only():
    counters = Counters()
    first = date(2026, 1, 1)
    for day in range(45):
        counters = counters.note_day(first + timedelta(days=day), sent=1)
    assert len(counters.history) == HISTORY_DAYS
    assert counters.history[0][0] == (first + timedelta(days=15)).isoformat()
    # A day after a long pause drops everything older than 30 days back.
    counters = counters.note_day(first + timedelta(days=74), received=2)
    assert counters.history == (((first + timedelta(days=74)).isoformat(), 0, 2, 0),)


def test_a_thanks_counts_today_the_week_and_the_history_in_one_copy():
    day = date(2026, 11, 25)
    counters = Counters().thanked(day, sent=1, sent_total=1)
    counters = counters.thanked(day, received=2, received_total=2)  # today's row grows
    assert (counters.sent_total, counters.received_total) == (1, 2)
    assert (counters.today, counters.day, counters.days) == (3, "2026-11-25",
                                                             (("2026-11-25", 3),))
    assert counters.history == (("2026-11-25", 1, 2, 0),)
    counters = counters.thanked(day + timedelta(days=1), sent=1)  # a new day: a new row
    assert counters.history == (("2026-11-25", 1, 2, 0), ("2026-11-26", 1, 0, 0))
    assert counters.today == 1 and counters.week(day + timedelta(days=1))[-2:] == (3, 1)
    # The clock went back a day: that day's row grows, the later one is not kept.
    counters = counters.thanked(day, sent=1)
    assert counters.history == (("2026-11-25", 2, 2, 0),)


def test_history_survives_a_restart_and_bad_rows_cost_only_themselves():
    counters = Counters().note_day(date(2026, 11, 24), sent=1).note_day(date(2026, 11, 25),
                                                                        done=1)
    stored = json.loads(json.dumps(asdict(counters)))
    assert Counters.from_stored(stored).history == counters.history
    stored["history"] += [["2026-11-26", -1, 0, 0], ["not a date", 1, 1, 1], "junk",
                          ["2026-11-27", 1, 2]]
    assert Counters.from_stored(stored).history == counters.history
    assert Counters.from_stored({"history": "junk"}).history == ()
