"""The unit's state: one immutable value, grouped into small records, and the facts derived
from it that both the transitions (``machine``) and the screen (``view``) need.

Nothing here changes anything: ``machine.step`` makes new states with ``core.records.evolve``
(a quick ``replace``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from micromance.core.buttons import Buttons
from micromance.core.commands import HomeFacts, LightMode, LiveFacts
from micromance.core.counters import Counters
from micromance.core.events import LinkState
from micromance.core.prompts import Prompt, ShuffleBag
from micromance.core.quiet import QuietHours
from micromance.core.when import stamp
from micromance.protocol import ReplayWindow, pairing
from micromance.screens import views as v

SENT_SECONDS = 4.0          # how long "Sent ♥" / "Seen ✓" stays up
DONE_SECONDS = 4.0
TOGETHER_SECONDS = 10.0     # the shared moment ("Together") stays up this long...
WEEK_SECONDS = 30.0         # ...the week at a glance...
HELP_SECONDS = 60.0         # ...and the button help (two pages on a 128x32 panel)
MISSED_AFTER = 600.0        # a thank-you that waited longer than this says when it came
PAIRING_RESULT_SECONDS = 6.0
ACCESS_CODE_SECONDS = 600.0  # the longest an access code may stay on the screen
FLASH_SECONDS = 0.15        # the light's "press taken" blink (the loop turns it off)
PREPARED_SECONDS = 1.0      # a thank-you prepared at the press is dropped if held longer
FRAME_SECONDS = 0.12        # heart animation: about 8 frames a second, then still
PEEK_SECONDS = 30.0         # a button during quiet hours lights the screen this long
PAGE_SECONDS = 30.0         # long prompts turn a page this often, on the half minute
REDELIVER_FIRST = 20.0      # unacknowledged messages go out again after this long...
REDELIVER_MAX = 900.0       # ...doubling each time up to this
REDELIVER_MIN_GAP = 10.0    # and never more often than this, whatever arrives
REACK_SECONDS = 5.0         # duplicates are acknowledged again at most this often, in one ack
REACK_AFTER = 2.0           # ...and not at all when they are moments old (another broker's)
RECENT_ACCEPTS = 32         # the partner's latest messages remembered for that
STORAGE_RETRY_SECONDS = 30.0   # a failed commit: try a small write this often until it works
#: A partner numbers its messages from its wall clock (``SEQS_PER_SECOND``): a seq further
#: ahead of ours than this (a year, for a clock not yet set) is not plausible.
CLOCK_SLACK_SECONDS = 366 * 24 * 3600.0
#: A message may raise a total we know by at most this much: more thank-yous than a unit
#: ever holds back (a total we do not know yet, after pairing or a lost store, is only capped
#: by ``MAX_TOTAL``).
MAX_RISE = 10_000
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
    home_assistant: bool = False  # report HomeFacts (only when the unit has it switched on)


class Mode(Enum):
    """What the screen is busy with; HOME is the resting state every other mode returns to."""

    HOME = "home"
    SENT = "sent"
    RECEIVED = "received"
    DONE = "done"
    PAIRING = "pairing"
    TOGETHER = "together"    # both pressed THANKS within minutes: the shared moment
    WEEK = "week"            # the last seven days at a glance
    HELP = "help"            # what the buttons do
    ACCESS_CODE = "access_code"  # the web page's access code, big, for a while


@dataclass(frozen=True)
class Screen:
    """The person's side: which mode shows since when, and the moments that light things."""

    mode: Mode = Mode.HOME
    since: float = 0.0                 # when the mode began (animations count from here)
    until: float | None = None         # when it falls back (None: until something happens)
    seen: bool = False                 # the Sent screen says "Seen ✓"
    problem: v.ProblemView | None = None   # a notice on the home screen until the next press
    last_activity: float = 0.0         # the panel dims this long after it
    peek_until: float | None = None    # a press in quiet hours lights the screen until then
    flash_until: float | None = None   # the light's "press taken" blink
    pending_since: float | None = None  # a thank-you waits: the light pulses from then on
    was_quiet: bool = False            # inside quiet hours at the last step
    seen_at: datetime | None = None    # the partner saw our thanks then (the Seen screen)
    together_light_at: float | None = None  # the together light's heartbeats began then
    access_code: str = ""              # ACCESS_CODE: the six digits shown


@dataclass(frozen=True)
class Rotation:
    """The prompt on screen and where the shuffle bag stands."""

    prompt: Prompt | None = None
    page_origin: int = 0               # the half minute the prompt appeared (page 0)
    focus: bool = False                # the morning "focus of the day"
    bag: ShuffleBag = field(default_factory=lambda: ShuffleBag.fresh((), 0))
    draws: int = 0                     # seeds the shuffle, so rotation is reproducible
    change_due: float | None = None    # a calendar change waits for the next half minute...
    change_focus: bool = False         # ...and is the morning focus


@dataclass(frozen=True)
class BrokerLink:
    """One of the unit's brokers, as the link reported it, and the partner as seen there."""

    index: int
    where: str = ""                    # host:port, for status
    connected: bool = False
    error: str = ""                    # why not, in a few words
    presence_seq: int = 0              # the newest presence of the partner seen here...
    partner_online: bool | None = None  # ...and what it said
    redelivered_at: float | None = None


