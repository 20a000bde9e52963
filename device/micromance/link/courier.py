"""The partner, as the runtime carries out the core's link commands: pair, outbox, MQTT.

The core decides *that* a thank-you is sent, acknowledged or dropped; this class does the
bookkeeping that makes it reliable: durable sequence numbers, the outbox written in the same
commit as the counters, publishing only once that commit is on the disk, redelivery from the
outbox, and swapping the whole link when the pair changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from micromance.config import Config
from micromance.core import events as ev
from micromance.core.counters import Counters
from micromance.link.pair_file import Pair, forget_pair, load_pair, save_pair
from micromance.protocol import Message, ReplayWindow
from micromance.store import Store

log = logging.getLogger("micromance")

#: Runs an action once the current store transaction is committed.
Later = Callable[[Callable[[], None]], None]


class Courier:
    """This unit's pair (if any) and its live connection to the partner."""

    def __init__(self, config: Config, store: Store, device_id: str, post: Callable[..., None],
                 wake: Callable[[], None], later: Later,
                 client_factory: Callable[..., Any] | None = None) -> None:
        self._config = config
        self._store = store
        self._device_id = device_id
        self._post = post
        self._wake = wake
        self._later = later
        self._client_factory = client_factory
        self.pair = load_pair(config.state_dir)
        if self.pair is not None and self.pair.device_id != device_id:
            log.warning("pair.json belongs to device %s, not this one (%s): ignoring it",
                        self.pair.device_id, device_id)
            self.pair = None
        self.link: Any = None

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
        if self.pair is None:
            return
        from micromance.link.mqtt import MqttLink

        self.link = MqttLink(self._config.broker, self.pair, self._post, wake=self._wake,
                             client_factory=self._client_factory)
        self.link.start()

    def disconnect(self) -> None:
        if self.link is not None:
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
        self._later(self._reconnect)

    def _reconnect(self) -> None:
        self.disconnect()
        self.connect()

    # --- messages (inside the step's transaction) ----------------------------------------

    def message(self, kind: str, wall: datetime, counters: Counters, **fields: Any) -> Message:
        """A plaintext message stamped with a fresh, durable sequence number."""
        seq = self._store.next_seq()
        if kind in ("done", "state"):
            fields["streak"] = counters.streak
        if kind == "state":
            fields["last_seq"] = seq
        return Message(type=kind, sender=self._device_id, seq=seq,
                       time=wall.isoformat(timespec="seconds"), name=self._config.device.name,
                       sent_total=counters.sent_total, **fields)

    def send_reliably(self, kind: str, wall: datetime, counters: Counters) -> None:
        """Into the outbox (same commit as the counters), published once that is durable."""
        if self.pair is None:
            return
        message = self.message(kind, wall, counters)
        self._store.outbox_add(message.seq, self.pair.pair_id, kind, message.to_plaintext(),
                               wall.isoformat(timespec="seconds"))
        self._later(lambda: self.publish(message))
        self._later(self.announce_outbox)

    def send_once(self, kind: str, wall: datetime, counters: Counters, *,
                  retained: bool = False, **fields: Any) -> None:
        """Acks and the retained summary: not kept, the next redelivery or reconnect repeats."""
        if self.pair is None:
            return
        message = self.message(kind, wall, counters, **fields)
        self._later(lambda: self.publish(message, retained=retained))

    def delivered(self, seqs: tuple[int, ...]) -> None:
        if self.pair is None:
            return
        count = self._store.outbox_remove(self.pair.pair_id, seqs)
        if count:
            log.info("partner confirmed %d message(s)", count)
            self._later(self.announce_outbox)

    def save_window(self, window_json: str) -> None:
        if self.pair is not None:
            self._store.save_window(self.pair.pair_id, self.pair.partner_id, window_json)

    # --- after the commit -------------------------------------------------------------------

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
