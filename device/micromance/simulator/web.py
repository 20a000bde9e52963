"""``micromance simulate --web``: the two simulated units in a browser page instead of a terminal.

The same simulation as ``terminal`` (Sam and Alex, paired, a private mosquitto, mock pins and
dummy displays, state under ``--state``); only the face differs. A small bottle app, served by
waitress on 127.0.0.1, shows each unit as it is: the last image its display adapter was given
(as a PNG, scaled up without smoothing), its light (the mode the panel was told and the LED
pin's level), and buttons that press the unit's mock pins, so a click travels the path a
finger does: pin edge, core, commit, broker, the partner's light.

Each unit also serves its own web page, ``micromance web``'s app for the config file the
simulation keeps for it (``<state>/sam.toml``, ``alex.toml``), on 127.0.0.1 and 127.0.0.2;
the simulator page links to them. A Settings save there rewrites the unit's file and reloads
the running unit, as on a Pi.

It stops like the terminal one: ``q`` and Enter, Ctrl-C, Ctrl-D on a terminal, SIGTERM or
SIGHUP, and then both units, the pages and the private mosquitto stop.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import signal
import sys
import threading
import webbrowser
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from micromance.config import Config
from micromance.core.buttons import BOTH_HOLD_SECONDS, NEXT_HOLD_SECONDS
from micromance.core.commands import LightMode
from micromance.errors import MicromanceError
from micromance.simulator.page import PAGE
from micromance.simulator.terminal import (
    DEFAULT_STATE,
    STOP_SIGNALS,
    Simulation,
    _quit_on_signals,
)

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
#: Where each unit's own web page is served: two addresses, because a browser keeps cookies
#: per host and not per port, so a sign-in on one page would otherwise end the other's.
UNIT_HOSTS = ("127.0.0.1", "127.0.0.2")
#: Each OLED pixel becomes a SCALE x SCALE square in the PNG (128x64 -> 512x256).
SCALE = 4
#: A hold is let go this long after the core's hold time, so the hold surely fired.
HOLD_MARGIN_SECONDS = 0.3
#: Ctrl-C in the terminal that started it: a normal way to stop, like ``q``.
WEB_STOP_SIGNALS = (*STOP_SIGNALS, signal.SIGINT)


@dataclass(frozen=True)
class Gesture:
    """What one button of the page does with the pins: which go down, and for how long."""

    pins: tuple[str, ...]      # "thanks", "next": in the order they go down
    hold: float = 0.0          # seconds held (0: let go at once, in the same order)


#: The page's buttons. A chord lets go in the order it went down, like two thumbs do.
GESTURES = {
    "thanks": Gesture(("thanks",)),
    "next": Gesture(("next",)),
    "done": Gesture(("next",), hold=NEXT_HOLD_SECONDS + HOLD_MARGIN_SECONDS),
    "week": Gesture(("thanks", "next")),
    "pair": Gesture(("thanks", "next"), hold=BOTH_HOLD_SECONDS + HOLD_MARGIN_SECONDS),
}


class BusyError(MicromanceError):
    """A unit's buttons are still held by an earlier gesture."""


