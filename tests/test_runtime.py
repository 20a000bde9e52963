"""The runtime end to end on gpiozero's MockFactory and luma's dummy display.

The loop runs on its own thread; tests wait on events (observed commands), never on sleeps.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace

import pytest

from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.commands import LightMode
from micromance.protocol import Message, MessageType
from micromance.runtime import Runtime
from micromance.screens import views as v
from micromance.screens.render import render
from micromance.store import Store
from tests.test_loop import wait_asleep
from tests.units import Running, desk_config, press


@pytest.fixture
def unit(tmp_path, mock_factory):
    runtime = Runtime(desk_config(tmp_path / "state"), pin_factory=mock_factory)
    with Running(runtime) as running:
        yield running


def shown_view(running: Running) -> v.View:
    frames = [c for c in running.seen if isinstance(c, cmd.ShowFrame)]
    return frames[-1].frame.view


def test_start_shows_home_on_the_dummy_display(unit):
    display = unit.runtime.display
    assert display.frames_shown >= 1
    assert isinstance(shown_view(unit), v.HomeView)
    last = next(c for c in reversed(unit.seen) if isinstance(c, cmd.ShowFrame))
    assert display.last_image.tobytes() == render(last.frame, 128, 64).tobytes()


def test_thanks_button_reaches_core_light_and_screen(unit, mock_factory):
    led = mock_factory.pin(18)
    press(mock_factory, 17)
    unit.wait_for(lambda c: c == cmd.SendThanks(total=1))
    unit.wait_for(lambda c: c == cmd.SetLight(LightMode.ON))
    assert any(state for _, state in led.states), "the LED never lit"
    lit = unit.seen.index(cmd.SetLight(LightMode.ON))
    unit.wait_for(lambda c: c == cmd.SetLight(LightMode.OFF), since=lit)  # the loop's deadline
    assert led.state == 0
    sent = unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                         and isinstance(c.frame.view, v.SentView))
    # The display shows that frame, or one drawn after it (a half-minute pixel shift may
    # have come meanwhile). The image first: a frame is shown before it is observed.
    image = unit.runtime.display.last_image.tobytes()
    since = unit.seen.index(sent)
    drawn = [c.frame for c in unit.seen[since:] if isinstance(c, cmd.ShowFrame)]
    assert image in [render(frame, 128, 64).tobytes() for frame in drawn]


def test_a_press_is_counted_and_sent_on_the_edge_thread_before_anything_is_drawn(
        unit, mock_factory):
    """While the loop sleeps, a button's own thread runs the press's step (no hand-over to
    the loop); the frame follows on the loop thread once nothing waits."""
    threads: list[tuple[cmd.Command, int]] = []
    unit.runtime.observers.append(lambda c: threads.append((c, threading.get_ident())))
    for total in range(1, 6):  # a calendar wake-up may take the loop's turn: try again
        wait_asleep(unit.runtime.loop)
        before, mark = len(threads), len(unit.seen)
        press(mock_factory, 17)
        sent = [ident for c, ident in threads[before:] if c == cmd.SendThanks(total=total)]
        if sent == [threading.get_ident()]:
            break
    else:
        pytest.fail("no press ran on the edge thread in 5 tries")
    frame = unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                          and isinstance(c.frame.view, v.SentView), since=mark)
    after = [c for c, _ in threads[before:]]
    assert after.index(cmd.SendThanks(total=total)) < after.index(frame)
    assert dict((id(c), ident) for c, ident in threads)[id(frame)] != threading.get_ident()


def test_next_button_shows_another_prompt(unit, mock_factory):
    first = shown_view(unit).prompt
    press(mock_factory, 27)
    unit.wait_for(lambda c: isinstance(c, cmd.SaveRotation))
    unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame) and isinstance(c.frame.view, v.HomeView)
                  and c.frame.view.prompt != first)


def test_received_thanks_pulses_the_led_until_next(unit, mock_factory):
    led_pin = mock_factory.pin(18)
    thanks = Message(type=MessageType.THANKS, sender="0123456789abcdef", seq=1,
                     time="2026-11-25T12:00:00+01:00", name="Alex", sent_total=1)
    unit.runtime.post(ev.Delivery, message=thanks)
    unit.wait_for(lambda c: c == cmd.SetLight(LightMode.PULSE))
    assert unit.runtime.panel.light_mode is LightMode.PULSE
    pulsing = len(unit.seen)
    press(mock_factory, 27)
    unit.wait_for(lambda c: isinstance(c, cmd.SendSeen))
    unit.wait_for(lambda c: c == cmd.SetLight(LightMode.OFF), since=pulsing)
    assert led_pin.state == 0


def test_the_loop_wakes_by_itself_for_a_hold_and_only_then(tmp_path, mock_factory):
    """NEXT held: nothing but the core's own 2 s deadline wakes the loop to fire "done"."""
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory)
    with Running(runtime) as unit:
        before = runtime.wakeups
        mock_factory.pin(27).drive_low()
        unit.wait_for(lambda c: isinstance(c, cmd.SendDone), timeout=5)
        mock_factory.pin(27).drive_high()
        woke = runtime.wakeups - before
    # One wake for the press, one at the deadline (maybe one for a half-minute page turn).
    assert 2 <= woke <= 4, woke


