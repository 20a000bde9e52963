"""One idle unit, measured from outside: the window idle.py and disk.py both read.

Unit A (measured) and its partner B each run as ``python -m micromance run`` in their own
process, on mock pins with the dummy display, quiet hours off, paired with ``pair_locally``,
through a private mosquitto on loopback. A gets its runtime directory on tmpfs, as systemd's
``RuntimeDirectory=`` gives the service (status.json lives there, not on the SD card).

The session runs once per benchmark run (cached): settle, an idle window with nothing pressed,
then presses on A (``--input stdin``, key ``t``), each confirmed end to end by B before the
next, for the per-press disk figure.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    LINK_UP_LINE,
    UP_LINE,
    UnitProcess,
    context_switches,
    cpu_ns,
    cpu_seconds,
    io_counters,
    paired_dirs,
    private_broker,
    status_kib,
    thread_count,
    write_config,
)

SETTLE_SECONDS = 5.0


def _snapshot(pid: int) -> dict[str, Any]:
    return {
        "wall": time.monotonic(),
        "cpu_stat": cpu_seconds(pid),
        "cpu_ns": cpu_ns(pid),
        "switches": context_switches(pid),
        "io": io_counters(pid),
    }


def _tmpfs_dir() -> Path | None:
    shm = Path("/dev/shm")
    if shm.is_dir():
        return Path(tempfile.mkdtemp(prefix="mm-bench-run-", dir=shm))
    return None


@functools.cache
def idle_session(quick: bool) -> dict[str, Any]:
    idle_seconds = 3.0 if quick else 60.0
    presses = 5 if quick else 300
    settle = 1.0 if quick else SETTLE_SECONDS
    runtime_dir = _tmpfs_dir()
    try:
        with tempfile.TemporaryDirectory(prefix="mm-bench-idle-") as tmp:
            base = Path(tmp)
            with private_broker(base) as broker, paired_dirs(base) as (dir_a, dir_b):
                partner = UnitProcess(write_config(dir_b, broker.port, "Alex"))
                unit = UnitProcess(write_config(dir_a, broker.port, "Sam"), stdin_input=True,
                                   runtime_dir=runtime_dir)
                try:
                    for process in (unit, partner):
                        process.wait_line(UP_LINE)
                        process.wait_line(LINK_UP_LINE)
                    time.sleep(settle)
                    pid = unit.pid
                    before = _snapshot(pid)
                    time.sleep(idle_seconds)
                    after = _snapshot(pid)
                    rss_kib = status_kib(pid, "VmRSS")
                    threads = thread_count(pid)
                    pressed = _press(unit, presses)
                finally:
                    unit.stop()
                    partner.stop()
    finally:
        if runtime_dir is not None:
            shutil.rmtree(runtime_dir, ignore_errors=True)
    wall = after["wall"] - before["wall"]
    return {
        "wall_seconds": round(wall, 3),
        "cpu_seconds_stat": round(after["cpu_stat"] - before["cpu_stat"], 4),
        "cpu_seconds_schedstat": round((after["cpu_ns"] - before["cpu_ns"]) / 1e9, 6),
        "voluntary_switches": after["switches"]["voluntary"]
        - before["switches"]["voluntary"],
        "involuntary_switches": after["switches"]["involuntary"]
        - before["switches"]["involuntary"],
        "io": {key: after["io"][key] - before["io"][key] for key in after["io"]},
        "rss_kib": rss_kib,
        "threads": threads,
        "runtime_directory": "tmpfs" if runtime_dir is not None else "state directory",
        "presses": pressed,
    }


def _press(unit: UnitProcess, presses: int) -> dict[str, Any]:
    """THANKS presses, each confirmed end to end (B's ack committed) before the next."""
    before = io_counters(unit.pid)
    started = time.monotonic()
    for i in range(presses):
        unit.send_keys("t\n")
        unit.wait(lambda u, n=i + 1: u.confirmed >= n, 20, f"press {i + 1} confirmed")
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # the last OutboxChanged and status write
    after = io_counters(unit.pid)
    return {
        "count": presses,
        "seconds": round(elapsed, 3),
        "io": {key: after[key] - before[key] for key in after},
    }
