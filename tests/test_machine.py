"""The core state machine, driven with a fake clock: no threads, no sleeps."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta

import pytest

from micromance.content.library import load_library
from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.commands import LightMode
from micromance.core.events import Button, Gesture
from micromance.core.machine import (
    FLASH_SECONDS,
    PREPARED_SECONDS,
    REACK_AFTER,
    REDELIVER_MIN_GAP,
    Settings,
    State,
    initial_state,
    next_deadline,
    present,
    react,
    step,
)
from micromance.core.quiet import QuietHours
from micromance.screens import views as v
from tests.conftest import ZONE

LIBRARY = load_library()


class Unit:
    """A core plus a fake clock: push events, collect commands."""

    def __init__(self, clock, **settings) -> None:
        self.clock = clock
        self.settings = Settings(library=LIBRARY, **settings)
        self.state: State = initial_state(self.settings, clock.mono, clock.wall)
        self.log: list[cmd.Command] = []
        self.partner_seq = 0
        self.send(ev.Tick)

    def send(self, factory, **fields) -> list[cmd.Command]:
        event = factory(at=self.clock.mono, wall=self.clock.wall, **fields)
        self.state, commands = step(self.state, event)
        self.log += commands
        return commands

    def gesture(self, gesture: Gesture) -> list[cmd.Command]:
        return self.send(ev.GestureInput, gesture=gesture)

    def pair(self) -> Unit:
        """Paired with a partner from now on (as the runtime starts a paired unit)."""
        self.state = replace(self.state, partner=replace(self.state.partner, paired=True))
        return self

    def receive(self, kind: str = "thanks", total: int = 0) -> list[cmd.Command]:
        """A sealed message from the partner, on the real path: the next seq of theirs (at
        least its total: every thank-you took a seq)."""
        self.partner_seq = max(self.partner_seq + 1, total)
        return self.send(ev.Delivery, message=partner_message(self.partner_seq, kind, total))

    def run_for(self, seconds: float) -> list[cmd.Command]:
        """Let time pass the way the runtime does: wake at each deadline with a Tick."""
        end, out = self.clock.mono + seconds, []
        while True:
            deadline = next_deadline(self.state)
            if deadline is None or deadline > end:
                break
            self.clock.advance(max(0.0, deadline - self.clock.mono))
            out += self.send(ev.Tick)
        self.clock.advance(end - self.clock.mono)
        return out

    @property
    def view(self) -> v.View:
        return self.state.outputs.frame.view


def of(kind, commands):
    return [c for c in commands if isinstance(c, kind)]


@pytest.fixture
def unit(clock):
    return Unit(clock)


def test_start_shows_home_with_a_prompt_and_light_off(unit):
    assert isinstance(unit.view, v.HomeView)
    assert unit.view.prompt in {p.text for p in LIBRARY}
    assert of(cmd.SetLight, unit.log) == [cmd.SetLight(LightMode.OFF)]
    assert unit.view.link is v.LinkMark.NOT_PAIRED


def test_thanks_press_records_sends_flashes_and_confirms(unit):
    out = unit.gesture(Gesture.THANKS_PRESS)
    assert of(cmd.SendThanks, out) == [cmd.SendThanks(total=1)]
    assert of(cmd.SaveCounters, out)[0].counters.sent_total == 1
    assert cmd.SetLight(LightMode.ON) in out
    assert isinstance(unit.view, v.SentView) and unit.view.queued  # not paired: waits


def test_the_press_blink_is_turned_off_by_the_cores_own_deadline(unit):
    unit.gesture(Gesture.THANKS_PRESS)
    assert unit.state.outputs.light is LightMode.ON
    assert unit.state.screen.flash_until == pytest.approx(unit.state.at + FLASH_SECONDS)
    assert next_deadline(unit.state) <= unit.state.screen.flash_until  # the loop wakes for it
    out = unit.run_for(FLASH_SECONDS)
    assert of(cmd.SetLight, out) == [cmd.SetLight(LightMode.OFF)]
    assert unit.state.outputs.light is LightMode.OFF
    unit.run_for(5)
    assert isinstance(unit.view, v.HomeView)
    assert (unit.view.today, unit.view.total) == (1, 1)


def test_press_by_edges_reaches_the_same_command(unit):
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.clock.advance(0.1)
    out = unit.send(ev.ButtonUp, button=Button.THANKS)
    assert of(cmd.SendThanks, out) == [cmd.SendThanks(total=1)]


def test_thanks_going_down_alone_asks_for_its_thank_you_to_be_prepared(clock):
    unit = Unit(clock)
    out = unit.send(ev.ButtonDown, button=Button.THANKS)
    assert of(cmd.PrepareThanks, out) == []  # not paired: nothing will be sent
    unit.send(ev.ButtonUp, button=Button.THANKS)
    unit.pair()
    out = unit.send(ev.ButtonDown, button=Button.THANKS)
    [prepared] = of(cmd.PrepareThanks, out)
    assert prepared.total == prepared.counters.sent_total == 2
    assert of(cmd.PrepareThanks, unit.send(ev.ButtonDown, button=Button.THANKS)) == []  # bounce
    out = unit.send(ev.ButtonUp, button=Button.THANKS)
    assert of(cmd.SendThanks, out) == [cmd.SendThanks(total=2)]  # what was prepared
    assert of(cmd.SaveCounters, out)[0].counters is prepared.counters  # counted at the press
    assert unit.state.prepared is None
    unit.send(ev.ButtonDown, button=Button.NEXT)
    out = unit.send(ev.ButtonDown, button=Button.THANKS)  # a chord: never a thank-you
    assert of(cmd.PrepareThanks, out) == []
    unit.send(ev.ButtonUp, button=Button.THANKS)
    unit.send(ev.ButtonUp, button=Button.NEXT)
    unit.state = replace(unit.state, storage="disk full")  # it would be refused
    assert of(cmd.PrepareThanks, unit.send(ev.ButtonDown, button=Button.THANKS)) == []



def test_what_was_prepared_is_dropped_at_the_release_or_a_second_into_the_hold(clock):
    """The adapters hold the store's write lock for it: it must not outlive its use."""
    unit = Unit(clock)
    unit.pair()
    unit.send(ev.ButtonDown, button=Button.THANKS)
    assert next_deadline(unit.state) == pytest.approx(unit.clock.mono + PREPARED_SECONDS)
    out = unit.send(ev.ButtonUp, button=Button.THANKS)
    assert of(cmd.DropPrepared, out) and of(cmd.SendThanks, out)  # used, then dropped
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.send(ev.ButtonDown, button=Button.NEXT)  # a chord: the week, no thank-you
    out = unit.send(ev.ButtonUp, button=Button.THANKS)
    assert of(cmd.DropPrepared, out) and not of(cmd.SendThanks, out)
    unit.send(ev.ButtonUp, button=Button.NEXT)
    unit.send(ev.ButtonDown, button=Button.THANKS)
    assert not of(cmd.DropPrepared, unit.run_for(PREPARED_SECONDS - 0.01))
    out = unit.run_for(0.02)  # held on (a stuck button): dropped, once
    assert of(cmd.DropPrepared, out) and unit.state.prepared is None
    out = unit.send(ev.ButtonUp, button=Button.THANKS)
    assert of(cmd.SendThanks, out) and not of(cmd.DropPrepared, out)  # counted at the release


