"""Figure 2: CPU used by a paired unit left alone, as a share of one core.

The unit runs in its own process (see session.py) with its partner online; nothing is pressed
for 60 s. CPU = utime + stime of all its threads (/proc/PID/stat, 10 ms ticks) and, finer, the
on-CPU nanoseconds of its threads (/proc/PID/task/*/schedstat); the larger of the two is
judged. Wake-ups = voluntary context switches of all its threads (each is a thread that slept
and woke again), per minute.
"""

from __future__ import annotations

from typing import Any

from tests.benchmarks.common import check
from tests.benchmarks.session import idle_session

TARGET_PERCENT = 0.05


def measure(quick: bool) -> dict[str, Any]:
    session = idle_session(quick)
    wall = session["wall_seconds"]
    cpu = max(session["cpu_seconds_stat"], session["cpu_seconds_schedstat"])
    percent = 100.0 * cpu / wall
    return {
        "definition": "CPU seconds / wall seconds of a paired, idle unit process (partner "
                      "online, nothing pressed), in percent of one core",
        "wall_seconds": wall,
        "cpu_seconds_stat": session["cpu_seconds_stat"],
        "cpu_seconds_schedstat": session["cpu_seconds_schedstat"],
        "cpu_percent_of_one_core": round(percent, 5),
        "thread_wakeups_per_minute": round(60.0 * session["voluntary_switches"] / wall, 1),
        "involuntary_switches": session["involuntary_switches"],
        "threads": session["threads"],
        "targets": {"cpu_percent_of_one_core": TARGET_PERCENT},
        "pass": check(percent, TARGET_PERCENT),
    }
