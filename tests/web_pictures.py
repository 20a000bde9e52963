"""Pictures of the web pages for the README, at phone size (390 x 844), from fixed data.

Each picture is the real page in headless Chromium (tests/browser.py), served by its real
WSGI application on a loopback port, so the README shows what a partner's phone shows:

- ``now``, ``history``, ``settings``, ``pairing``: ``micromance web``'s app, signed in, for a
  unit whose config file, store and running daemon are fixed: the daemon is a ``FakeDaemon``
  (a real control socket with canned answers: Sam paired with Alex, fixed counts and gesture,
  a pairing that shows its 6-digit comparison), the store holds a fixed 30 days of history,
  and the page's clock is stopped at ``NOW``.
- ``simulator``: the ``simulate --web`` page (its real app) over two units in a fixed state:
  their screens are the preview's sample frames drawn by the real renderer, Sam's just sent,
  Alex's heart is on and the light is lit. Real units are not used here: their gesture is
  drawn from a shuffled bag, their link comes up in its own time, so no two runs would agree.

Write them (after a deliberate change to a page)::

    .venv/bin/python -m tests.web_pictures

tests/test_browser_pictures.py takes the same pictures and compares them with the stored
ones (``MICROMANCE_UPDATE_GOLDEN=1`` there rewrites them too).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.browser import PHONE, phone_browser, settle, short_directory, wait_until

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "device" / "screenshots"
#: The pages pictured, in README order.
PAGES = ("now", "history", "settings", "pairing", "simulator")
#: The page's clock: a Friday evening.
NOW = datetime(2025, 3, 14, 19, 30)
GESTURE = "Ask a follow-up question about what they said"
COMPARISON_CODE = "307519"
#: Thank-yous (sent, received) and gestures done per day, oldest first: the last 30 days.
SENT = (1, 0, 2, 1, 3, 0, 0, 2, 1, 1, 4, 2, 0, 1, 2, 3, 1, 0, 2, 2, 1, 5, 2, 1, 0, 3, 2, 1, 2, 3)
RECEIVED = (2, 1, 1, 0, 2, 1, 0, 1, 3, 2, 1, 2, 1, 0, 1, 2, 2, 1, 3, 1, 0, 2, 4, 2, 1, 1, 2, 3,
            1, 2)
DONE = (1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1)
STREAK = 5

CONFIG = """# The unit in the README's pictures.
[device]
name = "Sam"

[display]
driver = "dummy"

[quiet_hours]
start = "22:30"
end = "07:00"

[broker]
host = "127.0.0.1"
port = {port}
tls = false

[paths]
state_dir = "{state}"
"""


def picture_path(page: str) -> Path:
    return SCREENSHOTS / f"web-{page}-{PHONE[0]}x{PHONE[1]}.png"


def unit_status() -> dict[str, Any]:
    """What the fixed daemon answers to ``status`` (the keys of docs/contract.md)."""
    from tests.test_web_daemon import base_status

    return {**base_status(),
            "prompt": {"id": "fixed", "text": GESTURE, "practice": "closeness"},
            "today": 3, "sent_total": 128, "received_total": 117, "pending": 1,
            "streak": STREAK, "together_total": 4}


def _unused_port() -> int:
    """A loopback port nobody listens on (the config names a broker; nothing connects)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_history(state: Path) -> None:
    from micromance.core.counters import Counters
    from micromance.store import Store

    first = NOW.date() - timedelta(days=len(SENT) - 1)
    rows = tuple(((first + timedelta(days=n)).isoformat(), sent, received, done)
                 for n, (sent, received, done) in enumerate(zip(SENT, RECEIVED, DONE,
                                                                strict=True)))
    store = Store.open(state)
    try:
        with store.transaction():
            store.save_counters(Counters(history=rows, streak=STREAK,
                                         last_done_day=NOW.date().isoformat()), "")
    finally:
        store.close()


