"""The page's WSGI application: the checks every request passes, sign-in, and the pages.

In order, for every request:

1. ``guard``: a peer outside the private address ranges gets 403 before anything is parsed;
   every answer carries a strict Content-Security-Policy (no inline script, nothing from
   elsewhere), ``X-Frame-Options: DENY``, ``no-store`` and ``nosniff``.
2. ``checks`` (a bottle plugin): a browser without its id cookie gets one; a POST needs an
   Origin/Referer of this host (when the browser sends one) and the form's CSRF token, or it
   is refused with 403 and changes nothing; every page but sign-in needs a session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import bottle

from micromance.control.client import ControlError
from micromance.web import network
from micromance.web.auth import (
    BROWSER_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    UNIT_CODE_SECONDS,
    LoginLocked,
    new_browser_id,
)
from micromance.web.site import STATIC, Site, browser_of
from micromance.web.unit import daemon

log = logging.getLogger("micromance.web")

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; "
     "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
     "base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
FORBIDDEN = b"403 Forbidden: this page answers only on the home network.\n"


def make_app(site: Site) -> Callable[..., Iterable[bytes]]:
    """The WSGI application for ``site``."""
    app = bottle.Bottle()
    app.install(_Checks(site))
    _sign_in_routes(app, site)
    from micromance.web.pages import check, connection, now, pairing, settings

    for pages in (now, settings, connection, pairing, check):
        pages.routes(app, site)

    @app.get("/static/<name>", public=True)
    def static(name: str) -> Any:
        return bottle.static_file(name, root=str(STATIC))

    return guard(app)


def guard(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Refuse peers outside the home network; add the security headers to every answer."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not network.is_private(environ.get("REMOTE_ADDR", "")):
            log.info("refused %s (not a private address)", environ.get("REMOTE_ADDR"))
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(FORBIDDEN))),
                                             *SECURITY_HEADERS])
            return [FORBIDDEN]

        def with_headers(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            names = {name.lower() for name, _ in headers}
            extra = [(n, v) for n, v in SECURITY_HEADERS if n.lower() not in names]
            return start_response(status, headers + extra, *exc)

        return app(environ, with_headers)

    return guarded


class _Checks:
    """The browser id, the POST checks and the session check, around every route."""

    name = "micromance-checks"
    api = 2

    def __init__(self, site: Site) -> None:
        self.site = site

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        public = bool(route.config.get("public"))
        site = self.site

        def checked(*args: Any, **kwargs: Any) -> Any:
            request = bottle.request
            browser = browser_of(request)
            if not browser:
                browser = new_browser_id()
                bottle.response.set_cookie(BROWSER_COOKIE, browser, httponly=True,
                                           samesite="strict", path="/",
                                           max_age=SESSION_SECONDS)
            request.environ["micromance.browser"] = browser
            if request.method == "POST":
                refusal = _post_refusal(site, request)
                if refusal:
                    log.info("refused a POST to %s: %s", request.path, refusal)
                    raise bottle.HTTPError(403, f"Refused: {refusal}. Go back, reload the "
                                           "page and try again.")
            if not public and not site.auth.session_valid(
                    request.get_cookie(SESSION_COOKIE) or ""):
                if request.method == "GET" and not request.path.endswith(".json"):
                    bottle.redirect("/login", 303)
                raise bottle.HTTPError(403, "Sign in first.")
            return callback(*args, **kwargs)

        return checked


def _post_refusal(site: Site, request: bottle.BaseRequest) -> str:
    """Why a POST must not be carried out ("" when it may)."""
    host = request.get_header("Host", "")
    for header in ("Origin", "Referer"):
        value = request.get_header(header)
        if value is not None:
            if urlsplit(value).netloc != host or not host:
                return f"the {header} is not this page"
            break  # the Origin, when sent, is the one that counts
    if not site.auth.csrf_valid(browser_of(request), request.forms.getunicode("csrf") or ""):
        return "the form is out of date or not from this page"
    return ""


def _sign_in_routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/login", public=True)
    def login_page() -> str:
        return _login(site)

    @app.post("/login/code", public=True)
    def show_code() -> str:
        try:
            code = site.auth.new_code("unit", UNIT_CODE_SECONDS)
        except LoginLocked as locked:
            return _login(site, problem=_locked_words(locked.seconds))
        try:
            config, _ = site.config()
            client = daemon(config)
            if client is None:
                return _login(site, problem="The unit is not running, so it cannot show a "
                              "code. On the unit, micromance web --pin prints one.")
            with client:
                client.show_code(code, UNIT_CODE_SECONDS)
        except ControlError as error:
            return _login(site, problem=f"The unit could not show a code: {error.message}.")
        log.info("an access code is on the unit's screen (asked from %s)",
                 bottle.request.remote_addr)
        return _login(site, note="The code is on the unit's screen now (for 2 minutes).")

    @app.post("/login", public=True)
    def sign_in() -> Any:
        typed = bottle.request.forms.getunicode("code") or ""
        if not "".join(typed.split()).isdigit() or len("".join(typed.split())) != 6:
            return _login(site, problem="Type the 6 digits the unit shows.")
        try:
            outcome = site.auth.sign_in(typed)
        except LoginLocked as locked:
            return _login(site, problem=_locked_words(locked.seconds))
        if not outcome.token:
            log.info("a wrong access code from %s", bottle.request.remote_addr)
            if outcome.tries_left == 0:
                return _login(site, problem="Wrong code, five times. " + _locked_words(
                    site.auth.locked_for()))
            return _login(site, problem=f"Wrong code: {outcome.tries_left} more "
                          f"{'try' if outcome.tries_left == 1 else 'tries'} before sign-ins "
                          "stop for 10 minutes.")
        log.info("a browser signed in from %s", bottle.request.remote_addr)
        _hide_code(site)
        bottle.response.set_cookie(SESSION_COOKIE, outcome.token, httponly=True,
                                   samesite="strict", path="/", max_age=SESSION_SECONDS)
        bottle.redirect("/", 303)

    @app.post("/logout")
    def sign_out() -> None:
        site.auth.sign_out(bottle.request.get_cookie(SESSION_COOKIE) or "")
        bottle.response.delete_cookie(SESSION_COOKIE, path="/")
        bottle.redirect("/login?note=signed-out-here", 303)

    @app.post("/logout/all")
    def sign_out_everywhere() -> None:
        site.auth.sign_out_everywhere()
        log.info("every browser signed out (from %s)", bottle.request.remote_addr)
        bottle.response.delete_cookie(SESSION_COOKIE, path="/")
        bottle.redirect("/login?note=signed-out", 303)


def _login(site: Site, problem: str = "", note: str | None = None) -> str:
    values: dict[str, Any] = {"problem": problem, "locked": site.auth.locked_for() > 0}
    if note is not None:
        values["note"] = note
    return site.render("login", **values)


def _locked_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return (f"Sign-ins are locked for {minutes} more minute{'s' if minutes > 1 else ''} "
            "after five wrong codes.")


def _hide_code(site: Site) -> None:
    """The code is used up: take it off the unit's screen (a unit that is gone is fine)."""
    try:
        config, _ = site.config()
        client = daemon(config)
        if client is not None:
            with client:
                client.hide_code()
    except ControlError as error:
        log.info("could not hide the code on the unit: %s", error.message)
