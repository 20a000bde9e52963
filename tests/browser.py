"""A real browser for the tests: Debian's headless Chromium, driven by selenium through Debian's
chromedriver, shaped like a phone (390 x 844 CSS pixels, the size partners use the page at).

The driver's path is always given to selenium, so selenium never looks for a driver online
(its "Selenium Manager" would): the tests run with no internet. Chromium comes from
``./install.sh --dev`` (Debian's ``chromium`` and ``chromium-driver``); when it is missing a
test fails under CI and skips with the reason elsewhere, like the broker tests.

Usage, one browser per test module (starting Chromium takes about a second)::

    @pytest.fixture(scope="module")
    def browser():
        with phone_browser() as driver:
            yield driver
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_in_ci

#: Debian's paths first; a PATH lookup after that (other distributions name them alike).
CHROMIUM_NAMES = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("/usr/bin/chromedriver", "chromedriver")
CHROMIUM_MISSING = ("Chromium for the browser tests is not installed: ./install.sh --dev "
                    "(or sudo apt-get install chromium chromium-driver)")
PHONE = (390, 844)
WAIT = 10.0  # seconds; only reached when something is broken


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> tuple[str, str]:
    """(chromium, chromedriver): fail in CI when either is missing, skip elsewhere."""
    chromium, driver = _find(CHROMIUM_NAMES), _find(CHROMEDRIVER_NAMES)
    if chromium and driver:
        return chromium, driver
    if running_in_ci():
        pytest.fail(f"{CHROMIUM_MISSING} (CI must run the browser tests)", pytrace=False)
    pytest.skip(CHROMIUM_MISSING)


@contextlib.contextmanager
def phone_browser(size: tuple[int, int] = PHONE) -> Iterator[Any]:
    """A headless Chromium whose page is exactly ``size`` CSS pixels, at one device pixel per
    CSS pixel (screenshots are then the same on every machine's display settings)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run",
                     "--disable-background-networking", "--disable-sync",
                     "--disable-component-update", "--force-device-scale-factor=1",
                     "--hide-scrollbars", "--lang=en-GB", "--font-render-hinting=none",
                     f"--window-size={size[0]},{size[1]}"):
        options.add_argument(argument)
    service = Service(executable_path=chromedriver, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        # The window's size includes no browser chrome in headless mode, but fix the page's
        # size exactly, whatever the window manager of the day thinks.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": True})
        driver.set_page_load_timeout(WAIT)
        yield driver
    finally:
        driver.quit()


def wait_until(driver: Any, condition: Callable[[Any], Any], what: str,
               timeout: float = WAIT) -> Any:
    """Selenium's explicit wait (it re-checks the page), with a message that says what.

    A page that reloads itself (the Pairing page follows the unit) can replace an element
    between finding it and reading it: such errors only mean "not yet", and are retried.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=(WebDriverException,)).until(
        condition, message=f"timed out after {timeout}s waiting for {what}")


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def screenshot(driver: Any, path: Path | None = None) -> bytes:
    """The page as it is shown (the viewport), as PNG bytes; written to ``path`` if given."""
    png = driver.get_screenshot_as_png()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    return bytes(png)


def settle(driver: Any) -> None:
    """Wait for web fonts and two animation frames, so a screenshot shows the finished page."""
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "document.fonts.ready.then(() => requestAnimationFrame(() => "
        "requestAnimationFrame(() => done(true))));")


# --- a real unit with its own page ------------------------------------------------------------

#: A unit's config file as a person would keep it: the Settings page must keep the comments.
UNIT_CONFIG = """# A unit of the browser tests (this comment must survive the Settings page).
[device]
# Shown on the partner's screen.
name = "{name}"

[display]
driver = "dummy"

[quiet_hours]
# Off, so the screen shows everything at any hour the tests run.
enabled = false
start = "22:30"
end = "07:00"

[broker]
host = "127.0.0.1"
port = {port}
tls = false

[paths]
state_dir = "{state_dir}"
"""


def short_directory(prefix: str = "mm-") -> Path:
    """A fresh directory with a short path: a Unix socket's path (control.sock) must stay
    under 108 bytes, which pytest's tmp_path does not promise."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix))


class UnitWithPage:
    """A real unit (a Runtime on a thread, mock pins, dummy display, a config file) and its
    real web page (``micromance web``'s app) served by waitress on a loopback port.

    The page finds the unit as ``micromance web`` does: through ``<state_dir>/control.sock``.
    """

    def __init__(self, directory: Path, name: str, broker_port: int,
                 host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.host = host
        self.state_dir = directory / "state"
        self.config_path = directory / "config.toml"
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(UNIT_CONFIG.format(name=name, port=broker_port,
                                                       state_dir=self.state_dir))
        self.name = name
        self.unit: Any = None
        self.running: Any = None
        self.server: Any = None
        self.factory: Any = None

    def __enter__(self) -> UnitWithPage:
        from micromance.config import load_config
        from micromance.simulator.web import LoopbackServer
        from micromance.web.app import make_app
        from micromance.web.auth import Auth
        from micromance.web.site import Site
        from micromance.web.web_state import WebStateFile
        from tests.units import WAIT, RunningUnit

        config = load_config(self.config_path)
        self.unit = RunningUnit(config, timeout=WAIT)
        self.running, self.factory = self.unit.running, self.unit.factory
        site = Site(str(self.config_path), Auth(WebStateFile(config.state_dir)))
        self.server = LoopbackServer(make_app(site), threads=2, host=self.host).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()
        if self.unit is not None:
            self.unit.close()

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def runtime(self) -> Any:
        return self.running.runtime

    def led(self) -> float:
        """The LED pin's level now (0 dark, 1 full)."""
        return float(self.factory.pin(self.runtime.config.pins.led).state or 0.0)

    def code_on_screen(self) -> str:
        """The access code the unit shows on its screen (waits until it shows one)."""
        shown: list[str] = []

        def showing() -> bool:
            state = self.runtime.state
            if state is not None and state.screen.access_code:
                shown.append(state.screen.access_code)
                return True
            return False

        self.running.wait_until(showing)
        return shown[-1]

    def sign_in(self, driver: Any) -> None:
        """Sign in as a person does: ask for a code on the unit, type what it shows."""
        from selenium.webdriver.common.by import By

        driver.get(self.url + "login")
        driver.find_element(By.ID, "show-code").click()
        code = self.code_on_screen()
        driver.find_element(By.ID, "code").send_keys(code)
        driver.find_element(By.ID, "sign-in").click()
        wait_until(driver, lambda d: d.current_url == self.url, "the Now page after sign-in")
