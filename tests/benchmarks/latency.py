"""Figure 1: a press on A to B's LED command, beside the floor the machine allows.

Two full units (core, store, link, screens, mock pins, dummy display) talk through a private
mosquitto on loopback. Each round:

1. A's THANKS pin is driven low, then high (the core takes a press on release, as on the
   device); the clock starts just before ``drive_low``.
2. The clock stops when B's LED pin goes from dark to lit for that thanks: the light a
   person sees (B's panel switches it fully on at once, then starts it breathing). When B's
   ``Panel.set_light(PULSE)`` returned is reported too. B's LED lights only on an
   unacknowledged thanks, so after each round B presses NEXT (LED off, A sees "Seen") and
   both outboxes drain: every press lights B's LED from dark, a full press-to-partner-light
   with nothing else in flight.
   Also reported: when B's runtime finished the whole step (its observers run after every
   command of the step: commit, ack, frame and LED), and when B *counted* the press.

Measured twice: both units in this process (as tests/test_link.py runs them; they share one
GIL) and B in its own process (tests/benchmarks/probe.py, the same Runtime as ``micromance
run``), as on two devices. The target is judged on the first.

In the same run, with the same broker and filesystem:
- the floor: plain paho QoS 1, publish on one client to ``on_message`` on another (Nagle off, as
  the link does), a payload of a sealed thanks' size;
- one fsync'ed commit in a state directory (the unit's ``Store``: WAL, synchronous=FULL).

overhead_pXX = press_to_partner_light_pXX - (floor_pXX + commit_pXX); targets 1 ms (p50) and
5 ms (p99).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    LINK_UP_LINE,
    UP_LINE,
    InProcessUnit,
    Ports,
    UnitProcess,
    check,
    paired_dirs,
    private_broker,
    raw_client,
    summary_ms,
    write_config,
)

THANKS, NEXT, LED_PIN = 17, 27, 18
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
DEFINITION = (
    "from A's THANKS pin driven low (press, release at once) to B's LED pin going from dark to "
    "lit for that thanks (the light a person sees); both units in one process. "
    "B acknowledges (NEXT) after each press and both outboxes drain, so every press lights B's "
    "LED from OFF. overhead_pXX = press_to_partner_light_pXX - (floor_pXX + commit_pXX)"
)


def measure(quick: bool) -> dict[str, Any]:
    presses = 20 if quick else 500
    samples = 20 if quick else 500
    warmup = 3 if quick else 20
    with tempfile.TemporaryDirectory(prefix="mm-bench-latency-") as tmp:
        base = Path(tmp)
        with private_broker(base) as broker:
            commit = commit_cost(base / "commit", samples)
            floor = paho_floor(broker.port, samples)
            together = press_to_light(base / "together", broker.port, presses, warmup)
            apart = press_to_light_two_processes(base / "apart", broker.port, presses, warmup)
            floor_after = paho_floor(broker.port, samples)  # the broker did not drift meanwhile
    press = together["lit"]
    overhead_p50 = press["p50_ms"] - (floor["p50_ms"] + commit["p50_ms"])
    overhead_p99 = press["p99_ms"] - (floor["p99_ms"] + commit["p99_ms"])
    return {
        "definition": DEFINITION,
        "press_to_partner_light": press,
        "press_to_partner_light_command_returned": together["led"],
        "press_to_partner_step_done": together["step_done"],
        "press_to_partner_counted": together["counted"],
        "press_to_partner_light_two_processes": apart,
        "floor_paho_qos1_publish_to_receive": floor,
        "floor_repeated_after_presses": floor_after,
        "commit_fsync": commit,
        "overhead_p50_ms": round(overhead_p50, 3),
        "overhead_p99_ms": round(overhead_p99, 3),
        "targets": {"overhead_p50_ms": TARGET_P50_MS, "overhead_p99_ms": TARGET_P99_MS},
        "pass": check(overhead_p50, TARGET_P50_MS) and check(overhead_p99, TARGET_P99_MS),
    }


def commit_cost(state_dir: Path, samples: int) -> dict[str, Any]:
    """One durable commit through the unit's own Store (WAL, synchronous=FULL).

    The counters change on every commit: SQLite skips the write (and the fsync) when a
    transaction leaves every page as it was.
    """
    from micromance.core.counters import Counters
    from micromance.store import Store

    store = Store.open(state_dir)
    times = []
    try:
        for i in range(samples + 5):
            started = time.perf_counter()
            with store.transaction():
                store.save_counters(Counters(sent_total=i))
            if i >= 5:
                times.append(time.perf_counter() - started)
    finally:
        store.close()
    return {**summary_ms(times), "what": "Store.transaction() saving changed counters"}


def paho_floor(port: int, samples: int) -> dict[str, Any]:
    """Plain paho: QoS 1 publish on one client to on_message on another, one at a time."""
    topic = "bench/floor"
    payload = b"x" * 240  # a sealed thanks is 240 bytes
    arrived = threading.Event()
    receiver = raw_client("bench-floor-rx", port, subscribe=[(topic, 1)],
                          on_message=lambda *args: arrived.set())
    sender = raw_client("bench-floor-tx", port)
    times = []
    try:
        for i in range(samples + 10):
            arrived.clear()
            started = time.perf_counter()
            sender.publish(topic, payload, qos=1)
            if not arrived.wait(5):
                raise RuntimeError("floor: a QoS 1 message did not arrive within 5 s")
            if i >= 10:
                times.append(time.perf_counter() - started)
            time.sleep(0.005)  # PUBACKs settle, as between presses
    finally:
        for client in (sender, receiver):
            client.disconnect()
            client.loop_stop()
    return {**summary_ms(times), "what": "paho QoS 1 publish -> on_message, 240 B"}


def _time_led(panel: Any, sink: list[tuple[float, str]]) -> None:
    """Record when this panel's set_light returns (an instance attribute; nothing else)."""
    original = panel.set_light

    def set_light(mode: Any) -> None:
        original(mode)
        sink.append((time.perf_counter(), mode.name))

    panel.set_light = set_light


