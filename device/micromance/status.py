"""``micromance status``: what the unit knows, read from its state without changing it.

The running daemon adds its live facts (link, partner, outbox) in status.json, written by
:class:`LiveFactsFile`; ``read_live_facts`` is the one reader, for ``status`` and ``doctor``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from micromance import __version__
from micromance.config import BrokerConfig, Config
from micromance.core.commands import LiveFacts
from micromance.link.pair_file import load_pair
from micromance.store import Store

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
#: ``config`` in the status of a unit that runs on the shipped defaults (no file).
DEFAULTS_NAME = "(built-in defaults)"
SERVICE_RUNTIME_DIR = Path("/run/micromance")
#: Live facts reach status.json this long after they change: a burst costs one write.
STATUS_DELAY_SECONDS = 0.25


def live_status_path(config: Config) -> Path:
    """Where the daemon writes its live facts: $RUNTIME_DIRECTORY under systemd (tmpfs, so no
    SD-card wear), else the state directory."""
    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime_dir or config.state_dir) / STATUS_FILE


def _live_status_candidates(config: Config) -> list[Path]:
    """A shell has no $RUNTIME_DIRECTORY: look where the service would have written too."""
    return [live_status_path(config), SERVICE_RUNTIME_DIR / STATUS_FILE,
            config.state_dir / STATUS_FILE]


class LiveFactsFile:
    """The daemon's side: status.json, written a moment after the live facts change.

    A burst (a redelivered outbox, a press and its ack) costs one write, and never in the
    moment a press is on its way. A timer of the loop: real time paces this I/O, not the
    core's clock.
    """

    def __init__(self, config: Config, delay: float = STATUS_DELAY_SECONDS) -> None:
        self.path = live_status_path(config)
        self._state_dir = str(config.state_dir)
        self._delay = delay
        self._facts: LiveFacts | None = None
        self._due: float | None = None
        self._written: dict[str, Any] | None = None
        #: Why the last reload was refused ("" while the config in use is the file's).
        self.config_error = ""
        #: Set after each write (tests wait on it).
        self.written = threading.Event()

    def note_config_error(self, error: str) -> None:
        """A reload was refused (``error``) or succeeded (""): status says so soon."""
        if error != self.config_error:
            self.config_error = error
            if self._facts is not None and self._due is None:
                self._due = time.monotonic() + self._delay

    def report(self, facts: LiveFacts) -> None:
        self._facts = facts
        if self._written is None:
            self.write()  # the first facts, at start-up: `status` sees the unit running at once
        elif self._due is None:
            self._due = time.monotonic() + self._delay

    def seconds_until_due(self) -> float | None:
        return None if self._due is None else self._due - time.monotonic()

    def run_due(self) -> None:
        if self._due is not None and time.monotonic() >= self._due:
            self.write()

    def write(self) -> None:
        """Write now, if the facts differ from the file's (also at exit)."""
        self._due = None
        if self._facts is None:
            return
        facts = {"pid": os.getpid(), "state_dir": self._state_dir, **asdict(self._facts),
                 "config_error": self.config_error}
        if facts == self._written:
            return
        self._written = facts
        try:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(facts))
            os.replace(temporary, self.path)
        except OSError as error:
            log.debug("cannot write %s: %s", self.path, error)
        self.written.set()


