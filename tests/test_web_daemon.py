"""Test doubles for the web page's tests, and the tests that keep them honest.

- ``FakeDaemon``: a real Unix-socket server at ``<state_dir>/control.sock`` that speaks the
  control protocol of ``micromance.control`` (one JSON object per line each way) and
  records what it was asked. The page talks to it through the real ``ControlClient``.
- ``Browser``: calls the page's WSGI application with crafted environs, keeps its cookies,
  and reads the CSRF token from the forms, as a browser would.

The tests at the end run the fake through the real client, so a page test that passes
against the fake passes against the protocol as documented.
"""

from __future__ import annotations

import html
import io
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from micromance.control import CONTROL_SOCKET
from micromance.control.client import ControlClient, ControlError

INVITE = "417 maple river candle otter"


def base_status() -> dict[str, Any]:
    return {
        "name": "Sam", "paired": True, "link": "connected", "partner": "online",
        "partner_name": "Alex", "away_since": None,
        "prompt": {"id": "abc", "text": "Ask about their day", "practice": "present"},
        "today": 2, "sent_total": 12, "received_total": 9, "pending": 1, "streak": 3,
        "together_total": 1, "outbox": 0, "quiet": False, "screen": "home",
        "pairing": {"phase": "idle", "code": "", "detail": ""},
        "brokers": [{"host": "127.0.0.1", "port": 1883, "tls": False, "connected": True,
                     "error": ""}],
        "config_error": "",
    }


class FakeDaemon:
    """The daemon's side of the control socket, with a status the test sets."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / CONTROL_SOCKET
        self.status = base_status()
        self.requests: list[dict[str, Any]] = []
        self.shown_codes: list[tuple[str, int]] = []
        self.reload_answer: dict[str, Any] = {"ok": True, "applied": ["quiet hours"]}
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> FakeDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self.path.unlink(missing_ok=True)

    def ops(self) -> list[str]:
        with self._lock:
            return [r["op"] for r in self.requests]

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rwb") as stream:
            for line in stream:
                try:
                    request = json.loads(line)
                    answer = self._answer(request)
                except (ValueError, KeyError, TypeError) as error:
                    answer = {"ok": False, "error": f"bad request ({error})", "fix": ""}
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.requests.append(request)
            op = request["op"]
            pairing = self.status["pairing"]
            if op == "status":
                return {"ok": True, "status": json.loads(json.dumps(self.status))}
            if op == "press":
                if request["button"] not in ("thanks", "next", "done"):
                    return {"ok": False, "error": "no such button", "fix": ""}
                if request["button"] == "thanks":
                    self.status["today"] += 1
                    self.status["sent_total"] += 1
                return {"ok": True}
            if op == "show_code":
                code, seconds = request["code"], request["seconds"]
                if not (isinstance(code, str) and re.fullmatch(r"\d{6}", code)
                        and 1 <= seconds <= 600):
                    return {"ok": False, "error": "bad code", "fix": ""}
                self.shown_codes.append((code, seconds))
                return {"ok": True}
            if op == "hide_code":
                return {"ok": True}
            if op == "reload":
                return dict(self.reload_answer)
            if op == "pair":
                pairing.update(phase="searching", detail="waiting for the other unit")
                return {"ok": True, "invite": INVITE if request["mode"] == "invite" else ""}
            if op == "pairing":
                return {"ok": True, "pairing": dict(pairing)}
            if op == "confirm":
                pairing.update(phase="waiting", detail="waiting for the other unit to confirm")
                return {"ok": True}
            if op == "cancel":
                pairing.update(phase="cancelled", code="", detail="cancelled here")
                return {"ok": True}
            if op == "forget":
                self.status.update(paired=False, partner="unknown", partner_name="")
                return {"ok": True}
            return {"ok": False, "error": f"unknown op {op!r}", "fix": "see micromance.control"}


# --- a browser, in process -------------------------------------------------------------------


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return urlsplit(self.headers.get("location", "")).path + (
            "?" + urlsplit(self.headers["location"]).query
            if urlsplit(self.headers.get("location", "")).query else "")

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', self.body)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def by_id(self, ident: str) -> str:
        """The text inside the element with this id (tags stripped), "" when absent."""
        found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(ident)}"[^>]*>(.*?)</\1>', self.body,
                          re.S)
        return html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).strip() if found else ""

    def has_id(self, ident: str) -> bool:
        return f'id="{ident}"' in self.body


class Browser:
    """A browser on the home network (``address``), with a cookie jar."""

    def __init__(self, app: Any, address: str = "192.168.1.20", host: str = "unit.local"
                 ) -> None:
        self.app = app
        self.address = address
        self.host = host
        self.cookies: dict[str, str] = {}
        self.seen: list[Page] = []

    def get(self, path: str, **headers: str) -> Page:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, Any] | None = None, *, csrf: str | None = None,
             **headers: str) -> Page:
        """POST ``fields``; ``csrf`` None takes the token from the page at ``path``'s form
        (a GET of the page first), as a browser submitting a form would."""
        fields = dict(fields or {})
        if csrf is None:
            csrf = self.get(_form_page(path)).csrf()
        if csrf:
            fields["csrf"] = csrf
        headers.setdefault("Origin", f"http://{self.host}")
        return self.request("POST", path, body=urlencode(fields, doseq=True), headers=headers)

    def request(self, method: str, path: str, body: str = "",
                headers: dict[str, str] | None = None) -> Page:
        target = urlsplit(path)
        data = body.encode()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": target.path, "QUERY_STRING": target.query,
            "SERVER_NAME": self.host, "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.address, "HTTP_HOST": self.host,
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
            "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
            answer["status"] = int(status.split()[0])
            answer["headers"] = headers

        chunks = self.app(environ, start_response)
        text = b"".join(chunks).decode()
        headers_out = {k.lower(): v for k, v in answer["headers"]}
        set_cookies = [v for k, v in answer["headers"] if k.lower() == "set-cookie"]
        for line in set_cookies:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel["expires"].startswith("Thu, 01 Jan 1970"):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        page = Page(answer["status"], headers_out, text, set_cookies)
        self.seen.append(page)
        return page


def _form_page(path: str) -> str:
    """The page whose form posts to ``path``."""
    if path.startswith(("/login", "/logout")):
        return "/login" if path.startswith("/login") else "/"
    if path == "/thanks":
        return "/"
    return "/" + path.strip("/").split("/")[0]


# --- a unit's config and its page, in process ------------------------------------------------

CONFIG = """# The unit on the kitchen counter.
[device]
name = "Sam"   # shown on Alex's screen

