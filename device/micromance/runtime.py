"""The runtime: wires the adapters, the core, the executor and the loop into one unit.

``run`` opens everything in dependency order (store, display, panel, partner link, pairing
room, control socket, key reader, calendar), restores the core's state from the store, and
hands the loop one handler: ``core.step``, then the executor. Everything is closed in reverse
order on the way out, whatever ended the loop. Other threads only ``post`` events
(``on_edge``, ``on_gesture``), ask for work on the loop thread (``call_soon``: SIGHUP's
reload) or ``stop`` the unit.

``reload`` re-reads the config file on the loop thread (SIGHUP, the control socket's
``reload``): a good file is applied without a restart (the core gets new ``Settings``, the
calendar and the link follow when theirs changed), and what only a restart can apply is named;
a bad one changes nothing and is reported as ``config_error``.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TextIO

from micromance.checkpoints import QuietCheckpoints
from micromance.config import Config, load_config
from micromance.content.library import load_library
from micromance.control.client import control_path
from micromance.control.server import ControlServer
from micromance.core import events as ev
from micromance.core.clock import Clock, SystemClock
from micromance.core.commands import Command, Durable
from micromance.core.events import Button, Gesture
from micromance.core.machine import (
    initial_state,
    light_first,
    next_deadline,
    present,
    react,
    send_first,
    step,
)
from micromance.core.quiet import QuietHours
from micromance.core.state import Outputs, Settings, State
from micromance.errors import ConfigError, StoreError
from micromance.executor import Executor
from micromance.health import ThreadWatch
from micromance.link.courier import Courier, brokers_for
from micromance.link.homeassistant import HomeAssistant
from micromance.link.rendezvous import PairingRoom
from micromance.loop import Loop, Source, Timer
from micromance.repair import open_store
from micromance.service import Notifier
from micromance.status import LiveFactsFile, broker_rows
from micromance.store import Store
from micromance.timers import CalendarTimers

log = logging.getLogger("micromance")

SCREENSHOT_NAME = "screen.png"
#: Config keys a running unit cannot take over: the hardware it opened, where its state is.
RESTART_KEYS = ("pins.thanks", "pins.next", "pins.led", "display.driver", "display.interface",
                "display.width", "display.height", "display.rotate", "display.i2c_port",
                "display.i2c_address", "display.spi_port", "display.spi_device",
                "display.gpio_dc", "display.gpio_reset", "paths.state_dir")
#: The sections compared key by key on a reload (the brokers are compared as a list).
SECTIONS = ("device", "display", "pins", "prompts", "quiet_hours", "pairing", "paths",
            "logging")


def changed_keys(old: Config, new: Config) -> list[str]:
    """The dotted keys whose values differ, ``broker`` for the broker list, in file order."""
    keys = []
    for section in SECTIONS:
        before, after = getattr(old, section), getattr(new, section)
        keys += [f"{section}.{f.name}" for f in fields(before)
                 if getattr(before, f.name) != getattr(after, f.name)]
    if _link_brokers(old.brokers) != _link_brokers(new.brokers):
        keys.append("broker")
    if old.broker.room != new.broker.room:
        keys.append("broker.room")
    return keys


def _link_brokers(brokers: tuple[Any, ...]) -> tuple[Any, ...]:
    """The brokers as a link uses them (the room is pairing's business)."""
    return tuple(replace(broker, room="") for broker in brokers)


def keep_restart_keys(old: Config, new: Config) -> Config:
    """``new``, but with the values of ``RESTART_KEYS`` the running unit opened with."""
    display = replace(new.display, **{key.split(".")[1]: getattr(old.display, key.split(".")[1])
                                      for key in RESTART_KEYS if key.startswith("display.")})
    return replace(new, pins=old.pins, paths=old.paths, display=display)


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
        home_assistant=config.homeassistant.enabled,
    )


class Alarm:
    """A loop timer from a function: ``seconds()`` until due, ``action()`` when due."""

    def __init__(self, seconds: Callable[[], float | None],
                 action: Callable[[], None] = lambda: None) -> None:
        self.seconds_until_due = seconds
        self.run_due = action


