"""`simulate --web`'s links to each simulated unit's own web page, and the config files that
make those pages work: a Settings save there rewrites the unit's file and reloads the unit.

The pages are ``micromance web``'s real app, reached over HTTP on 127.0.0.1 and 127.0.0.2 as a
browser reaches them (cookies, CSRF tokens from the forms, the code from the unit's screen).
"""

from __future__ import annotations

import html
import io
import json
import re
import tomllib
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from micromance.config import PRACTICES, load_config
from micromance.errors import ConfigError
from micromance.screens.views import AccessCodeView
from micromance.simulator import web
from micromance.simulator.terminal import Simulation
from micromance.simulator.unit_files import unit_config
from tests.test_simulate_web import Watched, shows
from tests.units import WAIT, desk_config


class Visitor:
    """A browser over HTTP: its own cookies, no proxy (a loopback page is never proxied)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, url: str) -> tuple[str, str]:
        """(the URL it ended on after redirects, the page)."""
        with self.opener.open(url, timeout=WAIT) as answer:
            return answer.geturl(), answer.read().decode()

    def post(self, url: str, fields: dict[str, str | list[str]]) -> tuple[str, str]:
        body = urllib.parse.urlencode(fields, doseq=True).encode()
        with self.opener.open(urllib.request.Request(url, data=body), timeout=WAIT) as answer:
            return answer.geturl(), answer.read().decode()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
def simulation(tmp_path):
    sim = Simulation(desk_config(tmp_path / "unused"), tmp_path / "sim", out=io.StringIO())
    with sim.running(), web.serving(sim) as (page, url):
        yield sim, page, url


@pytest.mark.broker
def test_the_simulator_links_to_each_units_own_page_and_a_settings_save_reloads_it(simulation):
    sim, _page, url = simulation
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url + "api/state", timeout=WAIT) as answer:
        links = [unit["page"] for unit in json.loads(answer.read())["units"]]
    assert [urllib.parse.urlsplit(link).hostname for link in links] == ["127.0.0.1",
                                                                         "127.0.0.2"]
    for link, name in zip(links, ("Sam", "Alex"), strict=True):
        landed, page = Visitor().get(link)
        assert landed == link + "login", "a stranger is sent to the sign-in page"
        assert 'id="show-code"' in page and f"Sign in · {name}" in html.unescape(page)

    # Sign in on Alex's page with the code Alex's screen shows, as a person at the simulator
    # page would, then rename Alex and move the quiet hours.
    alex, alex_page = sim.units[1], links[1]
    watched = Watched(alex)
    visitor = Visitor()
    _, login = visitor.get(alex_page)
    visitor.post(alex_page + "login/code", {"csrf": csrf_of(login)})
    code = watched.wait_for(shows(AccessCodeView)).frame.view.code
    landed, now = visitor.post(alex_page + "login", {"csrf": csrf_of(login), "code": code})
    assert landed == alex_page and 'id="send-thanks"' in now

    _, settings = visitor.get(alex_page + "settings")
    config = alex.config
    _, saved = visitor.post(alex_page + "settings", {
        "csrf": csrf_of(settings), "device.name": "Alexis",
        "quiet_hours.start": "23:15", "quiet_hours.end": "06:45",
        "prompts.interval_minutes": str(config.prompts.interval_minutes),
        "display.contrast": str(config.display.contrast),
        "display.dim_contrast": str(config.display.dim_contrast),
        "display.dim_after_minutes": str(config.display.dim_after_minutes),
        "practice": list(PRACTICES)})
    assert 'id="saved"' in saved and "device.name" in saved, saved

    written = tomllib.loads(sim.config_path(1).read_text())
    assert written["device"]["name"] == "Alexis"
    assert written["quiet_hours"]["start"] == "23:15"
    # The page asked the unit to reload before it answered: the runtime runs on the new file.
    assert alex.config.device.name == "Alexis"
    assert alex.config.quiet_hours.start == "23:15"
    assert sim.units[0].config.device.name == "Sam"
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url + "api/state", timeout=WAIT) as answer:
        assert json.loads(answer.read())["units"][1]["name"] == "Alexis"


# --- the units' config files ------------------------------------------------------------------


def test_the_first_run_writes_the_unit_file_from_the_base(tmp_path):
    base = desk_config(tmp_path / "unused", height=32)
    path = tmp_path / "sam.toml"
    config = unit_config(base, path, name="Sam", state_dir=tmp_path / "a", broker_port=41234)
    assert config.source == path
    assert config.device.name == "Sam" and not config.quiet_hours.enabled
    assert (config.display.driver, config.display.width, config.display.height) == \
        ("dummy", 128, 32)
    assert [(b.host, b.port, b.tls) for b in config.brokers] == [("127.0.0.1", 41234, False)]
    assert config.state_dir == (tmp_path / "a").resolve()
    assert load_config(path) == config


def test_a_later_run_keeps_the_files_changes_and_takes_the_new_broker_port(tmp_path):
    base = desk_config(tmp_path / "unused")
    path = tmp_path / "alex.toml"
    unit_config(base, path, name="Alex", state_dir=tmp_path / "b", broker_port=41234)
    edited = path.read_text().replace('name = "Alex"', 'name = "Robin"  # set by hand')
    path.write_text(edited + '\n[prompts]\ninterval_minutes = 20\n')

    config = unit_config(base, path, name="Alex", state_dir=tmp_path / "b", broker_port=40999)
    assert config.device.name == "Robin" and config.prompts.interval_minutes == 20
    assert config.brokers[0].port == 40999
    assert "# set by hand" in path.read_text()
    assert path.read_text().splitlines().count("[broker]") == 1


def test_a_broken_unit_file_is_a_clear_error_and_is_left_alone(tmp_path):
    path = tmp_path / "sam.toml"
    path.write_text("[device\nname = 'Sam'\n")
    with pytest.raises(ConfigError) as raised:
        unit_config(desk_config(tmp_path / "unused"), path, name="Sam",
                    state_dir=tmp_path / "a", broker_port=41234)
    assert str(path) in raised.value.message and "delete it" in raised.value.fix
    assert path.read_text() == "[device\nname = 'Sam'\n"


def test_a_section_that_is_not_a_table_is_named(tmp_path):
    path = Path(tmp_path / "sam.toml")
    path.write_text('display = "big"\n')
    with pytest.raises(ConfigError, match="display is not a table"):
        unit_config(desk_config(tmp_path / "unused"), path, name="Sam",
                    state_dir=tmp_path / "a", broker_port=41234)
