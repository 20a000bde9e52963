"""Figure 4: process start to the first frame on the dummy display, and where the time goes.

Start-up: wall time from ``Popen`` of ``python -m micromance run --config X`` (paired, mock pins,
dummy display, private mosquitto running) to its log line "... is up", which the runtime writes
right after the first frame was pushed to the display. Several runs from compiled bytecode, as
a device runs (pip compiles at install); the judged figure is the slowest. One more run with no
bytecode at all (an empty cache and PYTHONDONTWRITEBYTECODE, as the service has: everything is
compiled at every start, an upper bound for an install that skipped compiling) is reported
beside it.

Import time (``python -X importtime``), for the README's Pi Zero advice:
- ``python -m micromance --version`` (the cheapest command);
- the imports ``run`` makes before its first frame (the same unit started with -X importtime),
  grouped by top-level package and by module, plus the bare interpreter for reference.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    PYTHON,
    ROOT,
    UP_LINE,
    UnitProcess,
    check,
    paired_dirs,
    private_broker,
    unit_env,
    write_config,
)

TARGET_SECONDS = 1.0
TOP = 15


def measure(quick: bool) -> dict[str, Any]:
    runs = 1 if quick else 5
    with tempfile.TemporaryDirectory(prefix="mm-bench-startup-") as tmp:
        base = Path(tmp)
        with private_broker(base) as broker, paired_dirs(base) as (dir_a, _):
            config = write_config(dir_a, broker.port, "Sam")
            times = [_start_once(config) for _ in range(runs)]
            cold = _start_once(config, cold=True)
            run_imports = _run_imports(config)
    slowest = max(times)
    return {
        "definition": "wall seconds from Popen of `python -m micromance run` (paired, mock "
                      "pins, dummy display) to its log line written after the first frame",
        "runs": len(times),
        "seconds": [round(t, 3) for t in times],
        "median_seconds": round(statistics.median(times), 3),
        "max_seconds": round(slowest, 3),
        "without_any_bytecode_seconds": round(cold, 3),
        "interpreter_seconds": round(_wall([PYTHON, "-c", "pass"]), 3),
        "version_command_seconds": round(_wall([PYTHON, "-m", "micromance", "--version"]), 3),
        "importtime_version_command": _importtime_of([PYTHON, "-X", "importtime", "-m",
                                                      "micromance", "--version"]),
        "importtime_run_until_first_frame": run_imports,
        "targets": {"max_seconds": TARGET_SECONDS},
        "pass": check(slowest, TARGET_SECONDS),
    }


def _start_once(config: Path, *, cold: bool = False) -> float:
    unit = UnitProcess(config, cold=cold)
    try:
        unit.wait_line(UP_LINE, 30)
        assert unit.up_at is not None
        return unit.up_at - unit.started_at
    finally:
        unit.stop()


def _wall(command: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=unit_env(), capture_output=True, check=True)
        best = min(best, time.perf_counter() - started)
    return best


def _importtime_of(command: list[str]) -> dict[str, Any]:
    result = subprocess.run(command, cwd=ROOT, env=unit_env(), capture_output=True, text=True,
                            check=True)
    return summarize(result.stderr.splitlines())


def _run_imports(config: Path) -> dict[str, Any]:
    unit = UnitProcess(config, python_flags=("-X", "importtime"))
    try:
        unit.wait_line(UP_LINE, 30)
    finally:
        unit.stop()
    return summarize(unit.import_lines)


def parse(lines: list[str]) -> list[tuple[int, str, int, int]]:
    """(depth, module, self µs, cumulative µs) for each "import time:" line."""
    rows = []
    for line in lines:
        if not line.startswith("import time:"):
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        if not self_us.strip().isdigit():
            continue  # the header
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, name.strip(), int(self_us), int(cumulative_us)))
    return rows


def summarize(lines: list[str]) -> dict[str, Any]:
    rows = parse(lines)
    total = sum(cumulative for depth, _, _, cumulative in rows if depth == 0)
    by_package: dict[str, int] = defaultdict(int)
    for _, name, self_us, _ in rows:
        by_package[name.split(".")[0]] += self_us
    top_packages = sorted(by_package.items(), key=lambda item: -item[1])[:TOP]
    top_modules = sorted(rows, key=lambda row: -row[2])[:TOP]
    return {
        "modules": len(rows),
        "total_ms": round(total / 1000, 1),
        "top_packages_self_ms": {name: round(us / 1000, 1) for name, us in top_packages},
        "top_modules_self_ms": {name: round(self_us / 1000, 1)
                                for _, name, self_us, _ in top_modules},
        "top_level_cumulative_ms": {
            name: round(cumulative / 1000, 1)
            for depth, name, _, cumulative in sorted(rows, key=lambda row: -row[3])
            if depth == 0
        },
    }
