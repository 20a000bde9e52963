"""The unit's state machine: ``step(state, event) -> (state, commands)``, pure.

Everything a person experiences is decided here, from injected time alone: what the screen
shows, when the LED pulses, when a hold becomes "done", when the panel dims and sleeps. The
runtime feeds events in and carries commands out; it never decides anything itself.

Theory of operation
-------------------
Modes (``state.screen.mode``), and what enters and leaves each:

- HOME: the resting mode, a gesture prompt and the counts. Every other mode returns here.
- SENT: THANKS was pressed ("Sent ♥"), or the partner saw our thanks ("Seen ✓"); leaves
  after ``SENT_SECONDS``.
- RECEIVED: a thank-you arrived (a partner total rose); the heart animates and the LED pulses
  until NEXT acknowledges it or ``received_timeout`` passes (then HOME with a pending mark).
- DONE: NEXT held 2 s marked today's gesture done; leaves after ``DONE_SECONDS``.
- PAIRING: both buttons held 5 s; THANKS confirms the code, NEXT cancels; the result stays
  ``PAIRING_RESULT_SECONDS``, or until the next press; a new pair then sees HELP.
- TOGETHER: both partners pressed THANKS within 10 minutes of each other (``moments``): two
  hearts meet and the light beats three times; leaves after ``TOGETHER_SECONDS`` (to
  RECEIVED while a thank-you waits). Each unit decides it alone from the two press times, so
  both show the same moment once; one found in quiet hours waits for the morning.
- WEEK: the last seven days at a glance; both buttons pressed briefly, or by itself once on
  Sunday evening; both buttons again show HELP (what the buttons do), again HOME.
- ACCESS_CODE: the web page's six-digit access code, asked for through the control socket
  (``ShowCode``); leaves after its seconds, on ``HideCode`` or on NEXT. A thank-you that
  arrives meanwhile waits for it (the light pulses at once).

The control socket also starts pairing in a named room (``PairingRequested``), answers the
code (``PairingAnswer``: only ever on the pairing screen), unpairs (``ForgetRequested``) and
brings a reloaded config (``SettingsChanged``).

Quiet hours sit across all modes: the screen goes dark (or shows a small mark while a thank-you
waits) and the light never flashes; what arrives gets its moment in the morning.

Timers: each is a time in the state, and ``next_deadline`` returns the earliest, so the loop
sleeps exactly until one is due and sends a ``Tick``: button holds, a mode's ``until``, the
press blink (``flash_until``), a peek in quiet hours, the received light's timeout, dimming,
the heart's animation frames, redelivery of the outbox (20 s doubling to 15 min), a prompt
change held for the next half minute, the pairing session's resends and time limits, the
quiet-hours boundaries, the half-minute page turn and pixel shift, the together light's
beats, the moment a waiting thank-you starts to say when it came, Sunday evening, and the
end of a prepared thank-you.

A thank-you is worked out before it is let go: THANKS going down alone is counted at once
(``State.prepared``, and ``PrepareThanks`` for the adapters to seal it and write it in a
transaction they leave open), and the release takes that counting when the counters and the
clock's second are still the same (else it counts again). When ``send_first`` is sure that
the release's step saves and sends exactly that, the runtime commits and publishes it before
the step runs: only the commit stands between the release and the publish. Released or held
for a second, it is dropped (``DropPrepared``).

Outputs (frame, light, contrast, panel power, live facts) are *derived* from the state and
emitted only when they change, so an idle unit produces no commands and the display is
redrawn only when what it shows changes.
"""

from __future__ import annotations

from datetime import datetime

from micromance.core import buttons as button_timing
from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core import moments
from micromance.core.commands import Command, HomeFacts, LightMode, LiveFacts
from micromance.core.counters import Counters
from micromance.core.events import Button, Gesture, LinkState
from micromance.core.prompts import Prompt, ShuffleBag
from micromance.core.records import evolve as replace  # quick copies
from micromance.core.state import (
    ACCESS_CODE_SECONDS,
    CLOCK_SLACK_SECONDS,
    DONE_SECONDS,
    FLASH_SECONDS,
    FRAME_SECONDS,
    HELP_SECONDS,
    MAX_RISE,
    MISSED_AFTER,
    PAGE_SECONDS,
    PAIRING_RESULT_SECONDS,
    PEEK_SECONDS,
    PREPARED_SECONDS,
    REACK_AFTER,
    REACK_SECONDS,
    RECENT_ACCEPTS,
    REDELIVER_FIRST,
    REDELIVER_MAX,
    REDELIVER_MIN_GAP,
    SENT_SECONDS,
    STORAGE_RETRY_SECONDS,
    TOGETHER_SECONDS,
    WEEK_SECONDS,
    BrokerLink,
    Mode,
    Outputs,
    PairingOutcome,
    Partner,
    PreparedPress,
    Rotation,
    Screen,
    Settings,
    State,
    animation_frame,
    animation_frames,
    half_minutes,
    is_bright,
    is_flashing,
    is_night,
    is_pulsing,
    is_quiet,
    panel_on,
)
from micromance.core.view import shift_of, view_of
from micromance.core.when import parse_time, stamp
from micromance.protocol import (
    MAX_TOTAL,
    SEQS_PER_SECOND,
    Message,
    MessageType,
    ReplayWindow,
    pairing,
)
from micromance.screens import views as v


def initial_state(
    settings: Settings,
    at: float,
    wall: datetime,
    *,
    counters: Counters | None = None,
    bag_json: str = "",
    prompt_id: str = "",
    draws: int = 0,
    paired: bool = False,
    window: ReplayWindow | None = None,
    outbox: int = 0,
    run_first_seq: int = 0,
) -> State:
    """The state after start-up, restored from what the store kept."""
    bag = ShuffleBag.from_json(bag_json) if bag_json else ShuffleBag.fresh((), draws)
    by_id = {prompt.id: prompt for prompt in settings.library}
    counters = counters or Counters()
    screen = Screen(since=at, last_activity=at, was_quiet=settings.quiet.contains(wall))
    if counters.pending:
        # Thank-yous that waited through a restart or power cut get their moment again.
        screen = replace(screen, mode=Mode.RECEIVED, pending_since=at)
    state = State(settings=settings, at=at, wall=wall, counters=counters, screen=screen,
                  rotation=Rotation(bag=bag, draws=draws),
                  partner=Partner(paired=paired, window=window or ReplayWindow(),
                                  outbox=outbox, start_total=counters.sent_total,
                                  run_first_seq=run_first_seq))
    if prompt_id in by_id:
        return _rotation(state, prompt=by_id[prompt_id], page_origin=half_minutes(wall))
    state, _ = _next_prompt(state, focus=False)
    return state


