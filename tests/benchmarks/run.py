"""Run every benchmark once and print one JSON object of figures.

    .venv/bin/python tests/benchmarks/run.py            # the real run: a few minutes
    .venv/bin/python tests/benchmarks/run.py --quick    # tiny sizes: a smoke run in seconds
    .venv/bin/python tests/benchmarks/run.py --only latency,idle

Each figure is a module beside this file with ``measure(quick) -> dict``; every dict carries
its targets and ``pass``. The object also names the machine and the time of the run. The exit
status is 0 when every figure was measured, whether or not it met its target (timing is not a
test); 1 when a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: In this order: the latency first, on a quiet machine; scale last, as it loads it most.
FIGURES = ("latency", "brokers", "idle", "memory", "startup", "disk", "replay", "display",
           "web", "scale")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--note", default="", help="free text kept in the report")
    parser.add_argument("--only", metavar="NAMES",
                        help="comma-separated figures to run (default: all): "
                             + ", ".join(FIGURES))
    args = parser.parse_args(argv)
    names = FIGURES if not args.only else tuple(args.only.split(","))
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures {unknown}; known: {', '.join(FIGURES)}")

    from tests.benchmarks.common import code_version, machine, pycache_dir

    started = time.monotonic()
    pycache_dir()  # compile what the units import, once, before anything is timed
    report: dict[str, object] = {
        "benchmark": "micromance",
        "quick": args.quick,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "code": code_version(),
        "note": args.note,
        "command": "python tests/benchmarks/run.py" + (" --quick" if args.quick else ""),
    }
    figures: dict[str, object] = {}
    failed = []
    for name in names:
        began = time.monotonic()
        print(f"benchmark {name}...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"tests.benchmarks.{name}")
            figures[name] = {**module.measure(args.quick),
                             "benchmark_seconds": round(time.monotonic() - began, 1)}
        except Exception as error:
            traceback.print_exc()
            figures[name] = {"error": f"{type(error).__name__}: {error}", "pass": False}
            failed.append(name)
    report["figures"] = figures
    report["summary"] = {name: bool(figure.get("pass")) for name, figure in figures.items()}
    report["all_targets_met"] = all(report["summary"].values())
    report["failed_to_run"] = failed
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
