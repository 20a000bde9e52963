"""A unit in its own process that reports when things happen, for latency runs.

``python -m tests.benchmarks.probe --config X`` runs what ``micromance run --config X --input
stdin`` runs (the same Runtime), and prints ``<time.perf_counter()> <what> <detail>`` lines on
stdout:

- ``LED <MODE>`` when ``Panel.set_light`` returned (gpiozero was told);
- ``SaveCounters <received_total>`` and ``DropFromOutbox <seqs>`` from a runtime observer.

perf_counter is CLOCK_MONOTONIC on Linux, the same clock in every process, so the benchmark
compares these times with its own.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def _report(what: str, detail: str) -> None:
    now = time.perf_counter()
    with _lock:
        sys.stdout.write(f"{now:.9f} {what} {detail}\n")
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    args = parser.parse_args()

    from micromance.config import load_config
    from micromance.core import commands as cmd
    from micromance.hardware.panel import Panel
    from micromance.logs import setup_logging
    from micromance.runtime import Runtime

    set_light = Panel.set_light

    def timed_set_light(self: Any, mode: Any) -> None:
        set_light(self, mode)
        _report("LED", mode.name)

    Panel.set_light = timed_set_light  # this process only

    config = load_config(Path(args.config))
    setup_logging(config.logging.level)
    runtime = Runtime(config, key_stream=sys.stdin)

    def observe(command: cmd.Command) -> None:
        if isinstance(command, cmd.SaveCounters):
            _report("SaveCounters", str(command.counters.received_total))
        elif isinstance(command, cmd.DropFromOutbox):
            _report("DropFromOutbox", ",".join(map(str, command.seqs)))

    runtime.observers.append(observe)
    return runtime.run()


if __name__ == "__main__":
    raise SystemExit(main())
