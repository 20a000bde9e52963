"""``micromance pair`` from a shell: the button flow for people set up over SSH.

The same protocol as the device (``protocol.pairing``), driven by a small loop here: payloads
from the rendezvous, how each broker is doing, and the person's y/n answer arrive on one
queue; time comes from the monotonic clock. It says which brokers it reached (and for each one
it did not, the step that failed), prints the code, asks whether it matches the other unit's,
and keeps the pair only when both sides confirmed. When no broker can be reached it says so
within seconds instead of searching an empty room for two minutes.

The room is a named one (``--room``, ``[pairing] room``; ``lobby`` by default) or an invite's
(``--invite`` makes a code, ``--join CODE`` uses one): a room of its own for this one pairing.

This is for a unit whose daemon is stopped: while it runs, the command line asks the daemon to
pair through its control socket instead (``control.cli``), so the unit is never online twice.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from micromance.config import Config
from micromance.errors import LinkError
from micromance.link.pair_file import Pair, forget_pair, load_pair, save_pair
from micromance.protocol import invite_room, pairing, room_topic
from micromance.protocol.names import DEFAULT_ROOM
from micromance.protocol.pairing import Phase
from micromance.store import Store

LINGER_SECONDS = 2.0   # after success, stay a moment to answer a late confirmation
#: No broker connected this long after the start: say so and stop (those that never answered
#: are named as such).
REACH_SECONDS = 15.0
OUTCOMES = {
    Phase.TIMED_OUT: "timed out",
    Phase.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class Meeting:
    """Where to meet: a room's topic, and how to tell the person about it."""

    topic: str
    where: str                     # "room 'lobby'", "the invite's room"

    @classmethod
    def room(cls, name: str) -> Meeting:
        return cls(room_topic(name), f"room {name or DEFAULT_ROOM!r}")

    @classmethod
    def invite(cls, code: str) -> Meeting:
        return cls(invite_room(code), "the invite's room")


def pair_from_shell(config: Config, room: str = "", *, answers: TextIO, out: TextIO,
                    invite: str = "", client_factory: Callable[..., Any] | None = None,
                    entropy: bytes | None = None) -> int:
    """Run one pairing attempt in ``room`` (or the room of the ``invite`` code); 0 when
    paired, 1 otherwise."""
    from micromance.link.rendezvous import Rendezvous

    store = Store.open(config.state_dir)
    try:
        device_id = store.device_id()
    finally:
        store.close()
    meeting = Meeting.invite(invite) if invite else Meeting.room(room)
    brokers = config.pairing_brokers
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    rendezvous = Rendezvous(brokers, meeting.topic,
                            lambda payload: inbox.put(("payload", payload)),
                            on_report=lambda report: inbox.put(("broker", report)),
                            client_factory=client_factory)
    say = printer(out)
    say(f"Connecting to {_count(len(brokers), 'broker')}…")
    started = time.monotonic()
    rendezvous.start()
    try:
        search = _Search(rendezvous, inbox, answers, say, started, meeting)
        session = search.run(entropy or os.urandom(pairing.ENTROPY_BYTES))
        if session.result is not None:
            _linger(session, rendezvous, inbox)
    finally:
        rendezvous.stop()
    if session.result is None:
        reason = search.unreachable or session.detail or OUTCOMES.get(session.phase,
                                                                     session.phase.value)
        say(f"Not paired: {reason} (after {duration(time.monotonic() - started)}).")
        return 1
    result = session.result
    # A pair made over the shipped public brokers keeps that list for good.
    _keep(config.state_dir, Pair(result.pair_id, result.key, device_id, result.partner_id,
                                 brokers=() if config.brokers else brokers))
    say("Paired. The partner's name shows on the unit's screen and in `micromance status` "
        "once both units are online.")
    from micromance.status import collect_status

    if collect_status(config).get("running"):
        say("The unit is running: restart it to use the new pair "
            "(sudo systemctl restart micromance).")
    return 0


