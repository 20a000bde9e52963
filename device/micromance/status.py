"""``micromance status``: what the unit knows, read from its state without changing it."""

from __future__ import annotations

from typing import Any

from micromance import __version__
from micromance.config import Config
from micromance.store import Store


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
    if store is None:
        return report
    try:
        counters = store.load_counters()
        pair_id = store.get("pair_id")
        report.update(
            device_id=store.get("device_id") or None,
            paired=bool(pair_id),
            pair_id=pair_id[:8] if pair_id else None,
            sent_total=counters.sent_total,
            received_total=counters.received_total,
            today=counters.today,
            streak=counters.streak,
            last_events=store.recent_events(10),
        )
    finally:
        store.close()
    return report


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
