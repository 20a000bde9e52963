"""The runtime: wires adapters to the core and runs the one loop.

Adapters call back on their own threads (gpiozero, the key reader) and only put events on one
queue, waking the loop through a pipe. The partner link's network I/O runs on the loop itself
(paho as an external event loop), so its callbacks queue events the same way without a thread
hand-off. The loop is the single consumer: it applies ``core.step`` and carries the commands
out to the display, the light, the store and the link. It sleeps until the next event, the
next network traffic or the next moment the core, the calendar or the link asked for — never
a fixed polling interval.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from micromance.config import Config
from micromance.core import commands as cmd
from micromance.core import events as ev
from micromance.core.clock import Clock, SystemClock
from micromance.core.events import Button, Gesture
from micromance.core.machine import Settings, State, initial_state, next_deadline, step
from micromance.core.prompts import load_library
from micromance.core.quiet import QuietHours
from micromance.health import ThreadWatch
from micromance.link.courier import Courier
from micromance.link.pair_file import Pair
from micromance.protocol.pairing import ENTROPY_BYTES
from micromance.service import Notifier
from micromance.status import live_status_path
from micromance.store import Store
from micromance.timers import CalendarTimers

log = logging.getLogger("micromance")

#: Longest the loop sleeps with nothing scheduled (a safety net, not a poll: ~once an hour).
MAX_SLEEP_SECONDS = 3600.0
SCREENSHOT_NAME = "screen.png"
#: Live facts reach status.json this long after they change: a burst (a redelivered outbox,
#: a press and its ack) costs one write, and never in the moment a press is on its way.
STATUS_DELAY_SECONDS = 0.25


class _Stop:
    """Sentinel: end the loop."""


STOP = _Stop()


class Wakeup:
    """A self-pipe: an event posted from any thread (or a signal handler) ends the loop's wait."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        with suppress(OSError):  # a full pipe is already set; a closed one has no reader
            os.write(self._write, b"\0")

    def clear(self) -> None:
        with suppress(OSError):  # BlockingIOError: empty now
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        for fd in (self._read, self._write):
            with suppress(OSError):
                os.close(fd)


def settings_from(config: Config) -> Settings:
    """The core's view of the config, with the prompt library loaded."""
    library = load_library(config.prompts.extra_file or None,
                           config.prompts.disabled_practices)
    return Settings(
        name=config.device.name,
        quiet=QuietHours.parse(config.quiet_hours.start, config.quiet_hours.end,
                               config.quiet_hours.enabled),
        contrast=config.display.contrast,
        dim_contrast=config.display.dim_contrast,
        dim_after=config.display.dim_after_minutes * 60.0,
        pixel_shift=config.display.pixel_shift,
        received_timeout=config.device.received_timeout_minutes * 60.0,
        library=library,
    )


