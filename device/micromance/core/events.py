"""Events: everything that can happen to a unit, stamped with the injected clock.

Adapters create these on their own threads and put them on the runtime's one queue; only the
core interprets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from micromance.protocol import Message

if TYPE_CHECKING:  # state.py imports this module (LinkState)
    from micromance.core.state import Settings


class Button(Enum):
    THANKS = "thanks"
    NEXT = "next"


class Gesture(Enum):
    """What a person meant, after press and hold timing was measured."""

    THANKS_PRESS = "thanks_press"
    THANKS_HOLD = "thanks_hold"
    NEXT_PRESS = "next_press"
    NEXT_HOLD = "next_hold"      # 2 s: mark today's gesture done
    BOTH_PRESS = "both_press"    # both pressed together and let go before 5 s: your week
    BOTH_HOLD = "both_hold"      # 5 s: pairing


@dataclass(frozen=True, kw_only=True)
class Event:
    at: float                    # monotonic seconds: durations, timeouts
    wall: datetime               # aware local time: calendar, quiet hours


@dataclass(frozen=True, kw_only=True)
class ButtonDown(Event):
    button: Button


@dataclass(frozen=True, kw_only=True)
class ButtonUp(Event):
    button: Button


@dataclass(frozen=True, kw_only=True)
class GestureInput(Event):
    """A whole gesture at once, from ``--input stdin`` (no edges to time)."""

    gesture: Gesture


@dataclass(frozen=True, kw_only=True)
class Tick(Event):
    """A moment the core asked for (``next_deadline``) has come."""


@dataclass(frozen=True, kw_only=True)
class RotatePrompt(Event):
    """The prompt interval elapsed (from the scheduler)."""


@dataclass(frozen=True, kw_only=True)
class MorningFocus(Event):
    """The daily focus time came (from the scheduler)."""


class LinkState(Enum):
    CONNECTED = "connected"
    CONNECTING = "connecting"
    OFFLINE = "offline"


@dataclass(frozen=True, kw_only=True)
class BrokerChanged(Event):
    """One of the unit's brokers connected, or is not usable (``error`` says why)."""

    broker: int                  # its index in the unit's list
    where: str                   # host:port, for status
    connected: bool
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Delivery(Event):
    """A message from the partner, already opened and authenticated by the link adapter.

    The core still decides whether it is new (replay window) and what it means.
    """

    message: Message
    broker: int = 0              # which of the unit's brokers it came through


@dataclass(frozen=True, kw_only=True)
class Rejected(Event):
    """The link adapter dropped a message it could not authenticate or parse."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class OldPairMessage(Event):
    """A message on a topic that is none of the partner's: traffic of a pair this unit no
    longer belongs to (the broker session still held its subscriptions). Routine after a
    re-pairing, not an attack: dropped without a word, counted apart from rejections."""


@dataclass(frozen=True, kw_only=True)
class StorageFailed(Event):
    """A step could not be committed (disk full, read-only storage): it did not happen."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class StorageRecovered(Event):
    """A test write succeeded again."""


@dataclass(frozen=True, kw_only=True)
class OutboxChanged(Event):
    """How many of our thank-yous still wait for the partner's end-to-end ack."""

    size: int


@dataclass(frozen=True, kw_only=True)
class PairingBegin(Event):
    """The runtime opened the rendezvous; here is fresh randomness for this attempt."""

    entropy: bytes


@dataclass(frozen=True, kw_only=True)
class PairingMessage(Event):
    """A payload from the pairing rendezvous topic (untrusted: the core validates it)."""

    payload: bytes


# --- requests from the control socket (the CLI, the web page) ------------------------------


@dataclass(frozen=True, kw_only=True)
class PairingRequested(Event):
    """Start pairing in the room with this topic ("": the config's room), as holding both
    buttons does; an attempt under way is cancelled first."""

    topic: str = ""


@dataclass(frozen=True, kw_only=True)
class PairingAnswer(Event):
    """The code was compared elsewhere: ``confirm`` as THANKS on the pairing screen, else
    cancel as NEXT. Nothing happens outside pairing (it is never a thank-you)."""

    confirm: bool


@dataclass(frozen=True, kw_only=True)
class ForgetRequested(Event):
    """Unpair: tell the partner (sealed ``unpair``) and drop the pair."""


@dataclass(frozen=True, kw_only=True)
class SettingsChanged(Event):
    """The config was reloaded: these settings from now on. ``brokers_changed`` when the
    link was re-opened on another broker list (what the old brokers said is forgotten)."""

    settings: Settings
    brokers_changed: bool = False


@dataclass(frozen=True, kw_only=True)
class ShowCode(Event):
    """Show the web page's access code on the screen for ``seconds``."""

    code: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class HideCode(Event):
    """Take the access code off the screen (a login succeeded, or it was cancelled)."""