[display]
driver = "dummy"

# Off while we test.
[quiet_hours]
enabled = false

[paths]
state_dir = "{state}"

[broker]
host = "127.0.0.1"
port = {port}
tls = false
"""


class Clock:
    """The sign-ins' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class WebUnit:
    """A config file, its state directory, the page's app and the clock of its sign-ins."""

    def __init__(self, config: Path, state: Path) -> None:
        from micromance.web.app import make_app
        from micromance.web.auth import Auth
        from micromance.web.site import Site
        from micromance.web.web_state import WebStateFile

        self.config, self.state = config, state
        self.clock = Clock()
        self.auth = Auth(WebStateFile(state), clock=self.clock)
        self.site = Site(str(config), self.auth)
        self.app = make_app(self.site)

    def browser(self, **kwargs: Any) -> Browser:
        return Browser(self.app, **kwargs)

    def signed_in(self, **kwargs: Any) -> Browser:
        """A browser signed in with a code made as `micromance web --pin` makes it."""
        browser = self.browser(**kwargs)
        code = self.auth.new_code("shell", 600)
        page = browser.post("/login", {"code": code})
        assert page.status == 303 and page.location == "/", page.body
        return browser

    def web_json(self) -> str:
        return (self.state / "web.json").read_text()


def make_unit(tmp_path: Path, monkeypatch: Any) -> WebUnit:
    """The page of a unit whose broker is a loopback port nobody listens on (a broker check
    is refused at once; nothing reaches the internet)."""
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("MICROMANCE_CONFIG", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.write_text(CONFIG.format(state=state, port=port))
    return WebUnit(config, state)


# --- the fake against the real client -----------------------------------------------------


def test_the_fake_daemon_speaks_the_documented_protocol_to_the_real_client(tmp_path):
    with FakeDaemon(tmp_path) as daemon, ControlClient(daemon.path) as client:
        assert client.status()["partner_name"] == "Alex"
        client.press("thanks")
        assert client.status()["sent_total"] == 13
        client.show_code("123456", 120)
        assert daemon.shown_codes == [("123456", 120)]
        assert client.pair("invite") == INVITE
        assert client.pairing()["phase"] == "searching"
        assert client.reload() == ["quiet hours"]
        try:
            client.press("volume")
        except ControlError as error:
            assert error.message == "no such button"
        else:
            raise AssertionError("an unknown button was accepted")
        assert daemon.ops() == ["status", "press", "status", "show_code", "pair", "pairing",
                                "reload", "press"]


def test_find_daemon_finds_the_fake_in_the_state_directory(tmp_path, monkeypatch):
    from micromance.control.client import find_daemon
    from tests.units import desk_config

    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    config = desk_config(tmp_path)
    assert find_daemon(config) is None
    with FakeDaemon(tmp_path):
        client = find_daemon(config)
        assert client is not None
        with client:
            assert client.status()["name"] == "Sam"
