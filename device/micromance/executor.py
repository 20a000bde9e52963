"""Carrying out the core's commands, in the order that keeps every promise.

The ordering rule of one step (``Executor.carry_out``):

1. The partner's light is the moment this device exists for. When the step sends no news of
   its own (a thank-you arrived), the light goes first, before the commit, the ack and the
   frame. Nothing is lost: the ack that lets the partner forget the message waits for the
   commit, so a crash in between means a redelivery (and the light again).
2. Every durable command of the step is carried out in one transaction: one commit per step.
   What they publish (news, acks, the retained state) goes out once that commit is on the
   disk, in the order it was asked for. A thank-you's writes are rehearsed while THANKS is
   down (``PrepareThanks``): when its release asks for exactly those, only the commit is left,
   and it is made (and the thank-you published) before the release's step
   (``send_ahead``), which then carries out only what else it asks for.
3. Then everything else: the frame, the contrast, a light that follows news (a press lights
   after its thank-you was published), pairing traffic, the live facts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, assert_never

from micromance.config import PUBLIC_BROKERS, Config
from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.commands import Command, LightMode
from micromance.errors import StoreError
from micromance.link.courier import Courier
from micromance.link.homeassistant import HomeAssistant
from micromance.link.pair_file import Pair
from micromance.link.rendezvous import PairingRoom
from micromance.protocol import MessageType
from micromance.screens.views import Frame
from micromance.status import LiveFactsFile
from micromance.store import Store

log = logging.getLogger("micromance")


class Executor:
    """The adapters of one running unit, driven by the core's commands."""

    def __init__(self, config: Config, *, store: Store, display: Any, panel: Any,
                 courier: Courier, room: PairingRoom, live: LiveFactsFile, device_id: str,
                 post: Callable[..., None],
                 observers: Sequence[Callable[[Command], None]] = (),
                 home: HomeAssistant | None = None) -> None:
        self._config = config
        self._post = post
        self._store = store
        self._display = display
        self._panel = panel
        self._courier = courier
        self._room = room
        self._live = live
        self._device_id = device_id
        self._observers = observers
        self._home = home
        self._last_image: bytes | None = None
        self._sent_ahead: list[Command] = []  # committed for the next step (``send_ahead``)

    def carry_out(self, commands: list[Command], wall: datetime) -> None:
        """One step's commands, ordered as the module says; ``wall`` is the step's time."""
        sends_news = any(isinstance(c, cmd.News) for c in commands)
        early = [] if sends_news else [c for c in commands if isinstance(c, cmd.SetLight)]
        for light in early:
            self._do(light, wall)
        durable: list[Command] = [c for c in commands if isinstance(c, cmd.Durable)]
        if self._sent_ahead:
            durable = self._without_sent_ahead(durable)
        if durable and not self._store.commit_rehearsal(_rehearsal_key(durable, wall)):
            with self._store.transaction():  # publishing runs once this has committed
                for write in durable:
                    self._do(write, wall)
        for command in commands:
            if not isinstance(command, cmd.Durable) and command not in early:
                self._do(command, wall)
        for command in commands:
            for observer in self._observers:
                observer(command)

    def _do(self, command: Command, wall: datetime) -> None:
        courier, store = self._courier, self._store
        match command:
            case cmd.ShowFrame(frame=frame):
                self.show(frame)
            case cmd.SetContrast(level=level):
                self._display.set_contrast(level)
            case cmd.SetPanelPower(on=on):
                self._display.wake() if on else self._display.sleep()
            case cmd.SetLight(mode=mode):
                self._panel.set_light(mode)
            case cmd.ReportLiveFacts(facts=facts):
                self._live.report(facts)
            case cmd.ReportHome(facts=facts):
                if self._home is not None:
                    self._home.report(facts)
            case cmd.SaveCounters(counters=counters):
                store.save_counters(counters, courier.pair_id)
            case cmd.SaveRotation(bag_json=bag, prompt_id=prompt_id, draws=draws):
                store.save_rotation(bag, prompt_id, draws)
            case cmd.SaveWindow(window=window):
                courier.save_window(window.to_json())
            case cmd.PrepareThanks(counters=counters):
                courier.prepare_thanks(wall, sent_total=counters.sent_total)
                self._rehearse(cmd.thanks_writes(counters), wall)
            case cmd.DropPrepared():
                store.abandon_rehearsal()
            case cmd.SendThanks(total=total):
                store.log_event(_when(wall), "sent", f"#{total}")
                courier.send_reliably(MessageType.THANKS, wall, sent_total=total)
                # Said once it is true: after the commit, as sent or as waiting.
                store.after_commit(lambda: log.info("thank-you #%d %s", total, _sent(courier)))
            case cmd.SendSeen(sent_total=sent_total):
                store.log_event(_when(wall), "seen")
                courier.send_reliably(MessageType.SEEN, wall, sent_total=sent_total)
                log.info("partner's thank-you acknowledged")
            case cmd.SendDone(streak=streak, sent_total=sent_total):
                store.log_event(_when(wall), "done", f"streak {streak}")
                courier.send_reliably(MessageType.DONE, wall, sent_total=sent_total,
                                      streak=streak)
                log.info("today's gesture marked done (streak %d)", streak)
            case cmd.SendAck(seqs=seqs, sent_total=sent_total):
                courier.send_once(MessageType.ACK, wall, sent_total=sent_total,
                                  seqs=tuple(seqs))
            case cmd.PublishState(sent_total=sent_total, streak=streak, seen_seq=seen_seq,
                                  seen_total=seen_total, broker=broker, skip_seqs=skip):
                courier.send_once(MessageType.STATE, wall, sent_total=sent_total,
                                  streak=streak, seen_seq=seen_seq, seen_total=seen_total,
                                  retained=True, broker=broker, skip_seqs=skip)
            case cmd.DropFromOutbox(seqs=seqs):
                courier.delivered(seqs)
            case cmd.Redeliver(broker=broker):
                courier.redeliver(broker)
            case cmd.CheckStorage():
                try:
                    store.check_writable()
                except StoreError:
                    return  # still failing: the core asks again later
                log.info("the state can be saved again")
                self._post(ev.StorageRecovered)
            case cmd.NoteRejected(reason=reason, first=first):
                if first:
                    log.warning("dropped a message that failed checks (%s); further ones are "
                                "counted in status, not logged", reason)
            case cmd.StartPairing(topic=topic):
                self._room.open(topic)
            case cmd.PublishPairing(payload=payload):
                self._room.publish(payload)
            case cmd.StopPairing():
                self._room.close()
            case cmd.SavePair(result=result):
                # A pair made over the shipped public brokers keeps that list for good.
                brokers = () if self._config.brokers else PUBLIC_BROKERS
                courier.switch(Pair(result.pair_id, result.key, self._device_id,
                                    result.partner_id, brokers=brokers))
            case cmd.SendUnpair(sent_total=sent_total):
                told = courier.tell_unpair(wall, sent_total=sent_total)
                store.after_commit(lambda: log.info(
                    "unpairing: %s", "the partner was told" if told
                    else "no broker connected, the partner was not told"))
            case cmd.ForgetPair(ours=ours):
                log.info("%s: forgetting the pair", "asked to unpair" if ours
                         else "the partner unpaired the units")
                courier.switch(None)
            case _:
                assert_never(command)

    def send_ahead(self, durable: list[Command], wall: datetime) -> None:
        """Commit and publish now the rehearsed ``durable`` commands, which the core is sure
        the coming step asks for (``core.send_first``); that step's ``carry_out`` leaves
        them out. Nothing happens if they were not rehearsed (the step writes them then)."""
        if self._store.commit_rehearsal(_rehearsal_key(durable, wall)):
            self._sent_ahead = durable

    def _without_sent_ahead(self, durable: list[Command]) -> list[Command]:
        ahead, self._sent_ahead = self._sent_ahead, []
        rest = list(durable)
        for command in ahead:
            if command in rest:
                rest.remove(command)
            else:  # the core's promise broken: said loudly, the rest still carried out
                log.error("a step did not ask for %r, committed ahead of it", command)
        return rest

    def _rehearse(self, durable: Sequence[Command], wall: datetime) -> None:
        """Write now what a step asking for exactly ``durable`` in this second would write,
        in a transaction left open (``Store.rehearse``): that step then only commits it.
        Anything else the store is asked for first rolls it back."""
        def writes() -> None:
            for write in durable:
                self._do(write, wall)

        self._store.rehearse(_rehearsal_key(durable, wall), writes)

    def light_now(self, mode: LightMode) -> None:
        """The light ahead of its step (``Stepper.first_look``): the step's own ``SetLight``
        follows, so the core's record of what the light shows stays its own."""
        self._panel.set_light(mode)

    def reconfigure(self, config: Config) -> None:
        """A reloaded config (the brokers a new pair keeps come from it)."""
        self._config = config

    def show(self, frame: Frame) -> None:
        """Push a frame, unless the panel already shows these very pixels."""
        from PIL import Image

        from micromance.screens.render import render_packed

        width, height = self._display.size
        raw = render_packed(frame, width, height)
        if raw == self._last_image:
            return  # same pixels (e.g. a page turn of a one-page prompt): spare the panel
        self._last_image = raw
        self._display.show(Image.frombytes("1", (max(1, width), max(1, height)), raw))


def _when(wall: datetime) -> str:
    return wall.isoformat(timespec="seconds")


def _rehearsal_key(durable: Sequence[Command], wall: datetime) -> tuple[object, ...]:
    """What a step's writes depend on: its durable commands and its second (the times the
    rows and the message carry)."""
    return (*durable, _when(wall))


def _sent(courier: Courier) -> str:
    if not courier.pair:
        return "counted here (not paired yet: nothing to send)"
    return "sent" if courier.connected else "queued (no broker connected)"
