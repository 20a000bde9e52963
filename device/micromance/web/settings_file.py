"""Changing the config file from the page without losing what a person wrote in it.

The candidate text is the current file edited with tomlkit, so comments, blank lines, key
order and every key the page does not know stay exactly as they were; a key is written only
when the file has it already or its value differs from what the unit uses now (no defaults
spelled out). The config code itself judges the candidate (``load_config`` on a temporary
file beside the real one, so relative paths mean the same); a ``ConfigError`` is returned
with its ``key`` and nothing is written. A good file replaces the old one atomically, after a
dated copy of it (``config.toml.YYYYMMDD-HHMMSS.bak``, the newest ``BACKUPS_KEPT`` kept).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from micromance.config import DEFAULT_PATH, ENV_VAR, Config, load_config
from micromance.errors import ConfigError

BACKUPS_KEPT = 5
PROMPTS_FILE = "prompts.toml"
#: Keys of a ``[[broker]]`` table the Connection page edits (the rest are kept as they were).
BROKER_KEYS = ("host", "port", "tls", "username", "password_file")


def config_target(explicit: str | os.PathLike[str] | None) -> Path:
    """The file the unit reads, also when it does not exist yet (the built-in defaults are in
    use): ``--config``, else $MICROMANCE_CONFIG, else /etc/micromance/config.toml."""
    if explicit:
        return Path(explicit)
    return Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else DEFAULT_PATH


@dataclass(frozen=True)
class OwnBroker:
    """One of the unit's own brokers as the Connection page writes it; ``was`` is the
    position of the table it replaces in the file (None: a new one)."""

    host: str
    port: int
    tls: bool
    username: str = ""
    password_file: str = ""
    was: int | None = None


class SettingsFile:
    """The config file at ``path``: its text, candidate edits, checks, and safe writes."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = datetime.now) -> None:
        self.path = path
        self._clock = clock

    # --- reading and editing ---------------------------------------------------------------

    def text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def with_values(self, values: Mapping[str, Any], current: Config,
                    text: str | None = None) -> str:
        """The file's text with ``values`` (dotted key -> value) set; a key the file lacks is
        added only if its value differs from ``current``'s."""
        document = tomlkit.parse(self.text() if text is None else text)
        for dotted, value in values.items():
            section, key = dotted.split(".", 1)
            table = document.get(section)
            present = isinstance(table, (Table, dict)) and key in table
            if not present and getattr(getattr(current, section), key) == _plain(value):
                continue
            if not isinstance(table, (Table, dict)):
                table = tomlkit.table()
                document[section] = table
            table[key] = list(value) if isinstance(value, tuple) else value
        return tomlkit.dumps(document)

    def with_brokers(self, brokers: Sequence[OwnBroker] | None,
                     text: str | None = None) -> str:
        """The file's text with its own brokers: ``None`` removes ``[broker]`` and
        ``[[broker]]`` (the shipped public brokers), a list writes ``[[broker]]`` tables. A
        table keeps the keys this page does not edit (ca_file, keepalive ...) of the table
        it came from (``OwnBroker.was``); a single ``[broker]``'s room moves to
        ``[pairing] room``, where several brokers keep it."""
        document = tomlkit.parse(self.text() if text is None else text)
        old = document.get("broker")
        old_tables: list[Any] = list(old) if isinstance(old, AoT) else (
            [old] if isinstance(old, (Table, dict)) else [])
        if "broker" in document:
            del document["broker"]
        if brokers is None:
            return tomlkit.dumps(document)
        room = next((str(t["room"]) for t in old_tables if t.get("room")), "")
        if room:
            pairing = document.get("pairing")
            if not isinstance(pairing, (Table, dict)):
                pairing = tomlkit.table()
                document["pairing"] = pairing
            if "room" not in pairing:
                pairing["room"] = room
        tables = tomlkit.aot()
        for broker in brokers:
            table = tomlkit.table()
            kept = old_tables[broker.was] if broker.was is not None \
                and broker.was < len(old_tables) else {}
            for key, value in kept.items():
                if key not in BROKER_KEYS and key != "room":
                    table[key] = value
            table["host"] = broker.host
            table["port"] = broker.port
            table["tls"] = broker.tls
            if broker.username:
                table["username"] = broker.username
            if broker.password_file:
                table["password_file"] = broker.password_file
            tables.append(table)
        document["broker"] = tables
        return tomlkit.dumps(document)

    # --- checking and writing --------------------------------------------------------------

    def check(self, text: str) -> Config:
        """The config ``text`` would give, or the ``ConfigError`` that names the real file."""
        return self._judged(text, self.path, load_config)

    def check_prompts(self, text: str, path: Path) -> None:
        """Raise the ``ConfigError`` the unit would raise for this prompts file."""
        from micromance.content.library import load_library

        self._judged(text, path, lambda candidate: load_library(candidate))

    def write(self, text: str) -> Path | None:
        """Replace the file with ``text``; the dated copy of the old one, if there was one."""
        return write_safely(self.path, text, self._clock())

    def _judged(self, text: str, real: Path, judge: Callable[[Path], Any]) -> Any:
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
            temporary = _write_temporary(real, text)
        except OSError as error:
            raise _cannot_write(real, error) from None
        try:
            return judge(temporary)
        except ConfigError as error:
            named = str(temporary)
            raise ConfigError(error.message.replace(named, str(real)),
                              error.fix.replace(named, str(real)), key=error.key) from None
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()


