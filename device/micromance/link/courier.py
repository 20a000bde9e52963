"""The courier: carries this unit's messages to the partner, reliably.

The core decides *that* a thank-you is sent, acknowledged or dropped; the courier does the
bookkeeping that makes it reliable: durable sequence numbers, the outbox written in the same
commit as the counters, publishing only once that commit is on the disk, redelivery from the
outbox, and swapping the whole MQTT link when the pair changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from micromance.config import Config
from micromance.core import events as ev
from micromance.errors import StoreError
from micromance.link.pair_file import Pair, forget_pair, load_pair, save_pair
from micromance.protocol import Message, MessageType, ReplayWindow, Topics
from micromance.store import Store

if TYPE_CHECKING:
    from micromance.link.mqtt import MqttLink

log = logging.getLogger("micromance")

#: The kv row naming the pair whose subscriptions the broker's persistent session (client id
#: ``micromance-<device id>``) holds and whose retained topics are ours there. Written once
#: per pair change, when the new pair's first clean session has settled.
BROKER_SESSION_KEY = "broker_session"


class Courier:
    """This unit's pair (if any) and its live connection to the partner."""

    def __init__(self, config: Config, store: Store, device_id: str, post: Callable[..., None],
                 wake: Callable[[], None],
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._config = config
        self._store = store
        self._device_id = device_id
        self._post = post
        self._wake = wake
        self._client_factory = client_factory
        self.pair = load_pair(config.state_dir)
        if self.pair is not None and self.pair.device_id != device_id:
            # Store.device_id() follows pair.json, so this is a caller's mistake; running
            # unpaired while status says paired is not an option.
            raise StoreError(f"pair.json belongs to device {self.pair.device_id}, not "
                             f"{device_id}", fix="run micromance repair")
        self.link: MqttLink | None = None

    @property
    def pair_id(self) -> str:
        return self.pair.pair_id if self.pair else ""

    # --- what the core needs at start-up -------------------------------------------------

    def replay_window(self) -> ReplayWindow:
        if self.pair is None:
            return ReplayWindow()
        text = self._store.load_window(self.pair.pair_id, self.pair.partner_id)
        if not text:
            return ReplayWindow()
        try:
            return ReplayWindow.from_json(text)
        except ValueError:
            # A fresh window may let an old message act once more; the totals it carries
            # are grow-only, so nothing is double counted.
            log.warning("replay window unreadable; starting a fresh one")
            return ReplayWindow()

    def outbox_size(self) -> int:
        return self._store.outbox_size(self.pair.pair_id) if self.pair else 0

    # --- the connection -------------------------------------------------------------------

    def connect(self) -> None:
        """A link for the pair. If the broker session is another pair's (the pair changed,
        perhaps while offline or stopped), the link starts a clean session and clears what
        that pair left retained; it then records the session as this pair's."""
        if self.pair is None:
            return
        from micromance.link.mqtt import MqttLink  # paho and TLS only once there is a pair

        pair_id = self.pair.pair_id
        session = self._store.get(BROKER_SESSION_KEY)
        leftovers = None
        if session and session != pair_id:
            try:
                leftovers = Topics(session, self._device_id)
            except ValueError:
                log.warning("unreadable %s in the store: starting a clean session",
                            BROKER_SESSION_KEY)

        def settled() -> None:
            self._store.put(BROKER_SESSION_KEY, pair_id)

        self.link = MqttLink(self._config.broker, self.pair, self._post,
                             next_seq=self._store.next_seq, name=self._config.device.name,
                             wake=self._wake, client_factory=self._client_factory,
                             fresh_session=session != pair_id, leftovers=leftovers,
                             on_settled=settled)
        self.link.start()

    def disconnect(self, *, leave: bool = False) -> None:
        """Stop the link; with ``leave`` (a pair change) take its pair off the broker first."""
        if self.link is not None:
            if leave:
                self.link.leave()
            else:
                self.link.stop()
            self.link = None

    def switch(self, pair: Pair | None) -> None:
        """Replace the pair (or drop it): key on disk first, old outbox gone, new link later."""
        old = self.pair
        if pair is not None:
            save_pair(self._config.state_dir, pair)
            log.info("paired with %s (pair %s)", pair.partner_id, pair.pair_id[:8])
        else:
            forget_pair(self._config.state_dir)
        if old is not None:
            dropped = self._store.outbox_clear(old.pair_id)
            if dropped:
                log.info("%d message(s) for the previous partner dropped", dropped)
        self.pair = pair
        self._store.after_commit(self._reconnect)

    def _reconnect(self) -> None:
        self.disconnect(leave=True)
        self.connect()

    # --- messages (inside the step's transaction) ----------------------------------------

    def message(self, kind: MessageType, wall: datetime, *, sent_total: int,
                streak: int = 0, seqs: tuple[int, ...] = (), seen_seq: int = 0,
                seen_total: int = 0) -> Message:
        """A plaintext message stamped with a fresh sequence number (never used before)."""
        seq = self._store.next_seq()
        return Message(type=kind, sender=self._device_id, seq=seq,
                       time=wall.isoformat(timespec="seconds"), name=self._config.device.name,
                       sent_total=sent_total, seqs=seqs, seen_seq=seen_seq,
                       seen_total=seen_total,
                       streak=streak if kind in (MessageType.DONE, MessageType.STATE) else 0,
                       last_seq=seq if kind is MessageType.STATE else 0)

    def send_reliably(self, kind: MessageType, wall: datetime, *, sent_total: int,
                      streak: int = 0) -> None:
        """Into the outbox (same commit as the counters), published once that is durable."""
        if self.pair is None:
            return
        message = self.message(kind, wall, sent_total=sent_total, streak=streak)
        self._store.outbox_add(message.seq, self.pair.pair_id, kind, message.to_plaintext(),
                               wall.isoformat(timespec="seconds"))
        self._store.after_commit(lambda: self.publish(message))
        self._store.after_commit(self.announce_outbox)

    def send_once(self, kind: MessageType, wall: datetime, *, sent_total: int, streak: int = 0,
                  seqs: tuple[int, ...] = (), seen_seq: int = 0, seen_total: int = 0,
                  retained: bool = False) -> None:
        """Acks, resyncs and the retained summary: not kept, the next redelivery or
        reconnect repeats them."""
        if self.pair is None:
            return
        message = self.message(kind, wall, sent_total=sent_total, streak=streak, seqs=seqs,
                               seen_seq=seen_seq, seen_total=seen_total)
        self._store.after_commit(lambda: self.publish(message, retained=retained))

    def delivered(self, seqs: tuple[int, ...]) -> None:
        if self.pair is None:
            return
        count = self._store.outbox_remove(self.pair.pair_id, seqs)
        if count:
            log.info("partner confirmed %d message(s)", count)
            self._store.after_commit(self.announce_outbox)

    def save_window(self, window_json: str) -> None:
        if self.pair is not None:
            self._store.save_window(self.pair.pair_id, self.pair.partner_id, window_json)

    # --- after the commit -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """A broker is connected now (what is sent goes out at once, not only queued)."""
        return self.link is not None and self.link.connected

    def publish(self, message: Message, retained: bool = False) -> None:
        """Hand a message to the link, if there is one now (the outbox covers the gaps)."""
        if self.link is None:
            return
        if retained:
            self.link.publish_state(message)
        else:
            self.link.publish(message)

    def redeliver(self) -> None:
        if self.pair is None or self.link is None or not self.link.connected:
            return
        waiting = self._store.outbox(self.pair.pair_id)
        for _, text in waiting:
            self.publish(Message.from_plaintext(text))
        if waiting:
            log.info("redelivered %d message(s) awaiting the partner's confirmation",
                     len(waiting))

    def announce_outbox(self) -> None:
        self._post(ev.OutboxChanged, size=self.outbox_size())
