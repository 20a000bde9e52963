"""What the first-boot installer left behind, in the words of a doctor line.

``firmware_config/firstboot/firstboot.sh`` keeps ``firstboot.json`` in the state directory
while it installs a unit from its SD card (state, step, total, what, ok, error, attempt, log).
The web page's Check shows it, so a person without a terminal can see how far the install
got, or why it stopped and where the whole log is.
"""

from __future__ import annotations

import json
from pathlib import Path

STATUS_NAME = "firstboot.json"
LOG = "/var/log/micromance-firstboot.log"
CARD_LOG = "micromance/firstboot.log on the SD card's boot partition"


def firstboot_lines(state_dir: str | Path) -> list[dict[str, str]]:
    """One Check line for the first-boot install, or none when the unit was set up by hand."""
    path = Path(state_dir) / STATUS_NAME
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        return [_line("warn", f"the first-boot install's status {path} cannot be read "
                              f"({error})", f"see {LOG}")]
    if not isinstance(status, dict):
        return [_line("warn", f"{path} is not a status object", f"see {LOG}")]
    state = str(status.get("state", ""))
    where = f"step {status.get('step', '?')}/{status.get('total', '?')} ({status.get('what', '')})"
    if state == "done":
        when = status.get("updated", "")
        return [_line("pass", f"installed from the SD card at first boot ({when})")]
    if state == "rebooting":
        return [_line("pass", "installed from the SD card; it restarted once to switch I2C on")]
    if state == "failed":
        return [_line("fail",
                      f"the first-boot install stopped at {where}: {status.get('error', '')} "
                      f"(attempt {status.get('attempt', '?')})",
                      f"it tries again at the next power-on; the whole log is {LOG} on the unit "
                      f"and {CARD_LOG}")]
    return [_line("warn", f"the first-boot install is running: {where}",
                  f"wait for it; the log is {LOG}")]


def _line(outcome: str, message: str, fix: str = "") -> dict[str, str]:
    symbols = {"pass": "✓", "warn": "!", "fail": "✗"}
    return {"outcome": outcome, "symbol": symbols[outcome], "name": "first boot",
            "message": message, "fix": fix}