def test_next_press_shows_another_prompt_and_saves_rotation(unit):
    before = unit.view.prompt
    out = unit.gesture(Gesture.NEXT_PRESS)
    assert unit.view.prompt != before
    assert len(of(cmd.SaveRotation, out)) == 1


def test_next_held_two_seconds_marks_done_while_still_held(unit):
    unit.send(ev.ButtonDown, button=Button.NEXT)
    assert next_deadline(unit.state) == pytest.approx(unit.clock.mono + 2.0)
    assert not of(cmd.SendDone, unit.run_for(1.9))
    out = unit.run_for(0.2)
    assert of(cmd.SendDone, out) == [cmd.SendDone(streak=1, sent_total=0)]
    assert unit.view == v.DoneView(streak=1)
    unit.clock.advance(1)
    out = unit.send(ev.ButtonUp, button=Button.NEXT)
    assert not of(cmd.SaveRotation, out)  # the release after a hold is not also a press


def test_streak_grows_day_by_day_and_breaks_after_a_gap(unit):
    unit.gesture(Gesture.NEXT_HOLD)
    assert unit.state.counters.streak == 1
    unit.gesture(Gesture.NEXT_HOLD)  # twice the same day counts once
    assert unit.state.counters.streak == 1
    unit.clock.advance(24 * 3600)
    unit.gesture(Gesture.NEXT_HOLD)
    assert unit.state.counters.streak == 2
    unit.clock.advance(3 * 24 * 3600)
    out = unit.gesture(Gesture.NEXT_HOLD)
    assert of(cmd.SendDone, out) == [cmd.SendDone(streak=1, sent_total=0)]


def test_both_held_five_seconds_enters_pairing_and_next_cancels(unit):
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.send(ev.ButtonDown, button=Button.NEXT)
    assert not of(cmd.StartPairing, unit.run_for(4.9))
    out = unit.run_for(0.2)
    assert of(cmd.StartPairing, out) == [cmd.StartPairing()]
    assert unit.view == v.PairingView(v.PairingPhase.SEARCHING)
    unit.send(ev.ButtonUp, button=Button.THANKS)
    unit.send(ev.ButtonUp, button=Button.NEXT)
    assert not of(cmd.SendThanks, unit.log)
    out = unit.send(ev.PairingBegin, entropy=bytes(range(64)))
    assert b'"t":"hello"' in of(cmd.PublishPairing, out)[0].payload
    out = unit.gesture(Gesture.NEXT_PRESS)
    assert cmd.StopPairing() in out and isinstance(unit.view, v.HomeView)


def test_pairing_through_the_core_shows_the_code_and_pairs_after_thanks(clock):
    from micromance.protocol import pairing

    unit = Unit(clock, device_id="5555555555555555")
    unit.gesture(Gesture.BOTH_HOLD)
    entropy = bytes(56) + bytes.fromhex("5555555555555555")  # its attempt id, last
    hello = of(cmd.PublishPairing, unit.send(ev.PairingBegin, entropy=entropy))[0].payload
    peer, sent = pairing.begin(bytes(range(56)) + bytes.fromhex("1111111111111111"),
                               clock.mono)
    to_unit = sent
    for _ in range(6):  # relay between the core and a peer session until quiet
        replies = []
        for payload in to_unit:
            replies += [c.payload for c in of(cmd.PublishPairing,
                                                unit.send(ev.PairingMessage, payload=payload))]
        to_peer, to_unit = replies + ([hello] if hello else []), []
        hello = None
        for payload in to_peer:
            peer, more = pairing.receive(peer, payload, clock.mono)
            to_unit += more
    assert unit.view == v.PairingView(v.PairingPhase.CODE, peer.code)
    out = unit.gesture(Gesture.THANKS_PRESS)
    assert unit.view.phase is v.PairingPhase.WAITING and not of(cmd.SendThanks, out)
    peer, _ = pairing.confirm(peer, clock.mono)
    for payload in (c.payload for c in of(cmd.PublishPairing, out)):
        peer, _ = pairing.receive(peer, payload, clock.mono)
    out = unit.send(ev.PairingMessage, payload=peer.my_confirm)
    (saved,) = of(cmd.SavePair, out)
    assert saved.result.key == peer.result.key
    assert saved.result.partner_id == peer.result.member_id != saved.result.member_id
    assert unit.state.partner.paired and unit.state.counters.sent_total == 0
    assert unit.view == v.PairingView(v.PairingPhase.CONFIRMED)
    assert cmd.StopPairing() in unit.run_for(10)
    assert isinstance(unit.view, v.HelpView)  # a new pair: what the buttons do, for a minute
    unit.run_for(60)
    assert isinstance(unit.view, v.HomeView)


def test_unpair_from_the_partner_forgets_the_pair(unit):
    unit.pair()
    out = unit.send(ev.Delivery, message=partner_message(1, "unpair", total=0))
    assert cmd.ForgetPair() in out and not unit.state.partner.paired
    assert unit.view == v.ProblemView("Unpaired", "Alex unpaired the units")


def test_received_thanks_pulses_animates_and_next_acknowledges(unit):
    unit.receive("thanks", total=1)
    assert unit.state.outputs.light is LightMode.PULSE
    assert unit.view == v.ReceivedView("Alex", frame=0, count=1)
    frames = of(cmd.ShowFrame, unit.run_for(2))
    assert [f.frame.view.frame for f in frames] == list(range(1, v.RECEIVED_FRAMES))
    out = unit.gesture(Gesture.NEXT_PRESS)
    assert cmd.SendSeen(sent_total=0) in out and cmd.SetLight(LightMode.OFF) in out
    assert isinstance(unit.view, v.HomeView)


def test_received_light_stops_after_the_timeout(clock):
    unit = Unit(clock, received_timeout=600)
    unit.receive("thanks", total=1)
    out = unit.run_for(601)
    assert cmd.SetLight(LightMode.OFF) in out
    assert isinstance(unit.view, v.HomeView) and unit.view.pending == 1


def test_seen_from_partner_shows_seen(unit):
    unit.gesture(Gesture.THANKS_PRESS)
    unit.receive("seen", total=0)
    assert unit.view == v.SentView(seen=True, seen_when="just now")


def test_partner_totals_grow_only_whatever_the_order(unit):
    for total in (3, 1, 2, 3, 5, 4):
        unit.receive("thanks", total=total)
    assert unit.state.counters.received_total == 5
    assert unit.state.pending == 5
    assert unit.state.counters.today_on(unit.clock.wall.date()) == 5


def test_dims_after_inactivity_and_brightens_on_a_press(clock):
    unit = Unit(clock, dim_after=600, contrast=200, dim_contrast=8)
    assert unit.state.outputs.contrast == 200
    assert cmd.SetContrast(8) in unit.run_for(601)
    assert cmd.SetContrast(200) in unit.gesture(Gesture.NEXT_PRESS)


def test_idle_hour_pushes_at_most_two_frames_a_minute(unit):
    unit.run_for(120)  # settle after start-up
    frames = of(cmd.ShowFrame, unit.run_for(3600))
    assert 60 <= len(frames) <= 120  # the pixel shift moves once a minute, pages on :30
    shifts = {f.frame.shift for f in frames}
    assert len(shifts) > 1 and all(abs(dx) <= 2 and abs(dy) <= 2 for dx, dy in shifts)


