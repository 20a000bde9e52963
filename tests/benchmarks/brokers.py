"""Figure: three brokers at once beside one broker.

A unit publishes every message on every connected broker and takes the first copy that
arrives (the later ones are dropped as duplicates). What that costs, measured in one run on
the same machine with three private mosquittos on loopback:

- latency: press on A to B's LED lit (latency.py's ``press_to_light``: both units in this
  process, B acknowledges after each press), with one broker and with three; the p50 of three
  must stay within 0.5 ms of the p50 of one. And with a list of the three, a "broker" that
  accepts TCP and never answers, and a port nothing listens on: within 2 ms of one;
- the same with Home Assistant switched on and its (home) broker down, beside one broker:
  a dead home broker must cost the couple's link nothing (within 0.5 ms at p50);
- idle CPU: a paired unit process (partner online, nothing pressed) holding three connections,
  as a share of one core, the larger of its 10 ms ticks and its threads' on-CPU nanoseconds
  (as idle.py; both reported); target still 0.05 %;
- memory: VmRSS of that idle unit with three brokers beside the same unit with one; the
  difference is what the two extra connections cost.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    LINK_UP_LINE,
    MIB,
    UP_LINE,
    UnitProcess,
    check,
    cpu_ns,
    cpu_seconds,
    paired_dirs,
    status_kib,
    thread_count,
    write_config,
)
from tests.benchmarks.latency import press_to_light
from tests.silent_broker import HangingBroker

BROKERS = 3
TARGET_P50_DIFFERENCE_MS = 0.5
TARGET_BROKEN_DIFFERENCE_MS = 2.0
TARGET_IDLE_PERCENT = 0.05


@contextlib.contextmanager
def private_brokers(base: Path, count: int) -> Iterator[tuple[int, ...]]:
    from micromance.simulator.private_broker import PrivateBroker

    with contextlib.ExitStack() as stack:
        brokers = [stack.enter_context(PrivateBroker(directory=base / f"broker-{i}"))
                   for i in range(count)]
        yield tuple(broker.port for broker in brokers)


def measure(quick: bool) -> dict[str, Any]:
    presses = 20 if quick else 300
    warmup = 3 if quick else 20
    with tempfile.TemporaryDirectory(prefix="mm-bench-brokers-") as tmp:
        base = Path(tmp)
        with private_brokers(base, BROKERS) as ports, HangingBroker() as hanging:
            from micromance.simulator.private_broker import free_loopback_port

            broken = (*ports, hanging.port, free_loopback_port())
            # Interleaved (one, three, broken, one, ...) so a drift of the machine hits all alike.
            halves = 2
            one_rows: list[dict[str, Any]] = []
            three_rows: list[dict[str, Any]] = []
            broken_rows: list[dict[str, Any]] = []
            home_down_rows: list[dict[str, Any]] = []
            home_down = free_loopback_port()
            for half in range(halves):
                one_rows.append(press_to_light(base / f"one-{half}", ports[0],
                                               presses // halves, warmup)["lit"])
                three_rows.append(press_to_light(base / f"three-{half}", ports,
                                                 presses // halves, warmup, BROKERS)["lit"])
                broken_rows.append(press_to_light(base / f"broken-{half}", broken,
                                                  presses // halves, warmup, BROKERS)["lit"])
                home_down_rows.append(press_to_light(
                    base / f"home-down-{half}", ports[0], presses // halves, warmup,
                    home_port=home_down)["lit"])
            idle_one = idle_unit(base / "idle-one", ports[:1], quick)
            idle_three = idle_unit(base / "idle-three", ports, quick)
    one = _merge(one_rows)
    three = _merge(three_rows)
    with_broken = _merge(broken_rows)
    difference = three["p50_ms"] - one["p50_ms"]
    broken_difference = with_broken["p50_ms"] - one["p50_ms"]
    with_home_down = _merge(home_down_rows)
    home_down_difference = with_home_down["p50_ms"] - one["p50_ms"]
    extra_mib = idle_three["rss_mib"] - idle_one["rss_mib"]
    return {
        "definition": "one unit pair with 1 and with 3 private brokers on loopback: press on "
                      "A to B's LED lit (as latency.py), and an idle paired unit process",
        "press_to_partner_light_one_broker": one,
        "press_to_partner_light_three_brokers": three,
        "p50_difference_ms": round(difference, 3),
        "press_to_partner_light_three_plus_hanging_and_closed": with_broken,
        "p50_difference_with_broken_ms": round(broken_difference, 3),
        "press_to_partner_light_home_assistant_broker_down": with_home_down,
        "p50_difference_home_assistant_down_ms": round(home_down_difference, 3),
        "idle_one_broker": idle_one,
        "idle_three_brokers": idle_three,
        "idle_cpu_percent_three_brokers": idle_three["cpu_percent_of_one_core"],
        "rss_three_minus_one_mib": round(extra_mib, 2),
        "rss_per_extra_broker_mib": round(extra_mib / (BROKERS - 1), 2),
        "targets": {"p50_difference_ms": TARGET_P50_DIFFERENCE_MS,
                    "p50_difference_with_broken_ms": TARGET_BROKEN_DIFFERENCE_MS,
                    "p50_difference_home_assistant_down_ms": TARGET_P50_DIFFERENCE_MS,
                    "idle_cpu_percent_three_brokers": TARGET_IDLE_PERCENT},
        "pass": check(difference, TARGET_P50_DIFFERENCE_MS)
        and check(broken_difference, TARGET_BROKEN_DIFFERENCE_MS)
        and check(home_down_difference, TARGET_P50_DIFFERENCE_MS)
        and check(idle_three["cpu_percent_of_one_core"], TARGET_IDLE_PERCENT),
    }


def _merge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The halves' summaries, weighted equally (their sample counts are equal)."""
    keys = [key for key in rows[0] if key.endswith("_ms")]
    merged: dict[str, Any] = {key: round(sum(row[key] for row in rows) / len(rows), 3)
                              for key in keys}
    merged["delivered"] = sum(row.get("delivered", 0) for row in rows)
    merged["what"] = "mean of the interleaved halves' figures"
    return merged


def idle_unit(base: Path, ports: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """A paired unit process and its partner (both on ``ports``), left alone."""
    idle_seconds = 3.0 if quick else 60.0
    settle = 1.0 if quick else 5.0
    base.mkdir()
    with paired_dirs(base) as (dir_a, dir_b):
        partner = UnitProcess(write_config(dir_b, ports, "Alex"))
        unit = UnitProcess(write_config(dir_a, ports, "Sam"))
        try:
            for process in (unit, partner):
                process.wait_line(UP_LINE)
                process.wait_line(LINK_UP_LINE)
            time.sleep(settle)
            pid = unit.pid
            wall, stat, ns = time.monotonic(), cpu_seconds(pid), cpu_ns(pid)
            time.sleep(idle_seconds)
            wall = time.monotonic() - wall
            stat = cpu_seconds(pid) - stat
            ns = cpu_ns(pid) - ns
            rss = status_kib(pid, "VmRSS") * 1024 / MIB
            threads = thread_count(pid)
        finally:
            unit.stop()
            partner.stop()
    cpu = max(stat, ns / 1e9)
    return {
        "brokers": len(ports),
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 6),
        "cpu_seconds_stat": round(stat, 3),
        "cpu_seconds_schedstat": round(ns / 1e9, 6),
        "cpu_percent_of_one_core": round(100.0 * cpu / wall, 5),
        "rss_mib": round(rss, 2),
        "threads": threads,
    }
