"""Figure 3: resident memory after start-up and after 10,000 received events.

The unit runs as ``python -m micromance run`` in its own process, with the service's
environment (``MALLOC_ARENA_MAX=1``), mock pins, the dummy display, paired, against a private
mosquitto. A raw partner (partner.py: a paho client sealing real protocol v1
``thanks`` with the pair key) sends 10,000 thanks, at most 32 unacknowledged at a time; the
unit opens, counts, commits, acks and draws each one. RSS is read from /proc/PID/status after
start-up (link up, settled) and after the last thanks was acknowledged and counted.

Beside it, the floor: a process that loads and uses once each library the unit depends on,
and nothing of micromance (library_floor.py). The unit's RSS above the floor is its own share.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    LINK_UP_LINE,
    MIB,
    PYTHON,
    ROOT,
    UP_LINE,
    UnitProcess,
    check,
    paired_dirs,
    private_broker,
    status_kib,
    unit_env,
    write_config,
)
from tests.benchmarks.partner import RawPartner

TARGET_RSS_MIB = 40.0
TARGET_GROWTH_MIB = 1.0


def _memory(pid: int) -> dict[str, float]:
    return {key: round(status_kib(pid, key) * 1024 / MIB, 2)
            for key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")}


def library_floor() -> dict[str, float]:
    """``_memory`` of ``python -m tests.benchmarks.library_floor`` (the units' environment)."""
    with subprocess.Popen([PYTHON, "-m", "tests.benchmarks.library_floor"], cwd=ROOT,
                          env=unit_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as floor:
        assert floor.stdin is not None and floor.stdout is not None
        if floor.stdout.readline().strip() != "ready":
            raise RuntimeError(f"library_floor exited with {floor.wait()} before it was ready")
        memory = _memory(floor.pid)
        floor.stdin.close()
    if floor.returncode:
        raise RuntimeError(f"library_floor exited with {floor.returncode}")
    return memory


def measure(quick: bool) -> dict[str, Any]:
    from micromance.link.pair_file import load_pair

    events = 200 if quick else 10_000
    settle = 1.0 if quick else 3.0
    with tempfile.TemporaryDirectory(prefix="mm-bench-memory-") as tmp:
        base = Path(tmp)
        with private_broker(base) as broker, paired_dirs(base) as (dir_a, _):
            unit = UnitProcess(write_config(dir_a, broker.port, "Sam"))
            partner = None
            try:
                unit.wait_line(UP_LINE)
                unit.wait_line(LINK_UP_LINE)
                pair = load_pair(dir_a)
                assert pair is not None
                partner = RawPartner(pair, broker.port)
                partner.send_thanks(5)  # first thanks: the received screen, the light, the ack
                time.sleep(settle)
                start = _memory(unit.pid)
                seconds = partner.send_thanks(events - 5, timeout=60)
                unit.wait(lambda u: u.received >= events, 60, f"{events} thanks counted")
                time.sleep(settle)
                end = _memory(unit.pid)
            finally:
                if partner is not None:
                    partner.close()
                unit.stop()
    growth = end["VmRSS"] - start["VmRSS"]
    floor = library_floor()
    return {
        "definition": "VmRSS of a paired unit process after start-up (link up, first thanks "
                      "shown) and after receiving, counting and acknowledging more events",
        "events": events,
        "events_per_second": round((events - 5) / seconds, 1),
        "rss_after_startup_mib": start["VmRSS"],
        "rss_after_events_mib": end["VmRSS"],
        "rss_growth_mib": round(growth, 2),
        "peak_rss_mib": end["VmHWM"],
        "after_startup": start,
        "after_events": end,
        "library_floor": {**floor, "what": "the unit's libraries loaded and used once, without "
                          "micromance (tests/benchmarks/library_floor.py)"},
        "micromance_share_mib": round(end["VmRSS"] - floor["VmRSS"], 2),
        "rejected_by_partner": partner.rejected if partner else None,
        "targets": {"rss_mib": TARGET_RSS_MIB, "rss_growth_mib": TARGET_GROWTH_MIB},
        "pass": check(end["VmRSS"], TARGET_RSS_MIB) and check(start["VmRSS"], TARGET_RSS_MIB)
        and check(growth, TARGET_GROWTH_MIB),
    }
