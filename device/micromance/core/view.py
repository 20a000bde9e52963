"""What the screen should show now: the state turned into one view model, pure.

``screens`` decides how a view looks; this decides which view, from the state alone.
"""

from __future__ import annotations

from micromance.core.events import LinkState
from micromance.core.state import (
    MISSED_AFTER,
    PAGE_SECONDS,
    SHIFT_SECONDS,
    SHIFTS,
    Mode,
    State,
    animation_frame,
    half_minutes,
    is_quiet,
)
from micromance.core.when import ago, parse_time, since
from micromance.protocol import pairing
from micromance.protocol.pairing import Phase as PairPhase
from micromance.screens import views as v


def view_of(state: State) -> v.View:
    """The view for the state's mode (quiet hours and pairing first)."""
    mode = state.screen.mode
    if is_quiet(state):
        return v.QuietView(pending=state.pending)
    if mode is Mode.PAIRING:
        return _pairing_view(state.session)
    if mode is Mode.ACCESS_CODE:
        return v.AccessCodeView(code=state.screen.access_code)
    if state.storage and mode in (Mode.HOME, Mode.SENT, Mode.DONE):
        # Saying so beats pretending: a press now is neither counted nor sent.
        return v.ProblemView("Not sent" if mode is Mode.SENT else "Can't save", state.storage)
    if state.screen.problem is not None and mode is Mode.HOME:
        return state.screen.problem
    if mode is Mode.SENT:
        seen_at = state.screen.seen_at
        return v.SentView(seen=state.screen.seen, queued=not state.screen.seen
                          and link_mark(state) is not v.LinkMark.OK,
                          seen_when=ago(seen_at, state.wall)
                          if state.screen.seen and seen_at is not None else "")
    if mode is Mode.DONE:
        return v.DoneView(streak=state.counters.streak_on(state.wall.date()))
    if mode is Mode.RECEIVED:
        return v.ReceivedView(sender=state.sender or "your partner",
                              frame=animation_frame(state), count=state.pending,
                              when=missed_when(state))
    if mode is Mode.TOGETHER:
        return v.TogetherView(partner=state.sender or "your partner",
                              frame=animation_frame(state, v.TOGETHER_FRAMES))
    if mode is Mode.WEEK:
        today = state.wall.date()
        return v.WeekView(days=state.counters.week(today), weekday=today.weekday(),
                          streak=state.counters.streak_on(today))
    if mode is Mode.HELP:
        return v.HelpView(page=int(max(0.0, state.at - state.screen.since) // PAGE_SECONDS))
    return _home(state)


def missed_when(state: State) -> str:
    """When the oldest waiting thank-you came ("2 h ago"), once it has waited
    ``MISSED_AFTER``; "" before that, or when nothing waits."""
    came = parse_time(state.counters.pending_at) if state.pending else None
    if came is None or (state.wall - came).total_seconds() < MISSED_AFTER:
        return ""
    return ago(came, state.wall)


def shift_of(state: State) -> tuple[int, int]:
    """The OLED-care pixel shift: one step of a small loop a minute (none in quiet hours)."""
    if not state.settings.pixel_shift or is_quiet(state):
        return (0, 0)
    return SHIFTS[int(state.wall.timestamp() // SHIFT_SECONDS) % len(SHIFTS)]


def link_mark(state: State) -> v.LinkMark:
    partner = state.partner
    if not partner.paired:
        return v.LinkMark.NOT_PAIRED
    if partner.link is not LinkState.CONNECTED:
        return v.LinkMark.BROKER_UNREACHABLE
    if partner.online is False:
        return v.LinkMark.PARTNER_OFFLINE
    return v.LinkMark.OK


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
    prompt = state.rotation.prompt
    if prompt is None:
        return v.ProblemView("No prompts", "check prompts.extra_file")
    counters, today = state.counters, state.wall.date()
    link = link_mark(state)
    away = state.partner.away_since
    return v.HomeView(
        prompt=prompt.text,
        practice=prompt.practice,
        today=counters.today_on(today),
        total=counters.sent_total + counters.received_total,
        link=link,
        page=max(0, half_minutes(state.wall) - state.rotation.page_origin),
        focus=state.rotation.focus,
        pending=state.pending,
        partner=state.sender,
        away_since=since(away, state.wall)
        if link is v.LinkMark.PARTNER_OFFLINE and away is not None else "",
        pending_when=missed_when(state),
    )