class WebSimulation:
    """What the page needs from a running ``Simulation``: snapshots, images, button presses.

    Called from waitress's worker threads. Pins are driven under one lock per unit, and a
    hold is let go by a timer; the runtime's own queue takes the edges from there.
    """

    def __init__(self, simulation: Simulation, pages: tuple[str, ...] = ()) -> None:
        self.simulation = simulation
        #: Each unit's own web page, when it is served (links on the page), else empty.
        self.pages = pages
        self._locks = [threading.Lock() for _ in simulation.units]
        self._holding = [False for _ in simulation.units]
        self._timers: list[threading.Timer] = []
        self._closed = False

    # --- reading ---------------------------------------------------------------------------

    def unit_count(self) -> int:
        return len(self.simulation.units)

    def screen_image(self, index: int) -> Any:
        """The unit's screen as the panel shows it now: a mode "1" image, black when asleep."""
        from PIL import Image

        display = self.simulation.units[index].display
        image = display.last_image if display is not None else None
        if image is None or display.asleep:
            return Image.new("1", display.size if display is not None else (128, 64))
        return image

    def screen_png(self, index: int) -> bytes:
        """The screen scaled up ``SCALE`` times, nearest neighbour: pixels stay square."""
        from PIL import Image

        image = self.screen_image(index).convert("1")
        scaled = image.resize((image.width * SCALE, image.height * SCALE), Image.Resampling.NEAREST)
        out = io.BytesIO()
        scaled.save(out, format="PNG", optimize=True)
        return out.getvalue()

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data (see ``unit_snapshot``)."""
        return {"units": [self.unit_snapshot(index) for index in range(self.unit_count())]}

    def unit_snapshot(self, index: int) -> dict[str, Any]:
        runtime = self.simulation.units[index]
        state = runtime.state
        display = runtime.display
        image = self.screen_image(index)
        asleep = bool(display is not None and display.asleep)
        version = hashlib.blake2b(image.tobytes() + bytes([asleep]), digest_size=8).hexdigest()
        contrast = display.contrast if display is not None else None
        return {
            "name": runtime.config.device.name,
            "link": state.partner.link.value if state else "starting",
            "partner_online": state.partner.online if state else None,
            "mode": state.screen.mode.value if state else "starting",
            "sent_total": state.counters.sent_total if state else 0,
            "received_total": state.counters.received_total if state else 0,
            "light": self.light(index),
            "screen": {"version": version, "asleep": asleep,
                       "contrast": 255 if contrast is None else contrast,
                       "width": image.width, "height": image.height},
            "holding": self._holding[index],
            "page": self.pages[index] if index < len(self.pages) else "",
        }

    def light(self, index: int) -> dict[str, Any]:
        """The light: the mode the panel was told (``off``, ``on``, ``pulse``: breathing) and
        the LED pin's level right now (0 to 1; a breathing light changes between two reads)."""
        runtime = self.simulation.units[index]
        panel = runtime.panel
        mode = panel.light_mode if panel is not None else LightMode.OFF
        level = float(self._pin(index, runtime.config.pins.led).state or 0.0)
        return {"mode": mode.value, "level": round(level, 3)}

    # --- pressing --------------------------------------------------------------------------

    def act(self, index: int, action: str) -> None:
        """Carry out one of ``GESTURES`` on unit ``index``'s mock pins."""
        gesture = GESTURES[action]
        with self._locks[index]:
            if self._closed:
                raise BusyError("the simulation is stopping")
            if self._holding[index]:
                raise BusyError(f"{self.simulation.units[index].config.device.name}'s buttons "
                                f"are still held", fix="wait for the hold to end")
            pins = [self._button_pin(index, name) for name in gesture.pins]
            for pin in pins:
                pin.drive_low()  # pulled up: pressed is low
            if not gesture.hold:
                for pin in pins:
                    pin.drive_high()
                return
            self._start_hold(index, pins, gesture.hold)

    def _start_hold(self, index: int, pins: list[Any], seconds: float) -> None:
        def let_go() -> None:
            with self._locks[index]:
                if self._closed:
                    return
                for pin in pins:
                    pin.drive_high()
                self._holding[index] = False

        timer = threading.Timer(seconds, let_go)
        timer.daemon = True
        self._holding[index] = True
        self._timers.append(timer)
        timer.start()

    def close(self) -> None:
        """No more presses; holds in progress are dropped with their pins (the units stop)."""
        for lock in self._locks:
            with lock:
                self._closed = True
        for timer in self._timers:
            timer.cancel()

    def _button_pin(self, index: int, name: str) -> Any:
        pins = self.simulation.units[index].config.pins
        return self._pin(index, pins.thanks if name == "thanks" else pins.next)

    def _pin(self, index: int, number: int) -> Any:
        return self.simulation.pin_factories[index].pin(number)


# --- the web app --------------------------------------------------------------------------


class PageModel(Protocol):
    """What the page's app asks of its model (``WebSimulation``, or a still one for the
    README's picture)."""

    def unit_count(self) -> int: ...
    def snapshot(self) -> dict[str, Any]: ...
    def screen_png(self, index: int) -> bytes: ...
    def act(self, index: int, action: str) -> None: ...


def build_app(web: PageModel) -> Any:
    """The bottle app of the simulator page (a WSGI callable)."""
    import bottle

    app = bottle.Bottle()

    def unit_index(text: str) -> int:
        if not text.isdigit() or int(text) >= web.unit_count():
            raise bottle.HTTPError(404, f"no unit {text}")
        return int(text)

    def answer(status: int, **body: Any) -> str:
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Cache-Control", "no-store")
        return json.dumps(body)

    @app.get("/")
    def page() -> str:
        bottle.response.content_type = "text/html; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-store")
        return PAGE

    @app.get("/api/state")
    def state() -> str:
        return answer(200, **web.snapshot())

    @app.get("/unit/<index>/screen.png")
    def screen(index: str) -> bytes:
        png = web.screen_png(unit_index(index))
        bottle.response.content_type = "image/png"
        bottle.response.set_header("Cache-Control", "no-store")
        return png

    @app.post("/api/unit/<index>/<action>")
    def press(index: str, action: str) -> str:
        # Only this page's script sends JSON; a form on another site cannot, and a script
        # there would have to pass the browser's CORS check first (it never does: no
        # Access-Control headers). The Origin check refuses the rest.
        if bottle.request.content_type.split(";")[0].strip() != "application/json":
            return answer(415, ok=False, error="send the press as JSON, as the page does")
        origin = bottle.request.get_header("Origin")
        if origin and origin.rstrip("/") != f"http://{bottle.request.get_header('Host')}":
            return answer(403, ok=False, error=f"presses from {origin} are refused")
        number = unit_index(index)
        if action not in GESTURES:
            return answer(404, ok=False, error=f"no button {action!r}: one of "
                                               f"{', '.join(GESTURES)}")
        try:
            web.act(number, action)
        except BusyError as error:
            return answer(409, ok=False, error=error.message)
        return answer(200, ok=True)

    @app.error(404)
    def not_found(error: bottle.HTTPError) -> str:
        bottle.response.content_type = "application/json"
        return json.dumps({"ok": False, "error": str(error.body)})

    return app