def test_idle_wakeups_are_bounded(unit):
    unit.run_for(60)
    wakes, end = 0, unit.clock.mono + 3600
    while (deadline := next_deadline(unit.state)) is not None and deadline <= end:
        unit.clock.advance(deadline - unit.clock.mono)
        unit.send(ev.Tick)
        wakes += 1
    assert wakes <= 125  # two a minute plus the dimming moment


# --- quiet hours ---------------------------------------------------------------------------


@pytest.fixture
def evening(clock):
    clock.wall = datetime(2026, 11, 25, 22, 0, tzinfo=ZONE)
    return Unit(clock)


def test_quiet_hours_dark_screen_no_light_and_kept_for_the_morning(evening):
    unit = evening
    unit.run_for(45 * 60)  # 22:45: quiet
    assert unit.view == v.QuietView(pending=0) or unit.state.outputs.panel_on is False
    assert unit.state.outputs.panel_on is False
    out = unit.receive("thanks", total=1)
    assert cmd.SetLight(LightMode.PULSE) not in out
    assert unit.state.outputs.light is LightMode.OFF
    assert unit.view == v.QuietView(pending=1)
    quiet_frames = of(cmd.ShowFrame, unit.run_for(8 * 3600))  # until 06:45
    assert len(quiet_frames) <= 1
    assert unit.state.outputs.light is LightMode.OFF
    out = unit.run_for(20 * 60)  # 07:05
    assert cmd.SetLight(LightMode.PULSE) in out
    assert isinstance(unit.view, v.ReceivedView)


def test_a_press_in_quiet_hours_acts_and_lights_the_screen_for_a_while(evening):
    unit = evening
    unit.run_for(3600)
    assert unit.state.outputs.panel_on is False
    out = unit.gesture(Gesture.THANKS_PRESS)
    assert of(cmd.SendThanks, out)
    assert cmd.SetPanelPower(True) in out and isinstance(unit.view, v.SentView)
    assert cmd.SetLight(LightMode.ON) not in out  # the light never flashes at night
    unit.run_for(60)
    assert unit.state.outputs.panel_on is False


def test_rotation_ignored_in_quiet_hours_and_taken_in_waking_hours(evening):
    unit = evening
    unit.run_for(3600)
    prompt = unit.state.rotation.prompt
    unit.send(ev.RotatePrompt)
    assert unit.state.rotation.prompt == prompt
    unit.run_for(9 * 3600)
    unit.send(ev.RotatePrompt)
    unit.run_for(30)  # a calendar change waits for the next half minute
    assert unit.state.rotation.prompt != prompt


def test_morning_focus_marks_the_prompt(unit):
    unit.send(ev.MorningFocus)
    unit.run_for(30)
    assert unit.view.focus is True
    unit.send(ev.RotatePrompt)
    unit.run_for(30)
    assert unit.view.focus is False


def test_a_rotation_rides_on_the_half_minute_redraw(unit):
    unit.run_for(120)
    unit.clock.advance(17.3)  # the calendar fires at any second
    unit.send(ev.Tick)
    prompt = unit.state.rotation.prompt
    frames = of(cmd.ShowFrame, unit.send(ev.RotatePrompt))
    assert frames == [] and unit.state.rotation.prompt == prompt
    frames = of(cmd.ShowFrame, unit.run_for(30))
    assert unit.state.rotation.prompt != prompt and len(frames) == 1


def test_restart_keeps_counters_and_prompt(unit, clock):
    unit.gesture(Gesture.THANKS_PRESS)
    saved = unit.state
    again = initial_state(replace(unit.settings), clock.mono, clock.wall,
                          counters=saved.counters, bag_json=saved.rotation.bag.to_json(),
                          prompt_id=saved.rotation.prompt.id, draws=saved.rotation.draws)
    assert again.rotation.prompt == saved.rotation.prompt and again.counters == saved.counters


@pytest.mark.parametrize(
    ("start", "end", "time", "quiet"),
    [("22:30", "07:00", "22:29", False), ("22:30", "07:00", "22:30", True),
     ("22:30", "07:00", "03:00", True), ("22:30", "07:00", "07:00", False),
     ("13:00", "14:00", "13:30", True), ("13:00", "14:00", "14:30", False),
     ("07:00", "07:00", "07:00", False)],
)
def test_quiet_window(start, end, time, quiet):
    hour, minute = map(int, time.split(":"))
    wall = datetime(2026, 6, 1, hour, minute, tzinfo=ZONE)
    assert QuietHours.parse(start, end).contains(wall) is quiet


# --- properties ------------------------------------------------------------------------------

from hypothesis import event as note  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ACTIONS = st.one_of(
    st.tuples(st.just("gesture"), st.sampled_from(list(Gesture))),
    st.tuples(st.just("edge"), st.sampled_from(list(Button)), st.booleans()),
    st.tuples(st.just("received"), st.integers(0, 20)),
    st.tuples(st.just("wait"), st.floats(0, 5000)),
    st.tuples(st.just("rotate")),
    st.tuples(st.just("seen")),
    st.tuples(st.just("thanks_at"), st.integers(-1500, 30)),  # minutes from now, late or early
)


def act(unit: Unit, action: tuple) -> bool:
    """Carry out one of ``ACTIONS`` on ``unit``; True when it was a thank-you of the partner's
    (at some time of its own)."""
    match action:
        case ("gesture", gesture):
            unit.gesture(gesture)
        case ("edge", button, down):
            unit.send(ev.ButtonDown if down else ev.ButtonUp, button=button)
        case ("received", total):
            unit.receive("thanks", total=total)
        case ("wait", seconds):
            unit.run_for(seconds)
        case ("rotate",):
            unit.send(ev.RotatePrompt)
        case ("seen",):
            unit.receive("seen", total=0)
        case ("thanks_at", minutes):
            unit.partner_seq += 1
            total = unit.state.counters.received_total + 1
            unit.send(ev.Delivery, message=Message(
                type="thanks", sender=PARTNER, seq=max(unit.partner_seq, total),
                time=(unit.clock.wall + timedelta(minutes=minutes)).isoformat(
                    timespec="seconds"), name="Alex", sent_total=total))
            unit.partner_seq = max(unit.partner_seq, total)
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(st.lists(ACTIONS, max_size=40), st.integers(0, 23))
def test_any_history_keeps_time_moving_and_counts_sane(actions, hour):
    from micromance.core.clock import FakeClock

    unit = Unit(FakeClock(wall=datetime(2026, 3, 29, hour, 0, tzinfo=ZONE)))  # a DST day
    partner_thanks = 0
    for action in actions:
        partner_thanks += act(unit, action)
        deadline = next_deadline(unit.state)
        assert deadline is None or deadline > unit.state.at  # never a busy loop
        counters = unit.state.counters
        assert counters.sent_total == len(of(cmd.SendThanks, unit.log))
        assert counters.today <= counters.sent_total + counters.received_total
        if unit.state.outputs.light is LightMode.PULSE:
            assert unit.state.pending > 0
        presses = len(of(cmd.SendThanks, unit.log))
        assert counters.together_total <= min(presses, partner_thanks)
        if unit.state.outputs.light is not LightMode.OFF:  # never at night, together neither
            assert not unit.settings.quiet.contains(unit.state.wall)


