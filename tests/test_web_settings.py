"""Settings and Connection: the config file edited from the page keeps what a person wrote,
is judged by the config code before anything is written, is replaced atomically with a dated
copy of the old one, and the unit is asked to reload. Passwords are write-only."""

from __future__ import annotations

import stat
import tomllib
from datetime import datetime, timedelta

import pytest

from micromance.config import load_config
from micromance.errors import ConfigError
from micromance.web.auth import Auth
from micromance.web.settings_file import BACKUPS_KEPT, SettingsFile, config_target
from micromance.web.site import Site
from micromance.web.web_state import WebStateFile
from tests.test_web_daemon import Clock, FakeDaemon, make_unit

SETTINGS = {"device.name": "Sam", "quiet_hours.enabled": "", "quiet_hours.start": "22:30",
            "quiet_hours.end": "07:00",
            "prompts.interval_minutes": "45", "display.contrast": "200",
            "display.dim_contrast": "8", "display.dim_after_minutes": "10",
            "practice": ["present", "reinforce", "closeness", "delight", "calm", "affirm",
                         "attune"]}


@pytest.fixture()
def unit(tmp_path, monkeypatch):
    return make_unit(tmp_path, monkeypatch)


def backups(unit) -> list:
    return sorted(unit.config.parent.glob("config.toml.*.bak"))


# --- the settings file on its own -------------------------------------------------------------


def test_a_candidate_keeps_comments_unknown_keys_and_adds_only_what_changed(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[device]\nname = "Sam"  # for Alex\n\n[pins]\nthanks = 22\n')
    current = load_config(path)
    settings = SettingsFile(path)
    text = settings.with_values({"device.name": "Samuel", "quiet_hours.start": "22:30",
                                 "quiet_hours.end": "06:30"}, current)
    assert text.startswith('# mine\n[device]\nname = "Samuel"  # for Alex\n\n[pins]\nthanks = 22\n')
    data = tomllib.loads(text)
    assert data["quiet_hours"] == {"end": "06:30"}  # start is the default: not spelled out


def test_a_bad_value_is_a_config_error_naming_the_key_and_the_real_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[quiet_hours]\nstart = \"22:30\"\n")
    settings = SettingsFile(path)
    text = settings.with_values({"quiet_hours.start": "25:00"}, load_config(path))
    with pytest.raises(ConfigError) as caught:
        settings.check(text)
    assert caught.value.key == "quiet_hours.start"
    assert caught.value.message.startswith(f"{path}: quiet_hours.start = \"25:00\" is not a time")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temporary left


def test_config_errors_name_their_key_and_keep_their_messages(tmp_path):
    cases = {
        "[display]\ncontrast = 300\n": ("display.contrast", "is out of range"),
        "[display]\ncontrast = \"hi\"\n": ("display.contrast", "has the wrong type"),
        "[device]\nnmae = \"x\"\n": ("device.nmae", "unknown key device.nmae"),
        "[pins]\nthanks = 27\n": ("pins.thanks", "is already used by pins.next"),
        "[[broker]]\nhost = \"a\"\nroom = \"x\"\n": ("broker.room", "in [[broker]] number 1"),
        "[nope]\n": ("", "unknown section nope"),
    }
    for text, (key, words) in cases.items():
        path = tmp_path / "c.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert caught.value.key == key, text
        assert words in caught.value.message, caught.value.message