def step(state: State, event: ev.Event) -> tuple[State, list[Command]]:
    """Apply one event; return the new state and the commands for the adapters: ``react``
    and then ``present``, as one."""
    state, commands = react(state, event)
    state, shown = present(state)
    return state, commands + shown


def react(state: State, event: ev.Event) -> tuple[State, list[Command]]:
    """What one event changes and what cannot wait for the screen: the transitions, what they
    save and send, and the light.

    The frame, the contrast and the facts for status are ``present``'s: the runtime asks for
    them once no event waits, so a thank-you lights the partner's LED (and a press is
    committed and sent) before anything is drawn, and a burst of events is drawn once.
    """
    state = replace(state, at=max(state.at, event.at), wall=event.wall)
    online_before = state.partner.online
    commands: list[Command] = []
    state = _apply(state, event, commands)
    state = _expire(state, commands)
    state = _follow_quiet_hours(state)
    state = _follow_presence(state, online_before)
    state = _moments(state, commands)
    light = _light(state)
    if light != state.outputs.light:
        commands.append(cmd.SetLight(light))
        state = replace(state, outputs=replace(state.outputs, light=light))
    return state, commands


def light_first(state: State, event: ev.Event) -> LightMode | None:
    """``LightMode.ON`` when ``event`` is a thank-you from the partner that ``react`` is sure
    to light the LED for; None when that is not certain, or the light is lit already.

    The runtime switches the LED on with it while the message has only just been opened,
    before the step, and the step carries on from there: its light (breathing, or the
    together beats, which start lit) follows with the step's commands. Only what every way
    through ``react`` lights is taken: a plausible THANKS the replay window takes, raising the
    partner's total, out of quiet hours, while the light is off, with no pairing under way and
    no together beat running (``tests/test_light_first.py`` walks the alternatives).
    """
    if not isinstance(event, ev.Delivery) or event.message.type is not MessageType.THANKS:
        return None
    screen = state.screen
    if state.outputs.light is not LightMode.OFF or state.session is not None \
            or screen.mode is Mode.PAIRING or state.settings.received_timeout <= 0:
        return None
    message, at, wall = event.message, max(state.at, event.at), event.wall  # as react's
    if screen.together_light_at is not None \
            and moments.together_light(at - screen.together_light_at)[0] is not None:
        return None
    if state.settings.quiet.contains(wall) or message.sent_total <= state.counters.received_total \
            or not state.partner.window.check(message.seq) or _implausible(state, message, wall):
        return None
    return LightMode.ON


def send_first(state: State, event: ev.Event, deadline: float | None) -> list[Command]:
    """The durable commands ``react`` is sure to return for ``event`` when it is the release
    of a THANKS press whose thank-you was prepared (``PrepareThanks``) and still holds; []
    when that is not certain.

    The runtime commits and publishes them (rehearsed at the press) before the step; the
    step then asks for the very same and carries out only the rest. ``deadline`` is
    ``next_deadline(state)``: with none passed, no timer adds writes of its own. Only the
    way through ``react`` that takes the prepared counting is a yes: THANKS let go alone on
    a unit that would send (``_release_sends_thanks``: paired, storage working, no chord or
    hold, no pairing on screen), in the second of the press, with the very counters it was
    counted from, no "Together" in it (``tests/test_send_first.py`` checks every yes against
    the step).
    """
    prepared = state.prepared
    if prepared is None or type(event) is not ev.ButtonUp or event.button is not Button.THANKS:
        return []
    if prepared.together or state.buttons.thanks_down_at is None \
            or not _release_sends_thanks(state) \
            or (deadline is not None and deadline <= max(state.at, event.at)) \
            or not prepared.holds(state.counters, event.wall):
        return []
    return cmd.thanks_writes(prepared.counters)


def present(state: State) -> tuple[State, list[Command]]:
    """The commands that bring the screen and the reported facts up to ``state`` (none when
    they already show it)."""
    old = state.outputs
    lit = panel_on(state)
    frame = v.Frame(view_of(state), shift_of(state))
    contrast = state.settings.contrast if is_bright(state) and not is_quiet(state) \
        else state.settings.dim_contrast
    live = _live_facts(state)
    out: list[Command] = []
    if lit and old.panel_on is not True:
        out.append(cmd.SetPanelPower(True))
    if contrast != old.contrast:
        out.append(cmd.SetContrast(contrast))
    if frame != old.frame and lit:
        out.append(cmd.ShowFrame(frame))
    if not lit and old.panel_on is not False:
        out.append(cmd.SetPanelPower(False))
    if live != old.live:
        out.append(cmd.ReportLiveFacts(live))
    home = _home_facts(state) if state.settings.home_assistant else None
    if home is not None and home != old.home:
        out.append(cmd.ReportHome(home))
    outputs = Outputs(frame=frame if lit else old.frame, light=old.light, contrast=contrast,
                      panel_on=lit, live=live, home=home)
    return replace(state, outputs=outputs), out