class Runtime:
    """One unit: its adapters, its state, its loop."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        pin_factory: Any = None,
        display: Any = None,
        key_stream: TextIO | None = None,
        notifier: Notifier | None = None,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._pin_factory = pin_factory
        self._display_override = display
        self._client_factory = client_factory
        self._key_stream = key_stream
        self.notifier = notifier or Notifier()
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.settings = settings_from(config)
        self.state: State | None = None
        self.display: Any = None
        self.panel: Any = None
        self.store: Store | None = None
        self.partner: Courier | None = None
        self.rendezvous: Any = None
        self._after_commit: list[Callable[[], None]] = []
        self.timers: CalendarTimers | None = None
        #: How often the loop woke up, for tests and benchmarks.
        self.wakeups = 0
        #: True from taking an event off the queue until its step was carried out, so
        #: "queue empty, then not busy" (read in that order) means nothing is pending.
        self.busy = False
        #: Called with each command after it was carried out (tests wait on these).
        self.observers: list[Callable[[cmd.Command], None]] = []
        self._last_image: bytes | None = None
        self._status_due: float | None = None   # time.monotonic() of the next status write
        #: Set after each write of status.json (tests wait on it).
        self.status_written = threading.Event()
        self._started = threading.Event()
        self._loop_thread: int | None = None
        self._wakeup: Wakeup | None = None
        self._selector: selectors.BaseSelector | None = None
        self._watched: tuple[Any, int, int] | None = None  # (socket, fd, events) of the link
        #: Adapter threads that must be alive for WATCHDOG=1 (a deaf unit should restart).
        self.watch = ThreadWatch()

    # --- event intake (any thread) -----------------------------------------------------

    def _stamp(self) -> dict[str, Any]:
        return {"at": self.clock.monotonic(), "wall": self.clock.now()}

    def post(self, factory: Callable[..., ev.Event], **fields: Any) -> None:
        """Put an event stamped now on the queue (thread-safe, never blocks)."""
        self.events.put(factory(**fields, **self._stamp()))
        if threading.get_ident() != self._loop_thread:  # the loop itself looks next anyway
            self._wake()

    def _wake(self) -> None:
        """End the loop's wait (any thread)."""
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    def on_edge(self, button: Button, down: bool) -> None:
        self.post(ev.ButtonDown if down else ev.ButtonUp, button=button)

    def on_gesture(self, gesture: Gesture) -> None:
        self.post(ev.GestureInput, gesture=gesture)

    def stop(self) -> None:
        """Ask the loop to end (safe from signal handlers: SimpleQueue.put is reentrant)."""
        self.events.put(STOP)
        self._wake()  # always: a signal handler runs on the loop's thread, inside its wait

    def wait_started(self, timeout: float | None = None) -> bool:
        return self._started.wait(timeout)

    # --- life cycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Start everything in dependency order, loop, stop in reverse order."""
        with ExitStack() as stack:
            self._loop_thread = threading.get_ident()
            self._wakeup = Wakeup()
            stack.callback(self._close_wakeup)
            self._selector = selectors.DefaultSelector()
            self._selector.register(self._wakeup, selectors.EVENT_READ)
            self.store = Store.open(self.config.state_dir)
            stack.callback(self.store.close)
            self.display = self._open_display()
            stack.callback(self.display.close)
            self.panel = self._open_panel()
            stack.callback(self.panel.close)
            self._restore()
            stack.callback(self._write_status)
            self.partner.connect()
            stack.callback(self.partner.disconnect)
            stack.callback(self._close_rendezvous)
            if self._key_stream is not None:
                from micromance.hardware.keys import KeyLines

                KeyLines(self._key_stream, self.on_gesture, self.stop).start()
            self.timers = CalendarTimers(self.config.prompts.interval_minutes,
                                         self.config.prompts.focus_time, self._calendar)
            stack.callback(self.timers.clear)
            stack.enter_context(self._signals())
            stack.callback(self._leave_screenshot)
            self._loop()
        return 0

    def _open_display(self) -> Any:
        if self._display_override is not None:
            return self._display_override
        from micromance.hardware.display import open_display

        return open_display(self.config.display)

    def _open_panel(self) -> Any:
        from micromance.hardware.panel import Panel

        return self.watch.track(
            "panel", lambda: Panel(self.config.pins, self.on_edge, self._pin_factory))

    def _restore(self) -> None:
        assert self.store is not None
        self.device_id = self.store.device_id()
        self.settings = replace(self.settings, shuffle_seed=int(self.device_id[:8], 16),
                                device_id=self.device_id)
        partner = self.partner = Courier(self.config, self.store, self.device_id, self.post,
                                         self._wake, self._later, self._client_factory)
        bag_json, prompt_id, draws = self.store.load_rotation()
        stamp = self._stamp()
        self.state = initial_state(
            self.settings, stamp["at"], stamp["wall"],
            counters=self.store.load_counters(partner.pair_id),
            bag_json=bag_json, prompt_id=prompt_id, draws=draws,
            paired=partner.pair is not None, window=partner.replay_window(),
            outbox=partner.outbox_size())

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may set handlers (tests run the loop elsewhere)
            return
        previous = {sig: signal.signal(sig, lambda *_: self.stop())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _calendar(self, what: str) -> None:
        factory = ev.RotatePrompt if what == "rotate" else ev.MorningFocus
        self.post(factory)

    # --- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        assert self.state is not None
        self._apply(ev.Tick(**self._stamp()))
        self.notifier.ready(f"{self.config.device.name}: running")
        log.info("%s is up (device %s, %s)", self.config.device.name, self.device_id,
                 getattr(self.display, "description", self.config.display.driver))
        self._started.set()
        try:
            while True:
                event = self._next_event()
                if event is STOP:
                    break
                self._apply(event)
                self.busy = False
                self._write_status_if_due()
                if self.watch.alive():
                    self.notifier.watchdog()
        finally:
            self.notifier.stopping()
            log.info("stopping")

    def _next_event(self) -> Any:
        """The next queued event; else wait for one, for the network or for a deadline.

        An event that arrives is acted on first; the calendar and the link's timers run once
        nothing waits in the queue (they keep minutes and seconds, not milliseconds).
        """
        if self.events.empty():
            link = self._link()
            if link is not None:
                link.flush()  # acknowledge what the loop has acted on (may plan a reconnect)
            timeout = self._sleep_budget()
            if timeout > 0:
                self._wait(timeout)
            self.wakeups += 1
        if self.events.empty():
            assert self.timers is not None
            self.timers.run_due()  # calendar jobs post their events; they come next
            link = self._link()
            if link is not None:
                link.handle_timers()
        self.busy = True  # before taking the event: see ``busy``
        try:
            return self.events.get_nowait()
        except queue.Empty:
            return ev.Tick(**self._stamp())

    def _link(self) -> Any:
        return self.partner.link if self.partner is not None else None

    def _wait(self, timeout: float) -> None:
        """Sleep until woken, until the link's socket is ready (then serve it), or ``timeout``."""
        assert self._selector is not None and self._wakeup is not None
        link = self._link()
        self._watch_link(link)
        socket_ready = 0
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._wakeup:
                self._wakeup.clear()
            else:
                socket_ready = mask
        if socket_ready and link is not None:
            link.handle_io(readable=bool(socket_ready & selectors.EVENT_READ))

    def _watch_link(self, link: Any) -> None:
        """Keep the selector on the link's current socket (it changes on every reconnect)."""
        assert self._selector is not None
        sock = link.socket() if link is not None else None
        wanted = None
        if sock is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.wants_write() else 0)
            wanted = (sock, sock.fileno(), events)
        if wanted == self._watched:
            return
        if self._watched is not None:
            with suppress(KeyError, ValueError, OSError):
                self._selector.unregister(self._watched[1])
        if wanted is not None:
            self._selector.register(wanted[1], wanted[2])
        self._watched = wanted

    def _close_wakeup(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None
        self._watched = None

    def _sleep_budget(self) -> float:
        assert self.state is not None and self.timers is not None
        budgets = [MAX_SLEEP_SECONDS]
        deadline = next_deadline(self.state)
        if deadline is not None:
            budgets.append(deadline - self.clock.monotonic())
        calendar = self.timers.seconds_until_next()
        if calendar is not None:
            budgets.append(calendar)
        if self.notifier.watchdog_interval:
            budgets.append(self.notifier.watchdog_interval)
        if self._status_due is not None:
            budgets.append(self._status_due - time.monotonic())
        link = self._link()
        link_deadline = link.deadline() if link is not None else None
        if link_deadline is not None:
            budgets.append(link_deadline - time.monotonic())
        return max(0.0, min(budgets))

    def _apply(self, event: ev.Event) -> None:
        assert self.state is not None and self.store is not None
        received_before = self.state.counters.received_total
        self.state, commands = step(self.state, event)
        received = self.state.counters.received_total
        if received > received_before:
            log.info("thank-you from %s (their #%d)", self.state.sender or "partner", received)
        durable = [c for c in commands if isinstance(c, _DURABLE)]
        # The partner's light is the moment this device exists for: when the step sends no
        # news of its own (a thanks arrived), the light goes first, before the commit, the
        # ack and the frame. Nothing is lost: the ack that lets the partner forget the message
        # still waits for the commit, so a crash in between means a redelivery (and the light
        # again). A step that sends news (a press) publishes it first and lights after.
        early = [] if any(isinstance(c, _NEWS) for c in commands) else [
            c for c in commands if isinstance(c, cmd.SetLight)]
        for command in early:
            self._carry_out(command, event.wall)
        if durable:
            # One commit for the whole step; publishing waits until it is on the disk.
            with self.store.transaction():
                for command in durable:
                    self._carry_out(command, event.wall)
            after, self._after_commit = self._after_commit, []
            for action in after:
                action()
        for command in commands:
            if not isinstance(command, _DURABLE) and command not in early:
                self._carry_out(command, event.wall)
        if isinstance(event, _LIVE_FACTS):
            self._status_changed()
        for command in commands:
            for observer in self.observers:
                observer(command)

    # --- commands ------------------------------------------------------------------------

    def _carry_out(self, command: cmd.Command, wall: datetime) -> None:
        assert self.store is not None and self.partner is not None and self.state is not None
        partner, counters_now = self.partner, self.state.counters
        match command:
            case cmd.ShowFrame(frame=frame):
                self._show(frame)
            case cmd.SetContrast(level=level):
                self.display.set_contrast(level)
            case cmd.SetPanelPower(on=on):
                self.display.wake() if on else self.display.sleep()
            case cmd.SetLight(mode=mode):
                self.panel.set_light(mode)
            case cmd.SaveCounters(counters=counters):
                self.store.save_counters(counters, partner.pair_id)
            case cmd.SaveRotation(bag_json=bag, prompt_id=prompt_id, draws=draws):
                self.store.save_rotation(bag, prompt_id, draws)
            case cmd.SendThanks(total=total):
                self.store.log_event(_when(wall), "sent", f"#{total}")
                partner.send_reliably("thanks", wall, counters_now)
                log.info("thank-you #%d sent%s", total,
                         "" if partner.pair else " (not paired yet: counted here only)")
            case cmd.SendSeen():
                self.store.log_event(_when(wall), "seen")
                partner.send_reliably("seen", wall, counters_now)
                log.info("partner's thank-you acknowledged")
            case cmd.SendDone(streak=streak):
                self.store.log_event(_when(wall), "done", f"streak {streak}")
                partner.send_reliably("done", wall, counters_now)
                log.info("today's gesture marked done (streak %d)", streak)
            case cmd.SendAck(seqs=seqs):
                partner.send_once("ack", wall, counters_now, seqs=tuple(seqs))
            case cmd.DropFromOutbox(seqs=seqs):
                partner.delivered(seqs)
            case cmd.SaveWindow(window_json=window):
                partner.save_window(window)
            case cmd.Redeliver():
                partner.redeliver()
            case cmd.PublishState():
                partner.send_once("state", wall, counters_now, retained=True)
            case cmd.NoteRejected(reason=reason, first=first, total=total):
                if first:
                    log.warning("dropped a message that failed checks (%s); further ones are "
                                "counted in status, not logged", reason)
                self._status_changed()
            case cmd.StartPairing():
                self._open_rendezvous()
            case cmd.PublishPairing(payload=payload):
                if self.rendezvous is not None:
                    self.rendezvous.publish(payload)
            case cmd.StopPairing():
                self._close_rendezvous()
            case cmd.SavePair(result=result):
                partner.switch(Pair(result.pair_id, result.key, self.device_id,
                                    result.partner_id))
                self._status_changed()
            case cmd.ForgetPair():
                log.info("the partner unpaired the units: forgetting the pair")
                partner.switch(None)
                self._status_changed()

    def _later(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this step's commit is on the disk (publishing, mostly)."""
        self._after_commit.append(action)

    # --- pairing ---------------------------------------------------------------------------

    def _open_rendezvous(self) -> None:
        from micromance.link.rendezvous import Rendezvous

        self._close_rendezvous()
        self.rendezvous = Rendezvous(
            self.config.broker, self.device_id, self.config.broker.room,
            lambda payload: self.post(ev.PairingMessage, payload=payload),
            client_factory=self._client_factory)
        self.rendezvous.start()
        self.post(ev.PairingBegin, entropy=os.urandom(ENTROPY_BYTES))

    def _close_rendezvous(self) -> None:
        if self.rendezvous is not None:
            self.rendezvous.stop()
            self.rendezvous = None

    # --- live facts and the screen ----------------------------------------------------------

    def _status_changed(self) -> None:
        """Write status.json soon (real time: this paces I/O, it is not the core's clock)."""
        if self._status_due is None:
            self._status_due = time.monotonic() + STATUS_DELAY_SECONDS

    def _write_status_if_due(self) -> None:
        if self._status_due is not None and time.monotonic() >= self._status_due:
            self._write_status()

    def _write_status(self) -> None:
        """Live link facts for ``micromance status``, in the runtime directory (tmpfs)."""
        self._status_due = None
        state, partner = self.state, self.partner
        if state is None or partner is None:
            return
        paired = partner.pair is not None
        facts = {
            "pid": os.getpid(),
            "state_dir": str(self.config.state_dir),
            "link": state.link.value if paired else "offline",
            "partner": "unknown" if state.partner_online is None or not paired
            else ("online" if state.partner_online else "offline"),
            "partner_name": state.sender,
            "outbox": state.outbox,
            "rejected": state.rejected,
        }
        if facts == getattr(self, "_status_written", None):
            return
        self._status_written = facts
        path = live_status_path(self.config)
        try:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(facts))
            os.replace(temporary, path)
        except OSError as error:
            log.debug("cannot write %s: %s", path, error)
        self.status_written.set()

    def _show(self, frame: Any) -> None:
        from PIL import Image

        from micromance.screens.render import render_packed

        width, height = self.display.size
        raw = render_packed(frame, width, height)
        if raw == self._last_image:
            return  # same pixels (e.g. a page turn of a one-page prompt): spare the panel
        self._last_image = raw
        self.display.show(Image.frombytes("1", (max(1, width), max(1, height)), raw))

    def _leave_screenshot(self) -> None:
        """With the dummy display, keep the last frame as a PNG in the state directory."""
        image = getattr(self.display, "last_image", None)
        if self.config.display.driver == "dummy" and image is not None:
            path = Path(self.config.state_dir) / SCREENSHOT_NAME
            image.save(path)
            log.info("last frame saved to %s", path)


#: Commands that write the store: carried out in order, in one transaction per step.
_DURABLE = (cmd.SaveCounters, cmd.SaveRotation, cmd.SendThanks, cmd.SendSeen, cmd.SendDone,
            cmd.SendAck, cmd.DropFromOutbox, cmd.SaveWindow, cmd.PublishState, cmd.SavePair,
            cmd.ForgetPair)
_NEWS = (cmd.SendThanks, cmd.SendSeen, cmd.SendDone)
_LIVE_FACTS = (ev.LinkChanged, ev.PartnerPresence, ev.OutboxChanged, ev.Delivery)


def _when(wall: datetime) -> str:
    return wall.isoformat(timespec="seconds")
