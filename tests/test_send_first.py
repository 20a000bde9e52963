"""``send_first``: a release's thank-you is committed and published before its step only
when the step asks for exactly that.

The runtime acts on the answer before ``react`` runs, so a wrong yes would send a thank-you
the core does not count, or count one it does not send. The property walks many histories
(presses, holds across seconds and deadlines, chords, pairing, quiet hours, together
moments, failing storage) and checks every yes against the durable commands of the step it
stands for.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.clock import FakeClock
from micromance.core.commands import Durable
from micromance.core.events import Button
from micromance.core.machine import next_deadline, react, send_first
from tests.conftest import ZONE
from tests.test_machine import ACTIONS, Unit, act


def release(unit: Unit) -> ev.ButtonUp:
    return ev.ButtonUp(button=Button.THANKS, at=unit.clock.mono, wall=unit.clock.wall)


def durable(commands: list[cmd.Command]) -> list[cmd.Command]:
    return [c for c in commands if isinstance(c, Durable)]


def test_a_quick_tap_sends_what_its_press_prepared_first(clock):
    unit = Unit(clock).pair()
    [prepared] = [c for c in unit.send(ev.ButtonDown, button=Button.THANKS)
                  if isinstance(c, cmd.PrepareThanks)]
    unit.clock.advance(0.1)
    event = release(unit)
    first = send_first(unit.state, event, next_deadline(unit.state))
    assert first == [cmd.SaveCounters(prepared.counters), cmd.SendThanks(total=1)]
    assert durable(react(unit.state, event)[1]) == first


def test_nothing_first_for_another_second_a_chord_or_a_due_timer(clock):
    unit = Unit(clock).pair()
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.clock.advance(1.0)  # another second on the clock: counted again at the release
    assert send_first(unit.state, release(unit), next_deadline(unit.state)) == []
    unit.send(ev.ButtonUp, button=Button.THANKS)
    unit.send(ev.ButtonDown, button=Button.THANKS)
    unit.send(ev.ButtonDown, button=Button.NEXT)  # a chord: the week
    assert send_first(unit.state, release(unit), next_deadline(unit.state)) == []
    unit.send(ev.ButtonUp, button=Button.THANKS)
    unit.send(ev.ButtonUp, button=Button.NEXT)
    unit.send(ev.ButtonDown, button=Button.THANKS)
    due = unit.clock.mono  # a timer due at the release may write something of its own
    assert send_first(unit.state, release(unit), due) == []
    assert send_first(unit.state, release(unit), None) != []
    assert send_first(unit.state, ev.ButtonUp(button=Button.NEXT, at=due, wall=unit.clock.wall),
                      None) == []


#: What may also happen while THANKS is held: a commit fails, pairing is asked for elsewhere.
WHILE_HELD = st.one_of(ACTIONS, st.just(("storage failed",)), st.just(("pairing asked",)))


def happen(unit: Unit, action: tuple) -> None:
    match action:
        case ("storage failed",):
            unit.send(ev.StorageFailed, reason="the disk is full")
        case ("pairing asked",):
            unit.send(ev.PairingRequested)
        case _:
            act(unit, action)


@settings(max_examples=500, deadline=None)
@given(st.lists(ACTIONS, max_size=12), st.integers(0, 23), st.lists(WHILE_HELD, max_size=2),
       st.sampled_from([0.0, 0.05, 0.1, 0.1, 0.3, 0.69, 0.7, 1.5, 40.0]),
       st.sampled_from([True, True, True, False]))
def test_every_yes_is_exactly_what_the_step_saves_and_sends(before, hour, held, hold, pair):
    unit = Unit(FakeClock(wall=datetime(2026, 3, 29, hour, 0, 0, 300000, tzinfo=ZONE)))
    if pair:
        unit.pair()
    for action in before:
        act(unit, action)
    unit.send(ev.ButtonDown, button=Button.THANKS)
    for action in held:
        happen(unit, action)
    unit.clock.advance(hold)  # no ticks: whatever fell due meanwhile is due at the release
    event = release(unit)
    first = send_first(unit.state, event, next_deadline(unit.state))
    note(f"sent first: {bool(first)}")  # --hypothesis-show-statistics
    if first:
        assert durable(react(unit.state, event)[1]) == first