@dataclass(frozen=True)
class Partner:
    """What this unit knows of its partner and of the links to it.

    ``link`` and ``online`` sum up ``links``: connected when any broker is, the partner
    online when it is online on any broker.
    """

    paired: bool = False
    link: LinkState = LinkState.OFFLINE
    online: bool | None = None         # None: not heard of since start (or since pairing)
    away_since: datetime | None = None  # when ``online`` turned False (None: not seen to)
    outbox: int = 0                    # our messages still waiting for the partner's ack
    window: ReplayWindow = field(default_factory=ReplayWindow)
    redeliver_at: float | None = None
    redeliver_backoff: float = REDELIVER_FIRST
    last_redeliver: float | None = None
    links: tuple[BrokerLink, ...] = ()
    accepted: tuple[tuple[int, float], ...] = ()   # (seq, at) of the partner's latest messages
    duplicates: int = 0                # copies of what we had (another broker's, a replay)
    reack: tuple[int, ...] = ()        # partner seqs that came again, to acknowledge again...
    reack_at: float | None = None      # ...not before this (one ack for a whole burst)
    told_seq: int = 0                  # the partner's last summary ours answered
    told: tuple[int, ...] = ()         # what our last published summary said (its numbers)
    run_first_seq: int = 0             # our first seq this run (0: not known, no catching up)
    start_total: int = 0               # our sent total when this run started
    lost_added: int = 0                # thank-yous our store forgot, added back this run
    rejected: int = 0
    rejected_reasons: frozenset[str] = frozenset()
    old_pair: int = 0                  # messages of a pair we no longer belong to (dropped)


@dataclass(frozen=True)
class PairingOutcome:
    """How the last pairing attempt ended, and when (the control socket reports it a while
    after the screen moved on, so a client polling it does not miss it)."""

    phase: pairing.Phase
    detail: str
    at: float


@dataclass(frozen=True)
class Outputs:
    """What the adapters were last told, so only changes are sent."""

    frame: v.Frame | None = None
    light: LightMode | None = None
    contrast: int | None = None
    panel_on: bool | None = None
    live: LiveFacts | None = None
    home: HomeFacts | None = None


@dataclass(frozen=True)
class PreparedPress:
    """What a THANKS release would count, worked out while the button is down: it holds for
    the very ``base`` counters it was worked out from and for the second ``press``."""

    base: Counters
    press: str                # the press's time, to the second (``when.stamp``)
    counters: Counters        # ``base`` with the thank-you counted
    together: bool            # it makes a "Together" moment
    until: float              # by then ``press``'s second has surely passed: dropped

    def holds(self, counters: Counters, wall: datetime) -> bool:
        """Still the counting a release at ``wall`` on ``counters`` would make."""
        return self.base is counters and self.press == stamp(wall)


@dataclass(frozen=True)
class State:
    settings: Settings
    at: float                          # the injected clock's monotonic reading
    wall: datetime                     # ...and its aware local time
    counters: Counters = field(default_factory=Counters)
    buttons: Buttons = field(default_factory=Buttons)
    screen: Screen = Screen()
    rotation: Rotation = field(default_factory=Rotation)
    partner: Partner = field(default_factory=Partner)
    session: pairing.Session | None = None   # a pairing attempt in progress
    pairing_outcome: PairingOutcome | None = None   # how the last attempt ended
    storage: str = ""                  # why the last commit failed ("" while saving works)
    storage_retry_at: float | None = None
    outputs: Outputs = Outputs()
    prepared: PreparedPress | None = None   # while THANKS is down alone

    @property
    def pending(self) -> int:
        return self.counters.pending

    @property
    def sender(self) -> str:
        return self.counters.partner_name


# --- facts derived from the state ---------------------------------------------------------


def is_night(state: State) -> bool:
    """Inside quiet hours: the light never flashes, whatever happens."""
    return state.settings.quiet.contains(state.wall)


def is_quiet(state: State) -> bool:
    """Quiet and nobody peeking: the screen stays dark or minimal."""
    return is_night(state) and state.screen.peek_until is None


def is_pulsing(state: State) -> bool:
    """A thank-you waits and its light has not timed out."""
    since = state.screen.pending_since
    return (state.pending > 0 and since is not None
            and state.at < since + state.settings.received_timeout)


def is_flashing(state: State) -> bool:
    until = state.screen.flash_until
    return until is not None and state.at < until


def is_bright(state: State) -> bool:
    return state.at < state.screen.last_activity + state.settings.dim_after


def panel_on(state: State) -> bool:
    return not is_quiet(state) or state.pending > 0


def half_minutes(wall: datetime) -> int:
    return int(wall.timestamp() // PAGE_SECONDS)


def animation_frame(state: State, frames: int = v.RECEIVED_FRAMES) -> int:
    elapsed = max(0.0, state.at - state.screen.since)
    # The epsilon absorbs float error, so waking at a frame's deadline shows that frame.
    return min(int(elapsed / FRAME_SECONDS + 1e-6), frames - 1)


def animation_frames(state: State) -> int:
    """How many frames the mode on screen animates (1: none)."""
    mode = state.screen.mode
    if mode is Mode.RECEIVED:
        return v.RECEIVED_FRAMES
    return v.TOGETHER_FRAMES if mode is Mode.TOGETHER else 1
