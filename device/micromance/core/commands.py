"""Commands: what the core asks the adapters to do. Plain values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from micromance.core.counters import Counters
from micromance.protocol.pairing import PairResult
from micromance.screens.views import Frame


class LightMode(Enum):
    OFF = "off"
    PULSE = "pulse"      # a thank-you is waiting
    ON = "on"            # steady for a moment: your press was taken


@dataclass(frozen=True)
class ShowFrame:
    frame: Frame


@dataclass(frozen=True)
class SetContrast:
    level: int


@dataclass(frozen=True)
class SetPanelPower:
    on: bool


@dataclass(frozen=True)
class SetLight:
    mode: LightMode


@dataclass(frozen=True)
class SendThanks:
    """Record (durably, first) and deliver one thank-you carrying our new running total."""

    total: int


@dataclass(frozen=True)
class SendSeen:
    """Tell the partner we looked at their thank-you(s)."""


@dataclass(frozen=True)
class SendDone:
    streak: int


@dataclass(frozen=True)
class SendAck:
    """End-to-end acknowledgement of partner messages (fire and forget: redelivery re-acks)."""

    seqs: tuple[int, ...]


@dataclass(frozen=True)
class DropFromOutbox:
    """The partner acknowledged these of our messages: they are delivered for good."""

    seqs: tuple[int, ...]


@dataclass(frozen=True)
class Redeliver:
    """Publish everything still in the outbox again."""


@dataclass(frozen=True)
class PublishState:
    """Refresh our retained, sealed summary (totals) for the partner's next reconnect."""


@dataclass(frozen=True)
class SaveWindow:
    """Persist the replay window, so a replay is refused after a restart too."""

    window_json: str


@dataclass(frozen=True)
class NoteRejected:
    """A message was dropped; ``first`` when this reason was not seen before (log it)."""

    reason: str
    first: bool
    total: int


@dataclass(frozen=True)
class SaveCounters:
    """Persist the counters (only emitted when they changed: no writes while idle)."""

    counters: Counters


@dataclass(frozen=True)
class SaveRotation:
    """Persist the shuffle bag and the prompt on screen, so a restart continues the cycle."""

    bag_json: str
    prompt_id: str
    draws: int


@dataclass(frozen=True)
class StartPairing:
    """Open the rendezvous on the broker (then answer with ``PairingBegin``)."""


@dataclass(frozen=True)
class PublishPairing:
    payload: bytes


@dataclass(frozen=True)
class SavePair:
    """Pairing confirmed on both units: keep the pair and switch the link to it."""

    result: PairResult


@dataclass(frozen=True)
class StopPairing:
    """Close the rendezvous: the attempt is over and its result was shown."""


@dataclass(frozen=True)
class ForgetPair:
    """The partner unpaired: drop the pair key and everything waiting for that partner."""


Command = (
    ShowFrame | SetContrast | SetPanelPower | SetLight | SendThanks | SendSeen | SendDone
    | SendAck | DropFromOutbox | Redeliver | PublishState | SaveWindow | NoteRejected
    | SaveCounters | SaveRotation | StartPairing | PublishPairing | SavePair | StopPairing
    | ForgetPair
)
