"""Connection: the brokers in use and how they are doing, the shipped public brokers on or
off, the unit's own brokers, and a test of each with doctor's broker check.

Passwords are write-only: typed into the page, they go to a file beside the config (mode
0640) that ``password_file`` names; the page never shows one, and an empty field keeps it.
"""

from __future__ import annotations

from typing import Any

import bottle

from micromance.config import PUBLIC_BROKERS, Config
from micromance.errors import ConfigError
from micromance.web.checks import run_in_child
from micromance.web.pages.saving import Saved, refused, save_config
from micromance.web.settings_file import OwnBroker, password_path, write_secret
from micromance.web.site import Site
from micromance.web.unit import facts


def routes(app: bottle.Bottle, site: Site) -> None:
    @app.get("/connection")
    def connection_page() -> str:
        return _page(site, Saved())

    @app.post("/connection")
    def save_brokers() -> str:
        config, _ = site.config()
        form = bottle.request.forms
        public = form.getunicode("public_brokers") != "off"
        rows, passwords, errors = _rows_from_form(form, config, site)
        if errors:
            return _page(site, Saved(errors=errors), rows=rows)
        if not public and not rows:
            return _page(site, Saved(errors={"broker": "Name at least one broker of your own, "
                                                       "or use the public brokers."}), rows=rows)
        text = site.settings_file().with_brokers(None if public else rows)
        try:
            site.settings_file().check(text)
            for path, password in passwords:  # only once the config is known to be good
                write_secret(path, password)
        except ConfigError as error:
            return _page(site, refused(error), rows=rows)
        return _page(site, save_config(site, text))

    @app.post("/connection/test")
    def test_broker() -> str:
        try:
            number = int(bottle.request.forms.getunicode("broker") or "")
        except ValueError:
            number = 0
        return _page(site, Saved(), tested=(number, _broker_check(site, number)))


def _broker_check(site: Site, number: int) -> tuple[str, str]:
    """Doctor's check of broker ``number`` (1-based, as the page lists them): its outcome
    ("pass", "warn", "fail") and its line."""
    [result] = run_in_child(site.config_arg, broker=number)[:1]
    line = f"{result['symbol']} {result['name']}: {result['message']}"
    return result["outcome"], line + (f" — fix: {result['fix']}" if result["fix"] else "")


def _rows_from_form(form: Any, config: Config, site: Site
                    ) -> tuple[list[OwnBroker], list[tuple[Any, str]], dict[str, str]]:
    """The brokers the form names (a row without a host is left out), the password files
    to write, and an error per field that is not even the right kind."""
    try:
        count = min(int(form.getunicode("broker_rows") or "0"), 16)
    except ValueError:
        count = 0
    own = config.brokers
    rows: list[OwnBroker] = []
    passwords: list[tuple[Any, str]] = []
    errors: dict[str, str] = {}
    for number in range(1, count + 1):
        field = f"broker.{number}"
        host = (form.getunicode(f"{field}.host") or "").strip()
        if not host or form.getunicode(f"{field}.remove") == "true":
            continue
        raw_port = (form.getunicode(f"{field}.port") or "").strip()
        try:
            port = int(raw_port)
        except ValueError:
            errors[f"{field}.port"] = f'port "{raw_port}" is not a whole number'
            port = 0
        was = number - 1 if number <= len(own) else None
        password_file = own[was].password_file if was is not None else ""
        password = form.getunicode(f"{field}.password") or ""
        if password:
            path = password_path(site.config_path, host, port)
            passwords.append((path, password))
            password_file = str(path)
        rows.append(OwnBroker(host=host, port=port, tls=form.getunicode(f"{field}.tls") ==
                              "true", username=(form.getunicode(f"{field}.username") or
                                                "").strip(),
                              password_file=password_file, was=was))
    return rows, passwords, errors


def _page(site: Site, saved: Saved, rows: list[OwnBroker] | None = None,
          tested: tuple[int, tuple[str, str]] | None = None) -> str:
    config, _ = site.config()
    known = facts(config)
    if rows is None:
        rows = [OwnBroker(b.host, b.port, b.tls, b.username, b.password_file, n)
                for n, b in enumerate(config.brokers)]
    return site.render("connection", title="Connection", saved=saved, errors=saved.errors,
                       in_use=known.status.get("brokers", []), running=known.running,
                       public=not config.brokers, public_brokers=PUBLIC_BROKERS,
                       rows=rows, tested=tested)
