"""The web page as a process and beside a real unit: waitress on a port, socket activation
as systemd does it (a bound socket as fd 3, LISTEN_FDS and LISTEN_PID), the idle exit, the
`--pin` code, the systemd units, and the pages against a running unit's control socket."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from micromance import cli
from micromance.config import load_config
from micromance.web.app import make_app
from micromance.web.auth import Auth
from micromance.web.cli import web_from_shell
from micromance.web.server import WebServer
from micromance.web.site import Site
from micromance.web.web_state import WebStateFile
from tests.benchmarks.web import socket_activated
from tests.conftest import require_tool
from tests.test_web_daemon import Browser
from tests.units import Running

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


@pytest.fixture()
def config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[display]\ndriver = "dummy"\n'
                    '[quiet_hours]\nenabled = false\n'
                    '[broker]\nhost = "127.0.0.1"\nport = 1\ntls = false\n')
    return path


# --- serving --------------------------------------------------------------------------------


def test_the_server_exits_after_its_idle_time(config_file):
    config = load_config(config_file)
    site = Site(str(config_file), Auth(WebStateFile(config.state_dir)))
    server = WebServer(make_app(site), host="127.0.0.1", port=0, idle_exit=0.5)
    ended: list[str] = []
    thread = threading.Thread(target=lambda: ended.append(server.serve()))
    thread.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/login", timeout=WAIT) as answer:
            assert answer.status == 200 and b"Show a code on the unit" in answer.read()
        thread.join(WAIT)
    finally:
        server.stop()
        thread.join(WAIT)
    assert len(ended) == 1 and ended[0].startswith("idle for")


def test_socket_activation_serves_on_the_socket_it_is_handed_and_stops_on_sigterm(config_file):
    with socket_activated(config_file) as (process, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        connection.request("GET", "/login")
        answer = connection.getresponse()
        assert answer.status == 200 and b"Sign in" in answer.read()
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0
        output = process.stderr.read()
    assert "serving on the socket systemd passed" in output
    assert "Traceback" not in output


def test_serving_on_a_port_and_a_port_that_is_taken(config_file, capsys, monkeypatch):
    import micromance.logs

    # In process, setup_logging would leave a handler on pytest's captured stderr behind.
    monkeypatch.setattr(micromance.logs, "setup_logging", lambda level="info": None)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["web", "--config", str(config_file), "--port", str(port)]) == 70
    error = capsys.readouterr().err
    assert f"cannot serve the web page on port {port}" in error and "fix:" in error


def test_options_that_do_not_go_together_are_a_usage_error(config_file):
    assert cli.main(["web", "--config", str(config_file), "--port", "8081", "--pin"]) == 2


def test_a_bad_config_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[device]\nname = 5\n")
    assert cli.main(["web", "--config", str(bad), "--pin"]) == 78


# --- --pin ----------------------------------------------------------------------------------


def test_pin_prints_a_code_that_signs_in_once_within_ten_minutes(config_file):
    out = io.StringIO()
    assert web_from_shell(str(config_file), pin=True, out=out) == 0
    code = re.search(r"\b(\d{6})\b", out.getvalue()).group(1)
    assert "10 minutes" in out.getvalue()
    state = load_config(config_file).state_dir
    assert code not in (state / "web.json").read_text()
    site = Site(str(config_file), Auth(WebStateFile(state)))
    browser = Browser(make_app(site))
    assert browser.post("/login", {"code": code}).location == "/"
    other = Browser(make_app(site), address="192.168.1.9")
    assert "Wrong code" in other.post("/login", {"code": code}).body


# --- the systemd units ----------------------------------------------------------------------

SERVICE = ROOT / "systemd" / "micromance-web.service"
SOCKET = ROOT / "systemd" / "micromance-web.socket"
EXEC_START = "/opt/micromance/venv/bin/micromance web --config /etc/micromance/config.toml"


def analyze() -> str:
    return require_tool("systemd-analyze", "systemd-analyze is missing (Debian package "
                        "systemd; install.sh --dev installs it)")


def test_the_web_units_verify_cleanly(tmp_path):
    tool = analyze()
    text = SERVICE.read_text()
    assert EXEC_START in text
    (tmp_path / SERVICE.name).write_text(
        text.replace(EXEC_START.split()[0], shutil.which("true") or "/bin/true"))
    shutil.copy(SOCKET, tmp_path / SOCKET.name)
    result = subprocess.run([tool, "verify", str(tmp_path / SOCKET.name),
                             str(tmp_path / SERVICE.name)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_web_service_is_hardened_at_least_like_the_daemon():
    result = subprocess.run([analyze(), "security", "--offline=yes", "--no-pager",
                             str(SERVICE)], capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for micromance-web\.service: (\d+\.\d+)",
                      result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 1.5, result.stdout


def test_the_socket_listens_on_port_80_for_the_service_which_runs_as_the_unit_user():
    socket_text = SOCKET.read_text()
    assert "\nListenStream=80\n" in socket_text
    assert "\nService=micromance-web.service\n" in socket_text
    assert "\nAccept=no\n" in socket_text
    service_text = SERVICE.read_text()
    assert "\nUser=micromance\n" in service_text and "\nPrivateDevices=yes\n" in service_text
    assert "\nRuntimeDirectory=" not in service_text  # /run/micromance is the daemon's


# --- beside a real running unit -------------------------------------------------------------


@pytest.fixture()
def running_unit(config_file, mock_factory, tmp_path):
    """A paired unit (its partner's broker unreachable: presses queue) on a thread, with its
    control socket in the state directory, and a signed-in browser of the page."""
    from micromance.link.pair_file import pair_locally
    from micromance.runtime import Runtime

    config = load_config(config_file)
    pair_locally(config.state_dir, tmp_path / "partner")
    with Running(Runtime(config, pin_factory=mock_factory)) as running:
        site = Site(str(config_file), Auth(WebStateFile(config.state_dir)))
        yield running, site, Browser(make_app(site))


def test_a_code_shown_on_the_real_unit_signs_in(running_unit):
    from micromance.core import commands as cmd
    from micromance.screens.views import AccessCodeView

    running, _, browser = running_unit
    since = running.mark()
    page = browser.post("/login/code")
    assert "on the unit's screen" in page.by_id("message")
    shown = running.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                             and isinstance(c.frame.view, AccessCodeView), since=since)
    code = shown.frame.view.code
    assert code not in page.body
    assert browser.post("/login", {"code": code}).location == "/"
    running.wait_for(lambda c: isinstance(c, cmd.ShowFrame)
                     and not isinstance(c.frame.view, AccessCodeView), since=since + 1)
    assert browser.get("/").status == 200


def test_send_thanks_on_a_real_unit_is_queued_while_the_partner_is_away(running_unit):
    from micromance.core import commands as cmd

    running, site, browser = running_unit
    browser.post("/login", {"code": site.auth.new_code("shell", 600)})
    page = browser.get("/")
    assert page.by_id("totals") == "0 sent, 0 received" and not page.has_id("not-running")
    assert page.by_id("gesture") == running.runtime.state.rotation.prompt.text
    answer = browser.post("/thanks")
    assert answer.location == "/?note=queued"
    running.wait_for(lambda c: isinstance(c, cmd.SendThanks))
    page = browser.get(answer.location)
    assert page.by_id("totals") == "1 sent, 0 received"
    assert page.by_id("outbox").startswith("1 waiting")


def test_settings_saved_from_the_page_reach_the_real_unit(running_unit, config_file):
    running, site, browser = running_unit
    browser.post("/login", {"code": site.auth.new_code("shell", 600)})
    form = {"device.name": "Sam", "quiet_hours.enabled": "", "quiet_hours.start": "22:30",
            "quiet_hours.end": "07:00", "prompts.interval_minutes": "45",
            "display.contrast": "120", "display.dim_contrast": "8",
            "display.dim_after_minutes": "10",
            "practice": ["present", "reinforce", "closeness", "delight", "calm", "affirm",
                         "attune"]}
    page = browser.post("/settings", form)
    assert page.by_id("saved") == "Saved, and the unit uses it now.", page.body
    assert "display" in page.by_id("applied")
    running.wait_until(lambda: running.runtime.config.display.contrast == 120)


def test_the_pairing_page_reads_the_real_units_pairing(running_unit):
    _running, site, browser = running_unit
    browser.post("/login", {"code": site.auth.new_code("shell", 600)})
    page = browser.get("/pairing")
    assert page.has_id("paired") and page.has_id("forget")
    assert json.loads(browser.get("/pairing/state.json").body) == {"phase": "idle"}
