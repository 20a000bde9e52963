"""What the pages show and do, from the running daemon (control socket) or, when it is not
running, read from the store without changing it.

The page never opens the store for writing and never talks to a broker for the unit: a press
or a pairing is the daemon's, asked for with ``ControlClient``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from micromance.config import Config
from micromance.control.client import ControlClient, ControlError, find_daemon

#: The ``status`` keys the pages use, with what they are when the daemon does not run.
OFFLINE_STATUS: dict[str, Any] = {
    "name": "", "paired": False, "link": "offline", "partner": "unknown", "partner_name": "",
    "away_since": None, "prompt": None, "today": 0, "sent_total": 0, "received_total": 0,
    "pending": 0, "streak": 0, "together_total": 0, "outbox": 0, "quiet": False,
    "screen": "", "pairing": {"phase": "idle", "code": "", "detail": ""}, "brokers": [],
    "config_error": "",
}


@dataclass
class Facts:
    """The unit's status for a page; ``running`` False: read from disk, ``problem`` says why
    the daemon could not be asked (empty when it simply is not running)."""

    status: dict[str, Any]
    running: bool
    problem: str = ""
    history: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)


def daemon(config: Config) -> ControlClient | None:
    """A connection to the running daemon, or None (a socket we may not use raises)."""
    return find_daemon(config)


def facts(config: Config) -> Facts:
    """The status from the daemon; from disk when it does not run or does not answer."""
    problem = ""
    try:
        client = daemon(config)
        if client is not None:
            with client:
                return Facts({**OFFLINE_STATUS, **client.status()}, running=True)
    except ControlError as error:
        problem = error.message
    return Facts(_from_disk(config), running=False, problem=problem)


def _from_disk(config: Config) -> dict[str, Any]:
    from micromance.status import collect_status

    report = collect_status(config)
    status = {**OFFLINE_STATUS, **{k: v for k, v in report.items() if k in OFFLINE_STATUS}}
    status["name"] = config.device.name
    return status


@dataclass
class History:
    """The History page's numbers: rows ``(ISO date, counts)`` of thank-yous (``series``
    names the counts) and of gestures done, and the streak."""

    thanks: list[tuple[str, tuple[int, ...]]]
    series: tuple[str, ...]
    done: list[tuple[str, tuple[int, ...]]]
    streak: int


def history(config: Config, today: date) -> History:
    """Read from the store (read-only). Older stores have only the week's thank-yous both
    ways: shown as one series."""
    from micromance.link.pair_file import load_pair
    from micromance.store import Store

    pair = load_pair(config.state_dir)
    store = Store.open_readonly(config.state_dir)
    if store is None:
        return History([], ("sent", "received"), [], 0)
    try:
        counters = store.load_counters(pair.pair_id if pair else "")
    finally:
        store.close()
    streak = counters.streak_on(today)
    rows = counters.history
    if rows or not counters.days:
        return History([(day, (sent, received)) for day, sent, received, _ in rows],
                       ("sent", "received"), [(row[0], (row[3],)) for row in rows], streak)
    return History([(day, (count,)) for day, count in counters.days], ("both ways",), [],
                   streak)
