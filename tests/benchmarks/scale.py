"""Figure 7: 200 pairs (400 clients) on one mosquitto, 20 presses a second in all, for 60 s.

Each simulated unit is a raw paho 2 client (MQTT 5, Nagle off, QoS 1, its own loop thread) with
its pair's own key, speaking protocol v1: a press seals a ``thanks`` on the unit's events topic;
the partner opens it (key, topic, sender and seq checked), records the latency, and seals an
``ack`` back, which the presser opens. The units are spread over a few worker processes
(``python -m tests.benchmarks.scale``; both ends of a pair in the same one, so one clock times
each press). Presses arrive as a Poisson
process at the aggregate rate (fixed seed), each from a random unit of a random pair.

Latency = from just before sealing on the presser to the partner having opened it. This is the
broker and protocol path under load (no store, no screen: figure 1 covers a unit's own costs).
Lost = presses never opened by the partner or never acknowledged back, after a 10 s grace.
"""

from __future__ import annotations

import json
import math
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    PYTHON,
    ROOT,
    check,
    cpu_seconds,
    private_broker,
    status_kib,
    summary_ms,
    unit_env,
)

TARGET_P99_MS = 20.0
RATE = 20.0
GRACE_SECONDS = 10.0


def measure(quick: bool) -> dict[str, Any]:
    pairs = 10 if quick else 200
    seconds = 5.0 if quick else 60.0
    workers = 2 if quick else 4
    rng = random.Random(20261125)
    schedule: list[tuple[float, int, int]] = []  # (offset, pair, which end presses)
    t = rng.expovariate(RATE)
    while t < seconds:
        schedule.append((t, rng.randrange(pairs), rng.randrange(2)))
        t += rng.expovariate(RATE)

    with tempfile.TemporaryDirectory(prefix="mm-bench-scale-") as tmp, \
            private_broker(Path(tmp)) as broker:
        processes = []
        try:
            for w in range(workers):
                job = {"index": w, "port": broker.port,
                       "pairs": [p for p in range(pairs) if p % workers == w],
                       "plan": [entry for entry in schedule if entry[1] % workers == w]}
                process = subprocess.Popen(
                    [PYTHON, "-m", "tests.benchmarks.scale"], cwd=ROOT, env=unit_env(),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
                assert process.stdin is not None
                process.stdin.write(json.dumps(job) + "\n")
                process.stdin.flush()
                processes.append(process)
            for process in processes:  # every client connected and subscribed
                _expect(process, "ready", 120)
            broker_pid = broker.pid
            broker_cpu = cpu_seconds(broker_pid) if broker_pid else 0.0
            start_at = time.perf_counter() + 0.5  # CLOCK_MONOTONIC: the same in every process
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(f"{start_at!r}\n")
                process.stdin.flush()
            collected = [json.loads(_expect(process, "{", seconds + GRACE_SECONDS + 120))
                         for process in processes]
            broker_cpu = (cpu_seconds(broker_pid) - broker_cpu) if broker_pid else math.nan
            broker_rss = status_kib(broker_pid, "VmRSS") / 1024 if broker_pid else math.nan
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()

    latencies = [value for result in collected for value in result["latencies"]]
    sent = sum(result["sent"] for result in collected)
    received = sum(result["received"] for result in collected)
    acked = sum(result["acked"] for result in collected)
    duplicates = sum(result["duplicates"] for result in collected)
    rejected = sum(result["rejected"] for result in collected)
    errors = [error for result in collected for error in result["errors"]]
    lost = (sent - received) + (sent - acked)
    latency = summary_ms(latencies)
    return {
        "definition": "press-to-partner over the broker: sealed on one raw client, opened by "
                      f"its partner (protocol v1, own key per pair, QoS 1); {2 * pairs} clients "
                      f"on one mosquitto, Poisson arrivals at {RATE:g}/s in all",
        "pairs": pairs,
        "clients": 2 * pairs,
        "worker_processes": workers,
        "seconds": seconds,
        "presses": sent,
        "aggregate_rate_per_second": round(sent / seconds, 2),
        "latency": latency,
        "received": received,
        "acked": acked,
        "lost": lost,
        "duplicates": duplicates,
        "rejected": rejected,
        "errors": errors[:5],
        "broker_cpu_percent_of_one_core": round(100.0 * broker_cpu / seconds, 2),
        "broker_rss_mib": round(broker_rss, 1),
        "targets": {"p99_ms": TARGET_P99_MS, "lost": 0},
        "pass": check(latency["p99_ms"], TARGET_P99_MS) and lost == 0 and sent > 0
        and not errors,
    }


def _expect(process: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The worker's next line, which must start with prefix."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line.startswith(prefix):
        raise RuntimeError(f"scale worker {process.pid}: expected {prefix!r}, got {line!r} "
                           f"(exit {process.poll()})")
    return line


def _worker(index: int, port: int, pairs: list[int], plan: list[list[Any]]) -> dict[str, Any]:
    """One process: both ends of its pairs and its share of the presses.

    Prints "ready" once connected, waits for the start time on stdin, returns the results.
    """
    import threading
    from datetime import datetime

    from micromance.protocol import (
        Message,
        Names,
        ProtocolError,
        format_time,
        new_device_id,
        new_key,
        new_pair_id,
        open_sealed,
        seal,
    )
    from tests.benchmarks.common import raw_client

    lock = threading.Lock()
    sent_at: dict[tuple[int, int, int], float] = {}
    latencies: list[float] = []
    received: set[tuple[int, int, int]] = set()
    acked: set[tuple[int, int, int]] = set()
    counters = {"duplicates": 0, "rejected": 0}
    errors: list[str] = []
    now_text = format_time(datetime.now().astimezone())

    class End:
        def __init__(self, pair: int, side: int, pair_id: str, key: bytes, me: str,
                     partner: str) -> None:
            self.pair, self.side, self.key = pair, side, key
            self.me, self.partner = me, partner
            self.topics = Names.derive(key, me)
            self.partner_topics = Names.derive(key, partner)
            self.seq = 0
            self.client: Any = None

        def connect(self) -> None:
            self.client = raw_client(f"bench-scale-{self.me}", port,
                                     subscribe=[(self.partner_topics.events, 1)],
                                     on_message=self.on_message)

        def next_seq(self) -> int:
            with lock:
                self.seq += 1
                return self.seq

        def press(self) -> None:
            started = time.perf_counter()
            seq = self.next_seq()
            message = Message(type="thanks", sender=self.me, seq=seq, time=now_text,
                              name="Bench", sent_total=seq)
            with lock:
                sent_at[(self.pair, self.side, seq)] = started
            self.client.publish(self.topics.events,
                                seal(message, key=self.key, topic=self.topics.events), qos=1)

        def on_message(self, client: Any, userdata: Any, raw: Any) -> None:
            try:
                message = open_sealed(raw.payload, key=self.key, topic=raw.topic,
                                      expected_sender=self.partner)
            except ProtocolError:
                with lock:
                    counters["rejected"] += 1
                return
            arrived = time.perf_counter()
            if message.type == "thanks":
                origin = (self.pair, 1 - self.side, message.seq)
                with lock:
                    if origin in received:
                        counters["duplicates"] += 1
                    else:
                        received.add(origin)
                        latencies.append(arrived - sent_at[origin])
                ack = Message(type="ack", sender=self.me, seq=self.next_seq(), time=now_text,
                              name="Bench", sent_total=0, seqs=(message.seq,))
                client.publish(self.topics.events,
                               seal(ack, key=self.key, topic=self.topics.events), qos=1)
            elif message.type == "ack":
                with lock:
                    for seq in message.seqs:
                        acked.add((self.pair, self.side, seq))

    ends: dict[tuple[int, int], End] = {}
    try:
        for pair in pairs:
            pair_id, key = new_pair_id(), new_key()
            a, b = new_device_id(), new_device_id()
            ends[(pair, 0)] = End(pair, 0, pair_id, key, a, b)
            ends[(pair, 1)] = End(pair, 1, pair_id, key, b, a)
        for end in ends.values():
            end.connect()
    except Exception as error:  # report it, and still answer
        errors.append(f"worker {index}: {error!r}")
    print("ready", flush=True)
    origin = float(sys.stdin.readline())
    for offset, pair, side in plan:
        if errors:
            break
        delay = origin + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ends[(pair, side)].press()
    deadline = time.perf_counter() + GRACE_SECONDS
    while time.perf_counter() < deadline:
        with lock:
            if len(received) >= len(sent_at) and len(acked) >= len(sent_at):
                break
        time.sleep(0.05)
    for end in ends.values():
        if end.client is not None:
            end.client.disconnect()
            end.client.loop_stop()
    with lock:
        return {"latencies": latencies, "sent": len(sent_at), "received": len(received),
                "acked": len(acked), "errors": errors, **counters}


if __name__ == "__main__":
    job = json.loads(sys.stdin.readline())
    result = _worker(job["index"], job["port"], job["pairs"], job["plan"])
    print(json.dumps(result), flush=True)