@settings(max_examples=150, deadline=None)
@given(st.lists(ACTIONS, max_size=15), st.integers(0, 23), st.lists(ACTIONS, max_size=3),
       st.floats(0, 3))
def test_what_a_press_prepares_never_changes_what_its_release_does(before, hour, held, hold):
    """Whatever happened before the press and while THANKS was held, the release does
    exactly what it would have done with nothing prepared (and says it is done with it)."""
    from micromance.core.clock import FakeClock

    unit = Unit(FakeClock(wall=datetime(2026, 3, 29, hour, 0, 0, 700000, tzinfo=ZONE)))
    unit.pair()
    for action in before:
        act(unit, action)
    unit.send(ev.ButtonDown, button=Button.THANKS)
    for action in held:
        act(unit, action)
    unit.clock.advance(hold)
    release = ev.ButtonUp(button=Button.THANKS, at=unit.clock.mono, wall=unit.clock.wall)
    prepared = unit.state.prepared
    note(f"taken: {prepared is not None and prepared.base is unit.state.counters}")
    (state, commands), (plain_state, plain) = (
        react(unit.state, release), react(replace(unit.state, prepared=None), release))
    assert state == plain_state
    assert [c for c in commands if not isinstance(c, cmd.DropPrepared)] == plain
    assert of(cmd.DropPrepared, commands) == ([cmd.DropPrepared()] if prepared else [])


# --- the link, as the core sees it ------------------------------------------------------------

from micromance.protocol import Message  # noqa: E402

PARTNER = "0123456789abcdef"


def partner_message(seq: int, kind: str = "thanks", total: int | None = None, **extra) -> Message:
    return Message(type=kind, sender=PARTNER, seq=seq, time="2026-11-25T12:00:00+01:00",
                   name="Alex", sent_total=seq if total is None else total, **extra)


def test_delivery_is_acked_counted_once_and_replays_refused(unit):
    out = unit.send(ev.Delivery, message=partner_message(1))
    assert cmd.SendAck((1,), sent_total=0) in out and of(cmd.SaveWindow, out)
    assert unit.state.counters.received_total == 1
    out = unit.send(ev.Delivery, message=partner_message(1, "thanks"), broker=1)
    assert not of(cmd.SendAck, out)  # another broker's copy, moments later: no ack again
    unit.clock.advance(REACK_AFTER)
    out = unit.send(ev.Delivery, message=partner_message(1))
    assert cmd.SendAck((1,), sent_total=0) in out  # re-acked: our first ack may have been lost
    assert not of(cmd.NoteRejected, out)  # a copy of what we had: a duplicate, not forged
    assert unit.state.partner.duplicates == 2 and unit.state.partner.rejected == 0
    assert unit.state.counters.received_total == 1 and unit.state.pending == 1


def test_ack_drains_the_outbox_and_state_only_raises_totals(unit):
    out = unit.send(ev.Delivery, message=partner_message(5, "ack", total=0, seqs=(1, 2)))
    assert cmd.DropFromOutbox((1, 2)) in out and not of(cmd.SendAck, out)
    state_message = partner_message(6, "state", total=3, streak=0, last_seq=6)
    unit.send(ev.Delivery, message=state_message)
    unit.send(ev.Delivery, message=state_message)  # retained: comes again on each reconnect
    assert unit.state.counters.received_total == 3 and unit.state.partner.rejected == 0


def test_unacknowledged_messages_go_out_again_with_backoff(unit):
    unit.send(ev.BrokerChanged, broker=0, where="b:1", connected=True)
    unit.send(ev.OutboxChanged, size=2)
    gaps, last = [], unit.clock.mono
    while len(gaps) < 8:
        unit.clock.advance(next_deadline(unit.state) - unit.clock.mono)
        if of(cmd.Redeliver, unit.send(ev.Tick)):
            gaps.append(round(unit.clock.mono - last))
            last = unit.clock.mono
    assert gaps[:3] == [20, 40, 80]                      # doubling...
    assert max(gaps) <= 900 and gaps[-1] == 900          # ...up to the cap
    unit.clock.advance(REDELIVER_MIN_GAP)  # (never twice within moments: see below)
    assert cmd.Redeliver(0) in unit.send(ev.BrokerChanged, broker=0, where="b:1", connected=True)
    unit.send(ev.OutboxChanged, size=0)
    assert unit.state.partner.redeliver_at is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=40), st.randoms())
def test_any_order_and_duplication_of_partner_events_converges(seqs, rng):
    """Whatever arrives, in whatever order, however often: the same totals in the end."""
    from micromance.core.clock import FakeClock

    kinds = {3: "seen", 7: "done"}
    messages = []
    for seq in seqs:
        kind = kinds.get(seq, "thanks")
        extra = {"streak": 1} if kind == "done" else {}
        total = sum(1 for s in range(1, seq + 1) if kinds.get(s, "thanks") == "thanks")
        messages.append(partner_message(seq, kind, total=total, **extra))
    rng.shuffle(messages)
    unit = Unit(FakeClock(wall=datetime(2026, 11, 25, 12, 0, tzinfo=ZONE)))
    for message in messages:
        unit.send(ev.Delivery, message=message)
    distinct = {m.seq: m for m in messages}
    expected_total = max(m.sent_total for m in distinct.values())
    assert unit.state.counters.received_total == expected_total
    assert unit.state.pending == expected_total
    assert unit.state.partner.duplicates == len(messages) - len(distinct)
    acked = {c.seqs[0] for c in unit.log if isinstance(c, cmd.SendAck)}
    assert acked == set(distinct)


# --- hardening: what a hostile input or a faulty disk can no longer do ----------------------


def presence(seq: int, online: bool) -> Message:
    return Message(type="presence", sender=PARTNER, seq=seq, time="2026-11-25T12:00:00+01:00",
                   name="Alex", sent_total=0, online=online)


def test_a_flood_of_replays_is_acknowledged_once_per_burst_without_writing(unit):
    unit.send(ev.Delivery, message=partner_message(1))
    unit.clock.advance(REACK_AFTER)  # a captured message, replayed later
    out = []
    for _ in range(2000):
        out += unit.send(ev.Delivery, message=partner_message(1))
    acks = of(cmd.SendAck, out)
    assert len(acks) == 1 and acks[0].seqs == (1,)
    assert not [c for c in out if isinstance(c, cmd.Durable) and not isinstance(c, cmd.SendAck)]
    assert unit.state.partner.duplicates == 2000
    later = unit.run_for(10)  # what came after the first re-ack goes out once, together
    assert [c.seqs for c in of(cmd.SendAck, later)] == [(1,)]


def test_redelivery_happens_at_most_every_few_seconds_whatever_arrives(unit):
    unit.send(ev.BrokerChanged, broker=0, where="b:1", connected=True)
    unit.send(ev.OutboxChanged, size=50)
    out = []
    for seq in range(1, 201):  # presence flapping, as fast as it can come
        out += unit.send(ev.Delivery, message=presence(seq, online=seq % 2 == 1))
        unit.clock.advance(0.3)
    redeliveries = len(of(cmd.Redeliver, out))
    assert 1 <= redeliveries <= 60 / REDELIVER_MIN_GAP + 1  # a minute of flapping


