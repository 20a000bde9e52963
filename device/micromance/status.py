"""``micromance status``: what the unit knows, read from its state without changing it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from micromance import __version__
from micromance.config import Config
from micromance.link.pair_file import load_pair
from micromance.store import Store

STATUS_FILE = "status.json"
SERVICE_RUNTIME_DIR = Path("/run/micromance")


def live_status_path(config: Config) -> Path:
    """Where the daemon writes its live facts: $RUNTIME_DIRECTORY under systemd (tmpfs, so no
    SD-card wear), else the state directory."""
    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime_dir or config.state_dir) / STATUS_FILE


def _live_status_candidates(config: Config) -> list[Path]:
    """A shell has no $RUNTIME_DIRECTORY: look where the service would have written too."""
    return [live_status_path(config), SERVICE_RUNTIME_DIR / STATUS_FILE,
            config.state_dir / STATUS_FILE]


def collect_status(config: Config) -> dict[str, Any]:
    """The status object (its keys are a contract: see DESIGN.md)."""
    store = Store.open_readonly(config.state_dir)
    report: dict[str, Any] = {
        "version": __version__,
        "config": str(config.source) if config.source else "(built-in defaults)",
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
        "outbox": 0,
        "rejected": 0,
        "last_events": [],
    }
    pair = load_pair(config.state_dir)
    if pair is not None:
        report.update(paired=True, pair_id=pair.pair_id[:8], partner_id=pair.partner_id)
    live = _live_facts(config)
    if live:
        report.update(link=live["link"], partner=live["partner"], rejected=live["rejected"],
                      partner_name=live.get("partner_name", ""), running=True)
    else:
        report["running"] = False
    if store is None:
        return report
    try:
        counters = store.load_counters(pair.pair_id if pair else "")
        report.update(
            device_id=store.get("device_id") or None,
            outbox=store.outbox_size(pair.pair_id) if pair else 0,
            sent_total=counters.sent_total,
            received_total=counters.received_total,
            today=counters.today,
            streak=counters.streak,
            last_events=store.recent_events(10),
        )
    finally:
        store.close()
    return report


def _live_facts(config: Config) -> dict[str, Any] | None:
    """What the running daemon last reported, if it is still running."""
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
    lines = [
        f"micromance {report['version']}  ({report['name']}, device {report['device_id'] or '-'})",
        f"config:   {report['config']}",
        f"paired:   {'yes, pair ' + report['pair_id'] if report['paired'] else 'no'}",
        f"link:     {report['link']}, partner {report['partner']}",
        f"thanks:   {report['sent_total']} sent, {report['received_total']} received, "
        f"{report['today']} today",
        f"outbox:   {report['outbox']} waiting; rejected messages: {report['rejected']}",
    ]
    if report["last_events"]:
        lines.append("recent:")
        lines += [f"  {e['at']}  {e['kind']} {e['detail']}".rstrip()
                  for e in report["last_events"]]
    return "\n".join(lines)
