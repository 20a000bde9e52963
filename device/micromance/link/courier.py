"""The courier: carries this unit's messages to the partner, reliably, over every broker.

The core decides *that* a thank-you is sent, acknowledged or dropped; the courier does the
bookkeeping that makes it reliable: durable sequence numbers, the outbox written in the same
commit as the counters, publishing only once that commit is on the disk, redelivery from the
outbox, and swapping the links when the pair changes.

A unit uses several brokers at once (the ones its config names, else the ones the pair was
made with, else the shipped public ones): one MQTT link each. A message is sealed once and
published on every connected broker; the partner takes the first copy (its replay window
drops the others). So losing a broker, or its refusing or hanging, loses and delays nothing
while another one works.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from micromance.config import PUBLIC_BROKERS, BrokerConfig, Config
from micromance.core import events as ev
from micromance.errors import StoreError
from micromance.link.pair_file import Pair, forget_pair, load_pair, save_pair
from micromance.protocol import (
    Message,
    MessageType,
    Names,
    ReplayWindow,
    pair_names,
    seal,
    v1_retained_topics,
)
from micromance.store import Store

if TYPE_CHECKING:
    from micromance.link.mqtt import MqttLink

log = logging.getLogger("micromance")

#: The kv rows (one per broker, ``broker_session/<host>:<port>``) naming the pair whose
#: subscriptions that broker's persistent session holds and whose retained topics are ours
#: there. Written once per pair change and broker, when its first clean session has settled.
BROKER_SESSION_KEY = "broker_session"


class _Prepared(NamedTuple):
    """A thank-you numbered and sealed ahead (``Courier.prepare_thanks``), for one pair."""

    pair: Pair
    message: Message
    plaintext: str
    sealed: bytes


def brokers_for(config: Config, pair: Pair | None) -> tuple[BrokerConfig, ...]:
    """The brokers a unit uses: the config's, else those the pair was made with, else the
    shipped public ones."""
    return config.brokers or (pair.brokers if pair is not None else ()) or PUBLIC_BROKERS


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
        self.links: list[MqttLink] = []
        self._names: tuple[Names, Names] | None = None   # of self.pair: mine, the partner's
        self._prepared: _Prepared | None = None  # a thank-you sealed while THANKS is down
        #: link index -> the link's connection our summary went out on (see ``publish``).
        self._summarised: dict[int, int] = {}

    @property
    def brokers(self) -> tuple[BrokerConfig, ...]:
        return brokers_for(self._config, self.pair)

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
        """A link for the pair on every broker. If a broker's session is another pair's (the
        pair changed, perhaps while offline or stopped), that link starts a clean session and
        clears what that pair left retained there; it then records the session as this
        pair's."""
        if self.pair is None:
            return
        from micromance.link.mqtt import MqttLink  # paho and TLS only once there is a pair

        mine = self.names()
        # "<pair id> <state> <presence>": the pair whose retained topics are ours on that
        # broker, and their names (they cannot be derived once that pair's key is gone). A
        # bare pair id is 1.x's (one broker, one row): its topics follow from the ids.
        current = f"{self.pair.pair_id} {mine.state} {mine.presence}"
        for index, broker in enumerate(self.brokers):
            key = f"{BROKER_SESSION_KEY}/{broker.host}:{broker.port}"
            session = self._store.get(key) or self._store.get(BROKER_SESSION_KEY)
            link = MqttLink(broker, self.pair, self._post, next_seq=self._store.next_seq,
                            name=self._config.device.name, index=index, wake=self._wake,
                            client_factory=self._client_factory,
                            fresh_session=session != current,
                            leftovers=self._leftovers(session, current),
                            on_settled=self._settled_on(key, current))
            self.links.append(link)
            link.start()

    def _leftovers(self, session: str, current: str) -> tuple[str, ...]:
        """The retained topics an earlier pair left on a broker, to clear there."""
        if not session or session == current:
            return ()
        old_pair, *old_names = session.split()
        if old_names:
            return () if old_pair == current.split()[0] else tuple(old_names)
        try:
            return v1_retained_topics(old_pair, self._device_id)
        except ValueError:
            log.warning("unreadable %s in the store: starting a clean session",
                        BROKER_SESSION_KEY)
            return ()

    def names(self) -> Names:
        """This unit's names in its pair (topics, client id, member id)."""
        return self._pair_names()[0]

    def _pair_names(self) -> tuple[Names, Names]:
        if self.pair is None:
            raise RuntimeError("not paired: no names")
        if self._names is None:
            self._names = pair_names(self.pair.key, self.pair.device_id, self.pair.partner_id)
        return self._names

    def _settled_on(self, key: str, pair_id: str) -> Callable[[], None]:
        return lambda: self._store.put(key, pair_id)

    def disconnect(self, *, leave: bool = False) -> None:
        """Stop the links; with ``leave`` (a pair change) take the pair off the brokers first."""
        links, self.links = self.links, []
        self._summarised.clear()  # the next links count their connections from zero
        for link in links:
            if leave:
                link.leave()
            else:
                link.stop()

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
        self._names = None
        self._prepared = None
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
        return Message(type=kind, sender=self.names().member, seq=seq,
                       time=wall.isoformat(timespec="seconds"), name=self._config.device.name,
                       sent_total=sent_total, seqs=seqs, seen_seq=seen_seq,
                       seen_total=seen_total,
                       streak=streak if kind in (MessageType.DONE, MessageType.STATE) else 0,
                       last_seq=seq if kind is MessageType.STATE else 0)

    def prepare_thanks(self, wall: datetime, *, sent_total: int) -> None:
        """Number and seal now the thank-you that ``send_reliably`` will very likely be asked
        for next (THANKS is down), so the release only writes and publishes it. It is used
        only for that very message; otherwise its seq stays unused, as a skipped seq may.
        Nothing is written or sent here, and a preparation that fails is simply none."""
        self._prepared = None
        if self.pair is None:
            return
        try:
            message = self.message(MessageType.THANKS, wall, sent_total=sent_total)
        except StoreError:
            return  # no seq to be had: the release tries again, and says why if it fails
        sealed = seal(message, key=self.pair.key, topic=self.names().events)
        self._prepared = _Prepared(self.pair, message, message.to_plaintext(), sealed)

    def _take_prepared(self, kind: MessageType, when: str, sent_total: int) -> _Prepared | None:
        """The prepared thank-you if it is exactly the one asked for now (it is used once)."""
        prepared, self._prepared = self._prepared, None
        if prepared is None or kind is not MessageType.THANKS or prepared.pair is not self.pair:
            return None
        message = prepared.message
        if (message.sent_total, message.time, message.name) \
                != (sent_total, when, self._config.device.name):
            return None
        return prepared

    def send_reliably(self, kind: MessageType, wall: datetime, *, sent_total: int,
                      streak: int = 0) -> None:
        """Into the outbox (same commit as the counters), published once that is durable."""
        if self.pair is None:
            return
        when = wall.isoformat(timespec="seconds")
        prepared = self._take_prepared(kind, when, sent_total)
        if prepared is None:
            message = self.message(kind, wall, sent_total=sent_total, streak=streak)
            plaintext, sealed = message.to_plaintext(), None
        else:
            message, plaintext, sealed = prepared.message, prepared.plaintext, prepared.sealed
        self._store.outbox_add(message.seq, self.pair.pair_id, kind, plaintext, when)
        self._store.after_commit(lambda: self.publish(message, sealed=sealed))
        self._store.after_commit(self.announce_outbox)

    def send_once(self, kind: MessageType, wall: datetime, *, sent_total: int, streak: int = 0,
                  seqs: tuple[int, ...] = (), seen_seq: int = 0, seen_total: int = 0,
                  retained: bool = False, broker: int | None = None,
                  skip_seqs: int = 0) -> None:
        """Acks and the retained summary: not kept, the next redelivery or reconnect repeats
        them. ``skip_seqs`` seqs are left unused first (see ``PublishState``)."""
        if self.pair is None:
            return
        if skip_seqs:
            self._store.advance_seq(self._store.next_seq() + skip_seqs - 1)
        message = self.message(kind, wall, sent_total=sent_total, streak=streak, seqs=seqs,
                               seen_seq=seen_seq, seen_total=seen_total)
        self._store.after_commit(lambda: self.publish(message, retained=retained,
                                                      broker=broker))

    def tell_unpair(self, wall: datetime, *, sent_total: int) -> bool:
        """The sealed ``unpair`` for the partner, sealed now (the pair is dropped in the same
        step) and published on every connected broker once the step has committed. True when
        a broker is connected to take it; it is not kept for later (there is no pair left to
        keep it for): the partner then learns nothing and should ``pair --forget`` too."""
        if self.pair is None:
            return False
        message = self.message(MessageType.UNPAIR, wall, sent_total=sent_total)
        topic = self.names().events
        payload = seal(message, key=self.pair.key, topic=topic)
        links = [link for link in self.links if link.connected]

        def publish() -> None:
            for link in links:
                link.publish_raw(topic, payload)

        self._store.after_commit(publish)
        return bool(links)

    def reconfigure(self, config: Config) -> bool:
        """A reloaded config. The links are re-opened only when the broker list changed (a
        new name is used by the next message at once); True when they were."""
        before = self.brokers
        self._config = config
        if self.brokers == before:
            return False
        self.disconnect()
        self.connect()
        return True

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
        return any(link.connected for link in self.links)

    def publish(self, message: Message, retained: bool = False,
                broker: int | None = None, sealed: bytes | None = None) -> None:
        """Seal once (unless ``sealed`` already is, for the events topic), hand it to every
        connected link (or to ``broker``'s only); the outbox covers the brokers that are not
        connected.

        On each connection our summary goes first: news and acks wait (in the outbox, or for
        the next ack) until the core has published it there. A partner answers our summary
        with what it saw of us; had it taken news of this run first, its answer would hide
        what a store that went back in time forgot (``_catch_up`` in the core)."""
        links = [link for link in self.links
                 if link.connected and (broker is None or link.index == broker)
                 and (retained or self._summarised.get(link.index) == link.connections)]
        if self.pair is None or not links:
            return
        names = self.names()
        topic = names.state if retained else names.events
        payload = sealed if sealed is not None and not retained \
            else seal(message, key=self.pair.key, topic=topic)
        for link in links:
            link.publish_raw(topic, payload, retain=retained)
            if retained:
                self._summarised[link.index] = link.connections

    def redeliver(self, broker: int | None = None) -> None:
        """What waits for the partner's ack, again: on ``broker`` (None: every broker)."""
        if self.pair is None or not self.connected:
            return
        waiting = self._store.outbox(self.pair.pair_id)
        sender = self.names().member  # a row from 1.x carries the device id: sent as us
        for _, text in waiting:
            self.publish(replace(Message.from_plaintext(text), sender=sender), broker=broker)
        if waiting:
            log.info("redelivered %d message(s) awaiting the partner's confirmation%s",
                     len(waiting), "" if broker is None else f" ({self.links[broker].where})"
                     if broker < len(self.links) else "")

    def announce_outbox(self) -> None:
        self._post(ev.OutboxChanged, size=self.outbox_size())