class _Search:
    """The loop of one attempt: broker reports first, then the pairing protocol."""

    def __init__(self, rendezvous: Any, inbox: queue.SimpleQueue, answers: TextIO,
                 say: Callable[[str], None], started: float, meeting: Meeting) -> None:
        self.rendezvous = rendezvous
        self.inbox = inbox
        self.answers = answers
        self.say = say
        self.started = started
        self.meeting = meeting
        self.brokers: dict[int, Any] = {}   # index: its latest report
        self.reached = False                # some broker connected at least once
        self.unreachable = ""               # why we gave up before searching

    def run(self, entropy: bytes) -> pairing.Session:
        session, sent = pairing.begin(entropy, time.monotonic())
        asked = False
        while True:
            for payload in sent:
                self.rendezvous.publish(payload)
            if session.finished:
                return session
            if session.phase is Phase.CODE and not asked:
                asked = True
                code = f"{session.code[:3]} {session.code[3:]}"
                self.say(f"Code: {code}. Does the other unit show the same code? [y/n] ")
                threading.Thread(target=_ask, args=(self.answers, self.inbox),
                                 daemon=True).start()
            try:
                kind, item = self.inbox.get(timeout=self._timeout(session))
            except queue.Empty:
                if self._give_up(session):
                    return session
                session, sent = pairing.tick(session, time.monotonic())
                continue
            now = time.monotonic()
            sent = []
            if kind == "broker":
                self._on_report(item, session)
                if self._give_up(session):
                    return session
            elif kind == "payload":
                session, sent = pairing.receive(session, item, now)
            elif item == b"y":
                session, sent = pairing.confirm(session, now)
                if session.phase is Phase.WAITING:
                    self.say("Confirmed here; waiting for the other unit (press THANKS "
                             "there)…")
            else:
                session, sent = pairing.cancel(session, now, "codes rejected")

    def _timeout(self, session: pairing.Session) -> float | None:
        deadlines = [pairing.next_deadline(session)]
        if not self.reached:
            deadlines.append(self.started + REACH_SECONDS)
        known = [d for d in deadlines if d is not None]
        return max(0.0, min(known) - time.monotonic()) if known else None

    def _on_report(self, report: Any, session: pairing.Session) -> None:
        before = self.brokers.get(report.index)
        self.brokers[report.index] = report
        if before is not None and before.connected == report.connected:
            return  # the same news again (a retry failing the same way)
        if report.connected:
            self.say(f"  ✓ {report.where}")
            if not self.reached:
                self.reached = True
                self.say(f"Looking for the other unit in {self.meeting.where}: waiting up "
                         f"to {duration(pairing.SEARCH_SECONDS)} (start pairing there too: "
                         "hold both buttons 5 s, or run micromance pair)…")
        else:
            self.say(f"  ✗ {report.where}: {report.error}")

    def _give_up(self, session: pairing.Session) -> bool:
        """No broker reachable: every one failed, or none answered within REACH_SECONDS."""
        if self.reached:
            return False
        count = len(self.rendezvous.rooms)
        all_failed = len(self.brokers) == count
        if not all_failed and time.monotonic() - self.started < REACH_SECONDS:
            return False
        for room in self.rendezvous.rooms:
            if room.index not in self.brokers:
                self.say(f"  ✗ {room.where}: no answer within {REACH_SECONDS:.0f} s")
        what = ("the broker could not be reached" if count == 1
                else f"none of the {count} brokers could be reached")
        self.unreachable = (f"{what}; check the network, and the [broker] settings if you "
                            "set any (micromance doctor says more)")
        return True