def test_holds_told_apart_with_a_fake_clock(tmp_path, mock_factory, clock):
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory, clock=clock)
    with Running(runtime) as unit:
        next_pin, thanks_pin = mock_factory.pin(27), mock_factory.pin(17)
        next_pin.drive_low()
        clock.advance(1.5)
        next_pin.drive_high()  # a 1.5 s press is still a press
        unit.wait_for(lambda c: isinstance(c, cmd.SaveRotation))
        assert not any(isinstance(c, cmd.SendDone) for c in unit.seen)
        next_pin.drive_low()
        clock.advance(2.0)
        runtime.post(ev.Tick)
        unit.wait_for(lambda c: isinstance(c, cmd.SendDone))
        next_pin.drive_high()
        thanks_pin.drive_low()
        next_pin.drive_low()
        clock.advance(5.0)
        runtime.post(ev.Tick)
        unit.wait_for(lambda c: isinstance(c, cmd.StartPairing))
        thanks_pin.drive_high()
        next_pin.drive_high()
        runtime.post(ev.Tick)
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and isinstance(c.frame.view, v.PairingView))
    assert not any(isinstance(c, cmd.SendThanks) for c in unit.seen)


def test_the_log_is_checkpointed_once_the_unit_is_quiet(tmp_path, mock_factory, clock,
                                                         monkeypatch):
    """SQLite would copy its log back inside whichever commit crossed its threshold, a press's
    among them; the unit does it on the loop once nothing has been written for a while."""
    from micromance.checkpoints import AFTER_CHANGES, QUIET_SECONDS

    checkpointed = threading.Event()
    checkpoint = Store.checkpoint

    def observed(store: Store) -> bool:
        done = checkpoint(store)
        checkpointed.set()
        return done

    monkeypatch.setattr(Store, "checkpoint", observed)
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory, clock=clock)
    with Running(runtime) as unit:
        presses = 0
        while runtime.store.changes_since_checkpoint() < AFTER_CHANGES:
            presses += 1
            press(mock_factory, 17)
            unit.wait_for(lambda c, n=presses: c == cmd.SendThanks(total=n))
        wait_asleep(runtime.loop)  # it has looked at its timers since the last press
        assert not checkpointed.is_set()  # the clock stands still: never quiet long enough
        clock.advance(QUIET_SECONDS)
        runtime.loop.wake()
        assert checkpointed.wait(5)
    copy = tmp_path / "file-alone"
    copy.mkdir()
    shutil.copy(tmp_path / "state.db", copy / "state.db")  # without its log
    alone = Store.open_readonly(copy)
    assert alone is not None and alone.load_counters().sent_total >= presses - 1
    alone.close()


def test_sleep_budget_respects_calendar_and_core(tmp_path, mock_factory):
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory)
    with Running(runtime):
        calendar = runtime.timers.seconds_until_due()  # first: both only shrink as time passes
        budget = runtime.loop.sleep_budget()
        assert 0 < budget <= 30.0  # the next half-minute page turn / pixel shift
        assert budget <= calendar


def test_stop_releases_pins_and_counters_survive_a_restart(tmp_path, mock_factory):
    config = desk_config(tmp_path)
    runtime = Runtime(config, pin_factory=mock_factory)
    with Running(runtime) as unit:
        press(mock_factory, 17)
        press(mock_factory, 17)
        unit.wait_for(lambda c: c == cmd.SendThanks(total=2))
    assert runtime.panel._devices == []
    assert (tmp_path / "screen.png").exists()
    store = Store.open(tmp_path)
    assert store.load_counters().sent_total == 2
    assert [e["kind"] for e in store.recent_events()] == ["sent", "sent"]
    store.close()
    again = Runtime(config, pin_factory=mock_factory)
    with Running(again) as unit:
        press(mock_factory, 17)
        unit.wait_for(lambda c: c == cmd.SendThanks(total=3))


def test_runs_at_128x32_rotated(tmp_path, mock_factory):
    config = desk_config(tmp_path, width=128, height=32, rotate=2)
    runtime = Runtime(config, pin_factory=mock_factory)
    with Running(runtime) as unit:
        press(mock_factory, 17)
        unit.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                      and isinstance(c.frame.view, v.SentView))
        assert runtime.display.last_image.size == (128, 32)


def test_identical_pixels_are_not_pushed_twice(tmp_path, mock_factory):
    runtime = Runtime(desk_config(tmp_path), pin_factory=mock_factory)
    with Running(runtime) as unit:
        frame = next(c for c in unit.seen if isinstance(c, cmd.ShowFrame)).frame
        pushed = runtime.display.frames_shown
        runtime.executor.show(replace(frame))
        assert runtime.display.frames_shown == pushed


def test_a_burst_of_live_facts_is_one_write_of_status_json(unit):
    import json

    from micromance.status import STATUS_DELAY_SECONDS

    written = unit.runtime.status_written
    assert written.wait(5)  # the start-up facts, written at once
    written.clear()
    for i in range(20):
        presence = Message(type=MessageType.PRESENCE, sender="0123456789abcdef", seq=i + 1,
                           time="2026-11-25T12:00:00+01:00", name="Alex", sent_total=0,
                           online=i % 2 == 0)
        unit.runtime.post(ev.Delivery, message=presence)
    assert written.wait(5)
    facts = json.loads((unit.runtime.config.state_dir / "status.json").read_text())
    assert facts["pid"] and facts["outbox"] == 0
    written.clear()
    assert not written.wait(2 * STATUS_DELAY_SECONDS)  # the whole burst was one write
