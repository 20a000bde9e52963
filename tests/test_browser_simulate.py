"""`micromance simulate --web` in a real browser: a click on Sam's THANKS shows the heart on
Alex's screen, and Alex's light breathes on the page."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from micromance.screens.render import render
from micromance.screens.views import RECEIVED_FRAMES, ReceivedView
from micromance.simulator import web
from micromance.simulator.terminal import Simulation
from tests.browser import phone_browser, wait_until
from tests.test_simulate_web import Watched, screen_of, shows
from tests.units import desk_config


@pytest.fixture(scope="module")
def browser():
    with phone_browser() as driver:
        yield driver


@pytest.mark.broker
def test_a_click_on_sams_thanks_shows_the_heart_on_alexs_screen(browser, tmp_path):
    from selenium.webdriver.common.by import By

    sim = Simulation(desk_config(tmp_path / "unused"), tmp_path / "sim", out=io.StringIO())
    with sim.running(), web.serving(sim) as (_page, url):
        alex = Watched(sim.units[1])
        browser.get(url)
        wait_until(browser, lambda d: d.find_elements(By.ID, "unit-1-screen"), "the two units")
        home = browser.find_element(By.ID, "unit-1-screen").get_attribute("data-version")

        browser.find_element(By.ID, "unit-0-thanks").click()

        heart = alex.wait_for(shows(ReceivedView, sender="Sam", frame=RECEIVED_FRAMES - 1))
        wait_until(browser, lambda d: d.find_element(By.ID, "unit-1-led")
                   .get_attribute("data-mode") == "pulse", "Alex's light to breathe")
        expected = render(heart.frame, 128, 64)
        # The page loads the new image by itself: wait until the <img> shows the heart.
        wait_until(browser, lambda d: _shown(d, "unit-1-screen") == list(expected.getdata()),
                   "the heart on Alex's screen in the page")
        assert browser.find_element(By.ID, "unit-1-screen").get_attribute("data-version") \
            != home
        assert list(screen_of(url, 1).convert("1").getdata()) == list(expected.getdata())
        assert browser.find_element(By.ID, "unit-0-led").get_attribute("data-mode") != "pulse"
        assert "received 1" in browser.find_element(By.ID, "unit-1").text


def _shown(driver, element_id: str) -> list[int]:
    """The pixels of the image an <img> shows now, scaled back to the panel's 128 x 64."""
    import base64

    data_url = driver.execute_script(
        "const img = document.getElementById(arguments[0]);"
        "if (!img.complete || !img.naturalWidth) return null;"
        "const canvas = document.createElement('canvas');"
        "canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;"
        "canvas.getContext('2d').drawImage(img, 0, 0);"
        "return canvas.toDataURL('image/png');", element_id)
    if not data_url:
        return []
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    small = image.convert("L").resize((image.width // web.SCALE, image.height // web.SCALE),
                                      Image.Resampling.NEAREST)
    return [255 if value > 127 else 0 for value in small.getdata()]
