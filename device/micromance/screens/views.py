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
    partner: str = ""          # the partner's name, for the status words ("" : "Partner")
    away_since: str = ""       # PARTNER_OFFLINE: since when, e.g. "18:05", "yesterday 21:40"
    pending_when: str = ""     # when the oldest waiting thank-you came, once it waited 10 min


@dataclass(frozen=True)
class SentView:
    seen: bool = False         # False: "Sent ♥" (queued or delivered); True: "Seen ✓"
    queued: bool = False       # True when the link is down and the press waits in the outbox
    seen_when: str = ""        # with ``seen``: when, e.g. "just now", "2 h ago"


@dataclass(frozen=True)
class ReceivedView:
    sender: str
    frame: int = 0             # animation frame, 0 .. RECEIVED_FRAMES - 1 (last one is still)
    count: int = 1             # unacknowledged thank-yous from the partner
    when: str = ""             # when it came, once it waited more than 10 minutes


@dataclass(frozen=True)
class TogetherView:
    """Both pressed THANKS within minutes of each other: two hearts meet."""

    partner: str
    frame: int = 0             # animation frame, 0 .. TOGETHER_FRAMES - 1 (last one is still)


@dataclass(frozen=True)
class WeekView:
    """The last seven days of thank-yous (both ways) as bars, and the gesture streak."""

    days: tuple[int, ...]      # oldest first; the last is today
    weekday: int               # today's weekday, 0 = Monday
    streak: int = 0


@dataclass(frozen=True)
class HelpView:
    """What the two buttons do."""

    page: int = 0              # compact panels show it in two pages (wraps around)


@dataclass(frozen=True)
class DoneView:
    streak: int                # consecutive days with a gesture marked done, including today


@dataclass(frozen=True)
class PairingView:
    phase: PairingPhase
    code: str = ""             # six digits, shown in CODE and WAITING
    detail: str = ""           # one short line for FAILED (e.g. "codes did not match")


@dataclass(frozen=True)
class AccessCodeView:
    """The web page's access code: six digits to type into the page, read off the unit."""

    code: str
    caption: str = "Web page code"


@dataclass(frozen=True)
class ProblemView:
    reason: str                # one line, e.g. "No broker", "Not paired", "Config error"
    detail: str = ""           # optional second line, e.g. a config key


@dataclass(frozen=True)
class ProgressView:
    """A long job with no keyboard at hand (the first-boot install): step of total, words."""

    title: str                 # e.g. "Installing"
    step: int                  # the step running now, 1 .. total
    total: int
    detail: str = ""           # what the step does, e.g. "the Python packages"


@dataclass(frozen=True)
class QuietView:
    """Quiet hours: dark screen, or a tiny dim mark when something waits for the morning."""

    pending: int = 0


View = (HomeView | SentView | ReceivedView | DoneView | PairingView | ProblemView | QuietView
        | TogetherView | WeekView | HelpView | AccessCodeView | ProgressView)

#: Frames of the Received heart animation; the core advances ``ReceivedView.frame``.
RECEIVED_FRAMES = 6
#: Frames of the Together animation (two hearts meet); the core advances its ``frame``.
TOGETHER_FRAMES = 8


@dataclass(frozen=True)
class Frame:
    """A view plus the OLED-care pixel shift applied to the whole image."""

    view: View
    shift: tuple[int, int] = (0, 0)
