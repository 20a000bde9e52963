"""Saving a config edit, shared by Settings and Connection: check, write, ask the daemon to
reload, and say in words what happened."""

from __future__ import annotations

from dataclasses import dataclass, field

from micromance.control.client import ControlError
from micromance.errors import ConfigError
from micromance.web.site import Site, log
from micromance.web.unit import daemon


@dataclass
class Saved:
    """What a save did: ``errors`` by dotted key ("" for the file as a whole) when the
    candidate was refused (nothing written); else ``note`` and what the unit ``applied``."""

    errors: dict[str, str] = field(default_factory=dict)
    note: str = ""
    applied: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.errors)


def refused(error: ConfigError) -> Saved:
    return Saved(errors={error.key: error.message + (f" (fix: {error.fix})" if error.fix
                                                     else "")})


def save_config(site: Site, text: str) -> Saved:
    """Check ``text`` with the config code, write it with a backup, and reload the unit."""
    settings = site.settings_file()
    if text == settings.text():
        return Saved(note="Nothing changed.")
    try:
        settings.check(text)
        backup = settings.write(text)
    except ConfigError as error:
        return refused(error)
    log.info("%s saved (the old one kept as %s)", settings.path,
             backup.name if backup else "nothing: it is new")
    return reload_unit(site)


def reload_unit(site: Site) -> Saved:
    """Ask the running daemon to use the file as it is now."""
    config, _ = site.config()
    try:
        client = daemon(config)
        if client is None:
            return Saved(note="Saved. The unit is not running; it uses the new settings when "
                              "it starts.")
        with client:
            applied = client.reload()
    except ControlError as error:
        return Saved(note="Saved, but the unit keeps its old settings for now.",
                     problem=f"{error.message}" + (f" (fix: {error.fix})" if error.fix else ""))
    if not applied:
        return Saved(note="Saved. The unit already used these settings.")
    return Saved(note="Saved, and the unit uses it now.", applied=applied)
