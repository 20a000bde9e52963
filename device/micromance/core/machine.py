"""The unit's state machine: ``step(state, event) -> (state, commands)``, pure.

Everything a person experiences is decided here, from injected time alone: what the screen
shows, when the LED pulses, when a hold becomes "done", when the panel dims and sleeps. The
runtime feeds events in and carries commands out; it never decides anything itself.

Outputs (frame, light, contrast, panel power) are *derived* from the state and emitted only
when they change, so an idle unit produces no commands and the display is redrawn only when
what it shows changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from micromance.core import buttons as button_timing
from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.buttons import Buttons
from micromance.core.commands import Command, LightMode
from micromance.core.counters import Counters
from micromance.core.events import Gesture, LinkState
from micromance.core.prompts import Prompt, ShuffleBag
from micromance.core.quiet import QuietHours
from micromance.protocol import Message, ReplayWindow, pairing
from micromance.protocol.pairing import Phase as PairPhase
from micromance.screens import views as v

SENT_SECONDS = 4.0          # how long "Sent ♥" / "Seen ✓" stays up
DONE_SECONDS = 4.0
PAIRING_RESULT_SECONDS = 6.0
FLASH_SECONDS = 0.15        # the light's "press taken" blink (the loop turns it off)
FRAME_SECONDS = 0.12        # heart animation: about 8 frames a second, then still
PEEK_SECONDS = 30.0         # a button during quiet hours lights the screen this long
PAGE_SECONDS = 30.0         # long prompts turn a page this often, on the half minute
REDELIVER_FIRST = 20.0      # unacknowledged messages go out again after this long...
REDELIVER_MAX = 900.0       # ...doubling each time up to this
SHIFT_SECONDS = 60.0        # OLED care: move the picture once a minute
#: Pixel-shift path: a small loop around the centre, one step a minute.
SHIFTS = ((0, 0), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


@dataclass(frozen=True)
class Settings:
    """What the core needs from the config, in core terms."""

    name: str = "Sam"
    quiet: QuietHours = field(default_factory=lambda: QuietHours.parse("22:30", "07:00"))
    contrast: int = 200
    dim_contrast: int = 8
    dim_after: float = 600.0
    pixel_shift: bool = True
    received_timeout: float = 7200.0
    library: tuple[Prompt, ...] = ()
    shuffle_seed: int = 0       # per unit, so two partners do not see the same order
    device_id: str = "0000000000000000"


class Mode(Enum):
    HOME = "home"
    SENT = "sent"
    RECEIVED = "received"
    DONE = "done"
    PAIRING = "pairing"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Outputs:
    """What the adapters were last told, so only changes are sent."""

    frame: v.Frame | None = None
    light: LightMode | None = None
    contrast: int | None = None
    panel_on: bool | None = None


@dataclass(frozen=True)
class State:
    settings: Settings
    at: float
    wall: datetime
    counters: Counters = field(default_factory=Counters)
    buttons: Buttons = field(default_factory=Buttons)
    mode: Mode = Mode.HOME
    mode_since: float = 0.0
    mode_until: float | None = None
    seen: bool = False
    pending_since: float | None = None
    prompt: Prompt | None = None
    prompt_page_origin: int = 0
    focus: bool = False
    bag: ShuffleBag = field(default_factory=lambda: ShuffleBag.fresh((), 0))
    draws: int = 0                     # seeds the shuffle, so rotation is reproducible
    paired: bool = False
    link: LinkState = LinkState.OFFLINE
    partner_online: bool | None = None
    outbox: int = 0
    window: ReplayWindow = field(default_factory=ReplayWindow)
    redeliver_at: float | None = None
    redeliver_backoff: float = REDELIVER_FIRST
    rejected: int = 0
    rejected_reasons: frozenset[str] = frozenset()
    problem: v.ProblemView | None = None
    session: pairing.Session | None = None   # a pairing attempt in progress
    last_activity: float = 0.0
    flash_until: float | None = None   # the light is on for a moment after a press
    peek_until: float | None = None
    was_quiet: bool = False
    change_due: float | None = None    # a new prompt waits for the next half minute...
    change_focus: bool = False         # ...and is the morning focus
    outputs: Outputs = Outputs()

    @property
    def pending(self) -> int:
        return self.counters.pending

    @property
    def sender(self) -> str:
        return self.counters.partner_name


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
) -> State:
    """The state after start-up, restored from what the store kept."""
    bag = ShuffleBag.from_json(bag_json) if bag_json else ShuffleBag.fresh((), draws)
    by_id = {prompt.id: prompt for prompt in settings.library}
    counters = counters or Counters()
    state = State(settings=settings, at=at, wall=wall, counters=counters, bag=bag,
                  draws=draws, paired=paired, last_activity=at, mode_since=at,
                  window=window or ReplayWindow(), outbox=outbox,
                  was_quiet=settings.quiet.contains(wall))
    if counters.pending:
        # Thank-yous that waited through a restart or power cut get their moment again.
        state = replace(state, mode=Mode.RECEIVED, pending_since=at)
    if prompt_id in by_id:
        return replace(state, prompt=by_id[prompt_id], prompt_page_origin=_half_minutes(wall))
    state, _ = _next_prompt(state, focus=False)
    return state


def step(state: State, event: ev.Event) -> tuple[State, list[Command]]:
    """Apply one event; return the new state and the commands for the adapters."""
    state = replace(state, at=max(state.at, event.at), wall=event.wall)
    commands: list[Command] = []
    state = _apply(state, event, commands)
    state = _expire(state, commands)
    state = _follow_quiet_hours(state)
    return _emit_outputs(state, commands)


def next_deadline(state: State) -> float | None:
    """The monotonic time at which the core wants a ``Tick`` (None: only on events)."""
    at, candidates = state.at, []
    candidates.append(button_timing.next_deadline(state.buttons))
    candidates.append(state.mode_until)
    candidates.append(state.peek_until)
    if _flashing(state):
        candidates.append(state.flash_until)
    candidates.append(state.redeliver_at)
    candidates.append(state.change_due)
    if state.session is not None:
        candidates.append(pairing.next_deadline(state.session))
    if _pulsing(state):
        candidates.append(state.pending_since + state.settings.received_timeout)
    if _bright(state):
        candidates.append(state.last_activity + state.settings.dim_after)
    if state.mode is Mode.RECEIVED and not _quiet(state):
        frame = _animation_frame(state)
        if frame < v.RECEIVED_FRAMES - 1:
            candidates.append(state.mode_since + (frame + 1) * FRAME_SECONDS)
    change = state.settings.quiet.seconds_until_change(state.wall)
    if change is not None:
        candidates.append(at + change)
    if _panel_on(state) and not _quiet(state):
        # Page turns and pixel shifts happen on the wall clock's half minutes.
        seconds = state.wall.timestamp()
        candidates.append(at + (PAGE_SECONDS - seconds % PAGE_SECONDS))
    return min((c for c in candidates if c is not None), default=None)


# --- transitions ----------------------------------------------------------------------------


def _apply(state: State, event: ev.Event, out: list[Command]) -> State:
    match event:
        case ev.ButtonDown(button=button):
            return replace(state, buttons=button_timing.press(state.buttons, button, event.at))
        case ev.ButtonUp(button=button):
            buttons, gestures = button_timing.release(state.buttons, button, event.at)
            return _gestures(replace(state, buttons=buttons), gestures, out)
        case ev.GestureInput(gesture=gesture):
            return _gestures(state, [gesture], out)
        case ev.RotatePrompt():
            if _quiet(state) or state.mode is not Mode.HOME:
                return state
            return _prompt_change(state, focus=False, out=out)
        case ev.MorningFocus():
            return _prompt_change(state, focus=True, out=out)
        case ev.Delivery(message=message):
            return _delivery(state, message, out)
        case ev.Rejected(reason=reason):
            return _rejected(state, reason, out)
        case ev.ThanksReceived(sender=sender, sender_total=total):
            return _partner_total(state, total, sender, out)
        case ev.SeenReceived():
            return _seen(state)
        case ev.LinkChanged(link=link):
            state = replace(state, link=link)
            if link is not LinkState.CONNECTED:
                return state
            out.append(cmd.PublishState())
            return _redeliver_now(state, out)
        case ev.PartnerPresence(online=online):
            state = replace(state, partner_online=online)
            return _redeliver_now(state, out) if online else state
        case ev.OutboxChanged(size=size):
            return _outbox_changed(state, size)
        case ev.PairingBegin(entropy=entropy):
            if state.mode is not Mode.PAIRING or state.session is not None:
                return state
            return _pairing_step(state, pairing.begin(state.settings.device_id, entropy,
                                                      state.at), out)
        case ev.PairingMessage(payload=payload):
            if state.session is None:
                return state
            return _pairing_step(state, pairing.receive(state.session, payload, state.at), out)
    return state


def _gestures(state: State, gestures: list[Gesture], out: list[Command]) -> State:
    for gesture in gestures:
        state = _gesture(state, gesture, out)
    return state


def _gesture(state: State, gesture: Gesture, out: list[Command]) -> State:
    at = state.at
    state = replace(state, last_activity=at)
    if _night(state):
        # Someone is up: light the screen for a while so they see what their press did.
        state = replace(state, peek_until=at + PEEK_SECONDS)
    if state.mode is Mode.PAIRING:
        if state.session is None or not state.session.finished:
            return _pairing_gesture(state, gesture, out)
        # The outcome is on screen: the press means what it always means.
        out.append(cmd.StopPairing())
        state = replace(state, mode=Mode.HOME, session=None, mode_until=None)
    if state.problem is not None:
        state = replace(state, problem=None)
    if gesture in (Gesture.THANKS_PRESS, Gesture.THANKS_HOLD):
        return _send_thanks(state, out)
    if gesture is Gesture.NEXT_PRESS:
        if state.pending:
            counters = replace(state.counters, pending=0)
            out.append(_save(counters))
            out.append(cmd.SendSeen())
            return replace(state, counters=counters, pending_since=None, mode=Mode.HOME,
                           mode_until=None)
        return _next_prompt(replace(state, mode=Mode.HOME, mode_until=None),
                            focus=False, out=out)[0]
    if gesture is Gesture.NEXT_HOLD:
        return _mark_done(state, out)
    if gesture is Gesture.BOTH_HOLD:
        out.append(cmd.StartPairing())
        return replace(state, mode=Mode.PAIRING, mode_until=None, mode_since=at, session=None)
    return state


def _send_thanks(state: State, out: list[Command]) -> State:
    today = state.wall.date()
    counters = replace(state.counters, sent_total=state.counters.sent_total + 1)
    counters = counters.add_today(1, today)
    state = replace(state, counters=counters, mode=Mode.SENT, seen=False,
                    mode_since=state.at, mode_until=state.at + SENT_SECONDS)
    out.append(_save(counters))
    out.append(cmd.SendThanks(total=counters.sent_total))
    return replace(state, flash_until=state.at + FLASH_SECONDS)


def _mark_done(state: State, out: list[Command]) -> State:
    today = state.wall.date()
    counters = state.counters
    if counters.last_done_day != today.isoformat():
        streak = counters.streak_on(today) + 1
        counters = replace(counters, streak=streak, last_done_day=today.isoformat())
        out.append(_save(counters))
        out.append(cmd.SendDone(streak=streak))
    return replace(state, counters=counters, mode=Mode.DONE, mode_since=state.at,
                   mode_until=state.at + DONE_SECONDS)


def _partner_total(state: State, total: int, sender: str, out: list[Command]) -> State:
    """Grow-only: the partner's total only ever rises, and every rise is thanks to show.

    Whichever message brings the news (the thanks itself, a later one, the retained state
    after an outage), lost, duplicated or reordered messages converge on the same count.
    """
    added = total - state.counters.received_total
    if added <= 0:
        return state
    counters = replace(state.counters, received_total=total, pending=state.pending + added,
                       partner_name=sender or state.sender)
    counters = counters.add_today(added, state.wall.date())
    out.append(_save(counters))
    mode = state.mode if state.mode is Mode.PAIRING else Mode.RECEIVED
    mode_since = state.mode_since if state.mode is Mode.RECEIVED else state.at
    return replace(state, counters=counters, pending_since=state.at, mode=mode,
                   mode_since=mode_since, mode_until=None, last_activity=state.at)


def _seen(state: State) -> State:
    if state.mode in (Mode.HOME, Mode.SENT):
        return replace(state, mode=Mode.SENT, seen=True, mode_since=state.at,
                       mode_until=state.at + SENT_SECONDS)
    return state


def _delivery(state: State, message: Message, out: list[Command]) -> State:
    """A sealed message from the partner: new ones act, replays are refused and counted."""
    if message.type == "state":
        # The retained summary comes again on every reconnect; it only ever raises totals.
        return _partner_total(state, message.sent_total, message.name, out)
    if not state.window.check(message.seq):
        if message.type != "ack":
            out.append(cmd.SendAck((message.seq,)))  # our first ack may have been lost
        return _rejected(state, "replayed", out)
    window = state.window.accept(message.seq)
    out.append(cmd.SaveWindow(window.to_json()))
    state = replace(state, window=window)
    if message.type == "ack":
        out.append(cmd.DropFromOutbox(tuple(message.seqs)))
        return state
    if message.type == "unpair":
        out.append(cmd.ForgetPair())
        return replace(state, paired=False, window=ReplayWindow(), outbox=0,
                       partner_online=None, redeliver_at=None,
                       problem=v.ProblemView("Unpaired", f"{message.name} unpaired the units"))
    out.append(cmd.SendAck((message.seq,)))
    state = _partner_total(state, message.sent_total, message.name, out)
    if message.type == "seen":
        return _seen(state)
    return state


def _rejected(state: State, reason: str, out: list[Command]) -> State:
    first = reason not in state.rejected_reasons
    out.append(cmd.NoteRejected(reason, first, state.rejected + 1))
    return replace(state, rejected=state.rejected + 1,
                   rejected_reasons=state.rejected_reasons | {reason})


def _outbox_changed(state: State, size: int) -> State:
    if size == 0:
        return replace(state, outbox=0, redeliver_at=None, redeliver_backoff=REDELIVER_FIRST)
    if size < state.outbox:  # progress: the partner is answering, retry soon again
        return replace(state, outbox=size, redeliver_backoff=REDELIVER_FIRST,
                       redeliver_at=state.at + REDELIVER_FIRST)
    if state.redeliver_at is None:
        return replace(state, outbox=size, redeliver_at=state.at + state.redeliver_backoff)
    return replace(state, outbox=size)


def _redeliver_now(state: State, out: list[Command]) -> State:
    if not state.outbox:
        return state
    out.append(cmd.Redeliver())
    return replace(state, redeliver_backoff=REDELIVER_FIRST,
                   redeliver_at=state.at + REDELIVER_FIRST)


def _pairing_gesture(state: State, gesture: Gesture, out: list[Command]) -> State:
    """In pairing mode THANKS says "the codes match" and NEXT cancels."""
    session = state.session
    if gesture is Gesture.NEXT_PRESS:
        if session is not None and not session.finished:
            _, sent = pairing.cancel(session, state.at)
            out.extend(cmd.PublishPairing(payload) for payload in sent)
        out.append(cmd.StopPairing())
        return replace(state, mode=Mode.HOME, session=None, mode_until=None)
    if gesture in (Gesture.THANKS_PRESS, Gesture.THANKS_HOLD) and session is not None:
        return _pairing_step(state, pairing.confirm(session, state.at), out)
    return state


def _pairing_step(state: State, step: pairing.Step, out: list[Command]) -> State:
    session, sent = step
    out.extend(cmd.PublishPairing(payload) for payload in sent)
    newly_finished = session.finished and not (state.session and state.session.finished)
    state = replace(state, session=session, last_activity=state.at)
    if not newly_finished:
        return state
    state = replace(state, mode_until=state.at + PAIRING_RESULT_SECONDS)
    if session.result is None:
        return state
    # A new pair starts from zero on both sides: totals are per pair.
    counters = Counters()
    out.append(cmd.SavePair(session.result))
    out.append(_save(counters))
    return replace(state, paired=True, counters=counters, window=ReplayWindow(), outbox=0,
                   link=LinkState.CONNECTING, partner_online=None, problem=None)


def _prompt_change(state: State, *, focus: bool, out: list[Command]) -> State:
    """A calendar prompt change, held until the next half minute while the screen is lit.

    Page turns and the pixel shift redraw on the half minutes anyway; a change arriving in
    between would be a third frame in that minute. Held, it rides on the redraw there.
    """
    if _quiet(state) or not _panel_on(state):
        return _next_prompt(state, focus=focus, out=out)[0]
    due = state.at + (PAGE_SECONDS - state.wall.timestamp() % PAGE_SECONDS)
    return replace(state, change_due=due, change_focus=state.change_focus or focus)


def _next_prompt(state: State, *, focus: bool, out: list[Command] | None = None
                 ) -> tuple[State, Prompt | None]:
    if not state.settings.library:
        return state, None
    draws = state.draws + 1
    seed = state.settings.shuffle_seed * 1_000_003 + draws
    prompt, bag = state.bag.draw(state.settings.library, state.wall, seed)
    state = replace(state, prompt=prompt, bag=bag, draws=draws, focus=focus,
                    prompt_page_origin=_half_minutes(state.wall))
    if out is not None:
        out.append(cmd.SaveRotation(bag_json=bag.to_json(), prompt_id=prompt.id, draws=draws))
    return state, prompt


def _save(counters: Counters) -> cmd.SaveCounters:
    return cmd.SaveCounters(counters)


# --- time passing ----------------------------------------------------------------------------


def _expire(state: State, out: list[Command]) -> State:
    at = state.at
    buttons, gestures = button_timing.expire(state.buttons, at)
    if gestures:
        state = _gestures(replace(state, buttons=buttons), gestures, out)
    session = state.session
    if session is not None and (deadline := pairing.next_deadline(session)) is not None \
            and at >= deadline:
        state = _pairing_step(state, pairing.tick(session, at), out)
    if state.mode_until is not None and at >= state.mode_until:
        back = Mode.RECEIVED if state.pending and _pulsing(state) else Mode.HOME
        if state.mode is Mode.PAIRING:
            out.append(cmd.StopPairing())
            state = replace(state, session=None)
        state = replace(state, mode=back, mode_until=None, mode_since=at)
    if state.mode is Mode.RECEIVED and not _pulsing(state):
        state = replace(state, mode=Mode.HOME)  # timed out: home shows the pending mark
    if state.peek_until is not None and at >= state.peek_until:
        state = replace(state, peek_until=None)
    if state.change_due is not None and at >= state.change_due - 1e-6:
        focus = state.change_focus
        state = replace(state, change_due=None, change_focus=False)
        if focus or (state.mode is Mode.HOME and not _quiet(state)):
            state = _next_prompt(state, focus=focus, out=out)[0]
    if state.redeliver_at is not None and at >= state.redeliver_at:
        backoff = min(state.redeliver_backoff * 2, REDELIVER_MAX)
        if state.outbox and state.link is LinkState.CONNECTED:
            out.append(cmd.Redeliver())
        state = replace(state, redeliver_backoff=backoff, redeliver_at=at + backoff)
    return state


def _follow_quiet_hours(state: State) -> State:
    quiet = state.settings.quiet.contains(state.wall)
    if quiet == state.was_quiet:
        return state
    state = replace(state, was_quiet=quiet)
    if not quiet and state.pending:
        # Morning: what arrived overnight gets its moment now.
        return replace(state, mode=Mode.RECEIVED, mode_since=state.at,
                       pending_since=state.at, last_activity=state.at)
    return state


# --- outputs -------------------------------------------------------------------------------


def _night(state: State) -> bool:
    """Inside quiet hours: the light never flashes, whatever happens."""
    return state.settings.quiet.contains(state.wall)


def _quiet(state: State) -> bool:
    """Quiet and nobody peeking: the screen stays dark or minimal."""
    return _night(state) and state.peek_until is None


def _pulsing(state: State) -> bool:
    return (state.pending > 0 and state.pending_since is not None
            and state.at < state.pending_since + state.settings.received_timeout)


def _flashing(state: State) -> bool:
    return state.flash_until is not None and state.at < state.flash_until


def _light(state: State) -> LightMode:
    """Breathing while a thank-you waits, a short steady blink after a press, never at night."""
    if _night(state):
        return LightMode.OFF
    if _pulsing(state):
        return LightMode.PULSE
    return LightMode.ON if _flashing(state) else LightMode.OFF


def _bright(state: State) -> bool:
    return state.at < state.last_activity + state.settings.dim_after


def _panel_on(state: State) -> bool:
    return not _quiet(state) or state.pending > 0


def _half_minutes(wall: datetime) -> int:
    return int(wall.timestamp() // PAGE_SECONDS)


def _animation_frame(state: State) -> int:
    elapsed = max(0.0, state.at - state.mode_since)
    # The epsilon absorbs float error, so waking at a frame's deadline shows that frame.
    return min(int(elapsed / FRAME_SECONDS + 1e-6), v.RECEIVED_FRAMES - 1)


def view_of(state: State) -> v.View:
    """What the screen should show now."""
    if _quiet(state):
        return v.QuietView(pending=state.pending)
    if state.mode is Mode.PAIRING:
        return _pairing_view(state.session)
    if state.problem is not None and state.mode is Mode.HOME:
        return state.problem
    if state.mode is Mode.SENT:
        return v.SentView(seen=state.seen, queued=not state.seen and _link_mark(state)
                          is not v.LinkMark.OK)
    if state.mode is Mode.DONE:
        return v.DoneView(streak=state.counters.streak_on(state.wall.date()))
    if state.mode is Mode.RECEIVED:
        return v.ReceivedView(sender=state.sender or "your partner",
                              frame=_animation_frame(state), count=state.pending)
    return _home(state)


_PAIRING_VIEWS = {
    PairPhase.SEARCHING: v.PairingPhase.SEARCHING,
    PairPhase.EXCHANGING: v.PairingPhase.SEARCHING,
    PairPhase.CODE: v.PairingPhase.CODE,
    PairPhase.WAITING: v.PairingPhase.WAITING,
    PairPhase.CONFIRMED: v.PairingPhase.CONFIRMED,
    PairPhase.FAILED: v.PairingPhase.FAILED,
    PairPhase.TIMED_OUT: v.PairingPhase.TIMED_OUT,
    PairPhase.CANCELLED: v.PairingPhase.CANCELLED,
}


def _pairing_view(session: pairing.Session | None) -> v.PairingView:
    if session is None:
        return v.PairingView(v.PairingPhase.SEARCHING)
    phase = _PAIRING_VIEWS[session.phase]
    code = session.code if phase in (v.PairingPhase.CODE, v.PairingPhase.WAITING) else ""
    detail = session.detail if phase is v.PairingPhase.FAILED else ""
    return v.PairingView(phase, code, detail)


def _home(state: State) -> v.View:
    if state.prompt is None:
        return v.ProblemView("No prompts", "check prompts.extra_file")
    counters, today = state.counters, state.wall.date()
    return v.HomeView(
        prompt=state.prompt.text,
        practice=state.prompt.practice,
        today=counters.today_on(today),
        total=counters.sent_total + counters.received_total,
        link=_link_mark(state),
        page=max(0, _half_minutes(state.wall) - state.prompt_page_origin),
        focus=state.focus,
        pending=state.pending,
    )


def _link_mark(state: State) -> v.LinkMark:
    if not state.paired:
        return v.LinkMark.NOT_PAIRED
    if state.link is not LinkState.CONNECTED:
        return v.LinkMark.BROKER_UNREACHABLE
    if state.partner_online is False:
        return v.LinkMark.PARTNER_OFFLINE
    return v.LinkMark.OK


def _shift(state: State) -> tuple[int, int]:
    if not state.settings.pixel_shift or _quiet(state):
        return (0, 0)
    return SHIFTS[int(state.wall.timestamp() // SHIFT_SECONDS) % len(SHIFTS)]


def _emit_outputs(state: State, out: list[Command]) -> tuple[State, list[Command]]:
    old = state.outputs
    panel_on = _panel_on(state)
    frame = v.Frame(view_of(state), _shift(state))
    light = _light(state)
    contrast = state.settings.contrast if _bright(state) and not _quiet(state) \
        else state.settings.dim_contrast
    if panel_on and old.panel_on is not True:
        out.append(cmd.SetPanelPower(True))
    if contrast != old.contrast:
        out.append(cmd.SetContrast(contrast))
    if frame != old.frame and panel_on:
        out.append(cmd.ShowFrame(frame))
    if not panel_on and old.panel_on is not False:
        out.append(cmd.SetPanelPower(False))
    if light != old.light:
        out.append(cmd.SetLight(light))
    outputs = Outputs(frame=frame if panel_on else old.frame, light=light, contrast=contrast,
                      panel_on=panel_on)
    return replace(state, outputs=outputs), out