def _time_pin(pin: Any, sink: list[float]) -> None:
    """Record when the LED pin first goes from dark to lit (the light a person sees)."""
    original = pin._change_state

    def change_state(value: Any) -> Any:
        was_dark = not pin.state
        changed = original(value)
        if changed and was_dark and value:
            sink.append(time.perf_counter())
        return changed

    pin._change_state = change_state


def press_to_light(base: Path, port: Ports, presses: int, warmup: int, links_up: int = 1
                   ) -> dict[str, Any]:
    """``links_up``: how many of the units' brokers must be connected before the first press."""
    from micromance.core import commands as cmd
    from micromance.core.events import LinkState

    base.mkdir()
    led: list[tuple[float, str]] = []
    lit_at: list[float] = []
    done: list[float] = []
    counted: list[float] = []
    with paired_dirs(base) as (dir_a, dir_b):
        a = InProcessUnit(dir_a, port, "Sam")
        b = InProcessUnit(dir_b, port, "Alex")

        def on_b(command: Any, at: float) -> None:
            if isinstance(command, cmd.SetLight) and command.mode.name == "PULSE":
                done.append(at)
            elif isinstance(command, cmd.SaveCounters):
                counted.append(at)

        b.listeners.append(on_b)
        try:
            a.start()
            b.start()
            _time_led(b.runtime.panel, led)
            _time_pin(b.factory.pin(LED_PIN), lit_at)
            for unit in (a, b):
                unit.wait_until(lambda u=unit: u.runtime.state.partner.link is LinkState.CONNECTED
                                and u.runtime.state.partner.online is True
                                and sum(link.connected for link in u.runtime.state.partner.links)
                                >= links_up, what="link up")
            rows = []
            for i in range(warmup + presses):
                _settle(a, b)
                for sink in (led, lit_at, done, counted):
                    sink.clear()
                started = time.perf_counter()
                a.press(THANKS)
                b.wait_until(lambda: bool(done) and bool(lit_at), 10, "B's LED")
                if i >= warmup:
                    told = next(at for at, mode in led if mode == "PULSE")
                    rows.append((lit_at[0] - started, told - started, done[0] - started,
                                 counted[0] - started))
                b.press(NEXT)  # acknowledge: LED off, A sees "Seen"
                a.wait_until(lambda: a.runtime.state.screen.seen, 10, "A seen")
            _settle(a, b)
            totals = (a.runtime.state.counters.sent_total,
                      b.runtime.state.counters.received_total)
        finally:
            a.close()
            b.close()
    if totals[0] != totals[1]:
        raise RuntimeError(f"A sent {totals[0]} but B received {totals[1]}")
    lit_s, led_s, done_s, counted_s = (list(column) for column in zip(*rows, strict=True))
    return {
        "lit": {**summary_ms(lit_s), "delivered": totals[1] - warmup},
        "led": {**summary_ms(led_s),
                "what": "B's Panel.set_light(PULSE) returned (the breathing thread started)"},
        "step_done": {**summary_ms(done_s),
                      "what": "B's observer of SetLight(PULSE): the whole step carried out"},
        "counted": {**summary_ms(counted_s),
                    "what": "B's observer of SaveCounters: the press counted and committed"},
    }