@contextlib.contextmanager
def unit_page() -> Iterator[tuple[Any, Any, Any]]:
    """``micromance web``'s app for a fixed unit, served on 127.0.0.1: (the fixed daemon,
    the server, the page's ``Auth`` to make a sign-in code with)."""
    from micromance.simulator.web import LoopbackServer
    from micromance.web.app import make_app
    from micromance.web.auth import Auth
    from micromance.web.site import Site
    from micromance.web.web_state import WebStateFile
    from tests.test_web_daemon import FakeDaemon

    directory = short_directory("mm-pictures-")
    try:
        state = directory / "state"
        state.mkdir()
        config = directory / "config.toml"
        config.write_text(CONFIG.format(port=_unused_port(), state=state))
        _write_history(state)
        auth = Auth(WebStateFile(state))
        site = Site(str(config), auth, now=lambda: NOW)
        with FakeDaemon(state) as daemon, \
                LoopbackServer(make_app(site), threads=2) as server:
            daemon.status = unit_status()
            yield daemon, server, auth
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class StillSimulation:
    """The ``simulate --web`` page's model (``WebSimulation``'s reading side) in a fixed
    state: Sam has just sent, Alex's heart is on and the light is lit. Presses are ignored."""

    SCREENS = ("sent", "received-frame-last")
    PAGES = ("http://127.0.0.1:8081/", "http://127.0.0.2:8082/")

    def __init__(self) -> None:
        from micromance.screens.preview import sample_frames
        from micromance.screens.render import render

        samples = sample_frames()
        self.images = [render(samples[name], 128, 64) for name in self.SCREENS]

    def unit_count(self) -> int:
        return 2

    def screen_png(self, index: int) -> bytes:
        from PIL import Image

        from micromance.simulator.web import SCALE

        image = self.images[index]
        out = io.BytesIO()
        image.resize((image.width * SCALE, image.height * SCALE),
                     Image.Resampling.NEAREST).save(out, format="PNG")
        return out.getvalue()

    def snapshot(self) -> dict[str, Any]:
        return {"units": [self._unit(index) for index in range(2)]}

    def _unit(self, index: int) -> dict[str, Any]:
        return {
            "name": ("Sam", "Alex")[index], "link": "connected", "partner_online": True,
            "mode": ("sent", "received")[index],
            "sent_total": (129, 117)[index], "received_total": (117, 129)[index],
            "light": {"mode": ("off", "pulse")[index], "level": (0.0, 1.0)[index]},
            "screen": {"version": f"still-{index}", "asleep": False, "contrast": 255,
                       "width": 128, "height": 64},
            "holding": False, "page": self.PAGES[index],
        }

    def act(self, index: int, action: str) -> None:
        """A still picture: presses change nothing."""


def sign_in(driver: Any, server: Any, auth: Any) -> None:
    """Sign in with a one-time code, as ``micromance web --pin`` makes one."""
    from selenium.webdriver.common.by import By

    code = auth.new_code("shell", 600)
    driver.get(server.url + "login")
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(driver, lambda d: d.current_url == server.url, "the Now page after sign-in")


def _shot(driver: Any) -> bytes:
    from tests.browser import screenshot

    driver.execute_script("window.scrollTo(0, 0)")
    settle(driver)
    return screenshot(driver)


def take_pictures(driver: Any) -> dict[str, bytes]:
    """Every page of ``PAGES`` as PNG bytes, the browser's viewport at phone size."""
    from selenium.webdriver.common.by import By

    from micromance.simulator.web import LoopbackServer, build_app

    pictures: dict[str, bytes] = {}
    driver.delete_all_cookies()
    with unit_page() as (daemon, server, auth):
        sign_in(driver, server, auth)
        pictures["now"] = _shot(driver)
        for page, path in (("history", "history"), ("settings", "settings")):
            driver.get(server.url + path)
            pictures[page] = _shot(driver)
        daemon.status["pairing"] = {"phase": "code", "code": COMPARISON_CODE, "detail": ""}
        driver.get(server.url + "pairing")
        wait_until(driver, lambda d: d.find_elements(By.ID, "comparison-code"),
                   "the comparison code")
        pictures["pairing"] = _shot(driver)
    driver.delete_all_cookies()
    with LoopbackServer(build_app(StillSimulation()), threads=2) as simulator:
        # The breathing light would be caught at a different moment each time: stop the
        # page's animations at their first frame (the light at full glow).
        driver.execute_cdp_cmd("Animation.enable", {})
        driver.execute_cdp_cmd("Animation.setPlaybackRate", {"playbackRate": 0})
        try:
            driver.get(simulator.url)
            wait_until(driver, lambda d: d.execute_script(
                "return [0, 1].every(i => { const img = document.getElementById("
                "'unit-' + i + '-screen'); return img && img.complete && img.naturalWidth; })"
                " && !document.getElementById('unit-1-page').hidden"), "both screens drawn")
            pictures["simulator"] = _shot(driver)
        finally:
            driver.execute_cdp_cmd("Animation.setPlaybackRate", {"playbackRate": 1})
            driver.execute_cdp_cmd("Animation.disable", {})
        driver.get("about:blank")
    return pictures


def differing_share(expected: bytes | Path, actual: bytes, threshold: int = 48) -> float:
    """The share of pixels (0 to 1) whose colour differs by more than ``threshold`` in any
    channel; 1.0 when the sizes differ."""
    from PIL import Image, ImageChops

    source = expected if isinstance(expected, Path) else io.BytesIO(expected)
    with Image.open(source) as stored, Image.open(io.BytesIO(actual)) as shown:
        if stored.size != shown.size:
            return 1.0
        difference = ImageChops.difference(stored.convert("RGB"), shown.convert("RGB"))
    red, green, blue = difference.split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    over = sum(worst.point(lambda value: 255 if value > threshold else 0).histogram()[255:])
    return over / (worst.width * worst.height)


def write_pictures(out: Any = sys.stdout) -> list[Path]:
    """Take every picture and store it in device/screenshots/."""
    with phone_browser() as driver:
        pictures = take_pictures(driver)
    written = []
    for page, png in pictures.items():
        path = picture_path(page)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        written.append(path)
        print(f"wrote {path.relative_to(ROOT)}", file=out)
    return written


if __name__ == "__main__":
    import logging

    # waitress warns when the page's few requests queue for a moment: noise here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    write_pictures()