def write_safely(path: Path, text: str, now: datetime, mode: int = 0o644) -> Path | None:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename, directory
    fsync), after a dated copy of the old file; keeps the old file's mode. Returns the copy."""
    backup = None
    try:
        if path.exists():
            mode = path.stat().st_mode & 0o777
            backup = path.with_name(f"{path.name}.{now:%Y%m%d-%H%M%S}.bak")
            shutil.copy2(path, backup)
            _prune_backups(path)
        temporary = _write_temporary(path, text, mode)
        os.replace(temporary, path)
        _sync_directory(path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from None
    return backup


def write_secret(path: Path, secret: str) -> None:
    """A password file: mode 0640 (the service's group reads it), written atomically."""
    try:
        temporary = _write_temporary(path, secret + "\n", 0o640)
        os.replace(temporary, path)
        _sync_directory(path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from None


def password_path(config_path: Path, host: str, port: int) -> Path:
    """Where the page keeps a broker's password: beside the config, named by the broker."""
    safe = re.sub(r"[^A-Za-z0-9.-]", "_", host)[:64]
    return config_path.with_name(f"broker-{safe}-{port}.password")


def prompts_path(config: Config, config_path: Path) -> Path:
    """The user's prompts file: ``prompts.extra_file``, else prompts.toml beside the config."""
    if config.prompts.extra_file:
        return Path(config.prompts.extra_file).expanduser()
    return config_path.with_name(PROMPTS_FILE)


def _write_temporary(beside: Path, text: str, mode: int = 0o600) -> Path:
    temporary = beside.with_name(f".{beside.name}.{os.getpid()}.web.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)  # the umask may have taken bits away
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return temporary


def _prune_backups(path: Path) -> None:
    pattern = re.compile(re.escape(path.name) + r"\.\d{8}-\d{6}\.bak$")
    backups = sorted(p for p in path.parent.iterdir() if pattern.match(p.name))
    for old in backups[:-BACKUPS_KEPT]:
        with contextlib.suppress(OSError):
            old.unlink()


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _cannot_write(path: Path, error: OSError) -> ConfigError:
    return ConfigError(
        f"{path}: cannot write ({error.strerror or error})",
        fix=f"let the web page's user write {path.parent} (sudo chgrp micromance "
            f"{path.parent} && sudo chmod g+w {path.parent}), or edit the file by hand")