def test_presence_is_newest_first_and_an_old_one_is_a_replay(unit):
    unit.send(ev.Delivery, message=presence(10, online=True))
    assert unit.state.partner.online is True
    unit.send(ev.Delivery, message=presence(10, online=True))   # retained, again: nothing
    assert unit.state.partner.rejected == 0
    unit.send(ev.Delivery, message=presence(4, online=False))  # an old one, replayed
    assert unit.state.partner.online is True and unit.state.partner.duplicates == 1
    unit.send(ev.Delivery, message=presence(11, online=False))  # the Last Will
    assert unit.state.partner.online is False


def test_a_total_beyond_what_the_seqs_can_stand_for_is_refused(unit):
    unit.send(ev.Delivery, message=partner_message(5, total=3))
    assert unit.state.counters.received_total == 3
    out = unit.send(ev.Delivery, message=partner_message(6, total=2**53 - 1))
    assert unit.state.counters.received_total == 3
    assert of(cmd.NoteRejected, out)[0].reason == "implausible_total"
    unit.send(ev.Delivery, message=partner_message(7, total=4))  # later presses still count
    assert unit.state.counters.received_total == 4
    out = unit.send(ev.Delivery, message=partner_message(2**53 - 1, total=5))
    assert of(cmd.NoteRejected, out)[0].reason == "implausible_seq"
    out = unit.send(ev.Delivery, message=partner_message(2**45, total=20_000))
    assert of(cmd.NoteRejected, out)[0].reason == "implausible_seq"  # years ahead of us
    out = unit.send(ev.Delivery, message=partner_message(2**30, total=20_000))
    assert of(cmd.NoteRejected, out)[0].reason == "implausible_total"  # more than MAX_RISE
    assert unit.state.counters.received_total == 4 and unit.state.partner.window.highest == 7


def test_a_total_we_do_not_know_yet_may_be_large_but_not_endless(unit):
    """After pairing, or a lost store, any plausible total is taken (the partner's count comes
    back); a total beyond MAX_TOTAL never is."""
    out = unit.send(ev.Delivery, message=partner_message(1_000_000, total=2**33))
    assert of(cmd.NoteRejected, out)[0].reason == "implausible_total"
    unit.send(ev.Delivery, message=partner_message(1_000_001, total=15_000))
    assert unit.state.counters.received_total == 15_000


def test_a_catch_up_beyond_what_is_plausible_is_ignored(clock):
    unit = Unit(clock)
    unit.state = replace(unit.state, counters=replace(unit.state.counters, sent_total=5),
                         partner=replace(unit.state.partner, paired=True, start_total=5,
                                         run_first_seq=5000))
    unit.send(ev.Delivery, message=summary(3, seen_seq=40, seen_total=2**53 - 1))
    assert unit.state.counters.sent_total == 5
    unit.gesture(Gesture.THANKS_PRESS)  # and presses still work
    assert unit.state.counters.sent_total == 6


def summary(seq: int, seen_seq: int, seen_total: int, sent_total: int = 0) -> Message:
    """The partner's retained summary: its totals and what it saw of us."""
    return Message(type="state", sender=PARTNER, seq=seq, time="2026-11-25T12:00:00+01:00",
                   name="Alex", sent_total=sent_total, last_seq=seq, seen_seq=seen_seq,
                   seen_total=seen_total)


def test_a_sender_whose_store_went_back_adds_what_the_partner_counted(clock):
    """Restored to 5 sent while the partner had counted 7: the 2 we forgot join our total,
    and presses made meanwhile (3 of them, offline) count on top."""
    unit = Unit(clock)
    unit.state = replace(unit.state, counters=replace(unit.state.counters, sent_total=5),
                         partner=replace(unit.state.partner, paired=True, start_total=5,
                                         run_first_seq=5000))
    for _ in range(3):
        unit.gesture(Gesture.THANKS_PRESS)
    out = unit.send(ev.Delivery, message=summary(3, seen_seq=40, seen_total=7))
    assert unit.state.counters.sent_total == 10
    told = of(cmd.PublishState, out)[0]
    assert told.sent_total == 10  # the partner hears it at once...
    assert told.skip_seqs == 2    # ...after 2 unused seqs: its bound on rises holds
    assert of(cmd.SendThanks, unit.gesture(Gesture.THANKS_PRESS)) == [cmd.SendThanks(total=11)]
    # The same summary again (retained), or an older one: nothing is added twice.
    assert not of(cmd.PublishState, unit.send(ev.Delivery, message=summary(3, 40, 7)))
    # One that saw this run's messages is news of this run, not of the lost one.
    unit.send(ev.Delivery, message=summary(4, seen_seq=5003, seen_total=11))
    assert unit.state.counters.sent_total == 11


def test_a_summary_that_saw_this_run_is_not_taken_for_a_rollback(unit):
    unit.state = replace(unit.state, partner=replace(unit.state.partner, run_first_seq=100))
    for _ in range(2):
        unit.gesture(Gesture.THANKS_PRESS)
    assert not of(cmd.SaveCounters, unit.send(ev.Delivery, message=summary(3, 101, 5)))
    assert unit.state.counters.sent_total == 2


def test_a_new_summary_of_the_partner_is_answered_with_what_we_saw_once(unit):
    unit.send(ev.Delivery, message=partner_message(7, total=7))
    told = of(cmd.PublishState, unit.send(ev.Delivery, message=summary(20, 0, 0, 7)))
    assert [(t.seen_seq, t.seen_total) for t in told] == [(7, 7)]
    for _ in range(50):  # the same summary again (retained, or replayed), or an older one
        assert not of(cmd.PublishState, unit.send(ev.Delivery, message=summary(20, 0, 0, 7)))
        assert not of(cmd.PublishState, unit.send(ev.Delivery, message=summary(19, 0, 0, 7)))
    # A newer summary is answered only when ours would say more than the one we published.
    assert not of(cmd.PublishState, unit.send(ev.Delivery, message=summary(21, 0, 0, 7)))
    unit.send(ev.Delivery, message=partner_message(22, total=8))
    told = of(cmd.PublishState, unit.send(ev.Delivery, message=summary(23, 0, 0, 8)))
    assert [(t.seen_seq, t.seen_total) for t in told] == [(22, 8)]


def test_two_units_answering_each_others_summaries_fall_quiet(clock):
    """Each summary has a new seq: were every new one answered, two units would answer each
    other's answers for ever (a busy loop on both, found by the idle benchmark)."""
    a, b = Unit(clock), Unit(clock)
    seqs = iter(range(1000, 2000))

    def as_message(told: cmd.PublishState) -> Message:
        return summary(next(seqs), told.seen_seq, told.seen_total, told.sent_total)

    a.gesture(Gesture.THANKS_PRESS)
    b.receive(total=1)
    waiting = [(b, t) for t in of(cmd.PublishState, a.send(ev.BrokerChanged, broker=0,
                                                           where="broker", connected=True))]
    rounds = 0
    while waiting and rounds < 20:
        rounds += 1
        unit, told = waiting.pop(0)
        other = a if unit is b else b
        waiting += [(other, t) for t in of(cmd.PublishState,
                                           unit.send(ev.Delivery, message=as_message(told)))]
    assert not waiting and rounds <= 3


