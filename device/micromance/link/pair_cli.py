"""``micromance pair`` from a shell: the button flow for people set up over SSH.

The same protocol as the device (``protocol.pairing``), driven by a small loop here: payloads
from the rendezvous and the person's y/n answer arrive on one queue; time comes from the
monotonic clock. It prints the code, asks whether it matches the other unit's, and keeps the
pair only when both sides confirmed.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from micromance.config import Config
from micromance.errors import LinkError
from micromance.link.pair_file import Pair, forget_pair, load_pair, save_pair
from micromance.protocol import pairing
from micromance.protocol.pairing import Phase
from micromance.store import Store

LINGER_SECONDS = 2.0   # after success, stay a moment to answer a late confirmation
OUTCOMES = {
    Phase.TIMED_OUT: "timed out",
    Phase.CANCELLED: "cancelled",
}


def pair_from_shell(config: Config, room: str, *, answers: TextIO, out: TextIO,
                    client_factory: Callable[..., Any] | None = None,
                    entropy: bytes | None = None) -> int:
    """Run one pairing attempt; 0 when paired, 1 otherwise."""
    from micromance.link.rendezvous import Rendezvous

    store = Store.open(config.state_dir)
    try:
        device_id = store.device_id()
    finally:
        store.close()
    inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    rendezvous = Rendezvous(config.broker, device_id, room,
                            lambda payload: inbox.put(("payload", payload)),
                            client_factory=client_factory)
    say = _printer(out)
    say(f"Looking for the other unit in room {rendezvous.topic.rsplit('/', 1)[-1]!r} "
        "(start pairing there too: hold both buttons 5 s, or run micromance pair)…")
    rendezvous.start()
    try:
        session = _run(device_id, rendezvous, inbox, answers, say,
                       entropy or os.urandom(pairing.ENTROPY_BYTES))
        if session.result is not None:
            _linger(session, rendezvous, inbox)
    finally:
        rendezvous.stop()
    if session.result is None:
        say(f"Not paired: {session.detail or OUTCOMES.get(session.phase, session.phase.value)}.")
        return 1
    result = session.result
    _keep(config.state_dir, Pair(result.pair_id, result.key, device_id, result.partner_id))
    say(f"Paired with unit {result.partner_id} (pair {result.pair_id[:8]}).")
    from micromance.status import collect_status

    if collect_status(config).get("running"):
        say("The unit is running: restart it to use the new pair "
            "(sudo systemctl restart micromance).")
    return 0


def _run(device_id: str, rendezvous: Any, inbox: queue.SimpleQueue, answers: TextIO,
         say: Callable[[str], None], entropy: bytes) -> pairing.Session:
    session, sent = pairing.begin(device_id, entropy, time.monotonic())
    asked = False
    while True:
        for payload in sent:
            rendezvous.publish(payload)
        if session.finished:
            return session
        if session.phase is Phase.CODE and not asked:
            asked = True
            code = f"{session.code[:3]} {session.code[3:]}"
            say(f"Code: {code}. Does the other unit show the same code? [y/n] ")
            threading.Thread(target=_ask, args=(answers, inbox), daemon=True).start()
        deadline = pairing.next_deadline(session)
        timeout = max(0.0, deadline - time.monotonic()) if deadline is not None else None
        try:
            kind, payload = inbox.get(timeout=timeout)
        except queue.Empty:
            session, sent = pairing.tick(session, time.monotonic())
            continue
        now = time.monotonic()
        if kind == "payload":
            session, sent = pairing.receive(session, payload, now)
        elif payload == b"y":
            session, sent = pairing.confirm(session, now)
            if session.phase is Phase.WAITING:
                say("Confirmed here; waiting for the other unit (press THANKS there)…")
        else:
            session, sent = pairing.cancel(session, now, "codes rejected")


def _ask(answers: TextIO, inbox: queue.SimpleQueue) -> None:
    line = answers.readline()
    inbox.put(("answer", b"y" if line.strip().lower() in ("y", "yes") else b"n"))


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
    say = _printer(out)
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
        say(f"Unpaired from {pair.partner_id}; its unit was told and forgets the pair too.")
    else:
        say(f"Unpaired here. The broker could not be reached, so {pair.partner_id} was not "
            "told: run micromance pair --forget on that unit too.")
    return 0


def _tell_partner(config: Config, pair: Pair, client_factory: Callable[..., Any] | None,
                  timeout: float) -> bool:
    from micromance import protocol
    from micromance.link.client import connect_properties, new_client

    store = Store.open(config.state_dir)
    try:
        seq = store.next_seq()
        totals = store.load_counters(pair.pair_id)
    finally:
        store.close()
    from datetime import datetime

    message = protocol.Message(type=protocol.MessageType.UNPAIR, sender=pair.device_id, seq=seq,
                               time=datetime.now().astimezone().isoformat(timespec="seconds"),
                               name=config.device.name, sent_total=totals.sent_total)
    topics = protocol.Topics(pair.pair_id, pair.device_id)
    connected = threading.Event()
    try:
        client = new_client(config.broker, f"micromance-cli-{pair.device_id}", client_factory)
    except LinkError:
        return False
    client.on_connect = lambda *args: connected.set()
    try:
        client.connect_async(config.broker.host, config.broker.port, keepalive=30,
                             properties=connect_properties())
        client.loop_start()
        if not connected.wait(timeout):
            return False
        sealed = protocol.seal(message, key=pair.key, topic=topics.events)
        infos = [client.publish(topics.events, sealed, qos=1),
                 # Clear our retained summary and presence: nothing of this pair remains.
                 client.publish(topics.state, b"", qos=1, retain=True),
                 client.publish(topics.presence, b"", qos=1, retain=True)]
        for info in infos:
            info.wait_for_publish(timeout)
        return all(info.is_published() for info in infos)
    except (OSError, RuntimeError, ValueError):
        return False
    finally:
        client.disconnect()
        client.loop_stop()


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        out.write(text + ("" if text.endswith("] ") else "\n"))
        out.flush()
    return say