class LoopbackServer:
    """A WSGI app served by waitress on 127.0.0.1, on a thread of its own, until ``stop``.

    ``port`` 0 takes a free one (``port`` and ``url`` say which). Used for the simulator
    page, and by the tests for the units' own pages (``host``: any 127.x.y.z address, so two
    pages in one browser keep their cookies apart: cookies ignore the port).
    """

    def __init__(self, app: Any, port: int = 0, *, threads: int = 4,
                 host: str = LOOPBACK) -> None:
        from waitress.server import create_server

        try:
            self._server = create_server(app, host=host, port=port, threads=threads,
                                         ident="micromance", clear_untrusted_proxy_headers=True)
        except OSError as error:
            raise MicromanceError(
                f"cannot serve the page on {host}:{port} ({error.strerror or error})",
                fix="pick another port with --port N, or leave --port out for a free one",
            ) from None
        self.port = int(self._server.effective_port)
        self.url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self._server.run, name="web-page", daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection on waitress's own thread, then
        let its workers finish."""
        server = self._server

        def close_everything() -> None:
            for dispatcher in list(server._map.values()):
                dispatcher.close()

        if self._thread.is_alive():
            server.trigger.pull_trigger(close_everything)
            self._thread.join(5)
        else:
            close_everything()
        server.task_dispatcher.shutdown()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the command ----------------------------------------------------------------------------


def display_present() -> bool:
    """A graphical session to open a browser in (else only the address is printed)."""
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY"))


@contextmanager
def serving(simulation: Simulation, port: int = 0) -> Iterator[tuple[WebSimulation, str]]:
    """The page of a running simulation, and each unit's own web page, served until the
    block ends: (the page's model, its URL; ``model.pages`` are the units' URLs)."""
    with ExitStack() as stack:
        pages = tuple(stack.enter_context(_unit_page(simulation, index)).url
                      for index in range(len(simulation.units)))
        web = WebSimulation(simulation, pages)
        stack.callback(web.close)
        server = stack.enter_context(LoopbackServer(build_app(web), port))
        yield web, server.url


def _unit_page(simulation: Simulation, index: int) -> LoopbackServer:
    """Unit ``index``'s own web page (``micromance web``'s app for its config file) on a
    free port of ``UNIT_HOSTS[index]``, else of 127.0.0.1 where that address is missing."""
    from micromance.web.app import make_app
    from micromance.web.auth import Auth
    from micromance.web.site import Site
    from micromance.web.web_state import WebStateFile

    config = simulation.units[index].config
    site = Site(str(simulation.config_path(index)), Auth(WebStateFile(config.state_dir)))
    app = make_app(site)
    host = UNIT_HOSTS[index % len(UNIT_HOSTS)]
    try:
        return LoopbackServer(app, threads=2, host=host)
    except MicromanceError as error:
        log.info("%s; %s's page is on %s instead (one browser's sign-ins then clash)",
                 error.message, config.device.name, LOOPBACK)
        return LoopbackServer(app, threads=2)


def run_web_simulation(base: Config, state_root: Path | None = None, *, port: int = 0,
                       open_browser: bool | None = None, keys: TextIO | None = None,
                       out: TextIO | None = None) -> int:
    """The ``simulate --web`` command: runs until ``q``, Ctrl-C or a signal."""
    keys = keys or sys.stdin
    out = out or sys.stdout
    simulation = Simulation(base, state_root or DEFAULT_STATE, out)
    if open_browser is None:
        open_browser = display_present()
    with _quit_on_signals(simulation.changed, WEB_STOP_SIGNALS) as received, \
            simulation.running(), serving(simulation, port) as (web, url):
        own = ", ".join(f"{unit.config.device.name}'s at {page}"
                        for unit, page in zip(simulation.units, web.pages, strict=True))
        out.write(f"micromance simulate: Sam and Alex are at {url}\n"
                  f"  their own web pages: {own} (sign in with the code on the screen)\n"
                  f"  stop them with q and Enter, or Ctrl-C\n")
        out.flush()
        if open_browser:
            webbrowser.open(url)
        reader = threading.Thread(target=_read_quit, args=(keys, simulation.changed),
                                  name="keys", daemon=True)
        reader.start()
        while simulation.changed.get() != "quit":
            pass  # "draw": the page asks for news itself
    if received and received[0] != signal.SIGINT:
        return 128 + received[0]
    return 0


def _read_quit(stream: TextIO, changes: queue.SimpleQueue[str]) -> None:
    """``q`` (a line) quits; so does the end of a terminal's input. Piped input that ends
    (``< /dev/null``, a background job) leaves the page running until a signal."""
    try:
        for line in stream:
            if line.strip().lower() in ("q", "quit"):
                changes.put("quit")
                return
        if stream.isatty():
            changes.put("quit")
    except (OSError, ValueError):
        changes.put("quit")