def test_a_failed_commit_shows_the_problem_refuses_presses_and_retries(unit):
    out = unit.send(ev.StorageFailed, reason="the disk is full")
    assert unit.view == v.ProblemView("Can't save", "the disk is full")
    out = unit.gesture(Gesture.THANKS_PRESS)
    assert not of(cmd.SendThanks, out) and unit.state.counters.sent_total == 0
    assert unit.view == v.ProblemView("Not sent", "the disk is full")
    unit.run_for(5)
    assert unit.view == v.ProblemView("Can't save", "the disk is full")
    assert of(cmd.CheckStorage, unit.run_for(31))
    unit.send(ev.StorageRecovered)
    assert isinstance(unit.view, v.HomeView)
    assert of(cmd.SendThanks, unit.gesture(Gesture.THANKS_PRESS)) == [cmd.SendThanks(total=1)]


def test_a_partner_updated_from_1_0_jumps_to_clock_seqs_and_is_heard(unit):
    """1.0 counted seqs from 1; 1.1 numbers each run from the wall clock: a pair carries over."""
    from micromance.protocol import SEQS_PER_SECOND

    unit.send(ev.Delivery, message=partner_message(500, total=40))
    clock_seq = int(unit.clock.wall.timestamp() * SEQS_PER_SECOND)
    unit.send(ev.Delivery, message=partner_message(clock_seq, total=41))
    assert unit.state.counters.received_total == 41 and unit.state.partner.rejected == 0


def test_a_total_learnt_from_a_summary_counts_as_seen_at_that_summarys_seq(unit):
    """The partner's thank-yous may reach us only through its summary (its events still on
    their way): our summary must not make it believe we saw them before its run."""
    unit.send(ev.Delivery, message=summary(5_000_000, 0, 0, sent_total=100))
    told = of(cmd.PublishState, unit.send(ev.Delivery, message=summary(5_000_001, 0, 0, 100)))
    assert (told[0].seen_seq, told[0].seen_total) == (5_000_000, 100)


# --- missed thanks, "away since", together, the week -----------------------------------------

from micromance.core.counters import Counters  # noqa: E402
from micromance.core.moments import TOGETHER_WINDOW, note_press  # noqa: E402


def sent(unit: Unit, kind: str = "thanks", *, at: datetime | None = None,
         total: int | None = None) -> list[cmd.Command]:
    """The partner's message of ``kind`` sent at ``at`` (default: now), next seq and total."""
    unit.partner_seq += 1
    if total is None:
        total = unit.state.counters.received_total + (kind == "thanks")
    when = (at or unit.clock.wall).isoformat(timespec="seconds")
    message = Message(type=kind, sender=PARTNER, seq=unit.partner_seq, time=when, name="Alex",
                      sent_total=total)
    return unit.send(ev.Delivery, message=message)


def test_a_thank_you_seen_at_once_says_nothing_of_when_it_came(unit):
    sent(unit)
    assert unit.view.when == ""
    unit.run_for(9 * 60)
    assert unit.view.when == ""                    # nine minutes: still "just arrived"
    assert next_deadline(unit.state) <= unit.clock.mono + 61  # the ten-minute mark is a timer
    unit.run_for(61)
    assert unit.view == v.ReceivedView("Alex", frame=v.RECEIVED_FRAMES - 1, when="10 min ago")
    unit.run_for(2 * 3600)                         # the light timed out: home says it
    assert isinstance(unit.view, v.HomeView) and unit.view.pending == 1
    assert unit.view.pending_when == "2 h ago" and unit.view.partner == "Alex"
    unit.gesture(Gesture.NEXT_PRESS)               # seen: the time goes with it
    assert unit.state.counters.pending_at == "" and unit.view.pending_when == ""


def test_a_thank_you_that_waited_says_when_it_came_from_the_senders_time(unit):
    sent(unit, at=unit.clock.wall - timedelta(hours=2, minutes=5))  # delivered late
    assert unit.view.when == "2 h ago"
    sent(unit)                                     # a second one now: the oldest counts
    assert unit.view.count == 2 and unit.view.when == "2 h ago"
    unit.clock.advance(5 * 3600)
    unit.send(ev.Tick)
    assert unit.view.pending_when == "today 09:55" or unit.view.when == "today 09:55"


def test_a_thank_you_from_the_night_says_yesterday_in_the_morning(evening):
    unit = evening
    unit.run_for(40 * 60)                          # 22:40, quiet
    sent(unit)
    assert unit.view == v.QuietView(pending=1)
    unit.run_for(8 * 3600 + 25 * 60)               # 07:05
    assert isinstance(unit.view, v.ReceivedView)
    assert unit.view.when == "yesterday 22:40"
    assert unit.state.outputs.light is LightMode.PULSE


def test_a_future_time_from_a_fast_partner_clock_reads_as_now(unit):
    sent(unit, at=unit.clock.wall + timedelta(minutes=30))
    unit.run_for(11 * 60)
    assert unit.view.when == "11 min ago"


def test_the_senders_seen_screen_says_when_it_was_seen(unit):
    unit.gesture(Gesture.THANKS_PRESS)
    sent(unit, "seen", total=0)
    assert unit.view == v.SentView(seen=True, seen_when="just now")
    unit.run_for(10)
    unit.gesture(Gesture.THANKS_PRESS)
    sent(unit, "seen", total=0, at=unit.clock.wall - timedelta(hours=2))  # we were offline
    assert unit.view == v.SentView(seen=True, seen_when="2 h ago")
    unit.run_for(10)
    sent(unit, "seen", total=0, at=unit.clock.wall - timedelta(days=1, hours=1))
    assert unit.view.seen_when == "yesterday 11:00"


def test_the_partner_away_says_since_when_in_words(unit):
    unit.state = replace(unit.state, partner=replace(unit.state.partner, paired=True),
                         counters=replace(unit.state.counters, partner_name="Alex"))
    unit.send(ev.BrokerChanged, broker=0, where="b:1", connected=True)
    unit.send(ev.Delivery, message=presence(10, online=True))
    assert unit.view.link is v.LinkMark.OK and unit.view.away_since == ""
    unit.clock.advance(6 * 3600 + 5 * 60)          # 18:05
    unit.send(ev.Delivery, message=presence(11, online=False))
    assert (unit.view.link, unit.view.partner, unit.view.away_since) == (
        v.LinkMark.PARTNER_OFFLINE, "Alex", "18:05")
    unit.run_for(14 * 3600)                        # the next morning
    assert unit.view.away_since == "yesterday 18:05"
    unit.send(ev.Delivery, message=presence(12, online=True))
    assert unit.view.link is v.LinkMark.OK and unit.state.partner.away_since is None


def test_a_partner_first_heard_of_as_offline_is_away_without_a_time(unit):
    unit.pair()
    unit.send(ev.BrokerChanged, broker=0, where="b:1", connected=True)
    unit.send(ev.Delivery, message=presence(11, online=False))
    assert unit.view.link is v.LinkMark.PARTNER_OFFLINE and unit.view.away_since == ""


# together

def moments_of(unit: Unit) -> int:
    return unit.state.counters.together_total