def _ask(answers: TextIO, inbox: queue.SimpleQueue) -> None:
    line = answers.readline()
    inbox.put(("answer", b"y" if line.strip().lower() in ("y", "yes") else b"n"))


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _linger(session: pairing.Session, rendezvous: Any, inbox: queue.SimpleQueue) -> None:
    end = time.monotonic() + LINGER_SECONDS
    while (left := end - time.monotonic()) > 0:
        try:
            kind, payload = inbox.get(timeout=left)
        except queue.Empty:
            return
        if kind == "payload":
            for reply in pairing.receive(session, payload, time.monotonic())[1]:
                rendezvous.publish(reply)


def _keep(state_dir: Path, pair: Pair) -> None:
    """Replace any previous pair; what waited for the previous partner is dropped."""
    old = load_pair(state_dir)
    save_pair(state_dir, pair)
    if old is not None and old.pair_id != pair.pair_id:
        store = Store.open(state_dir)
        try:
            store.outbox_clear(old.pair_id)
        finally:
            store.close()


def forget_from_shell(config: Config, *, out: TextIO,
                      client_factory: Callable[..., Any] | None = None,
                      timeout: float = 5.0) -> int:
    """Tell the partner (sealed ``unpair``, queued for it if offline), then drop the key."""
    say = printer(out)
    pair = load_pair(config.state_dir)
    if pair is None:
        say("This unit is not paired.")
        return 0
    told = _tell_partner(config, pair, client_factory, timeout)
    store = Store.open(config.state_dir)
    try:
        store.outbox_clear(pair.pair_id)
    finally:
        store.close()
    forget_pair(config.state_dir)
    if told:
        say("Unpaired; the partner's unit was told and forgets the pair too.")
    else:
        say("Unpaired here. No broker could be reached, so the partner's unit was not told: "
            "run micromance pair --forget on that unit too.")
    return 0


def _tell_partner(config: Config, pair: Pair, client_factory: Callable[..., Any] | None,
                  timeout: float) -> bool:
    """The sealed ``unpair`` on every broker of the pair at once; True when one took it."""
    from datetime import datetime

    from micromance import protocol
    from micromance.link.courier import brokers_for

    store = Store.open(config.state_dir)
    try:
        seq = store.next_seq()
        totals = store.load_counters(pair.pair_id)
    finally:
        store.close()
    mine, _ = protocol.pair_names(pair.key, pair.device_id, pair.partner_id)
    message = protocol.Message(type=protocol.MessageType.UNPAIR, sender=mine.member, seq=seq,
                               time=datetime.now().astimezone().isoformat(timespec="seconds"),
                               name=config.device.name, sent_total=totals.sent_total)
    sealed = protocol.seal(message, key=pair.key, topic=mine.events)
    told: list[bool] = []
    threads = [threading.Thread(target=lambda b=broker: told.append(
        _tell_one(b, mine, sealed, client_factory, timeout)), daemon=True)
        for broker in brokers_for(config, pair)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(4 * timeout + 1)  # connect, then three publishes
    return any(told)


def _tell_one(broker: Any, mine: Any, sealed: bytes,
              client_factory: Callable[..., Any] | None, timeout: float) -> bool:
    from micromance import protocol
    from micromance.link.client import connect_properties, new_client

    connected = threading.Event()
    try:
        client = new_client(broker, protocol.new_client_id(), client_factory)
    except LinkError:
        return False
    client.on_connect = lambda *args: connected.set()
    try:
        client.connect_async(broker.host, broker.port, keepalive=30,
                             properties=connect_properties())
        client.loop_start()
        if not connected.wait(timeout):
            return False
        infos = [client.publish(mine.events, sealed, qos=1),
                 # Clear our retained summary and presence: nothing of this pair remains.
                 client.publish(mine.state, b"", qos=1, retain=True),
                 client.publish(mine.presence, b"", qos=1, retain=True)]
        for info in infos:
            info.wait_for_publish(timeout)
        return all(info.is_published() for info in infos)
    except (OSError, RuntimeError, ValueError):
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        out.write(text + ("" if text.endswith("] ") else "\n"))
        out.flush()
    return say