def press_to_light_two_processes(base: Path, port: int, presses: int, warmup: int
                                 ) -> dict[str, Any]:
    """A in this process (pressed on its mock pin), B in its own process, as on two devices.

    B is ``tests/benchmarks/probe.py``: the same Runtime as ``micromance run``, printing the
    perf_counter (CLOCK_MONOTONIC, shared by all processes) at which Panel.set_light returned.
    """
    from micromance.core.events import LinkState

    base.mkdir()
    with paired_dirs(base) as (dir_a, dir_b):
        a = InProcessUnit(dir_a, port, "Sam")
        b = UnitProcess(write_config(dir_b, port, "Alex"), probe=True)
        try:
            b.wait_line(UP_LINE)
            a.start()
            a.wait_until(lambda: a.runtime.state.partner.link is LinkState.CONNECTED
                         and a.runtime.state.partner.online is True, what="link up")
            b.wait_line(LINK_UP_LINE)
            times = []
            for i in range(warmup + presses):
                a.wait_until(lambda: a.runtime.state.partner.outbox == 0, 10, "A outbox drained")
                time.sleep(0.005)
                started = time.perf_counter()
                a.press(THANKS)
                lit = b.wait_report("LED", "PULSE", started)
                if i >= warmup:
                    times.append(lit - started)
                acked = time.perf_counter()
                b.send_keys("n\n")  # acknowledge: LED off, A sees "Seen"
                b.wait_report("LED", "OFF", acked)
                a.wait_until(lambda: a.runtime.state.screen.seen, 10, "A seen")
                b.wait_report("DropFromOutbox", None, acked)  # A acknowledged the "seen"
            a.wait_until(lambda: a.runtime.state.partner.outbox == 0, 10, "A outbox drained")
            sent = a.runtime.state.counters.sent_total
        finally:
            a.close()
            b.stop()
    received = max((int(d) for _, n, d in b.reports if n == "SaveCounters"), default=0)
    if sent != received:
        raise RuntimeError(f"A sent {sent} but B received {received}")
    return {**summary_ms(times), "delivered": received - warmup,
            "what": "B in its own process, until its Panel.set_light(PULSE) returned"}


def _settle(a: InProcessUnit, b: InProcessUnit) -> None:
    """Both outboxes empty and B's LED off: nothing in flight before the next press."""
    from micromance.core.commands import LightMode

    a.wait_until(lambda: a.runtime.state.partner.outbox == 0, 10, "A outbox drained")
    b.wait_until(lambda: b.runtime.state.partner.outbox == 0
                 and b.runtime.state.outputs.light is LightMode.OFF, 10, "B settled")
    time.sleep(0.005)