@pytest.mark.parametrize(("apart", "together"), [
    (timedelta(minutes=9, seconds=59), True),
    (TOGETHER_WINDOW, True),
    (TOGETHER_WINDOW + timedelta(seconds=1), False),
])
def test_together_inside_and_just_outside_the_window(unit, apart, together):
    unit.gesture(Gesture.THANKS_PRESS)             # we thank at 12:00
    unit.run_for(apart.total_seconds())
    out = sent(unit)                               # the partner thanks us now
    assert moments_of(unit) == int(together)
    if together:
        assert unit.view == v.TogetherView("Alex", frame=0)
        assert cmd.SetLight(LightMode.ON) in out
        assert of(cmd.SaveCounters, out)[-1].counters.together_total == 1
        assert len(of(cmd.SaveCounters, out)) == 1  # one write for the whole step
    else:
        assert isinstance(unit.view, v.ReceivedView)


def test_together_when_the_partner_thanked_first(unit):
    sent(unit)                                     # 12:00, theirs
    unit.run_for(5 * 60)
    unit.gesture(Gesture.THANKS_PRESS)             # 12:05, ours
    assert moments_of(unit) == 1 and isinstance(unit.view, v.TogetherView)


def test_the_together_moment_animates_beats_the_light_and_falls_back(unit):
    unit.gesture(Gesture.THANKS_PRESS)
    unit.run_for(60)
    sent(unit)
    out = unit.run_for(3.5)
    frames = [f.frame.view.frame for f in of(cmd.ShowFrame, out)
              if isinstance(f.frame.view, v.TogetherView)]
    assert frames == list(range(1, v.TOGETHER_FRAMES))
    lights = [c.mode for c in of(cmd.SetLight, out)]
    # "ba-dum" three times (the first "ba" came with the moment), then the pulse of a
    # thank-you that waits.
    assert lights == [LightMode.OFF, LightMode.ON, LightMode.OFF] + \
        [LightMode.ON, LightMode.OFF, LightMode.ON, LightMode.OFF] * 2 + [LightMode.PULSE]
    unit.run_for(10)
    assert isinstance(unit.view, v.ReceivedView)   # still to be seen
    unit.gesture(Gesture.NEXT_PRESS)
    assert isinstance(unit.view, v.HomeView)


def test_a_moment_happens_once_and_a_new_exchange_makes_another(unit):
    unit.gesture(Gesture.THANKS_PRESS)             # 12:00
    unit.run_for(120)
    sent(unit)                                     # 12:02: together
    unit.run_for(120)
    unit.gesture(Gesture.THANKS_PRESS)             # 12:04: no second moment for it
    sent(unit)
    assert moments_of(unit) == 1
    unit.run_for(3600)
    sent(unit)                                     # 13:04 and 13:06: another exchange
    unit.run_for(120)
    unit.gesture(Gesture.THANKS_PRESS)
    assert moments_of(unit) == 2


def test_both_units_find_the_same_moment_once_whatever_the_order(clock):
    """Alex presses twice, Sam once in between; messages arrive late and out of turn. Only
    the press times matter, not when each unit hears of them."""
    start = clock.wall
    a_presses = [start, start + timedelta(minutes=20)]
    b_press = start + timedelta(minutes=9)
    keys = set()
    for order in (["a0", "b", "a1"], ["a0", "a1", "b"], ["b", "a1", "a0"], ["a1", "b", "a0"]):
        a, b = Counters(), Counters()
        found_a = found_b = 0
        for name in order:
            if name == "b":
                b, one = note_press(b, ours=True, at=b_press)
                a, two = note_press(a, ours=False, at=b_press)
            else:
                press = a_presses[int(name[1])]
                a, one = note_press(a, ours=True, at=press)
                b, two = note_press(b, ours=False, at=press)
            found_a, found_b = found_a + one, found_b + two
        assert (found_a, found_b) == (1, 1), order
        assert a.together_last == b.together_last
        keys.add(a.together_last)
    assert len(keys) == 1


def test_together_found_in_quiet_hours_waits_for_the_morning(evening):
    unit = evening
    unit.run_for(25 * 60)                          # 22:25, before quiet hours
    unit.gesture(Gesture.THANKS_PRESS)
    unit.run_for(8 * 60)                           # 22:33, quiet
    out = sent(unit)
    assert moments_of(unit) == 1 and unit.state.counters.together_held
    assert unit.view == v.QuietView(pending=1) and LightMode.ON not in \
        [c.mode for c in of(cmd.SetLight, out)]
    assert not [c for c in unit.log if isinstance(c, cmd.ShowFrame)
                and isinstance(c.frame.view, v.TogetherView)]
    out = unit.run_for(8 * 3600 + 28 * 60)         # 07:01
    shown = [c.frame.view for c in of(cmd.ShowFrame, out)]
    assert any(isinstance(view, v.TogetherView) for view in shown)
    assert not unit.state.counters.together_held
    assert cmd.SetLight(LightMode.ON) in out
    unit.run_for(12)
    assert isinstance(unit.view, v.ReceivedView)   # then the thank-you itself
    unit.run_for(3600)
    later = [c for c in unit.log if isinstance(c, cmd.ShowFrame)
             and isinstance(c.frame.view, v.TogetherView) and c.frame.view.frame == 0]
    assert len(later) == 1                          # once


def restart(unit: Unit) -> Unit:
    """The unit's process starts again from what the store kept."""
    saved = unit.state
    again = Unit.__new__(Unit)
    again.clock, again.settings, again.log = unit.clock, unit.settings, []
    again.partner_seq = unit.partner_seq
    counters = Counters.from_stored(json.loads(json.dumps(asdict(saved.counters))))  # stored
    again.state = initial_state(unit.settings, unit.clock.mono, unit.clock.wall,
                                counters=counters, bag_json=saved.rotation.bag.to_json(),
                                prompt_id=saved.rotation.prompt.id, draws=saved.rotation.draws)
    again.send(ev.Tick)
    return again


def test_together_after_a_restart(unit):
    unit.gesture(Gesture.THANKS_PRESS)             # 12:00
    unit.run_for(180)
    unit = restart(unit)                           # 12:03: a power cut
    unit.run_for(180)
    sent(unit)                                     # 12:06
    assert moments_of(unit) == 1 and isinstance(unit.view, v.TogetherView)


def test_a_moment_held_for_the_morning_survives_a_restart_in_the_night(evening):
    unit = evening
    unit.run_for(25 * 60)
    unit.gesture(Gesture.THANKS_PRESS)             # 22:25
    unit.run_for(10 * 60)
    sent(unit, at=unit.clock.wall - timedelta(minutes=5))  # 22:30, seen at 22:35
    assert unit.state.counters.together_held
    unit.run_for(3 * 3600)
    unit = restart(unit)                           # 01:35
    assert unit.view == v.QuietView(pending=1)
    unit.run_for(6 * 3600)                         # 07:35
    assert any(isinstance(c.frame.view, v.TogetherView) for c in of(cmd.ShowFrame, unit.log))
    assert moments_of(unit) == 1