def test_backups_are_dated_and_only_the_newest_five_kept(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("# 0\n")
    moment = datetime(2026, 3, 1, 12, 0, 0)
    for number in range(1, 8):
        SettingsFile(path, clock=lambda n=number: moment + timedelta(minutes=n)).write(
            f"# {number}\n")
    kept = sorted(p.name for p in tmp_path.glob("config.toml.*.bak"))
    assert len(kept) == BACKUPS_KEPT
    assert kept[0] == "config.toml.20260301-120300.bak" and kept[-1].endswith("120700.bak")
    assert (tmp_path / "config.toml.20260301-120700.bak").read_text() == "# 6\n"
    assert path.read_text() == "# 7\n"


def test_the_target_of_a_unit_on_built_in_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("MICROMANCE_CONFIG", raising=False)
    assert str(config_target(None)) == "/etc/micromance/config.toml"
    monkeypatch.setenv("MICROMANCE_CONFIG", str(tmp_path / "x.toml"))
    assert config_target(None) == tmp_path / "x.toml"
    assert config_target("given.toml").name == "given.toml"


# --- the Settings page ----------------------------------------------------------------------


def test_settings_are_saved_with_a_backup_and_the_unit_reloads(unit):
    browser = unit.signed_in()
    before = unit.config.read_text()
    with FakeDaemon(unit.state) as daemon:
        page = browser.get("/settings")
        assert 'id="quiet_hours.start" name="quiet_hours.start" type="time" value="22:30"' \
            in page.body
        form = {**SETTINGS, "quiet_hours.enabled": "true", "quiet_hours.start": "21:45",
                "practice": ["present", "calm"], "display.contrast": "180"}
        page = browser.post("/settings", form)
        assert page.status == 200
        assert page.by_id("saved") == "Saved, and the unit uses it now."
        assert page.by_id("applied") == "quiet hours"
        assert daemon.ops().count("reload") == 1
    text = unit.config.read_text()
    assert "# The unit on the kitchen counter." in text and "# shown on Alex's screen" in text
    config = load_config(unit.config)
    assert config.quiet_hours.enabled and config.quiet_hours.start == "21:45"
    assert config.display.contrast == 180
    assert set(config.prompts.disabled_practices) == {"reinforce", "closeness", "delight",
                                                      "affirm", "attune"}
    [backup] = backups(unit)
    assert backup.read_text() == before


def test_a_bad_setting_is_shown_beside_its_field_and_nothing_is_written(unit):
    browser = unit.signed_in()
    before = unit.config.read_text()
    with FakeDaemon(unit.state) as daemon:
        page = browser.post("/settings", {**SETTINGS, "quiet_hours.start": "25:00"})
        assert "is not a time of day" in page.by_id("error-quiet_hours.start")
        assert 'value="25:00"' in page.body  # what was typed stays in the field
        page = browser.post("/settings", {**SETTINGS, "prompts.interval_minutes": "often"})
        assert "not a whole number" in page.by_id("error-prompts.interval_minutes")
        page = browser.post("/settings", {**SETTINGS, "practice": []})
        assert "keep at least one" in page.by_id("error-prompts.disabled_practices")
        assert "reload" not in daemon.ops()
    assert unit.config.read_text() == before and backups(unit) == []


def test_nothing_changed_writes_nothing(unit):
    browser = unit.signed_in()
    page = browser.post("/settings", {**SETTINGS})
    assert page.by_id("saved") == "Nothing changed." and backups(unit) == []


def test_the_daemons_refusal_is_shown(unit):
    browser = unit.signed_in()
    with FakeDaemon(unit.state) as daemon:
        daemon.reload_answer = {"ok": False, "error": "the display cannot change its driver "
                                "while running", "fix": "restart the unit"}
        page = browser.post("/settings", {**SETTINGS, "device.name": "Samuel"})
    assert page.by_id("saved") == "Saved, but the unit keeps its old settings for now."
    assert "restart the unit" in page.by_id("unit-problem")


def test_without_the_daemon_the_file_is_saved_for_the_next_start(unit):
    page = unit.signed_in().post("/settings", {**SETTINGS, "device.name": "Samuel"})
    assert "not running" in page.by_id("saved")
    assert load_config(unit.config).device.name == "Samuel"


def test_a_unit_on_built_in_defaults_gets_a_new_file_where_it_would_read_one(tmp_path,
                                                                            monkeypatch):
    """No --config, no $MICROMANCE_CONFIG, no /etc/micromance/config.toml: the page writes
    the file the unit reads next time (here the default path is moved into tmp_path)."""
    from micromance.web.app import make_app
    from tests.test_web_daemon import Browser

    target = tmp_path / "etc" / "micromance" / "config.toml"
    monkeypatch.delenv("MICROMANCE_CONFIG", raising=False)
    monkeypatch.setattr("micromance.config.DEFAULT_PATH", target)
    monkeypatch.setattr("micromance.web.settings_file.DEFAULT_PATH", target)
    site = Site(None, Auth(WebStateFile(tmp_path / "state"), clock=Clock()))
    assert site.config()[0].source is None  # the built-in defaults
    browser = Browser(make_app(site))
    browser.post("/login", {"code": site.auth.new_code("shell", 600)})
    page = browser.post("/settings", {**SETTINGS, "device.name": "Robin",
                                      "quiet_hours.enabled": "true"})
    assert page.status == 200 and "not running" in page.by_id("saved")
    assert tomllib.loads(target.read_text()) == {"device": {"name": "Robin"}}
    from micromance.config import resolve_path

    assert load_config(resolve_path(None)).device.name == "Robin"  # what the unit reads now
    assert list(target.parent.glob("*.bak")) == []  # nothing to keep a copy of


def test_own_prompts_are_checked_then_saved_and_the_config_points_at_them(unit):
    browser = unit.signed_in()
    page = browser.get("/settings")
    assert "[[prompt]]" in page.by_id("prompts_text")  # an example to start from
    bad = '[[prompt]]\npractice = "presence"\ntext = "Hold hands on the walk home"\n'
    page = browser.post("/settings/prompts", {"prompts_text": bad})
    assert "unknown practice" in page.by_id("error-prompts.extra_file")
    assert not (unit.config.parent / "prompts.toml").exists()
    good = bad.replace("presence", "closeness")
    with FakeDaemon(unit.state) as daemon:
        page = browser.post("/settings/prompts", {"prompts_text": good})
        assert daemon.ops().count("reload") == 1
    prompts = unit.config.parent / "prompts.toml"
    assert prompts.read_text() == good
    assert load_config(unit.config).prompts.extra_file == str(prompts)
    assert "Hold hands on the walk home" in browser.get("/settings").by_id("prompts_text")


# --- the Connection page --------------------------------------------------------------------


def test_own_brokers_with_a_write_only_password(unit):
    browser = unit.signed_in()
    page = browser.get("/connection")
    assert 'id="public-off" name="public_brokers" value="off" checked' in page.body
    assert 'id="broker.1.host" name="broker.1.host" value="127.0.0.1"' in page.body
    form = {"public_brokers": "off", "broker_rows": "2",
            "broker.1.host": "127.0.0.1", "broker.1.port": str(load_config(
                unit.config).broker.port), "broker.1.tls": "",
            "broker.2.host": "mqtt.example.net", "broker.2.port": "8883",
            "broker.2.tls": "true", "broker.2.username": "sam",
            "broker.2.password": "correct horse battery"}
    page = browser.post("/connection", form)
    assert page.status == 200 and "correct horse battery" not in page.body
    data = tomllib.loads(unit.config.read_text())
    assert "# The unit on the kitchen counter." in unit.config.read_text()
    assert [b["host"] for b in data["broker"]] == ["127.0.0.1", "mqtt.example.net"]
    secret = unit.config.parent / "broker-mqtt.example.net-8883.password"
    assert data["broker"][1]["password_file"] == str(secret)
    assert data["broker"][1]["username"] == "sam" and data["broker"][1]["tls"] is True
    assert secret.read_text() == "correct horse battery\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o640

    # The page says a password is set, never what it is; an empty field keeps it.
    page = browser.get("/connection")
    assert "(set; empty keeps it)" in page.body and "correct horse" not in page.body
    form.update({"broker.2.password": "", "broker.2.port": "8884"})
    browser.post("/connection", {**form, "broker_rows": "3"})
    data = tomllib.loads(unit.config.read_text())
    assert data["broker"][1]["port"] == 8884 and data["broker"][1]["password_file"] == str(secret)


def test_the_public_brokers_switch_removes_the_own_ones(unit):
    browser = unit.signed_in()
    browser.post("/connection", {"public_brokers": "on", "broker_rows": "2",
                                 "broker.1.host": "127.0.0.1", "broker.1.port": "1883"})
    config = load_config(unit.config)
    assert config.brokers == () and "broker" not in tomllib.loads(unit.config.read_text())
    assert 'id="public-on" name="public_brokers" value="on" checked' in browser.get(
        "/connection").body


def test_a_bad_broker_is_refused_beside_its_field_and_nothing_is_written(unit):
    browser = unit.signed_in()
    before = unit.config.read_text()
    page = browser.post("/connection", {"public_brokers": "off", "broker_rows": "1",
                                        "broker.1.host": "a.example", "broker.1.port": "http"})
    assert "not a whole number" in page.by_id("error-broker.1.port")
    page = browser.post("/connection", {"public_brokers": "off", "broker_rows": "1",
                                        "broker.1.host": "a.example", "broker.1.port": "70000",
                                        "broker.1.password": "never written"})
    assert "broker.port = 70000 is out of range" in page.by_id("error-broker.port")
    page = browser.post("/connection", {"public_brokers": "off", "broker_rows": "1",
                                        "broker.1.host": ""})
    assert "at least one broker" in page.by_id("error-broker")
    assert unit.config.read_text() == before
    assert list(unit.config.parent.glob("*.password")) == []


@pytest.mark.broker
def test_the_test_button_runs_doctors_broker_check(unit, broker):
    browser = unit.signed_in()
    page = browser.post("/connection/test", {"broker": "1"})
    assert "refused the connection" in page.by_id("test-result")
    browser.post("/connection", {"public_brokers": "off", "broker_rows": "1",
                                 "broker.1.host": "127.0.0.1", "broker.1.port": str(broker.port)})
    page = browser.post("/connection/test", {"broker": "1"})
    assert f"127.0.0.1:{broker.port} reachable" in page.by_id("test-result")
    assert page.body.count('id="test-result"') == 1
