"""Pairing: invite (the code shown big) or join (type the code), then the 6-digit comparison
with Confirm / Cancel, and Forget after a second "yes". The daemon pairs; this page asks it
to and shows how it goes (a little script reloads the page when the phase changes)."""

from __future__ import annotations

from typing import Any

import bottle

from micromance.control.client import ControlClient, ControlError
from micromance.web.site import Site, log
from micromance.web.unit import OFFLINE_STATUS, daemon

#: Phases in which the page follows the daemon by itself.
ACTIVE = ("searching", "code", "waiting")
#: How long an invite code stays on the page (the daemon's attempt lasts 2 minutes).
INVITE_SHOWN_SECONDS = 150.0


def routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/pairing")
    def pairing_page() -> str:
        return _page(site, ask_forget=bottle.request.query.get("forget") == "ask")

    @app.get("/pairing/state.json")
    def pairing_state() -> dict[str, Any]:
        state, _, _ = _pairing(site)
        return {"phase": state.get("phase", "idle")}

    @app.post("/pairing/invite")
    def invite() -> Any:
        return _ask(site, lambda client: _remember_invite(site, client.pair("invite")))

    @app.post("/pairing/join")
    def join() -> Any:
        code = " ".join((bottle.request.forms.getunicode("code") or "").split())
        if not code:
            return _page(site, problem="Type the invite code the other unit shows.")
        return _ask(site, lambda client: client.pair("join", code=code))

    @app.post("/pairing/confirm")
    def confirm() -> Any:
        return _ask(site, ControlClient.confirm)

    @app.post("/pairing/cancel")
    def cancel() -> Any:
        site.invite = None
        return _ask(site, ControlClient.cancel, note="cancelled")

    @app.post("/pairing/forget")
    def forget() -> Any:
        if bottle.request.forms.getunicode("confirm") != "yes":
            bottle.redirect("/pairing?forget=ask", 303)
        log.info("forgetting the pair (asked from %s)", bottle.request.remote_addr)
        return _ask(site, ControlClient.forget, note="forgotten")


def _remember_invite(site: Site, code: str) -> None:
    site.invite = (code, site.monotonic() + INVITE_SHOWN_SECONDS)


def _ask(site: Site, action: Any, note: str = "") -> Any:
    """Carry out ``action(client)`` on the daemon, then back to the page (or the error)."""
    config, _ = site.config()
    try:
        client = daemon(config)
        if client is None:
            return _page(site, problem="The unit is not running: pairing needs it. Start it "
                                       "with sudo systemctl start micromance.")
        with client:
            action(client)
    except ControlError as error:
        return _page(site, problem=error.message + (f" ({error.fix})" if error.fix else ""))
    bottle.redirect("/pairing" + (f"?note={note}" if note else ""), 303)


def _pairing(site: Site) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The pairing phase, the status, and why the daemon could not be asked ("")."""
    config, _ = site.config()
    try:
        client = daemon(config)
        if client is None:
            return dict(OFFLINE_STATUS["pairing"]), dict(OFFLINE_STATUS), "not running"
        with client:
            status = {**OFFLINE_STATUS, **client.status()}
            return dict(status.get("pairing") or OFFLINE_STATUS["pairing"]), status, ""
    except ControlError as error:
        return dict(OFFLINE_STATUS["pairing"]), dict(OFFLINE_STATUS), error.message


def _page(site: Site, problem: str = "", ask_forget: bool = False) -> str:
    state, status, unreachable = _pairing(site)
    phase = str(state.get("phase", "idle"))
    invite = site.invite[0] if site.invite and site.invite[1] > site.monotonic() else ""
    if phase not in ACTIVE:
        site.invite = None
        invite = ""
    return site.render("pairing", title="Pairing", phase=phase, state=state, status=status,
                       invite=invite, problem=problem, unreachable=unreachable,
                       ask_forget=ask_forget, active=phase in ACTIVE,
                       scripts=("pairing.js",) if phase in ACTIVE else ())
