"""What every page shares: the config as it is now, the sign-in state, and rendering.

The config is read again for each request (a few hundred microseconds), so a change made
by hand or by the Settings page shows at once; a file that stopped being valid keeps the last
good config in use and puts its error at the top of every page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import bottle

from micromance.config import Config, load_config, resolve_path
from micromance.errors import ConfigError
from micromance.web.auth import BROWSER_COOKIE, Auth
from micromance.web.settings_file import SettingsFile, config_target

log = logging.getLogger("micromance.web")

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

#: The navigation: (path, label, element id).
NAVIGATION = (("/", "Now", "nav-now"), ("/history", "History", "nav-history"),
              ("/settings", "Settings", "nav-settings"),
              ("/connection", "Connection", "nav-connection"),
              ("/pairing", "Pairing", "nav-pairing"), ("/check", "Check", "nav-check"))

#: Short notes a redirect may name (``?note=sent``); only these, so a link cannot put words
#: of its own on the page.
NOTES = {
    "sent": "Sent.",
    "queued": "Queued: the partner's unit is offline; it gets the thank-you when it is back.",
    "not-running": "The unit is not running, so nothing was sent. Start it with "
                   "sudo systemctl start micromance.",
    "signed-out": "Every browser is signed out, this one too.",
    "signed-out-here": "Signed out.",
    "forgotten": "The pair is forgotten. Pair again below.",
    "cancelled": "Pairing cancelled.",
}


@dataclass
class Site:
    """The web page's world: where the config is, the sign-ins, the clocks."""

    config_arg: str | None
    auth: Auth
    now: Callable[[], datetime] = datetime.now
    monotonic: Callable[[], float] = time.monotonic
    _last_good: Config | None = field(default=None, repr=False)
    #: The invite code of the pairing started from this page (shown while it is open).
    invite: tuple[str, float] | None = None

    @property
    def config_path(self) -> Path:
        """The file the unit reads (also when it does not exist yet)."""
        return config_target(self.config_arg)

    def settings_file(self) -> SettingsFile:
        return SettingsFile(self.config_path, self.now)

    def config(self) -> tuple[Config, str]:
        """The config now, and "" or why the file is not valid (then the last good one)."""
        try:
            config = load_config(resolve_path(self.config_arg))
        except ConfigError as error:
            if self._last_good is None:
                raise
            return self._last_good, str(error)
        self._last_good = config
        return config, ""

    def render(self, name: str, **values: Any) -> str:
        """A page from ``templates/<name>.tpl`` with what every page needs."""
        config, problem = self.config()
        note = NOTES.get(bottle.request.query.get("note", ""), "")
        return bottle.template(name, template_lookup=[str(TEMPLATES)], csrf=self.csrf(),
                               navigation=NAVIGATION, unit_name=config.device.name,
                               config_problem=problem, note=values.pop("note", note),
                               path=bottle.request.path, **values)

    def csrf(self) -> str:
        browser = bottle.request.environ.get("micromance.browser", "")
        return self.auth.csrf_token(browser) if browser else ""


def browser_of(request: bottle.BaseRequest) -> str:
    return request.get_cookie(BROWSER_COOKIE) or ""
