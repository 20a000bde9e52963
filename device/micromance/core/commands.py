"""Commands: what the core asks the adapters to do. Plain values, no behaviour.

Each command carries everything needed to carry it out: the executor never reads the core's
state after the step. Two marker bases tell the executor how to order a step's commands:

- :class:`Durable` commands write the store; all of a step's durable commands are carried out
  in one transaction, and whatever they publish goes out only once it is committed.
- :class:`News` commands are durable messages for the partner that wait in the outbox until
  the partner acknowledges them (a step that sends news lights the LED after publishing).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from micromance.core.counters import Counters
from micromance.protocol.pairing import PairResult
from micromance.protocol.replay import ReplayWindow
from micromance.screens.views import Frame


class LightMode(Enum):
    OFF = "off"
    PULSE = "pulse"      # a thank-you is waiting
    ON = "on"            # steady for a moment: your press was taken


@dataclass(frozen=True)
class LiveFacts:
    """What ``micromance status`` shows of a running unit (written to status.json)."""

    link: str            # connected, connecting, offline
    partner: str         # online, offline, unknown
    partner_name: str
    outbox: int
    rejected: int
    duplicates: int = 0
    old_pair: int = 0    # messages of a pair this unit no longer belongs to, dropped
    #: (host:port, connected, last error) of each broker, in the unit's order.
    brokers: tuple[tuple[str, bool, str], ...] = ()


@dataclass(frozen=True)
class HomeFacts:
    """What the home's automation may see of the unit (Home Assistant's entities): counts,
    today's gesture, the partner's presence. Nothing of the pair, nothing sealed."""

    paired: bool
    sent_today: int
    received_today: int
    sent_total: int
    received_total: int
    together_total: int
    streak: int
    gesture: str
    partner_online: bool
    waiting: int


@dataclass(frozen=True)
class Durable:
    """Marker: writes the store, inside the step's one commit."""


@dataclass(frozen=True)
class News(Durable):
    """Marker: a message for the partner, kept in the outbox until it is acknowledged."""


# --- the panel and the screen ------------------------------------------------------------


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
class ReportLiveFacts:
    """The live facts changed: write status.json soon (once per burst)."""

    facts: LiveFacts


@dataclass(frozen=True)
class ReportHome:
    """What Home Assistant shows changed (only sent when the unit has it switched on)."""

    facts: HomeFacts


# --- the store ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SaveCounters(Durable):
    """Persist the counters (only emitted when they changed: no writes while idle)."""

    counters: Counters


@dataclass(frozen=True)
class SaveRotation(Durable):
    """Persist the shuffle bag and the prompt on screen, so a restart continues the cycle."""

    bag_json: str
    prompt_id: str
    draws: int


@dataclass(frozen=True)
class SaveWindow(Durable):
    """Persist the replay window, so a replay is refused after a restart too (the executor
    writes it as JSON: after the light, not before it)."""

    window: ReplayWindow


# --- the partner -------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareThanks:
    """THANKS went down alone: get ready now for the step its release will very likely be,
    ``SaveCounters(counters)`` and ``SendThanks(total)`` in this second: number and seal the
    thank-you, and write both in a transaction left open, so that the release only commits
    and publishes. Nothing is committed or sent; a release that asks for anything else
    (``total`` changed meanwhile, another second on the clock) rolls it back and does its own
    writes, and this message's seq stays unused."""

    counters: Counters

    @property
    def total(self) -> int:
        return self.counters.sent_total


@dataclass(frozen=True)
class DropPrepared:
    """What ``PrepareThanks`` got ready is not needed any more (used or not): roll back what
    is still open, so the store's write lock is not held on."""


@dataclass(frozen=True)
class SendThanks(News):
    """One thank-you carrying our new running total."""

    total: int


@dataclass(frozen=True)
class SendSeen(News):
    """Tell the partner we looked at their thank-you(s)."""

    sent_total: int


@dataclass(frozen=True)
class SendDone(News):
    streak: int
    sent_total: int


@dataclass(frozen=True)
class SendAck(Durable):
    """End-to-end acknowledgement of partner messages (fire and forget: redelivery re-acks).

    Durable because it takes a sequence number from the store."""

    seqs: tuple[int, ...]
    sent_total: int


@dataclass(frozen=True)
class PublishState(Durable):
    """Refresh our retained, sealed summary for the partner's next reconnect: our totals and
    what we saw of the partner (so a partner whose store went back in time catches up)."""

    sent_total: int
    streak: int
    seen_seq: int = 0
    seen_total: int = 0
    broker: int | None = None   # only on this broker (it just connected); None: on all
    #: Seqs to leave unused before this summary's: one per thank-you a catch-up added back,
    #: so the partner's bound holds (a total rises by at most as many as the seqs used).
    skip_seqs: int = 0


@dataclass(frozen=True)
class DropFromOutbox(Durable):
    """The partner acknowledged these of our messages: they are delivered for good."""

    seqs: tuple[int, ...]


@dataclass(frozen=True)
class Redeliver:
    """Publish everything still in the outbox again (on one broker, or on all)."""

    broker: int | None = None


@dataclass(frozen=True)
class CheckStorage:
    """Try a small write: has the storage recovered? (answered with an event)."""


@dataclass(frozen=True)
class NoteRejected:
    """A message was dropped; ``first`` when this reason was not seen before (log it)."""

    reason: str
    first: bool
    total: int


# --- pairing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartPairing:
    """Open the rendezvous on the broker (then answer with ``PairingBegin``): the room with
    ``topic``, or the config's room when it is ""."""

    topic: str = ""


@dataclass(frozen=True)
class PublishPairing:
    payload: bytes


@dataclass(frozen=True)
class StopPairing:
    """Close the rendezvous: the attempt is over and its result was shown."""


@dataclass(frozen=True)
class SavePair(Durable):
    """Pairing confirmed on both units: keep the pair and switch the link to it."""

    result: PairResult


@dataclass(frozen=True)
class SendUnpair(Durable):
    """Tell the partner we unpair (sealed ``unpair``, sealed now: the pair goes in the same
    step); published after the commit on every connected broker, not kept in the outbox."""

    sent_total: int


@dataclass(frozen=True)
class ForgetPair(Durable):
    """Drop the pair key and everything waiting for that partner: the partner unpaired, or
    (``ours``) this unit was asked to."""

    ours: bool = False


def thanks_writes(counters: Counters) -> list[Command]:
    """The durable commands of a thank-you of ours counted in ``counters``: the step that
    sends it asks for exactly these (and the press that prepares it rehearses them)."""
    return [SaveCounters(counters), SendThanks(total=counters.sent_total)]


Command = (
    ShowFrame | SetContrast | SetPanelPower | SetLight | ReportLiveFacts | ReportHome
    | SaveCounters | SaveRotation | SaveWindow
    | PrepareThanks | DropPrepared | SendThanks | SendSeen | SendDone | SendAck | PublishState
    | DropFromOutbox | Redeliver | NoteRejected | CheckStorage
    | StartPairing | PublishPairing | StopPairing | SavePair | SendUnpair | ForgetPair
)