def collect_status(config: Config) -> dict[str, Any]:
    """The status object (its keys are a contract: see docs/contract.md)."""
    store = Store.open_readonly(config.state_dir)
    report: dict[str, Any] = {
        "version": __version__,
        "config": str(config.source) if config.source else DEFAULTS_NAME,
        "state_dir": str(config.state_dir),
        "name": config.device.name,
        "device_id": None,
        "paired": False,
        "pair_id": None,
        "link": "offline",
        "partner": "unknown",
        "sent_total": 0,
        "received_total": 0,
        "today": 0,
        "streak": 0,
        "together_total": 0,
        "outbox": 0,
        "rejected": 0,
        "duplicates": 0,
        "old_pair": 0,
        "brokers": [],
        "last_events": [],
        "config_error": "",
    }
    pair = load_pair(config.state_dir)
    from micromance.link.courier import brokers_for

    brokers = brokers_for(config, pair)
    report["brokers"] = broker_rows(brokers, ())
    if pair is not None:
        # The daemon's id is pair.json's when paired (Store.device_id), whatever the database.
        report.update(paired=True, pair_id=pair.pair_id[:8], partner_id=pair.partner_id,
                      device_id=pair.device_id)
    live = read_live_facts(config)
    if live:
        report.update(link=live["link"], partner=live["partner"], rejected=live["rejected"],
                      duplicates=live.get("duplicates", 0),
                      old_pair=live.get("old_pair", 0),
                      partner_name=live.get("partner_name", ""),
                      config_error=str(live.get("config_error", "")), running=True)
        report["brokers"] = broker_rows(brokers, live.get("brokers", []))
    else:
        report["running"] = False
    if store is None:
        return report
    try:
        counters = store.load_counters(pair.pair_id if pair else "")
        report.update(
            device_id=report["device_id"] or store.get("device_id") or None,
            outbox=store.outbox_size(pair.pair_id) if pair else 0,
            sent_total=counters.sent_total,
            received_total=counters.received_total,
            today=counters.today,
            streak=counters.streak,
            together_total=counters.together_total,
            last_events=store.recent_events(10),
        )
    finally:
        store.close()
    return report


def broker_rows(brokers: Iterable[BrokerConfig], reports: Iterable[Any]) -> list[dict[str, Any]]:
    """``status --json``'s ``brokers``: each broker the unit uses, in order, with what the
    daemon reported of it (``(host:port, connected, last error)``, as in ``LiveFacts``; a
    malformed entry from status.json is skipped). For ``status`` and the control socket."""
    rows = [{"host": b.host, "port": b.port, "tls": b.tls, "connected": False, "error": ""}
            for b in brokers]
    by_where = {f"{row['host']}:{row['port']}": row for row in rows}
    for entry in reports:
        try:
            where, connected, error = entry
        except (TypeError, ValueError):
            continue
        row = by_where.get(where)
        if row is not None:
            row.update(connected=bool(connected), error=str(error))
    return rows


def read_live_facts(config: Config) -> dict[str, Any] | None:
    """What the running daemon of *this* config last reported, if it is still running.

    The one reader for ``status`` and ``doctor``: a status.json left by a unit that has
    stopped, or written by another unit's daemon (another state directory), is not ours.
    """
    for path in dict.fromkeys(_live_status_candidates(config)):
        try:
            facts = json.loads(path.read_text())
            os.kill(int(facts["pid"]), 0)
        except PermissionError:
            return facts  # alive, just owned by the service user
        except (OSError, ValueError, KeyError, TypeError):
            continue  # absent, unreadable, or written by a unit that has stopped since
        if facts.get("state_dir", str(config.state_dir)) == str(config.state_dir):
            return facts
    return None


def format_status(report: dict[str, Any]) -> str:
    if not report["device_id"] and report["config"] == DEFAULTS_NAME and not report["running"]:
        return (f"micromance {report['version']}: nothing is set up here yet (no config file, "
                f"no state in {report['state_dir']}, no unit running).\n"
                "To try it on this computer: micromance simulate. To set up a unit: "
                "sudo ./install.sh (see README.md, \"Build one\").")
    running = "running" if report["running"] else "not running (the counts below are " \
        "the stored ones)"
    lines = [
        f"micromance {report['version']}  ({report['name']}, device {report['device_id'] or '-'})",
        f"unit:     {running}",
        f"config:   {report['config']}",
        *([f"reload:   refused, running on the previous config: {report['config_error']}"]
          if report.get("config_error") else []),
        f"paired:   {'yes, pair ' + report['pair_id'] if report['paired'] else 'no'}",
        f"link:     {report['link']}, partner {report['partner']}",
        f"thanks:   {report['sent_total']} sent, {report['received_total']} received, "
        f"{report['today']} today; together {report['together_total']} times",
        f"outbox:   {report['outbox']} waiting; rejected messages: {report['rejected']}",
    ]
    for broker in report["brokers"]:
        state = "connected" if broker["connected"] else (broker["error"] or "not connected")
        lines.append(f"broker:   {broker['host']}:{broker['port']}  {state}")
    if report["last_events"]:
        lines.append("recent:")
        lines += [f"  {e['at']}  {e['kind']} {e['detail']}".rstrip()
                  for e in report["last_events"]]
    return "\n".join(lines)
