"""The unit's own web page in a real browser, with real units behind it: sign in with the
code the unit shows, send a thank-you, change settings, pair by invite.

Each test runs whole units (runtime, store, control socket, a private mosquitto) and the
page's real app on a loopback port; one headless Chromium, phone-sized, serves the module.
"""

from __future__ import annotations

import contextlib
import shutil

import pytest

from micromance.link.pair_file import load_pair, pair_locally
from tests.browser import UnitWithPage, phone_browser, short_directory, wait_until


@pytest.fixture(scope="module")
def browser():
    with phone_browser() as driver:
        yield driver


@pytest.fixture
def fresh_browser(browser):
    """The module's browser with no cookies: every test signs in itself."""
    browser.delete_all_cookies()
    yield browser
    with contextlib.suppress(Exception):
        browser.get("about:blank")


@pytest.fixture
def home(broker):
    """Two paired units, Sam's and Alex's, each with its page."""
    directory = short_directory()
    try:
        sam = UnitWithPage(directory / "s", "Sam", broker.port)
        # Another loopback address: cookies ignore the port, so each page keeps its own.
        alex = UnitWithPage(directory / "a", "Alex", broker.port, host="127.0.0.2")
        pair_locally(sam.state_dir, alex.state_dir)
        with sam, alex:
            yield sam, alex
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_sign_in_with_the_code_the_unit_shows(home, fresh_browser):
    from selenium.webdriver.common.by import By

    sam, _alex = home
    sam.sign_in(fresh_browser)
    assert fresh_browser.find_element(By.ID, "send-thanks").is_displayed()
    # The code is used up: it leaves the unit's screen.
    sam.running.wait_until(lambda: not sam.runtime.state.screen.access_code)