def test_counters_survive_the_stores_json_and_damage_costs_only_the_field():
    counters = Counters(sent_total=3, days=(("2026-11-24", 2), ("2026-11-25", 1)),
                        sent_times=("2026-11-25T12:00:00+01:00",), together_total=1)
    again = Counters.from_stored(json.loads(json.dumps(asdict(counters))))
    assert again == counters
    damaged = Counters.from_stored(dict(sent_total=3, days="oops", sent_times=[1, "x"],
                                        together_total=-4, together_held="yes",
                                        pending_at=None, unknown_key=1))
    assert (damaged.sent_total, damaged.days, damaged.sent_times) == (3, (), ("x",))
    assert (damaged.together_total, damaged.together_held, damaged.pending_at) == (0, False, "")


# the week

def test_both_buttons_briefly_show_the_week_then_the_help_then_home(unit):
    prompt = unit.state.rotation.prompt
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.clock.advance(0.05)
    unit.send(ev.ButtonDown, button=Button.NEXT)
    unit.clock.advance(0.2)
    unit.send(ev.ButtonUp, button=Button.NEXT)
    unit.send(ev.ButtonUp, button=Button.THANKS)
    assert isinstance(unit.view, v.WeekView) and not of(cmd.SendThanks, unit.log)
    unit.gesture(Gesture.BOTH_PRESS)
    assert unit.view == v.HelpView(page=0)
    unit.run_for(31)
    assert unit.view == v.HelpView(page=1)        # two pages on a 128x32 panel
    unit.gesture(Gesture.BOTH_PRESS)
    assert isinstance(unit.view, v.HomeView) and unit.state.rotation.prompt == prompt
    unit.gesture(Gesture.BOTH_PRESS)
    unit.gesture(Gesture.NEXT_PRESS)               # NEXT closes it, the gesture stays
    assert isinstance(unit.view, v.HomeView) and unit.state.rotation.prompt == prompt
    unit.gesture(Gesture.BOTH_PRESS)
    unit.run_for(31)                               # and it closes by itself
    assert isinstance(unit.view, v.HomeView)


def test_the_week_counts_thanks_both_ways_for_seven_days(unit):
    for day in range(9):                           # Wed 25 Nov .. Thu 3 Dec
        for _ in range(day % 3 + 1):
            unit.gesture(Gesture.THANKS_PRESS)
        sent(unit)
        unit.run_for(24 * 3600)
    unit.gesture(Gesture.NEXT_PRESS)
    unit.gesture(Gesture.NEXT_HOLD)
    unit.gesture(Gesture.BOTH_PRESS)
    week = unit.view
    assert week.weekday == 4                       # Friday 4 Dec: today is the last bar
    assert week.days == (2, 3, 4, 2, 3, 4, 0)      # Sat 28 Nov .. Fri 4 Dec
    assert week.streak == 1


def test_the_week_shows_by_itself_once_on_sunday_evening(clock):
    clock.wall = datetime(2026, 11, 28, 12, 0, tzinfo=ZONE)  # Saturday noon
    unit = Unit(clock)
    unit.run_for(30 * 3600 - 1)                    # Sunday 17:59:59
    assert not any(isinstance(c.frame.view, v.WeekView) for c in of(cmd.ShowFrame, unit.log))
    out = unit.run_for(2)                          # 18:00 is a timer of its own
    assert isinstance(unit.view, v.WeekView) and of(cmd.SaveCounters, out)
    unit.run_for(40)
    assert isinstance(unit.view, v.HomeView)
    unit.run_for(4 * 3600)                         # the rest of the evening: once
    shown = [c for c in unit.log if isinstance(c, cmd.ShowFrame)
             and isinstance(c.frame.view, v.WeekView)]
    assert len(shown) == 1
    unit.run_for(7 * 24 * 3600)                    # and again the next Sunday
    shown = [c for c in unit.log if isinstance(c, cmd.ShowFrame)
             and isinstance(c.frame.view, v.WeekView)]
    assert len(shown) == 2


def test_the_week_waits_for_a_screen_at_rest_and_a_restart_does_not_repeat_it(clock):
    clock.wall = datetime(2026, 11, 29, 17, 55, tzinfo=ZONE)  # Sunday
    unit = Unit(clock)
    sent(unit)                                     # a thank-you is on screen at 18:00
    unit.run_for(10 * 60)
    assert isinstance(unit.view, v.ReceivedView)
    unit.gesture(Gesture.NEXT_PRESS)               # seen: home, and now the week
    assert isinstance(unit.view, v.WeekView)
    unit = restart(unit)
    unit.run_for(3600)
    assert not any(isinstance(c.frame.view, v.WeekView) for c in of(cmd.ShowFrame, unit.log))


def test_the_week_never_shows_by_itself_in_quiet_hours(clock):
    clock.wall = datetime(2026, 11, 29, 12, 0, tzinfo=ZONE)  # Sunday
    unit = Unit(clock, quiet=QuietHours.parse("17:00", "07:00"))
    unit.run_for(24 * 3600)
    assert not any(isinstance(c.frame.view, v.WeekView) for c in of(cmd.ShowFrame, unit.log))


def test_an_old_pairs_message_is_counted_apart_and_says_nothing(unit):
    """After a re-pairing the broker session may still carry the old pair's traffic: a
    builder must not read that as an attack in the log."""
    out = unit.send(ev.OldPairMessage)
    assert not of(cmd.NoteRejected, out)
    assert (unit.state.partner.old_pair, unit.state.partner.rejected) == (1, 0)
    facts = of(cmd.ReportLiveFacts, out)
    assert facts and facts[0].facts.old_pair == 1


def test_the_partners_name_comes_with_its_presence(unit):
    """A new partner is named before its first thank-you (``pair`` says "Paired with ...")."""
    presence = Message(type="presence", sender=PARTNER, seq=7, time="2026-11-25T12:00:00+01:00",
                       name="Alex", sent_total=0, online=True)
    out = unit.send(ev.Delivery, message=presence)
    assert unit.state.sender == "Alex"
    assert of(cmd.SaveCounters, out)[0].counters.partner_name == "Alex"
    again = replace(presence, seq=8)
    assert not of(cmd.SaveCounters, unit.send(ev.Delivery, message=again))  # no change, no write


def test_react_then_present_is_step_and_the_light_comes_without_a_frame(clock):
    """The runtime calls the two halves apart (``present`` once no event waits): the light
    of a thank-you comes from ``react`` alone, and a burst presented once ends where a step
    per event does."""
    stepped, halves = Unit(clock), Unit(clock)
    message = partner_message(1, "thanks", 1)
    halves.state, first = react(halves.state, ev.Delivery(
        message=message, at=clock.mono, wall=clock.wall))
    assert cmd.SetLight(LightMode.PULSE) in first
    assert not of(cmd.ShowFrame, first) and not of(cmd.ReportLiveFacts, first)
    stepped.send(ev.Delivery, message=message)
    burst = [ev.ButtonDown(button=Button.NEXT, at=clock.mono + 0.1, wall=clock.wall),
             ev.ButtonUp(button=Button.NEXT, at=clock.mono + 0.2, wall=clock.wall),
             ev.Tick(at=clock.mono + 0.3, wall=clock.wall)]
    for event in burst:
        stepped.state, _ = step(stepped.state, event)
        halves.state, _ = react(halves.state, event)
    halves.state, shown = present(halves.state)
    assert of(cmd.ShowFrame, shown)
    assert halves.state.outputs == stepped.state.outputs
    assert halves.state.counters == stepped.state.counters
    assert present(halves.state)[1] == []  # nothing changed since: nothing to draw
