"""The benchmarks keep running: a smoke run with tiny sizes, figures present, targets not judged.

The real run (`.venv/bin/python tests/benchmarks/run.py`, a few minutes) is for people, not for
CI: timing on a shared machine says little. This only checks that every benchmark still runs
against today's code and reports every figure as a number.
"""

from __future__ import annotations

import json
import numbers
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Each figure and the numbers it must report (dotted paths into its object).
FIGURES = {
    "latency": ("press_to_partner_light.p50_ms", "press_to_partner_light.p99_ms",
                "press_to_partner_light_two_processes.p50_ms",
                "floor_paho_qos1_publish_to_receive.p50_ms",
                "floor_paho_qos1_publish_to_receive.p99_ms", "commit_fsync.p50_ms",
                "commit_fsync.p99_ms", "overhead_p50_ms", "overhead_p99_ms",
                "ratio_to_floor_p50", "press_to_partner_light_in_process.p50_ms",
                "two_processes.overhead_p50_ms.median", "two_processes.overhead_p50_ms.min",
                "two_processes.overhead_p50_ms.max", "two_processes.overhead_p99_ms.median",
                "two_processes.ratio_p50.median", "two_processes.overhead_p50_per_batch_ms.q1",
                "two_processes.overhead_p50_per_batch_ms.q3",
                "in_process.overhead_p50_ms.median", "in_process.overhead_p99_ms.median",
                "load_average_1min.before"),
    "brokers": ("press_to_partner_light_one_broker.p50_ms",
                "press_to_partner_light_three_brokers.p50_ms", "p50_difference_ms",
                "p50_difference_with_broken_ms", "p50_difference_home_assistant_down_ms",
                "idle_cpu_percent_three_brokers",
                "rss_three_minus_one_mib"),
    "idle": ("cpu_percent_of_one_core", "wall_seconds", "thread_wakeups_per_minute"),
    "memory": ("rss_after_startup_mib", "rss_after_events_mib", "rss_growth_mib", "events"),
    "startup": ("max_seconds", "median_seconds", "without_any_bytecode_seconds",
                "importtime_version_command.total_ms",
                "importtime_run_until_first_frame.total_ms"),
    "disk": ("idle_write_bytes", "idle_wchar", "per_press_write_bytes", "per_press_wchar"),
    "replay": ("bytes_per_replay", "reacks", "replays"),
    "display": ("frames_per_idle_minute", "render_p50_ms",
                "simulated_day.busiest_minute_frames", "render.render.p99_ms"),
    "web": ("first_page.median_seconds", "first_page.max_seconds", "rss_mib",
            "now_page.p50_ms", "now_page.p99_ms"),
    "scale": ("latency.p99_ms", "lost", "presses", "clients"),
}


def _at(figure: dict, path: str) -> object:
    value: object = figure
    for key in path.split("."):
        assert isinstance(value, dict) and key in value, f"missing {path}"
        value = value[key]
    return value


@pytest.mark.broker
@pytest.mark.timeout(150)
def test_quick_benchmark_run_reports_every_figure():
    result = subprocess.run([sys.executable, "tests/benchmarks/run.py", "--quick"], cwd=ROOT,
                            capture_output=True, text=True, timeout=140)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert isinstance(report, dict)
    assert report["quick"] is True
    assert {"cpu_model", "cores", "python", "mosquitto"} <= set(report["machine"])
    assert report["timestamp"]
    assert report["failed_to_run"] == []
    assert set(report["figures"]) == set(FIGURES)
    for name, paths in FIGURES.items():
        figure = report["figures"][name]
        assert "error" not in figure, figure
        assert isinstance(figure["pass"], bool) and "targets" in figure, name
        for path in paths:
            value = _at(figure, path)
            assert isinstance(value, numbers.Real) and not isinstance(value, bool), (path, value)
            assert value == value, f"{name}.{path} is NaN"
    assert isinstance(report["figures"]["latency"]["definition"], str)
