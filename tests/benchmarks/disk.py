"""Figure 5: bytes the unit writes while idle and per press (/proc/PID/io).

``write_bytes`` counts bytes the process caused to be sent to the block layer (what wears an
SD card); ``wchar`` counts every byte passed to write() and friends, including log lines to
stderr and files on tmpfs. Idle: the same 60 s window as idle.py. Per press: THANKS presses on
the same unit, each confirmed end to end by the partner before the next (the press commit, the
publish, the partner's ack and its commit), averaged. Enough presses are made to include WAL
checkpoints, which are part of the cost per press: back to back as here, SQLite's own every
~1000 WAL pages (the unit's when quiet, ``checkpoints.py``, need a 2 s pause).
"""

from __future__ import annotations

from typing import Any

from tests.benchmarks.common import check
from tests.benchmarks.session import idle_session

TARGET_IDLE_BYTES = 0
TARGET_PER_PRESS_BYTES = 16 * 1024


def measure(quick: bool) -> dict[str, Any]:
    session = idle_session(quick)
    idle = session["io"]
    presses = session["presses"]
    count = presses["count"]
    per_press = {key: round(value / count, 1) for key, value in presses["io"].items()
                 if key in ("write_bytes", "wchar", "syscw", "cancelled_write_bytes")}
    return {
        "definition": "/proc/PID/io of a paired unit process: idle window, then presses "
                      "confirmed end to end by the partner",
        "idle_seconds": session["wall_seconds"],
        "idle_write_bytes": idle["write_bytes"],
        "idle_wchar": idle["wchar"],
        "idle_syscw": idle["syscw"],
        "presses": count,
        "per_press_write_bytes": per_press["write_bytes"],
        "per_press_wchar": per_press["wchar"],
        "per_press_syscw": per_press["syscw"],
        "per_press_cancelled_write_bytes": per_press["cancelled_write_bytes"],
        "status_file_on": session["runtime_directory"],
        "targets": {"idle_write_bytes": TARGET_IDLE_BYTES,
                    "per_press_write_bytes": TARGET_PER_PRESS_BYTES},
        "pass": check(idle["write_bytes"], TARGET_IDLE_BYTES)
        and check(per_press["write_bytes"], TARGET_PER_PRESS_BYTES),
    }