class _Task:
    """Work for the loop thread, queued among the events (``Runtime.call_soon``)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action


class Stepper:
    """The core and the executor together: one event in, its commands carried out.

    ``handle`` carries out what an event changes (``core.react``: what is saved and sent, and
    the light); ``present`` brings the screen and the reported facts up to date once no event
    waits (``core.present``), so drawing never stands between a press and its publish, or
    between a thank-you and the light.

    A step whose commit fails (a full disk, storage remounted read-only) did not happen: the
    state goes back to what it was before, and the core hears ``StorageFailed`` instead, so
    it shows the problem and refuses presses rather than pretend. Nothing was published (that
    waits for the commit) and nothing acknowledged, so the partner sends it again later.
    """

    def __init__(self, state: State, executor: Executor) -> None:
        self.state = state
        self.executor = executor
        self._failing = False
        #: ``next_deadline`` of the state it was worked out for (the loop asks before it
        #: sleeps): a release that comes before it finds no timer due.
        self._deadline: tuple[State, float | None] | None = None

    def handle(self, event: ev.Event) -> None:
        before = self.state
        try:
            self._send_first(event)
            self.state, commands = react(before, event)
            self.executor.carry_out(commands, event.wall)
        except StoreError as error:
            if not self._failing:
                log.error("cannot save: %s; presses are refused until it works again", error)
            self._failing = True
            self._storage_failed(before, ev.StorageFailed(reason=error.short, at=event.at,
                                                          wall=event.wall))
            return
        if isinstance(event, ev.StorageRecovered):
            self._failing = False
        received = self.state.counters.received_total
        if received > before.counters.received_total:
            log.info("thank-you from %s (their #%d)", self.state.sender or "partner", received)

    def _send_first(self, event: ev.Event) -> None:
        """A THANKS release whose thank-you was prepared at the press: when the core is sure
        the step will save and send exactly that (``send_first``), it is committed and
        published now, ahead of the step, which then carries out only the rest."""
        cached = self._deadline
        if cached is None or cached[0] is not self.state:
            return  # the state moved since the loop slept: nothing is sure
        first = send_first(self.state, event, cached[1])
        if first:
            self.executor.send_ahead(first, event.wall)

    def first_look(self, event: ev.Event) -> None:
        """``event`` is handled next (nothing waits before it): when the core is sure its step
        will light the LED (``light_first``), the LED goes on now. The step then carries on
        from there; should its commit fail, every output goes out again anyway."""
        light = light_first(self.state, event)
        if light is not None:
            self.executor.light_now(light)

    def present(self) -> None:
        """The frame and the facts for the state the last events left (nothing if unchanged)."""
        self.state, commands = present(self.state)
        if commands:
            self.executor.carry_out(commands, self.state.wall)

    def _storage_failed(self, before: State, event: ev.StorageFailed) -> None:
        """The failed step is undone; the core hears why. What the adapters were told during
        it is unknown, so all outputs go out again. That step itself writes nothing: whatever
        else it wanted to save (a prompt rotation that fell due) waits for storage to work."""
        self.state, commands = step(replace(before, outputs=Outputs()), event)
        self.executor.carry_out([c for c in commands if not isinstance(c, Durable)],
                                event.wall)

    def seconds_until_deadline(self, now: float) -> float | None:
        """Until the core wants a ``Tick`` (``now`` on the core's clock)."""
        deadline = next_deadline(self.state)
        self._deadline = (self.state, deadline)
        return None if deadline is None else deadline - now


class Runtime:
    """One unit: its adapters, its state, its loop.

    The attributes that name adapters (``display``, ``panel``, ``courier``, ``executor``,
    ``timers``) exist from the moment ``run`` opened them; tests and the simulator look at
    them, the unit itself only uses what it was handed.
    """

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
        self.loop = Loop()
        self.settings = settings_from(config)
        self._stepper: Stepper | None = None
        #: Called with each command after it was carried out (tests wait on these).
        self.observers: list[Callable[[Command], None]] = []
        #: Adapter threads that must be alive for WATCHDOG=1 (a deaf unit should restart).
        self.watch = ThreadWatch()
        self.live = LiveFactsFile(config)
        self.control = ControlServer(control_path(config), self, self.clock.monotonic)
        self._started = threading.Event()

    # --- any thread ------------------------------------------------------------------------

    def _stamped(self, factory: Callable[..., ev.Event], **fields: Any) -> ev.Event:
        """The event made now, by the injected clock (monotonic and wall time)."""
        return factory(**fields, at=self.clock.monotonic(), wall=self.clock.now())

    def post(self, factory: Callable[..., ev.Event], **fields: Any) -> None:
        """Put an event stamped now on the queue (thread-safe, never blocks).

        A message from the partner is posted by its link on the loop's thread as it is
        opened: when nothing waits before it, the stepper looks at it at once
        (``Stepper.first_look``), so a thank-you lights the LED before its step runs.
        """
        event = self._stamped(factory, **fields)
        looker = self._stepper if factory is ev.Delivery and self.loop.next_up() else None
        self.loop.post(event)  # queued before it lights: a press at the sight comes after it
        if looker is not None:
            looker.first_look(event)

    def on_edge(self, button: Button, down: bool) -> None:
        """A button edge (gpiozero's thread): a press is committed and sent from here at once
        while the loop sleeps, with no hand-over to the loop's thread (``Loop.handle_now``)."""
        self.loop.handle_now(self._stamped(ev.ButtonDown if down else ev.ButtonUp,
                                          button=button))

    def on_gesture(self, gesture: Gesture) -> None:
        self.post(ev.GestureInput, gesture=gesture)

    def stop(self) -> None:
        """Ask the loop to end (safe from signal handlers)."""
        self.loop.stop()

    def call_soon(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the loop thread, after the events queued before it (safe from
        signal handlers: the wake-up is always written, also on the loop's own thread)."""
        self.loop.post(_Task(action))
        self.loop.wake()

    def wait_started(self, timeout: float | None = None) -> bool:
        return self._started.wait(timeout)

    @property
    def state(self) -> State | None:
        """The core's state, from start-up on (None before)."""
        return self._stepper.state if self._stepper is not None else None

    @property
    def status_written(self) -> threading.Event:
        return self.live.written

    @property
    def wakeups(self) -> int:
        return self.loop.wakeups

    @property
    def busy(self) -> bool:
        return self.loop.busy

    # --- life cycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Open everything in dependency order, loop, close in reverse order."""
        config = self.config
        with ExitStack() as stack:
            stack.enter_context(self.loop)
            store = self.store = open_store(config.state_dir)  # repairs a damaged database
            stack.callback(store.close)
            display = self.display = self._open_display()
            stack.callback(display.close)
            panel = self.panel = self._open_panel()
            stack.callback(panel.close)
            device_id = store.device_id()  # pair.json's when paired: survives the database
            courier = self.courier = Courier(config, store, device_id, self.post,
                                             self.loop.wake, self._client_factory)
            room = PairingRoom(config.pairing_brokers, config.room, self.post,
                               client_factory=self._client_factory)
            home = self.home = HomeAssistant(
                config.homeassistant, device_id=device_id, name=config.device.name,
                post=self.post, wake=self.loop.wake, client_factory=self._client_factory)
            self.executor = Executor(config, store=store, display=display, panel=panel,
                                     courier=courier, room=room, live=self.live,
                                     device_id=device_id, post=self.post,
                                     observers=self.observers, home=home)
            stepper = self._stepper = Stepper(self._restore(store, courier, device_id),
                                              self.executor)
            stack.callback(self.live.write)
            self._room = room
            courier.connect()
            stack.callback(courier.disconnect)
            stack.callback(room.close)
            home.open()  # the home's broker: its own connection, never in the couple's way
            stack.callback(home.close)
            self.control.open()
            stack.callback(self.control.close)
            if self._key_stream is not None:
                from micromance.hardware.keys import KeyLines

                KeyLines(self._key_stream, self.on_gesture, self.stop).start()
            self.timers = CalendarTimers(
                config.prompts.interval_minutes, config.prompts.focus_time, self._calendar)
            stack.callback(lambda: self.timers.clear())  # a reload may have replaced them
            stack.enter_context(self._signals())
            stack.callback(self._leave_screenshot)
            self._loop(stepper, courier, device_id)
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

    def _restore(self, store: Store, courier: Courier, device_id: str) -> State:
        """The core's state as the store kept it."""
        self.settings = replace(self.settings, shuffle_seed=int(device_id[:8], 16),
                                device_id=device_id)
        bag_json, prompt_id, draws = store.load_rotation()
        return initial_state(
            self.settings, self.clock.monotonic(), self.clock.now(),
            counters=store.load_counters(courier.pair_id),
            bag_json=bag_json, prompt_id=prompt_id, draws=draws,
            paired=courier.pair is not None, window=courier.replay_window(),
            outbox=courier.outbox_size(), run_first_seq=store.run_first_seq())

    @contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may set handlers (tests run the loop elsewhere)
            return
        previous = {sig: signal.signal(sig, lambda *_: self.stop())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(
            signal.SIGHUP, lambda *_: self.call_soon(self._reload_on_signal))
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _calendar(self, what: str) -> None:
        self.post(ev.RotatePrompt if what == "rotate" else ev.MorningFocus)

    # --- reload and the control socket (the loop thread) --------------------------------------

    def reload(self) -> list[str]:
        """Re-read the config file and apply it; returns what changed (and what waits for a
        restart). A bad file raises ``ConfigError`` and the unit runs on as it was."""
        old = self.config
        if old.source is None:
            log.info("reload: running on the built-in defaults, there is no file to re-read")
            return []
        try:
            read = load_config(old.source)
            new = keep_restart_keys(old, read)
            settings = replace(settings_from(new), shuffle_seed=self.settings.shuffle_seed,
                               device_id=self.settings.device_id)
        except ConfigError as error:
            self.live.note_config_error(str(error))
            log.error("reload refused, running on as before: %s", error)
            raise
        keys = changed_keys(old, new)
        restart = [key for key in changed_keys(old, read) if key in RESTART_KEYS]
        self.config, self.settings = new, settings
        self.live.note_config_error("")
        courier = self.courier
        brokers_changed = _link_brokers(brokers_for(new, courier.pair)) != \
            _link_brokers(courier.brokers)
        self.post(ev.SettingsChanged, settings=settings, brokers_changed=brokers_changed)
        courier.reconfigure(new)  # re-opens the links after that event: theirs come next
        self._room.reconfigure(new.pairing_brokers, new.room)
        self.executor.reconfigure(new)
        self.home.reconfigure(new.homeassistant, new.device.name)
        if {"prompts.interval_minutes", "prompts.focus_time"} & set(keys):
            self.timers.clear()
            self.timers = CalendarTimers(new.prompts.interval_minutes, new.prompts.focus_time,
                                         self._calendar)
        if "logging.level" in keys:
            logging.getLogger().setLevel(new.logging.level.upper())
        for key in restart:
            log.warning("reload: restart to apply %s", key)
        log.info("config reloaded from %s: %s", old.source, ", ".join(keys) or "no change")
        return [*keys, *(f"restart to apply {key}" for key in restart)]

    # --- the loop --------------------------------------------------------------------------

    def _loop(self, stepper: Stepper, courier: Courier, device_id: str) -> None:
        def sources() -> list[Source]:
            return [*courier.links, *self.home.sources(), *self.control.sources()]

        def handle(item: ev.Event | _Task) -> None:
            if isinstance(item, _Task):
                item.action()
            else:
                stepper.handle(item)

        timers: list[Timer] = [
            Alarm(lambda: stepper.seconds_until_deadline(self.clock.monotonic())),
            # The calendar of the moment (a reload may replace it).
            Alarm(lambda: self.timers.seconds_until_due(), lambda: self.timers.run_due()),
            self.live,
            Alarm(lambda: self.notifier.watchdog_interval),
            QuietCheckpoints(self.store, self.clock.monotonic),
        ]
        stepper.handle(self._tick())
        stepper.present()
        # What starting made (modules, fonts, the prompt library: most of the heap) lives as
        # long as the unit: out of the collector's sight, a full collection no longer walks
        # it in the middle of a press (tens of milliseconds on a Pi Zero).
        gc.freeze()
        self.notifier.ready(f"{self.config.device.name}: running")
        log.info("%s is up (device %s, %s)", self.config.device.name, device_id,
                 getattr(self.display, "description", self.config.display.driver))
        self._started.set()
        try:
            self.loop.run(handle, self._tick, sources=sources, timers=timers,
                          heartbeat=self._heartbeat, idle=stepper.present)
        finally:
            self.notifier.stopping()
            log.info("stopping")

    def _reload_on_signal(self) -> None:
        with suppress(ConfigError):  # logged, and kept as config_error for status
            self.reload()

    def control_facts(self) -> dict[str, Any]:
        """The control socket's ``status``, beyond the core's state: each broker as
        ``status --json`` lists it, the refused reload, the pair."""
        courier = self.courier
        state = self.state
        links = state.partner.links if state is not None else ()
        brokers = broker_rows(courier.brokers, ((li.where, li.connected, li.error)
                                                for li in links))
        return {"brokers": brokers, "config_error": self.live.config_error,
                "pair_id": courier.pair_id[:8]}

    def _tick(self) -> ev.Event:
        return self._stamped(ev.Tick)

    def _heartbeat(self) -> None:
        """WATCHDOG=1 while every adapter thread that feeds the loop is alive."""
        if self.watch.alive():
            self.notifier.watchdog()

    def _leave_screenshot(self) -> None:
        """With the dummy display, keep the last frame as a PNG in the state directory."""
        image = getattr(self.display, "last_image", None)
        if self.config.display.driver == "dummy" and image is not None:
            path = Path(self.config.state_dir) / SCREENSHOT_NAME
            image.save(path)
            log.info("last frame saved to %s", path)