def test_five_wrong_codes_lock_sign_ins(home, fresh_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of

    sam, _alex = home
    driver = fresh_browser
    driver.get(sam.url + "login")
    driver.find_element(By.ID, "show-code").click()
    right = sam.code_on_screen()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in range(5):
        typed = driver.find_element(By.ID, "code")
        typed.send_keys(wrong)
        driver.find_element(By.ID, "sign-in").click()
        wait_until(driver, staleness_of(typed), f"the answer to wrong code {attempt + 1}")
        problem = driver.find_element(By.ID, "login-problem").text
        assert ("locked" in problem) is (attempt == 4), problem
    assert driver.find_element(By.ID, "sign-in").get_attribute("disabled") is not None
    # Even the right code is refused now (the button is enabled by hand, as a script could).
    driver.execute_script("document.getElementById('sign-in').disabled = false")
    typed = driver.find_element(By.ID, "code")
    typed.send_keys(right)
    driver.find_element(By.ID, "sign-in").click()
    wait_until(driver, staleness_of(typed), "the answer to the right code")
    assert "locked" in driver.find_element(By.ID, "login-problem").text
    driver.get(sam.url)
    assert driver.current_url == sam.url + "login"


def test_send_thanks_on_sams_page_lights_alexs_led(home, fresh_browser):
    from selenium.webdriver.common.by import By

    sam, alex = home
    sam.sign_in(fresh_browser)
    assert alex.led() == 0.0
    fresh_browser.find_element(By.ID, "send-thanks").click()
    alex.running.wait_until(lambda: alex.runtime.state.counters.received_total == 1)
    alex.running.wait_until(lambda: alex.runtime.panel.light_mode.value == "pulse")
    assert alex.led() > 0.0
    wait_until(fresh_browser, lambda d: "1 sent" in d.find_element(By.ID, "totals").text,
               "the page to count the thank-you")


def test_new_quiet_hours_reach_the_unit_and_keep_the_files_comments(home, fresh_browser):
    from selenium.webdriver.common.by import By

    sam, _alex = home
    driver = fresh_browser
    sam.sign_in(driver)
    driver.find_element(By.ID, "nav-settings").click()
    for field, value in (("quiet_hours.start", "23:15"), ("quiet_hours.end", "06:45")):
        driver.execute_script("arguments[0].value = arguments[1]",
                              driver.find_element(By.ID, field), value)
    driver.find_element(By.ID, "save-settings").click()
    wait_until(driver, lambda d: d.find_elements(By.ID, "saved"), "the saved note")
    sam.running.wait_until(lambda: sam.runtime.config.quiet_hours.start == "23:15")
    assert sam.runtime.config.quiet_hours.end == "06:45"
    applied = driver.find_element(By.ID, "applied").text
    assert "quiet_hours.start" in applied and "quiet_hours.end" in applied
    text = sam.config_path.read_text()
    assert 'start = "23:15"' in text and 'end = "06:45"' in text
    assert "# Off, so the screen shows everything at any hour the tests run." in text
    assert "(this comment must survive the Settings page)" in text
    assert driver.find_element(By.ID, "quiet_hours.start").get_attribute("value") == "23:15"


def test_an_invalid_value_is_named_beside_its_field_and_nothing_is_written(home, fresh_browser):
    from selenium.webdriver.common.by import By

    sam, _alex = home
    driver = fresh_browser
    sam.sign_in(driver)
    before = sam.config_path.read_bytes()
    driver.get(sam.url + "settings")
    contrast = driver.find_element(By.ID, "display.contrast")
    contrast.clear()
    contrast.send_keys("999")
    driver.find_element(By.ID, "save-settings").click()
    error = wait_until(driver, lambda d: d.find_elements(By.ID, "error-display.contrast"),
                       "the error beside the contrast")[0]
    assert "255" in error.text  # the config's own words: the range allowed
    # Beside the field: the next element after the input is its error.
    following = driver.execute_script(
        "return document.getElementById('display.contrast').nextElementSibling.id")
    assert following == "error-display.contrast"
    assert sam.config_path.read_bytes() == before
    assert not list(sam.config_path.parent.glob("*.bak"))
    assert sam.runtime.config.display.contrast == 200


# --- forged requests: plain HTTP, as another site or a script would send them ---------------------


class Visitor:
    """An HTTP client with its own cookies, signed in to a unit's page as a person would."""

    def __init__(self, unit: UnitWithPage) -> None:
        import http.cookiejar
        import urllib.request

        self.unit = unit
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.unit.url + path.lstrip("/"), timeout=10) as answer:
            return answer.read().decode()

    def post(self, path: str, fields: dict[str, str], **headers: str) -> int:
        import urllib.error
        import urllib.parse
        import urllib.request

        request = urllib.request.Request(
            self.unit.url + path.lstrip("/"), method="POST", headers=headers,
            data=urllib.parse.urlencode(fields).encode())
        try:
            with self.opener.open(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def csrf(self, path: str) -> str:
        import re

        return re.search(r'name="csrf" value="([^"]+)"', self.get(path)).group(1)

    def sign_in(self) -> None:
        assert self.post("/login/code", {"csrf": self.csrf("/login")}) == 200
        code = self.unit.code_on_screen()
        assert self.post("/login", {"csrf": self.csrf("/login"), "code": code}) == 200
        assert 'id="send-thanks"' in self.get("/")


def test_forged_posts_are_refused_and_change_nothing(home):
    from micromance.core import commands as cmd

    sam, alex = home
    visitor = Visitor(sam)
    visitor.sign_in()
    token = visitor.csrf("/")
    config_before = sam.config_path.read_bytes()
    settings = {"device.name": "Mallory", "quiet_hours.start": "01:00",
                "quiet_hours.end": "02:00", "prompts.interval_minutes": "45",
                "display.contrast": "200", "display.dim_contrast": "8",
                "display.dim_after_minutes": "10"}

    assert visitor.post("/thanks", {}) == 403                                   # no token
    assert visitor.post("/thanks", {"csrf": "0" * len(token)}) == 403            # a wrong one
    assert visitor.post("/thanks", {"csrf": token}, Origin="http://evil.example") == 403
    assert visitor.post("/thanks", {"csrf": token},
                        Referer="http://evil.example/page") == 403
    assert visitor.post("/settings", settings) == 403
    assert visitor.post("/settings", {**settings, "csrf": token},
                        Origin="http://evil.example") == 403

    assert sam.config_path.read_bytes() == config_before
    assert not any(isinstance(c, cmd.SendThanks) for c in sam.running.seen)
    assert sam.runtime.state.counters.sent_total == 0

    # The same request from the page itself goes through: the refusals above were the checks.
    mark = alex.running.mark()
    assert visitor.post("/thanks", {"csrf": token}, Origin=sam.url.rstrip("/")) == 200
    alex.running.wait_for(lambda c: isinstance(c, cmd.SaveCounters), since=mark)
    assert alex.runtime.state.counters.received_total == 1


@pytest.fixture
def strangers(broker):
    """Two units that are not paired yet, each with its page."""
    directory = short_directory()
    try:
        with UnitWithPage(directory / "s", "Sam", broker.port) as sam, \
                UnitWithPage(directory / "a", "Alex", broker.port, host="127.0.0.2") as alex:
            yield sam, alex
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_pairing_by_invite_between_two_pages(strangers, fresh_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of

    sam, alex = strangers
    driver = fresh_browser
    sam.sign_in(driver)
    alex.sign_in(driver)

    driver.get(sam.url + "pairing")
    driver.find_element(By.ID, "pair-invite").click()
    invite = wait_until(driver, lambda d: d.find_element(By.ID, "invite-code").text,
                        "the invite code")
    assert len(invite.split()) >= 2

    driver.get(alex.url + "pairing")
    driver.find_element(By.ID, "join-code").send_keys(invite)
    driver.find_element(By.ID, "pair-join").click()

    def comparison(unit: UnitWithPage) -> str:
        driver.get(unit.url + "pairing")
        return wait_until(driver, lambda d: d.find_element(By.ID, "comparison-code").text,
                          f"the code to compare on {unit.name}'s page")

    codes = comparison(alex), comparison(sam)
    assert codes[0] == codes[1] and len(codes[0]) == 6 and codes[0].isdigit()
    confirm = driver.find_element(By.ID, "pair-confirm")   # on Sam's page
    confirm.click()
    wait_until(driver, staleness_of(confirm), "Sam's confirmation to be taken")
    assert driver.find_element(By.ID, "pairing-phase").get_attribute("data-phase") == "waiting"
    driver.get(alex.url + "pairing")
    confirm = driver.find_element(By.ID, "pair-confirm")
    confirm.click()
    wait_until(driver, staleness_of(confirm), "Alex's confirmation to be taken")

    for unit in (alex, sam):
        driver.get(unit.url + "pairing")
        paired = wait_until(driver, lambda d: d.find_element(By.ID, "paired").text,
                            f"{unit.name}'s page to say paired")
        assert paired.startswith("Paired")
        assert unit.runtime.state.partner.paired
    pairs = load_pair(sam.state_dir), load_pair(alex.state_dir)
    assert pairs[0].pair_id == pairs[1].pair_id
