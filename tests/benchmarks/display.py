"""Figure 6: frames pushed to the panel while idle, and what one frame costs to draw.

- Idle window: a paired unit in this process (real clock, dummy display, partner online),
  left alone for 60 s after settling; ``Display.frames_shown`` and ``Runtime.wakeups`` before
  and after. A minute holds at most the pixel shift (once a minute) and a page turn of a long
  prompt (on the half minute), so 2 is the ceiling by design.
- A simulated idle day: the pure core with a fake clock and the default settings (quiet hours
  22:30-07:00 on, prompt rotation every 45 minutes from start-up, the morning focus), woken the
  way the runtime wakes it (at ``next_deadline``, and at the calendar's moments); each frame is
  rendered and counted as pushed only when its pixels changed (the runtime skips the others).
  The busiest wall-clock minute and the average are reported. No real time passes.
- Render time: every screen of ``screens.preview.sample_frames`` drawn at 128x64
  (``screens.render.render``), and pushing it to luma's dummy device (``Display.show``).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    InProcessUnit,
    check,
    paired_dirs,
    private_broker,
    summary_ms,
)

TARGET_FRAMES_PER_MINUTE = 2


def measure(quick: bool) -> dict[str, Any]:
    window = 3.0 if quick else 60.0
    idle = idle_window(window, settle=1.0 if quick else 5.0)
    day = simulated_day(hours=2 if quick else 24)
    render = render_times(iterations=3 if quick else 50)
    worst = max(idle["frames_per_minute"], day["busiest_minute_frames"])
    return {
        "definition": "frames pushed to the display per idle minute (real 60 s window, and "
                      "the busiest minute of a simulated idle day); render time per frame",
        "idle_window": idle,
        "simulated_day": day,
        "render": render,
        "frames_per_idle_minute": idle["frames_per_minute"],
        "render_p50_ms": render["render"]["p50_ms"],
        "targets": {"frames_per_idle_minute": TARGET_FRAMES_PER_MINUTE},
        "pass": check(worst, TARGET_FRAMES_PER_MINUTE),
    }


def idle_window(seconds: float, settle: float) -> dict[str, Any]:
    from micromance.core.events import LinkState

    with tempfile.TemporaryDirectory(prefix="mm-bench-display-") as tmp:
        base = Path(tmp)
        with private_broker(base) as broker, paired_dirs(base) as (dir_a, dir_b):
            a = InProcessUnit(dir_a, broker.port, "Sam")
            b = InProcessUnit(dir_b, broker.port, "Alex")
            try:
                a.start()
                b.start()
                a.wait_until(lambda: a.runtime.state.partner.link is LinkState.CONNECTED
                             and a.runtime.state.partner.online is True, what="link up")
                time.sleep(settle)
                display, runtime = a.runtime.display, a.runtime
                frames, wakeups = display.frames_shown, runtime.wakeups
                started = time.monotonic()
                time.sleep(seconds)
                wall = time.monotonic() - started
                frames = display.frames_shown - frames
                wakeups = runtime.wakeups - wakeups
            finally:
                a.close()
                b.close()
    return {
        "seconds": round(wall, 3),
        "frames": frames,
        "frames_per_minute": round(60.0 * frames / wall, 2),
        "loop_wakeups": wakeups,
        "loop_wakeups_per_minute": round(60.0 * wakeups / wall, 2),
    }


def simulated_day(hours: int) -> dict[str, Any]:
    """The core alone, idle for ``hours`` from about 06:00, woken as the runtime wakes it.

    Each ShowFrame is rendered and counted as pushed only if its pixels changed, as the
    runtime's ``_show`` does.
    """
    from zoneinfo import ZoneInfo

    from micromance.config import PromptsConfig
    from micromance.content.library import load_library
    from micromance.core import commands as cmd
    from micromance.core import events as ev
    from micromance.core.machine import Settings, initial_state, next_deadline, step

    defaults = PromptsConfig()
    zone = ZoneInfo("Europe/Paris")
    # Started at an arbitrary second, as a real unit is: its rotation timer runs from there.
    wall0 = datetime(2026, 3, 10, 5, 59, 47, 300_000, tzinfo=zone)
    mono0 = 1000.0
    state = initial_state(Settings(library=load_library()), mono0, wall0)
    focus_h, focus_m = map(int, defaults.focus_time.split(":"))
    calendar = []
    t = defaults.interval_minutes * 60.0
    while t <= hours * 3600:
        calendar.append((t, ev.RotatePrompt))
        t += defaults.interval_minutes * 60.0
    focus = wall0.replace(hour=focus_h, minute=focus_m)
    while (offset := (focus - wall0).total_seconds()) <= hours * 3600:
        if offset >= 0:
            calendar.append((offset, ev.MorningFocus))
        focus += timedelta(days=1)
    calendar.sort(key=lambda item: item[0])

    from micromance.screens.render import render

    frames: Counter[int] = Counter()   # pushed: the runtime skips frames of identical pixels
    renders = 0
    last: list[bytes] = [b""]
    wakeups = 0
    now = 0.0
    end = hours * 3600.0
    cpu = time.process_time()
    first = int(wall0.timestamp() // 60)

    def send(factory: Any, offset: float) -> None:
        nonlocal state, wakeups, renders
        event = factory(at=mono0 + offset, wall=wall0 + timedelta(seconds=offset))
        state, commands = step(state, event)
        wakeups += 1
        minute = int((wall0.timestamp() + offset) // 60) - first
        for command in commands:
            if isinstance(command, cmd.ShowFrame):
                renders += 1
                raw = render(command.frame, 128, 64).tobytes()
                if raw != last[0]:
                    last[0] = raw
                    frames[minute] += 1

    send(ev.Tick, 0.0)
    while now < end:
        deadline = next_deadline(state)
        core_next = deadline - mono0 if deadline is not None else end
        cal_next = calendar[0][0] if calendar else end
        now = min(core_next, cal_next, end)
        if calendar and cal_next <= now:
            send(calendar.pop(0)[1], now)
        else:
            send(ev.Tick, now)
    cpu = time.process_time() - cpu
    # Frames per wall-clock minute; minute 0 holds the start-up frame.
    minutes = [frames.get(m, 0) for m in range(1, int(end // 60))]
    return {
        "hours": hours,
        "quiet_hours": "22:30-07:00",
        "frames_pushed": sum(minutes),
        "frames_rendered": renders,
        "busiest_minute_frames": max(minutes),
        "minutes_over_target": sum(count > TARGET_FRAMES_PER_MINUTE for count in minutes),
        "mean_frames_per_minute": round(sum(minutes) / len(minutes), 3),
        "core_wakeups": wakeups,
        "core_wakeups_per_minute": round(wakeups / (end / 60.0), 3),
        "core_and_render_cpu_seconds": round(cpu, 3),
    }


def render_times(iterations: int) -> dict[str, Any]:
    from micromance.config import DisplayConfig
    from micromance.hardware.display import open_display
    from micromance.screens.preview import sample_frames
    from micromance.screens.render import render

    samples = sample_frames()
    display = open_display(DisplayConfig(driver="dummy"))
    per_screen: dict[str, float] = {}
    drawn, pushed = [], []
    try:
        for frame in samples.values():  # fonts and caches, before timing
            render(frame, 128, 64)
        for name, frame in samples.items():
            times = []
            for _ in range(iterations):
                started = time.perf_counter()
                image = render(frame, 128, 64)
                rendered = time.perf_counter()
                display.show(image)
                times.append(rendered - started)
                pushed.append(time.perf_counter() - rendered)
            drawn += times
            per_screen[name] = round(sorted(times)[len(times) // 2] * 1000, 3)
    finally:
        display.close()
    return {
        "screens": len(samples),
        "render": summary_ms(drawn),
        "push_to_dummy": summary_ms(pushed),
        "slowest_screens_p50_ms": dict(sorted(per_screen.items(), key=lambda kv: -kv[1])[:5]),
    }