def next_deadline(state: State) -> float | None:
    """The monotonic time at which the core wants a ``Tick`` (None: only on events)."""
    at, screen = state.at, state.screen
    candidates = [
        button_timing.next_deadline(state.buttons),
        screen.until,
        screen.peek_until,
        screen.flash_until if is_flashing(state) else None,
        state.partner.redeliver_at,
        state.partner.reack_at if state.partner.reack else None,
        state.storage_retry_at,
        state.rotation.change_due,
        state.prepared.until if state.prepared is not None else None,
        pairing.next_deadline(state.session) if state.session is not None else None,
    ]
    if is_pulsing(state) and screen.pending_since is not None:
        candidates.append(screen.pending_since + state.settings.received_timeout)
    if is_bright(state):
        candidates.append(screen.last_activity + state.settings.dim_after)
    frames = animation_frames(state)
    if frames > 1 and not is_quiet(state):
        frame = animation_frame(state, frames)
        if frame < frames - 1:
            candidates.append(screen.since + (frame + 1) * FRAME_SECONDS)
    if screen.together_light_at is not None and not is_night(state):
        _, change = moments.together_light(at - screen.together_light_at)
        if change is not None:
            candidates.append(at + change)
    if screen.mode is Mode.HELP and not is_quiet(state):  # its page turns
        candidates.append(screen.since + ((at - screen.since) // PAGE_SECONDS + 1)
                          * PAGE_SECONDS)
    missed = _missed_at(state)
    if missed is not None:
        candidates.append(at + missed)
    week = moments.seconds_until_week(state.wall, state.counters.week_shown)
    if week is not None:
        candidates.append(at + week)
    change = state.settings.quiet.seconds_until_change(state.wall)
    if change is not None:
        candidates.append(at + change)
    if panel_on(state) and not is_quiet(state):
        # Page turns and pixel shifts happen on the wall clock's half minutes.
        seconds = state.wall.timestamp()
        candidates.append(at + (PAGE_SECONDS - seconds % PAGE_SECONDS))
    return min((c for c in candidates if c is not None), default=None)


# --- small helpers to change one record ----------------------------------------------------


def _screen(state: State, **changes: object) -> State:
    return replace(state, screen=replace(state.screen, **changes))


def _rotation(state: State, **changes: object) -> State:
    return replace(state, rotation=replace(state.rotation, **changes))


def _partner(state: State, **changes: object) -> State:
    return replace(state, partner=replace(state.partner, **changes))


def _go(state: State, mode: Mode, until: float | None = None) -> State:
    """Show ``mode`` from now, until ``until`` (None: until something else happens)."""
    return _screen(state, mode=mode, since=state.at, until=until)


# --- transitions ----------------------------------------------------------------------------


def _apply(state: State, event: ev.Event, out: list[Command]) -> State:
    match event:
        case ev.ButtonDown(button=button):
            return _press(state, button, event.at, out)
        case ev.ButtonUp(button=button):
            buttons, gestures = button_timing.release(state.buttons, button, event.at)
            state = _gestures(replace(state, buttons=buttons), gestures, out)
            if button is Button.THANKS and state.prepared is not None:
                state = _drop_prepared(state, out)  # used or not, it is done with
            return state
        case ev.GestureInput(gesture=gesture):
            return _gestures(state, [gesture], out)
        case ev.RotatePrompt():
            if is_quiet(state) or state.screen.mode is not Mode.HOME:
                return state
            return _prompt_change(state, focus=False, out=out)
        case ev.MorningFocus():
            return _prompt_change(state, focus=True, out=out)
        case ev.Delivery(message=message, broker=broker):
            return _delivery(state, message, broker, out)
        case ev.Rejected(reason=reason):
            return _rejected(state, reason, out)
        case ev.OldPairMessage():
            return _partner(state, old_pair=state.partner.old_pair + 1)
        case ev.BrokerChanged(broker=broker, where=where, connected=connected, error=error):
            state = _link(state, broker, where=where, connected=connected,
                          error="" if connected else error)
            if not connected:
                return state
            # Our summary there (its retained copy may be older), and what waits, there.
            state = _publish_summary(state, out, broker)
            return _redeliver_now(state, out, broker)
        case ev.OutboxChanged(size=size):
            return _outbox_changed(state, size)
        case ev.StorageFailed(reason=reason):
            retry = state.storage_retry_at or state.at + STORAGE_RETRY_SECONDS
            return replace(state, storage=reason, storage_retry_at=retry)
        case ev.StorageRecovered():
            return replace(state, storage="", storage_retry_at=None)
        case ev.PairingBegin(entropy=entropy):
            if state.screen.mode is not Mode.PAIRING or state.session is not None:
                return state
            return _pairing_step(state, pairing.begin(entropy, state.at), out)
        case ev.PairingMessage(payload=payload):
            if state.session is None:
                return state
            return _pairing_step(state, pairing.receive(state.session, payload, state.at), out)
        case ev.PairingRequested(topic=topic):
            return _request_pairing(state, topic, out)
        case ev.PairingAnswer(confirm=confirm):
            return _answer_pairing(state, confirm, out)
        case ev.ForgetRequested():
            return _forget(state, out)
        case ev.SettingsChanged(settings=settings, brokers_changed=brokers_changed):
            return _settings_changed(state, settings, brokers_changed, out)
        case ev.ShowCode(code=code, seconds=seconds):
            return _show_code(state, code, seconds)
        case ev.HideCode():
            if state.screen.mode is not Mode.ACCESS_CODE:
                return state
            if is_night(state):
                state = _screen(state, peek_until=None)  # back to dark, as it was
            return _screen(_go(state, _resting_mode(state)), access_code="")
    return state


def _press(state: State, button: Button, at: float, out: list[Command]) -> State:
    """A button went down. THANKS alone on a unit that would send a thank-you: its release
    will very likely be one, so its counting is worked out now (``_send_thanks`` takes it
    if it still holds then), and the adapters may prepare the rest while the finger is down."""
    was_down = state.buttons.is_down(button)
    state = replace(state, buttons=button_timing.press(state.buttons, button, at))
    if button is Button.THANKS and not was_down and _release_sends_thanks(state):
        counters, together = _count_thanks(state)
        out.append(cmd.PrepareThanks(counters))
        state = replace(state, prepared=PreparedPress(state.counters, stamp(state.wall),
                                                      counters, together,
                                                      until=at + PREPARED_SECONDS))
    return state


def _drop_prepared(state: State, out: list[Command]) -> State:
    out.append(cmd.DropPrepared())
    return replace(state, prepared=None)


def _release_sends_thanks(state: State) -> bool:
    """THANKS is down alone, and letting it go now would count and send a thank-you."""
    buttons = state.buttons
    return (buttons.next_down_at is None and buttons.chord_since is None and not buttons.fired
            and state.partner.paired and not state.storage
            and state.screen.mode is not Mode.PAIRING)


def _gestures(state: State, gestures: list[Gesture], out: list[Command]) -> State:
    for gesture in gestures:
        state = _gesture(state, gesture, out)
    return state


def _gesture(state: State, gesture: Gesture, out: list[Command]) -> State:
    at = state.at
    state = _screen(state, last_activity=at)
    if is_night(state):
        # Someone is up: light the screen for a while so they see what their press did.
        state = _screen(state, peek_until=at + PEEK_SECONDS)
    if state.screen.mode is Mode.PAIRING:
        if state.session is None or not state.session.finished:
            return _pairing_gesture(state, gesture, out)
        # The outcome is on screen: the press means what it always means.
        out.append(cmd.StopPairing())
        state = replace(_screen(state, mode=Mode.HOME, until=None), session=None)
    if state.screen.problem is not None:
        state = _screen(state, problem=None)
    if gesture in (Gesture.THANKS_PRESS, Gesture.THANKS_HOLD):
        if state.storage:  # not counted, not sent: for a moment the screen says so
            return _screen(_go(state, Mode.SENT, state.at + SENT_SECONDS), seen=False)
        return _send_thanks(state, out)
    if gesture is Gesture.NEXT_PRESS:
        if state.pending:
            counters = replace(state.counters, pending=0, pending_at="")
            out.append(cmd.SaveCounters(counters))
            out.append(cmd.SendSeen(sent_total=counters.sent_total))
            state = replace(state, counters=counters)
            return _screen(state, pending_since=None, mode=Mode.HOME, until=None)
        if state.screen.mode in (Mode.TOGETHER, Mode.WEEK, Mode.HELP, Mode.ACCESS_CODE):
            return _screen(state, mode=Mode.HOME, until=None)  # close it: the same gesture
        state = _screen(state, mode=Mode.HOME, until=None)
        return _next_prompt(state, focus=False, out=out)[0]
    if gesture is Gesture.NEXT_HOLD:
        return _mark_done(state, out)
    if gesture is Gesture.BOTH_PRESS:
        # Your week; again: what the buttons do; again: home.
        if state.screen.mode is Mode.WEEK:
            return _go(state, Mode.HELP, state.at + HELP_SECONDS)
        if state.screen.mode is Mode.HELP:
            return _screen(state, mode=Mode.HOME, until=None)
        return _go(state, Mode.WEEK, state.at + WEEK_SECONDS)
    if gesture is Gesture.BOTH_HOLD:
        out.append(cmd.StartPairing())
        return replace(_go(state, Mode.PAIRING), session=None, pairing_outcome=None)
    return state


def _resting_mode(state: State) -> Mode:
    """Where a screen that is done goes back to: the waiting thank-you, else home."""
    return Mode.RECEIVED if state.pending and is_pulsing(state) else Mode.HOME


# --- requests from the control socket -----------------------------------------------------


def _request_pairing(state: State, topic: str, out: list[Command]) -> State:
    """Pairing asked for from elsewhere (the CLI, the web page), in the room ``topic``: as
    holding both buttons, but an attempt under way is cancelled first (a new room)."""
    state = _screen(state, last_activity=state.at, problem=None)
    if is_night(state):
        state = _screen(state, peek_until=state.at + PEEK_SECONDS)
    if state.screen.mode is Mode.PAIRING:
        session = state.session
        if session is not None and not session.finished:
            out.extend(cmd.PublishPairing(p) for p in pairing.cancel(session, state.at)[1])
        out.append(cmd.StopPairing())
    out.append(cmd.StartPairing(topic))
    return replace(_go(state, Mode.PAIRING), session=None, pairing_outcome=None)


def _answer_pairing(state: State, confirm: bool, out: list[Command]) -> State:
    """The code compared elsewhere: as THANKS (match) or NEXT (cancel) on the pairing
    screen, and nothing anywhere else: an answer that comes late is never a thank-you."""
    session = state.session
    if state.screen.mode is not Mode.PAIRING or (session is not None and session.finished):
        return state
    state = _screen(state, last_activity=state.at)
    return _pairing_gesture(state, Gesture.THANKS_PRESS if confirm else Gesture.NEXT_PRESS,
                            out)


def _forget(state: State, out: list[Command]) -> State:
    """Unpair from here: the partner is told (sealed ``unpair``), then the pair is dropped
    as when the partner unpairs."""
    if not state.partner.paired:
        return state
    out.append(cmd.SendUnpair(sent_total=state.counters.sent_total))
    out.append(cmd.ForgetPair(ours=True))
    state = _partner(state, paired=False, window=ReplayWindow(), outbox=0, online=None,
                     redeliver_at=None, links=_forgotten(state.partner.links))
    return _screen(state, problem=v.ProblemView("Unpaired", "pair again: hold both"),
                   last_activity=state.at)


def _settings_changed(state: State, settings: Settings, brokers_changed: bool,
                      out: list[Command]) -> State:
    """A reloaded config: new settings from this step on. Quiet hours, contrast, dimming and
    timers follow from the state; a prompt the new library no longer has is replaced."""
    old = state.settings
    settings = replace(settings, shuffle_seed=old.shuffle_seed, device_id=old.device_id)
    state = replace(state, settings=settings)
    if brokers_changed:
        state = _partner(state, links=(), online=None,
                         link=LinkState.CONNECTING if state.partner.paired
                         else LinkState.OFFLINE)
    prompt = state.rotation.prompt
    if prompt is None or prompt.id not in {p.id for p in settings.library}:
        state = _next_prompt(state, focus=False, out=out)[0]
    return state


def _show_code(state: State, code: str, seconds: float) -> State:
    """The web page's access code, big, for ``seconds``; never over a pairing code. In quiet
    hours the screen lights for it (someone at the unit asked for it)."""
    if state.screen.mode is Mode.PAIRING:
        return state
    until = state.at + min(max(seconds, 1.0), ACCESS_CODE_SECONDS)
    state = _screen(_go(state, Mode.ACCESS_CODE, until), access_code=code,
                    last_activity=state.at)
    return _screen(state, peek_until=until) if is_night(state) else state


def _count_thanks(state: State) -> tuple[Counters, bool]:
    """The counters with a thank-you of ours counted now, and whether it makes "Together"."""
    counters = state.counters.thanked(state.wall.date(), sent=1,
                                      sent_total=state.counters.sent_total + 1)
    return moments.note_press(counters, ours=True, at=state.wall)


def _send_thanks(state: State, out: list[Command]) -> State:
    prepared = state.prepared
    if prepared is not None and prepared.holds(state.counters, state.wall):
        counters, together = prepared.counters, prepared.together  # counted at the press
    else:
        counters, together = _count_thanks(state)
    out.extend(cmd.thanks_writes(counters))
    state = _go(replace(state, counters=counters), Mode.SENT, state.at + SENT_SECONDS)
    state = _screen(state, seen=False, flash_until=state.at + FLASH_SECONDS)
    return _together(state, out) if together else state


def _partner_pressed(state: State, message: Message, out: list[Command]) -> State:
    """The partner's thank-you (new to us, whatever its total did): its press time joins
    ours for "Together"."""
    sent = parse_time(message.time)
    if sent is None:
        return state
    counters, together = moments.note_press(state.counters, ours=False, at=sent)
    _save_counters(out, counters)
    state = replace(state, counters=counters)
    return _together(state, out) if together else state


def _save_counters(out: list[Command], counters: Counters) -> None:
    """Persist ``counters`` once in this step: an earlier save of the step is replaced."""
    out[:] = [c for c in out if not isinstance(c, cmd.SaveCounters)]
    out.append(cmd.SaveCounters(counters))


def _together(state: State, out: list[Command]) -> State:
    """A shared moment was found (and counted): show it now, or hold it for the morning."""
    if is_night(state) or state.screen.mode is Mode.PAIRING:
        counters = replace(state.counters, together_held=True)
        _save_counters(out, counters)
        return replace(state, counters=counters)
    return _show_together(state)


def _show_together(state: State) -> State:
    state = _go(state, Mode.TOGETHER, state.at + TOGETHER_SECONDS)
    return _screen(state, together_light_at=state.at, last_activity=state.at)


def _mark_done(state: State, out: list[Command]) -> State:
    today = state.wall.date()
    counters = state.counters
    if counters.last_done_day != today.isoformat():
        streak = counters.streak_on(today) + 1
        counters = replace(counters, streak=streak, last_done_day=today.isoformat())
        counters = counters.note_day(today, done=1)
        out.append(cmd.SaveCounters(counters))
        out.append(cmd.SendDone(streak=streak, sent_total=counters.sent_total))
    return _go(replace(state, counters=counters), Mode.DONE, state.at + DONE_SECONDS)


def _partner_total(state: State, message: Message, out: list[Command]) -> State:
    """Grow-only: the partner's total only ever rises, and every rise is thanks to show.

    Whichever message brings the news (the thanks itself, a later one, the retained state
    after an outage), lost, duplicated or reordered messages converge on the same count. A
    message's rise was checked by ``_implausible`` before anything changed.
    """
    counters = state.counters
    added = message.sent_total - counters.received_total
    if added <= 0:
        return state
    # The oldest that waits says when it came ("From Sam · 2 h ago"): the sender's time.
    came = counters.pending_at if state.pending else _sent_at(state, message)
    counters = counters.thanked(state.wall.date(), received=added,
                                received_total=message.sent_total, received_seq=message.seq,
                                pending=state.pending + added,
                                partner_name=message.name or state.sender, pending_at=came)
    out.append(cmd.SaveCounters(counters))
    state = replace(state, counters=counters)
    screen = state.screen
    if screen.mode is Mode.ACCESS_CODE:  # someone is logging in: the heart comes after
        return _screen(state, pending_since=state.at, last_activity=state.at)
    mode = Mode.PAIRING if screen.mode is Mode.PAIRING else Mode.RECEIVED
    since = screen.since if screen.mode is Mode.RECEIVED else state.at
    return _screen(state, pending_since=state.at, mode=mode, since=since, until=None,
                   last_activity=state.at)


def _seen(state: State, message: Message) -> State:
    if state.screen.mode in (Mode.HOME, Mode.SENT):
        state = _go(state, Mode.SENT, state.at + SENT_SECONDS)
        seen_at = parse_time(_sent_at(state, message))
        return _screen(state, seen=True, seen_at=seen_at)
    return state


def _sent_at(state: State, message: Message) -> str:
    """When the partner sent ``message`` (its ``time``), never later than our now."""
    sent = parse_time(message.time)
    return stamp(state.wall if sent is None or sent > state.wall else sent)


def _delivery(state: State, message: Message, broker: int, out: list[Command]) -> State:
    """A sealed message from the partner: new ones act; a copy of one we had (from another
    broker, a redelivery, a replay) is counted as a duplicate and changes nothing."""
    window, counters = state.partner.window, state.counters
    implausible = _implausible(state, message, state.wall)
    if implausible:
        return _rejected(state, implausible, out)
    if message.type is MessageType.PRESENCE:
        return _presence(state, message, broker, out)
    if message.type is MessageType.STATE:
        # The retained summary comes again on every reconnect; it only ever raises totals,
        # and it says what the partner saw of us.
        state = _catch_up(state, message.seen_seq, message.seen_total, out)
        # It publishes its summary when it connects: ours answers with what we saw of it,
        # before its news of this run (it sends that after its summary), so that a partner
        # whose store went back in time catches up (``_catch_up`` on its side).
        state = _tell_what_we_saw(state, message.seq, out)
        return _partner_total(state, message, out)
    if not window.check(message.seq):
        if message.type is not MessageType.ACK and not _just_accepted(state, message.seq):
            state = _reack(state, message.seq, out)  # our first ack may have been lost
        return _partner(state, duplicates=state.partner.duplicates + 1)
    window = window.accept(message.seq)
    out.append(cmd.SaveWindow(window))
    accepted = (*state.partner.accepted, (message.seq, state.at))[-RECENT_ACCEPTS:]
    state = _partner(state, window=window, accepted=accepted)
    if message.type is MessageType.ACK:
        out.append(cmd.DropFromOutbox(tuple(message.seqs)))
        return state
    if message.type is MessageType.UNPAIR:
        out.append(cmd.ForgetPair())
        state = _partner(state, paired=False, window=ReplayWindow(), outbox=0, online=None,
                         redeliver_at=None, links=_forgotten(state.partner.links))
        return _screen(state, problem=v.ProblemView("Unpaired",
                                                    f"{message.name} unpaired the units"))
    out.append(cmd.SendAck((message.seq,), sent_total=counters.sent_total))
    state = _partner_total(state, message, out)
    if message.type is MessageType.SEEN:
        return _seen(state, message)
    if message.type is MessageType.THANKS:
        return _partner_pressed(state, message, out)
    return state


def _implausible(state: State, message: Message, wall: datetime) -> str:
    """Bounded trust, even in the partner (a bug, a stolen key): its seqs count from its wall
    clock, so one far ahead of ours (``wall``) is not plausible; a total above ``MAX_TOTAL``
    neither; and a message may raise a total we know by at most as many thank-yous as it
    used seqs since the message that brought it, never more than ``MAX_RISE``. Such a
    message is refused before it changes anything (a total or a seq near 2**53 would stop
    every later count)."""
    counters = state.counters
    latest = (wall.timestamp() + CLOCK_SLACK_SECONDS) * SEQS_PER_SECOND
    if message.seq > latest:
        return "implausible_seq"
    if message.sent_total > MAX_TOTAL:
        return "implausible_total"
    rise = message.sent_total - counters.received_total
    if rise > 0 and counters.received_total and message.type is not MessageType.PRESENCE \
            and rise > min(MAX_RISE, message.seq - counters.received_seq):
        return "implausible_total"
    return ""


def _presence(state: State, message: Message, broker: int, out: list[Command]) -> State:
    """Sealed and retained, one per broker (each connection has its own Last Will): on each
    broker the newest wins, and the partner is online when it is online on any of them."""
    link = _link_of(state, broker)
    if message.seq <= link.presence_seq:
        if message.seq < link.presence_seq:
            return _partner(state, duplicates=state.partner.duplicates + 1)
        return state  # the retained copy once more, after a reconnect
    was_online = link.partner_online
    state = _link(state, broker, presence_seq=message.seq, partner_online=message.online)
    if message.name and message.name != state.sender:
        # Its name, known before its first thank-you (a new pair, or a name changed there).
        counters = replace(state.counters, partner_name=message.name)
        out.append(cmd.SaveCounters(counters))
        state = replace(state, counters=counters)
    if message.online and not was_online:
        return _redeliver_now(state, out, broker)  # it appeared there: what waits, there
    return state


def _link_of(state: State, broker: int) -> BrokerLink:
    return next((link for link in state.partner.links if link.index == broker),
                BrokerLink(broker))


def _link(state: State, broker: int, **changes: object) -> State:
    """One broker's record changed: the summary (link, online) follows."""
    link = replace(_link_of(state, broker), **changes)
    links = tuple(sorted((*(li for li in state.partner.links if li.index != broker), link),
                         key=lambda li: li.index))
    seen = [li.partner_online for li in links if li.partner_online is not None]
    return _partner(state, links=links,
                    link=LinkState.CONNECTED if any(li.connected for li in links)
                    else LinkState.CONNECTING,
                    online=any(seen) if seen else None)


def _forgotten(links: tuple[BrokerLink, ...]) -> tuple[BrokerLink, ...]:
    """The brokers stay; what they told of the partner goes with the pair."""
    return tuple(replace(li, presence_seq=0, partner_online=None, redelivered_at=None)
                 for li in links)


def _just_accepted(state: State, seq: int) -> bool:
    """A copy of a message taken moments ago (another broker's): no ack again for it."""
    return any(s == seq and state.at - at < REACK_AFTER for s, at in state.partner.accepted)


def _catch_up(state: State, seen_seq: int, seen_total: int, out: list[Command]) -> State:
    """The partner's summary says what it saw of us. When that was before this run (all it
    saw has seqs below our first of this run) and counts more than we started with, our store
    went back in time (a power cut, a card that lied about a write): the thank-yous it counted
    that we forgot join our total, and our summary says so at once, so that every press made
    since counts on top. (Our seqs of this run start far above the forgotten ones, so they
    are never taken for replays.)"""
    partner = state.partner
    if not partner.run_first_seq or seen_seq >= partner.run_first_seq:
        return state  # it saw this run's messages: its counts are news of this run
    lost = max(0, min(seen_total, MAX_TOTAL) - partner.start_total)
    if partner.start_total and lost > MAX_RISE:
        return state  # not plausible (bounded trust, as for its own totals)
    added = lost - partner.lost_added
    if added <= 0:
        return state
    counters = replace(state.counters, sent_total=state.counters.sent_total + added)
    out.append(cmd.SaveCounters(counters))
    state = _partner(replace(state, counters=counters), lost_added=lost)
    return _publish_summary(state, out, skip_seqs=added)


def _tell_what_we_saw(state: State, seq: int, out: list[Command]) -> State:
    """Our summary, in answer to a new summary of the partner's (one with a seq we did not
    answer yet), when it says more than the one we published last (that one is retained on
    the broker, the partner has it). So replaying its old summaries cannot make us publish
    without end, and two units do not answer each other's answers for ever."""
    if seq <= state.partner.told_seq:
        return state
    state = _partner(state, told_seq=seq)
    if _summary_numbers(_state_message(state)) == state.partner.told:
        return state
    return _publish_summary(state, out)


def _publish_summary(state: State, out: list[Command], broker: int | None = None,
                     skip_seqs: int = 0) -> State:
    """Our summary, out on every broker (remembered as told), or on ``broker``'s only (the
    others may still hold an older one: not remembered)."""
    message = replace(_state_message(state), broker=broker, skip_seqs=skip_seqs)
    out.append(message)
    return state if broker is not None else _partner(state, told=_summary_numbers(message))


def _summary_numbers(message: cmd.PublishState) -> tuple[int, ...]:
    return (message.sent_total, message.streak, message.seen_seq, message.seen_total)


def _state_message(state: State) -> cmd.PublishState:
    """Our summary: totals, and what we saw of the partner: its total and the highest of its
    seqs we took anything from (events, or the summary that brought the total)."""
    counters = state.counters
    return cmd.PublishState(sent_total=counters.sent_total, streak=counters.streak,
                            seen_seq=max(state.partner.window.highest, counters.received_seq),
                            seen_total=counters.received_total)


def _reack(state: State, seq: int, out: list[Command]) -> State:
    """Acknowledge a duplicate again, but at most once per ``REACK_SECONDS``: a flood of
    replays costs one ack (no write) rather than one each."""
    partner = state.partner
    pending = partner.reack if seq in partner.reack else (*partner.reack, seq)[-256:]
    if partner.reack_at is not None and state.at < partner.reack_at:
        return _partner(state, reack=pending)
    out.append(cmd.SendAck(tuple(pending), sent_total=state.counters.sent_total))
    return _partner(state, reack=(), reack_at=state.at + REACK_SECONDS)


def _rejected(state: State, reason: str, out: list[Command]) -> State:
    partner = state.partner
    first = reason not in partner.rejected_reasons
    out.append(cmd.NoteRejected(reason, first, partner.rejected + 1))
    return _partner(state, rejected=partner.rejected + 1,
                    rejected_reasons=partner.rejected_reasons | {reason})


def _outbox_changed(state: State, size: int) -> State:
    partner = state.partner
    if size == 0:
        return _partner(state, outbox=0, redeliver_at=None, redeliver_backoff=REDELIVER_FIRST)
    if size < partner.outbox:  # progress: the partner is answering, retry soon again
        return _partner(state, outbox=size, redeliver_backoff=REDELIVER_FIRST,
                        redeliver_at=state.at + REDELIVER_FIRST)
    if partner.redeliver_at is None:
        return _partner(state, outbox=size, redeliver_at=state.at + partner.redeliver_backoff)
    return _partner(state, outbox=size)


def _redeliver_now(state: State, out: list[Command], broker: int) -> State:
    """Send the outbox again on ``broker`` (it connected, or the partner appeared there) now,
    unless that happened there moments ago (then the next timer round covers it): no input
    can make the unit send its outbox more than a few times a minute on any broker."""
    partner = state.partner
    if not partner.outbox:
        return state
    done = _link_of(state, broker).redelivered_at
    if done is not None and state.at < done + REDELIVER_MIN_GAP:
        soon = done + REDELIVER_MIN_GAP
        return _partner(state, redeliver_at=min(partner.redeliver_at or soon, soon))
    out.append(cmd.Redeliver(broker))
    state = _link(state, broker, redelivered_at=state.at)
    return _partner(state, redeliver_backoff=REDELIVER_FIRST,
                    redeliver_at=state.at + REDELIVER_FIRST)


def _pairing_gesture(state: State, gesture: Gesture, out: list[Command]) -> State:
    """In pairing mode THANKS says "the codes match" and NEXT cancels."""
    session = state.session
    if gesture is Gesture.NEXT_PRESS:
        if session is not None and not session.finished:
            _, sent = pairing.cancel(session, state.at)
            out.extend(cmd.PublishPairing(payload) for payload in sent)
        out.append(cmd.StopPairing())
        outcome = PairingOutcome(pairing.Phase.CANCELLED, "cancelled here", state.at)
        return replace(_screen(state, mode=Mode.HOME, until=None), session=None,
                       pairing_outcome=outcome)
    if gesture in (Gesture.THANKS_PRESS, Gesture.THANKS_HOLD) and session is not None:
        return _pairing_step(state, pairing.confirm(session, state.at), out)
    return state


def _pairing_step(state: State, step: pairing.Step, out: list[Command]) -> State:
    session, sent = step
    out.extend(cmd.PublishPairing(payload) for payload in sent)
    newly_finished = session.finished and not (state.session and state.session.finished)
    state = _screen(replace(state, session=session), last_activity=state.at)
    if not newly_finished:
        return state
    state = _screen(state, until=state.at + PAIRING_RESULT_SECONDS)
    state = replace(state, pairing_outcome=PairingOutcome(session.phase, session.detail,
                                                          state.at))
    if session.result is None:
        return state
    # A new pair starts from zero on both sides: totals are per pair.
    counters = Counters()
    out.append(cmd.SavePair(session.result))
    out.append(cmd.SaveCounters(counters))
    state = _partner(replace(state, counters=counters), paired=True, window=ReplayWindow(),
                     outbox=0, link=LinkState.CONNECTING, online=None, start_total=0,
                     lost_added=0, links=_forgotten(state.partner.links))
    return _screen(state, problem=None)


def _prompt_change(state: State, *, focus: bool, out: list[Command]) -> State:
    """A calendar prompt change, held until the next half minute while the screen is lit.

    Page turns and the pixel shift redraw on the half minutes anyway; a change arriving in
    between would be a third frame in that minute. Held, it rides on the redraw there.
    """
    if is_quiet(state) or not panel_on(state):
        return _next_prompt(state, focus=focus, out=out)[0]
    due = state.at + (PAGE_SECONDS - state.wall.timestamp() % PAGE_SECONDS)
    return _rotation(state, change_due=due, change_focus=state.rotation.change_focus or focus)


def _next_prompt(state: State, *, focus: bool, out: list[Command] | None = None
                 ) -> tuple[State, Prompt | None]:
    if not state.settings.library:
        return state, None
    rotation = state.rotation
    draws = rotation.draws + 1
    seed = state.settings.shuffle_seed * 1_000_003 + draws
    prompt, bag = rotation.bag.draw(state.settings.library, state.wall, seed)
    state = _rotation(state, prompt=prompt, bag=bag, draws=draws, focus=focus,
                      page_origin=half_minutes(state.wall))
    if out is not None:
        out.append(cmd.SaveRotation(bag_json=bag.to_json(), prompt_id=prompt.id, draws=draws))
    return state, prompt


# --- time passing ----------------------------------------------------------------------------


def _expire(state: State, out: list[Command]) -> State:
    at = state.at
    if state.prepared is not None and at >= state.prepared.until:
        state = _drop_prepared(state, out)  # THANKS held on: its second is over
    buttons, gestures = button_timing.expire(state.buttons, at)
    if gestures:
        state = _gestures(replace(state, buttons=buttons), gestures, out)
    session = state.session
    if session is not None and (deadline := pairing.next_deadline(session)) is not None \
            and at >= deadline:
        state = _pairing_step(state, pairing.tick(session, at), out)
    if state.screen.until is not None and at >= state.screen.until:
        back = _resting_mode(state)
        until = None
        if state.screen.mode is Mode.ACCESS_CODE:
            state = _screen(state, access_code="")
        if state.screen.mode is Mode.PAIRING:
            out.append(cmd.StopPairing())
            if state.session is not None and state.session.result is not None \
                    and back is Mode.HOME:
                back, until = Mode.HELP, at + HELP_SECONDS  # a new pair: what buttons do
            state = replace(state, session=None)
        state = _go(state, back, until)
    if state.screen.mode is Mode.RECEIVED and not is_pulsing(state):
        state = _screen(state, mode=Mode.HOME)  # timed out: home shows the pending mark
    if state.screen.peek_until is not None and at >= state.screen.peek_until:
        state = _screen(state, peek_until=None)
    rotation = state.rotation
    if rotation.change_due is not None and at >= rotation.change_due - 1e-6:
        focus = rotation.change_focus
        state = _rotation(state, change_due=None, change_focus=False)
        if focus or (state.screen.mode is Mode.HOME and not is_quiet(state)):
            state = _next_prompt(state, focus=focus, out=out)[0]
    partner = state.partner
    if partner.redeliver_at is not None and at >= partner.redeliver_at:
        backoff = min(partner.redeliver_backoff * 2, REDELIVER_MAX)
        if partner.outbox and partner.link is LinkState.CONNECTED:
            out.append(cmd.Redeliver())
            state = _partner(state, last_redeliver=at,
                             links=tuple(replace(li, redelivered_at=at) for li in partner.links))
        state = _partner(state, redeliver_backoff=backoff, redeliver_at=at + backoff)
    partner = state.partner
    if partner.reack and partner.reack_at is not None and at >= partner.reack_at:
        out.append(cmd.SendAck(partner.reack, sent_total=state.counters.sent_total))
        state = _partner(state, reack=(), reack_at=at + REACK_SECONDS)
    if state.storage and state.storage_retry_at is not None and at >= state.storage_retry_at:
        out.append(cmd.CheckStorage())
        state = replace(state, storage_retry_at=at + STORAGE_RETRY_SECONDS)
    return state


def _follow_quiet_hours(state: State) -> State:
    quiet = is_night(state)
    if quiet == state.screen.was_quiet:
        return state
    state = _screen(state, was_quiet=quiet)
    if not quiet and state.pending:
        # Morning: what arrived overnight gets its moment now.
        return _screen(state, mode=Mode.RECEIVED, since=state.at, pending_since=state.at,
                       last_activity=state.at)
    return state


def _follow_presence(state: State, online_before: bool | None) -> State:
    """The partner went offline: remember when ("Alex away since 18:05")."""
    online, away = state.partner.online, state.partner.away_since
    if online is False and online_before is True:
        return _partner(state, away_since=state.wall)
    if online is not False and away is not None:
        return _partner(state, away_since=None)
    return state


def _moments(state: State, out: list[Command]) -> State:
    """What waited for a calm moment: a "Together" held through the night, and the week
    screen on Sunday evening. Never in quiet hours, and only over a screen at rest."""
    if is_night(state):
        return state
    mode = state.screen.mode
    counters = state.counters
    if counters.together_held and mode in (Mode.HOME, Mode.RECEIVED, Mode.SENT, Mode.DONE):
        counters = replace(counters, together_held=False)
        _save_counters(out, counters)
        return _show_together(replace(state, counters=counters))
    if mode is Mode.HOME and moments.week_due(state.wall, counters.week_shown):
        counters = replace(counters, week_shown=state.wall.date().isoformat())
        _save_counters(out, counters)
        state = _go(replace(state, counters=counters), Mode.WEEK, state.at + WEEK_SECONDS)
        return _screen(state, last_activity=state.at)
    return state


def _missed_at(state: State) -> float | None:
    """Seconds until the oldest waiting thank-you has waited ``MISSED_AFTER`` (then the
    screen says when it came); None when nothing waits or it says so already."""
    came = parse_time(state.counters.pending_at) if state.pending else None
    if came is None:
        return None
    left = MISSED_AFTER - (state.wall - came).total_seconds()
    return left if left > 0 else None


# --- outputs -------------------------------------------------------------------------------


def _light(state: State) -> LightMode:
    """Breathing while a thank-you waits, a short steady blink after a press, never at night."""
    if is_night(state):
        return LightMode.OFF
    if state.screen.together_light_at is not None:
        beat, _ = moments.together_light(state.at - state.screen.together_light_at)
        if beat is not None:  # "ba-dum" three times: the light's own shared moment
            return LightMode.ON if beat else LightMode.OFF
    if is_pulsing(state):
        return LightMode.PULSE
    return LightMode.ON if is_flashing(state) else LightMode.OFF


def _live_facts(state: State) -> LiveFacts:
    partner = state.partner
    return LiveFacts(
        link=partner.link.value if partner.paired else "offline",
        partner="unknown" if partner.online is None or not partner.paired
        else ("online" if partner.online else "offline"),
        partner_name=state.sender,
        outbox=partner.outbox,
        rejected=partner.rejected,
        duplicates=partner.duplicates,
        old_pair=partner.old_pair,
        brokers=tuple((li.where, li.connected, li.error) for li in partner.links),
    )


def _home_facts(state: State) -> HomeFacts:
    """What Home Assistant's entities show: counts, the gesture, the partner's presence."""
    counters, day = state.counters, state.wall.date()
    today = next((row for row in counters.history if row[0] == day.isoformat()),
                 (day.isoformat(), 0, 0, 0))
    prompt = state.rotation.prompt
    return HomeFacts(
        paired=state.partner.paired, sent_today=today[1], received_today=today[2],
        sent_total=counters.sent_total, received_total=counters.received_total,
        together_total=counters.together_total, streak=counters.streak_on(day),
        gesture=prompt.text if prompt is not None else "",
        partner_online=bool(state.partner.paired and state.partner.online),
        waiting=counters.pending)
