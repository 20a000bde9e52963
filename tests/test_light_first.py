"""``light_first``: the LED goes on before a thank-you's step only when the step lights it too.

The runtime acts on the answer before ``react`` runs, so a wrong yes would light the LED where
the core keeps it dark (at night, for a replay). The property walks many histories (presses,
holds, pairing, quiet hours, together moments, replays) and checks every yes against the step
it stands for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.clock import FakeClock
from micromance.core.commands import LightMode
from micromance.core.events import Button, Gesture
from micromance.core.machine import light_first, react
from micromance.protocol import Message
from tests.conftest import ZONE
from tests.test_machine import ACTIONS, PARTNER, Unit, act, of


def delivery(unit: Unit, seq: int, total: int, kind: str = "thanks",
             minutes: int = 0) -> ev.Delivery:
    time = (unit.clock.wall + timedelta(minutes=minutes)).isoformat(timespec="seconds")
    message = Message(type=kind, sender=PARTNER, seq=seq, time=time, name="Alex",
                      sent_total=total)
    return ev.Delivery(message=message, broker=0, at=unit.clock.mono, wall=unit.clock.wall)


def test_a_thank_you_on_a_resting_unit_lights_first_and_its_step_lights_too(clock):
    unit = Unit(clock)
    event = delivery(unit, seq=1, total=1)
    assert light_first(unit.state, event) is LightMode.ON
    _, commands = react(unit.state, event)
    assert of(cmd.SetLight, commands) == [cmd.SetLight(LightMode.PULSE)]


def test_nothing_first_for_what_the_step_leaves_dark_or_lit_already(clock):
    unit = Unit(clock)
    assert light_first(unit.state, delivery(unit, seq=1, total=1, kind="seen")) is None
    assert light_first(unit.state, delivery(unit, seq=1, total=0)) is None  # no rise
    unit.receive("thanks", total=1)
    assert unit.state.outputs.light is LightMode.PULSE
    assert light_first(unit.state, delivery(unit, seq=2, total=2)) is None  # breathing already
    unit.send(ev.GestureInput, gesture=Gesture.NEXT_PRESS)  # acknowledged: dark again
    assert light_first(unit.state, delivery(unit, seq=1, total=2)) is None  # a replayed seq
    assert light_first(unit.state, delivery(unit, seq=2, total=2)) is LightMode.ON


def test_nothing_first_at_night_or_while_pairing(clock):
    night = Unit(FakeClock(wall=datetime(2026, 6, 1, 23, 30, tzinfo=ZONE)))
    assert light_first(night.state, delivery(night, seq=1, total=1)) is None
    pairing = Unit(clock)
    pairing.send(ev.ButtonDown, button=Button.THANKS)
    pairing.send(ev.ButtonDown, button=Button.NEXT)
    pairing.run_for(6)
    assert pairing.state.session is not None or pairing.state.screen.mode.name == "PAIRING"
    assert light_first(pairing.state, delivery(pairing, seq=1, total=1)) is None


CANDIDATES = st.tuples(
    st.sampled_from([1, 1, 1, 2, 0, -1, -3]),     # seq after the partner's last
    st.sampled_from([1, 1, 1, 3, 0, -1]),         # total above what we received
    st.sampled_from(["thanks", "thanks", "thanks", "seen", "done"]),
    st.integers(-1500, 30),                       # the sender's time, minutes from ours
    st.floats(0, 120),                            # seconds since the last event
    st.booleans(),                                # a NEXT press acknowledged what waited
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ACTIONS, max_size=20), st.one_of(st.integers(8, 20), st.integers(0, 23)),
       CANDIDATES)
def test_every_yes_is_a_step_that_lights(actions, hour, candidate):
    unit = Unit(FakeClock(wall=datetime(2026, 3, 29, hour, 0, tzinfo=ZONE)))  # a DST day
    for action in actions:
        act(unit, action)
    seq_step, rise, kind, minutes, later, acknowledged = candidate
    if acknowledged:
        unit.gesture(Gesture.NEXT_PRESS)
    unit.clock.advance(later)
    event = delivery(unit, seq=max(1, unit.partner_seq + seq_step),
                     total=max(0, unit.state.counters.received_total + rise), kind=kind,
                     minutes=minutes)
    first = light_first(unit.state, event)
    note(f"lights first: {first is not None}")  # --hypothesis-show-statistics
    state, commands = react(unit.state, event)
    if first is not None:
        assert state.outputs.light in (LightMode.ON, LightMode.PULSE)
        assert of(cmd.SetLight, commands), "the step must carry the light on from there"


def test_nothing_first_between_the_beats_of_a_together_moment(clock):
    unit = Unit(clock)
    unit.gesture(Gesture.THANKS_PRESS)
    unit.run_for(60)
    unit.receive("thanks", total=1)  # within minutes of ours: together, the light beats
    unit.gesture(Gesture.NEXT_PRESS)  # acknowledged: the beats go on, no breathing after
    assert unit.state.screen.together_light_at is not None
    unit.run_for(0.2)  # between the first beat's two strokes
    assert unit.state.outputs.light is LightMode.OFF
    event = delivery(unit, seq=unit.partner_seq + 1, total=2)
    assert light_first(unit.state, event) is None
    state, _ = react(unit.state, event)
    assert state.outputs.light is LightMode.OFF  # the beat holds it dark: a yes would be wrong
