"""The simulated units' config files: ``<state>/sam.toml`` and ``<state>/alex.toml``.

Each simulated unit runs from a file, as a real one does, so that its own web page can save
Settings and reload it. The first run writes the file from the base config (the one
``--config`` names, or the defaults) with the unit's name and quiet hours off. Later runs keep
what was changed in it, on the Settings page or by hand, and set again only what the
simulation decides: the dummy display of the base's size, this run's private broker, and the
unit's state directory.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from micromance.config import SECTIONS, Config, load_config
from micromance.errors import ConfigError

#: Sections a simulated unit never takes from the base: its broker is the private one, and the
#: home's Home Assistant broker is no place for a demonstration.
NOT_COPIED = ("broker", "homeassistant")

HEADER = """\
# A unit of `micromance simulate`, made from the base config on its first run.
# Edit it freely (or on the unit's web page): later runs keep your changes and set again only
# [display] driver, width and height, [broker] and [paths] state_dir.
"""


def unit_config(base: Config, path: Path, *, name: str, state_dir: Path,
                broker_port: int) -> Config:
    """Write (or bring up to date) the unit's file at ``path`` and load it."""
    document = _read(path) if path.exists() else _from_base(base, name)
    display = _table(document, "display", path)
    display["driver"] = "dummy"
    display["width"] = base.display.width
    display["height"] = base.display.height
    if "broker" in document:
        del document["broker"]  # one [broker] or several [[broker]]: the private one replaces it
    broker = tomlkit.table()
    broker.update({"host": "127.0.0.1", "port": broker_port, "tls": False})
    document["broker"] = broker
    _table(document, "paths", path)["state_dir"] = str(state_dir.resolve())
    _write(path, tomlkit.dumps(document))
    return load_config(path)


def _read(path: Path) -> Any:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the simulated unit's config {path} ({error})",
                          fix=f"make it readable, or delete it: simulate writes {path.name} "
                              "afresh") from None
    except TOMLKitError as error:
        raise ConfigError(f"{path} is not valid TOML ({error})",
                          fix=f"correct it, or delete it: simulate writes {path.name} "
                              "afresh") from None


def _from_base(base: Config, name: str) -> Any:
    """The base's values that differ from the defaults, with this unit's name."""
    document = tomlkit.parse(HEADER)
    _table(document, "device")["name"] = name
    for section in SECTIONS:
        if section in NOT_COPIED:
            continue
        values = getattr(base, section)
        defaults = type(values)()
        changed = {f.name: getattr(values, f.name) for f in dataclasses.fields(values)
                   if getattr(values, f.name) != getattr(defaults, f.name)}
        if changed:
            table = _table(document, section)
            for key, value in changed.items():
                if key not in table:  # the unit's own name stays
                    table[key] = list(value) if isinstance(value, tuple) else value
    # A demonstration at any hour: quiet hours would keep both screens dark at night.
    _table(document, "quiet_hours")["enabled"] = False
    return document


def _table(document: Any, name: str, path: Path | None = None) -> Any:
    if name not in document:
        document[name] = tomlkit.table()
    table = document[name]
    if not isinstance(table, dict):  # tomlkit's tables, inline ones too, are dicts
        raise ConfigError(f"{path}: {name} is not a table",
                          fix=f"write it as [{name}] with its keys below, or delete the file: "
                              "simulate writes it afresh", key=name)
    return table


def _write(path: Path, text: str) -> None:
    """Replace the file in one step: a unit's page reading it never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"cannot write the simulated unit's config {path} ({error})",
                          fix="choose a --state directory you may write to") from None
