"""`micromance simulate --web`: the two simulated units in a browser page.

A real simulation (two runtimes, a private mosquitto, mock pins, dummy displays) with its page
served by waitress on a loopback port; the tests talk to it over HTTP as the page's script
does. The browser itself clicks in tests/test_browser_simulate.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest
from PIL import Image

from micromance import cli
from micromance.core import commands as cmd
from micromance.screens.render import render
from micromance.screens.views import RECEIVED_FRAMES, DoneView, ReceivedView
from micromance.simulator import web
from micromance.simulator.terminal import Simulation
from tests.test_simulate import SIMULATE_WAIT, mosquittos_of, wait_for
from tests.units import WAIT, desk_config


class Watched:
    """The commands a simulated unit carried out, to wait on (like tests/units.Running)."""

    def __init__(self, runtime) -> None:
        self.seen: list[cmd.Command] = []
        self._changed = threading.Condition()
        runtime.observers.append(self._observe)

    def _observe(self, command: cmd.Command) -> None:
        with self._changed:
            self.seen.append(command)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = WAIT):
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((c for c in reversed(self.seen) if predicate(c)), None), timeout)
        assert found, f"no matching command within {timeout}s; saw {self.seen[-5:]}"
        return found


def shows(view_type, **fields):
    """A predicate: a ShowFrame of this view type with these fields."""
    def matches(command: cmd.Command) -> bool:
        return (isinstance(command, cmd.ShowFrame) and isinstance(command.frame.view, view_type)
                and all(getattr(command.frame.view, k) == v for k, v in fields.items()))
    return matches


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=WAIT) as answer:
        return answer.status, answer.headers["Content-Type"], answer.read()


def post(url: str, body: bytes = b"{}", content_type: str = "application/json",
         **headers: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def state_of(url: str) -> dict:
    return json.loads(get(url + "api/state")[2])


def screen_of(url: str, index: int) -> Image.Image:
    """The unit's screen image from the page, scaled back down to the panel's pixels."""
    status, kind, png = get(f"{url}unit/{index}/screen.png")
    assert (status, kind) == (200, "image/png")
    image = Image.open(io.BytesIO(png))
    return image.resize((image.width // web.SCALE, image.height // web.SCALE),
                        Image.Resampling.NEAREST)


@pytest.fixture
def simulation(tmp_path):
    """Sam and Alex running, their page served: (the WebSimulation, its URL, watchers)."""
    sim = Simulation(desk_config(tmp_path / "unused"), tmp_path / "sim", out=io.StringIO())
    with sim.running(), web.serving(sim) as (page, url):
        yield page, url, [Watched(unit) for unit in sim.units]


@pytest.mark.broker
def test_a_click_on_sams_thanks_shows_the_heart_on_alexs_screen(simulation):
    _page, url, (_sam, alex) = simulation
    status, body = post(url + "api/unit/0/thanks")
    assert (status, body) == (200, {"ok": True})

    last_heart = alex.wait_for(shows(ReceivedView, sender="Sam", frame=RECEIVED_FRAMES - 1))
    # The page's image of Alex's screen is the heart the display adapter was given, pixel for
    # pixel (the frame carries the OLED-care shift of the moment).
    expected = render(last_heart.frame, 128, 64)
    assert list(screen_of(url, 1).convert("1").getdata()) == list(expected.getdata())
    assert sum(expected.getdata()) > 0

    units = state_of(url)["units"]
    assert [unit["name"] for unit in units] == ["Sam", "Alex"]
    assert units[1]["light"]["mode"] == "pulse"
    assert units[1]["received_total"] == 1 and units[0]["sent_total"] == 1
    assert units[0]["light"]["mode"] != "pulse"
    # The version tells the page when to fetch a new image: the two screens differ.
    assert units[0]["screen"]["version"] != units[1]["screen"]["version"]


@pytest.mark.broker
def test_the_led_level_is_read_from_the_pin(simulation):
    page, url, (_sam, alex) = simulation
    assert state_of(url)["units"][1]["light"] == {"mode": "off", "level": 0.0}
    post(url + "api/unit/0/thanks")
    alex.wait_for(lambda c: c == cmd.SetLight(cmd.LightMode.PULSE))
    # Breathing starts at full brightness on the loop thread, then gpiozero's thread fades it.
    levels = {state_of(url)["units"][1]["light"]["level"] for _ in range(20)}
    assert all(0.0 <= level <= 1.0 for level in levels)
    assert max(levels) > 0.0
    led = page.simulation.pin_factories[1].pin(page.simulation.units[1].config.pins.led)
    assert led.state is not None


@pytest.mark.broker
def test_the_page_and_its_images_are_served(simulation):
    _page, url, _ = simulation
    status, kind, html = get(url)
    assert status == 200 and kind.startswith("text/html")
    text = html.decode()
    for needle in ('id="unit-template"', 'data-action="thanks"', 'data-action="pair"',
                   "api/state", "screen.png", "image-rendering: pixelated"):
        assert needle in text, needle
    assert "http" not in text.split("<script>")[1]  # nothing from a CDN: plain, local JS
    for index in (0, 1):
        image = screen_of(url, index)
        assert image.size == (128, 64)
        assert image.getbbox() is not None  # the home screen draws something
    status, kind, png = get(url + "unit/0/screen.png")
    assert Image.open(io.BytesIO(png)).size == (128 * web.SCALE, 64 * web.SCALE)


@pytest.mark.broker
def test_presses_from_elsewhere_are_refused_and_change_nothing(simulation):
    _page, url, (sam, _alex) = simulation
    form = post(url + "api/unit/0/thanks", b"x=1", "application/x-www-form-urlencoded")
    foreign = post(url + "api/unit/0/thanks", Origin="http://example.com")
    assert form[0] == 415 and "JSON" in form[1]["error"]
    assert foreign[0] == 403 and "example.com" in foreign[1]["error"]
    assert post(url + "api/unit/7/thanks")[0] == 404
    unknown = post(url + "api/unit/0/dance")
    assert unknown[0] == 404 and "thanks" in unknown[1]["error"]
    assert state_of(url)["units"][0]["sent_total"] == 0
    assert not any(isinstance(c, cmd.SendThanks) for c in sam.seen)


@pytest.mark.broker
def test_done_holds_next_and_a_press_during_the_hold_waits(simulation):
    _page, url, (sam, _alex) = simulation
    assert post(url + "api/unit/0/done") == (200, {"ok": True})
    assert state_of(url)["units"][0]["holding"] is True
    busy = post(url + "api/unit/0/thanks")
    assert busy[0] == 409 and "held" in busy[1]["error"]
    sam.wait_for(shows(DoneView), timeout=WAIT)
    wait_for(lambda: not state_of(url)["units"][0]["holding"], "the hold to end", WAIT)
    assert not any(isinstance(c, cmd.SendThanks) for c in sam.seen)


# --- small pieces ------------------------------------------------------------------------------


def test_every_gesture_presses_real_buttons_and_holds_outlast_the_core():
    from micromance.core.buttons import BOTH_HOLD_SECONDS, NEXT_HOLD_SECONDS

    assert set(web.GESTURES) == {"thanks", "next", "done", "week", "pair"}
    assert all(set(g.pins) <= {"thanks", "next"} for g in web.GESTURES.values())
    assert web.GESTURES["done"].hold > NEXT_HOLD_SECONDS
    assert web.GESTURES["pair"].hold > BOTH_HOLD_SECONDS
    assert web.GESTURES["thanks"].hold == web.GESTURES["week"].hold == 0


def test_a_browser_opens_only_with_a_display(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert not web.display_present()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert web.display_present()


@pytest.mark.parametrize(("typed", "quits"), [("q\n", True), ("quit\n", True),
                                              ("x\n\n", False)])
def test_q_and_enter_quits(typed, quits):
    import queue

    changes: queue.SimpleQueue[str] = queue.SimpleQueue()
    web._read_quit(io.StringIO(typed), changes)  # a pipe that ends: not a quit by itself
    assert (not changes.empty() and changes.get() == "quit") is quits


def test_port_only_with_web_and_in_range(capsys):
    assert cli.main(["simulate", "--port", "8000"]) == 2
    assert "--port only goes with --web" in capsys.readouterr().err
    assert cli.main(["simulate", "--web", "--port", "70000"]) == 2
    assert "not a TCP port" in capsys.readouterr().err


def test_a_port_in_use_is_a_clear_error():
    import socket

    from micromance.errors import MicromanceError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MicromanceError, match=f"127.0.0.1:{port}") as raised:
            web.LoopbackServer(lambda environ, start: [], port)
    assert "--port" in raised.value.fix


def test_the_server_stops_with_its_connections_open():
    """A browser keeps its connection open between polls: stop() must not wait on it."""
    import http.client

    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]

    server = web.LoopbackServer(hello).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"hello"  # kept alive
    server.stop()
    assert not server._thread.is_alive()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT).request("GET", "/")
    connection.close()


# --- the command ------------------------------------------------------------------------------


@pytest.mark.broker
def test_the_command_prints_its_address_and_ctrl_c_stops_everything(tmp_path):
    state = tmp_path / "sim"
    process = subprocess.Popen(
        [sys.executable, "-m", "micromance", "simulate", "--web", "--state", str(state)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**_environment(), "DISPLAY": ""})
    code = None
    try:
        first = process.stdout.readline()
        assert "http://127.0.0.1:" in first, first + process.stderr.read()
        url = first[first.index("http://"):].split()[0]
        assert state_of(url)["units"][0]["name"] == "Sam"
        assert mosquittos_of(state)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=SIMULATE_WAIT)
        errors = process.stderr.read()
    finally:
        process.kill()
        process.wait()
        for pid in mosquittos_of(state) if code is None else ():
            os.kill(pid, signal.SIGKILL)  # a failed run must not leave its broker behind
    assert code == 0, errors
    assert "Traceback" not in errors
    assert mosquittos_of(state) == set()
    with pytest.raises(OSError):
        get(url + "api/state")


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if key not in ("WAYLAND_DISPLAY", "BROWSER")}
