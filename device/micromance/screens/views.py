"""View models: everything a screen needs to draw itself, and nothing else.

The core decides *what* is shown by producing one of these frozen values; ``screens.render``
decides *how* it looks. Two equal views give identical images, so the runtime redraws only
when the view (or the OLED-care pixel shift) changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Practice(Enum):
    """The seven practices of micro-mancing (see docs/prompts.md); value = config key."""

    PRESENT = "present"
    REINFORCE = "reinforce"
    CLOSENESS = "closeness"
    DELIGHT = "delight"
    CALM = "calm"
    AFFIRM = "affirm"
    ATTUNE = "attune"

    @property
    def label(self) -> str:
        return _PRACTICE_LABELS[self]


_PRACTICE_LABELS = {
    Practice.PRESENT: "Be present",
    Practice.REINFORCE: "Reinforce the good",
    Practice.CLOSENESS: "Small gestures",
    Practice.DELIGHT: "Surprise & delight",
    Practice.CALM: "Calm in conflict",
    Practice.AFFIRM: "Affirmation",
    Practice.ATTUNE: "Attunement",
}


class LinkMark(Enum):
    """What the home screen says about the partner link (OK shows nothing)."""

    OK = "ok"
    NOT_PAIRED = "not_paired"
    BROKER_UNREACHABLE = "broker_unreachable"
    PARTNER_OFFLINE = "partner_offline"


class PairingPhase(Enum):
    SEARCHING = "searching"
    CODE = "code"              # compare the code; THANKS = match, NEXT = cancel
    WAITING = "waiting"        # we confirmed, waiting for the partner to confirm
    CONFIRMED = "confirmed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class HomeView:
    prompt: str
    practice: Practice
    today: int                 # thank-yous exchanged today (both directions)
    total: int                 # all-time total (both directions)
    link: LinkMark = LinkMark.OK
    page: int = 0              # which page of a long prompt (wraps around)
    focus: bool = False        # the morning "focus of the day"
    pending: int = 0           # received thank-yous not yet looked at (shown after quiet hours)


@dataclass(frozen=True)
class SentView:
    seen: bool = False         # False: "Sent ♥" (queued or delivered); True: "Seen ✓"
    queued: bool = False       # True when the link is down and the press waits in the outbox


@dataclass(frozen=True)
class ReceivedView:
    sender: str
    frame: int = 0             # animation frame, 0 .. RECEIVED_FRAMES - 1 (last one is still)
    count: int = 1             # unacknowledged thank-yous from the partner


@dataclass(frozen=True)
class DoneView:
    streak: int                # consecutive days with a gesture marked done, including today


@dataclass(frozen=True)
class PairingView:
    phase: PairingPhase
    code: str = ""             # six digits, shown in CODE and WAITING
    detail: str = ""           # one short line for FAILED (e.g. "codes did not match")


@dataclass(frozen=True)
class ProblemView:
    reason: str                # one line, e.g. "No broker", "Not paired", "Config error"
    detail: str = ""           # optional second line, e.g. a config key


@dataclass(frozen=True)
class QuietView:
    """Quiet hours: dark screen, or a tiny dim mark when something waits for the morning."""

    pending: int = 0


View = HomeView | SentView | ReceivedView | DoneView | PairingView | ProblemView | QuietView

#: Frames of the Received heart animation; the core advances ``ReceivedView.frame``.
RECEIVED_FRAMES = 6


@dataclass(frozen=True)
class Frame:
    """A view plus the OLED-care pixel shift applied to the whole image."""

    view: View
    shift: tuple[int, int] = (0, 0)
