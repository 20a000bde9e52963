"""The unit's state in the words of the control socket (``micromance.control``), pure.

The daemon answers ``status`` and ``pairing`` from these on its loop thread; the keys are the
ones ``control/__init__.py`` documents. What the state does not hold (the brokers as the config
names them, the config error) the server adds.
"""

from __future__ import annotations

from typing import Any

from micromance.core.state import Mode, State, is_night
from micromance.core.view import link_mark
from micromance.protocol.pairing import Phase
from micromance.screens import views as v

#: How long the ``pairing`` answer still says how the last attempt ended, after its screen
#: moved on (a client polling every fraction of a second cannot miss it).
OUTCOME_SECONDS = 60.0

_PHASES = {
    Phase.SEARCHING: "searching",
    Phase.EXCHANGING: "searching",
    Phase.CODE: "code",
    Phase.WAITING: "waiting",
    Phase.CONFIRMED: "paired",
    Phase.FAILED: "failed",
    Phase.TIMED_OUT: "timed_out",
    Phase.CANCELLED: "cancelled",
}


def _phase(phase: Phase, detail: str) -> str:
    if phase is Phase.FAILED and "interfering" in detail:
        return "interfered"
    return _PHASES[phase]


def pairing_report(state: State, now: float) -> dict[str, str]:
    """``phase``, ``code`` (while it is to be compared) and ``detail``; ``now`` is the
    core's monotonic clock."""
    session = state.session
    if session is not None:
        showing = session.phase in (Phase.CODE, Phase.WAITING)
        return {"phase": _phase(session.phase, session.detail),
                "code": session.code if showing else "", "detail": session.detail}
    if state.screen.mode is Mode.PAIRING:
        return {"phase": "searching", "code": "", "detail": ""}
    outcome = state.pairing_outcome
    if outcome is not None and now - outcome.at < OUTCOME_SECONDS:
        return {"phase": _phase(outcome.phase, outcome.detail), "code": "",
                "detail": outcome.detail}
    return {"phase": "idle", "code": "", "detail": ""}


def status_report(state: State, now: float) -> dict[str, Any]:
    """The core's part of the ``status`` answer."""
    counters, partner = state.counters, state.partner
    prompt = state.rotation.prompt
    link = partner.link.value if partner.paired else "offline"
    return {
        "name": state.settings.name,
        "paired": partner.paired,
        "link": link,
        "partner": "unknown" if partner.online is None or not partner.paired
        else ("online" if partner.online else "offline"),
        "partner_name": state.sender,
        "away_since": partner.away_since.isoformat(timespec="seconds")
        if partner.away_since is not None and link_mark(state) is v.LinkMark.PARTNER_OFFLINE
        else None,
        "prompt": {"id": prompt.id, "text": prompt.text, "practice": prompt.practice.value}
        if prompt is not None else None,
        "today": counters.today_on(state.wall.date()),
        "sent_total": counters.sent_total,
        "received_total": counters.received_total,
        "pending": counters.pending,
        "streak": counters.streak_on(state.wall.date()),
        "together_total": counters.together_total,
        "outbox": partner.outbox,
        "quiet": is_night(state),
        "screen": state.screen.mode.value,
        "pairing": pairing_report(state, now),
        "history": [list(day) for day in counters.history],
        "storage": state.storage,
    }
