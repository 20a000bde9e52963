"""Figure: what a flood of replayed messages costs the unit that receives it.

Someone on the broker captures one genuine sealed ``thanks`` and publishes it again and again.
The unit (``python -m micromance run`` in its own process, paired, against a private
mosquitto, its runtime directory on tmpfs as under systemd) must drop every copy as a replay:
no count, no durable write, and only a few acknowledgements (rate-limited, so the sender does
not pay either). Measured: the bytes the unit sends to the block layer (/proc/PID/io
``write_bytes``) per replayed message, and the acknowledgements the replays drew.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    LINK_UP_LINE,
    UP_LINE,
    UnitProcess,
    check,
    io_counters,
    paired_dirs,
    private_broker,
    wait_for,
    write_config,
)
from tests.benchmarks.partner import RawPartner

TARGET_BYTES_PER_REPLAY = 0


def measure(quick: bool) -> dict[str, Any]:
    from micromance.link.pair_file import load_pair

    replays = 100 if quick else 2000
    runtime_dir = Path(tempfile.mkdtemp(prefix="mm-bench-replay-", dir="/dev/shm"))
    try:
        with tempfile.TemporaryDirectory(prefix="mm-bench-replay-") as tmp:
            base = Path(tmp)
            with private_broker(base) as broker, paired_dirs(base) as (dir_a, _):
                unit = UnitProcess(write_config(dir_a, broker.port, "Sam"),
                                   runtime_dir=runtime_dir)
                partner = None
                try:
                    unit.wait_line(UP_LINE)
                    unit.wait_line(LINK_UP_LINE)
                    pair = load_pair(dir_a)
                    assert pair is not None
                    partner = RawPartner(pair, broker.port)
                    partner.send_thanks(1)  # the genuine one, counted and acknowledged
                    captured = partner.last_payload
                    acks_before = partner.acks
                    time.sleep(1.0)  # its commit, its status write
                    before = io_counters(unit.pid)
                    started = time.monotonic()
                    for _ in range(replays):
                        partner.client.publish(partner.mine.events, captured, qos=1)
                    status = runtime_dir / "status.json"
                    if not wait_for(lambda: _dropped(status) >= replays, 60):
                        raise RuntimeError(f"only {_dropped(status)} of {replays} replays "
                                           "were dropped")
                    seconds = time.monotonic() - started
                    time.sleep(1.0)  # anything the last replays still caused
                    after = io_counters(unit.pid)
                    reacks = partner.acks - acks_before
                finally:
                    if partner is not None:
                        partner.close()
                    unit.stop()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    written = after["write_bytes"] - before["write_bytes"]
    per_replay = written / replays
    return {
        "definition": "one captured genuine thanks published again N times to a paired unit "
                      "process: bytes it wrote to the block layer, and the acks it sent",
        "replays": replays,
        "seconds": round(seconds, 2),
        "write_bytes": written,
        "bytes_per_replay": round(per_replay, 2),
        "reacks": reacks,
        "targets": {"bytes_per_replay": TARGET_BYTES_PER_REPLAY},
        "pass": check(per_replay, TARGET_BYTES_PER_REPLAY),
    }


def _dropped(status: Path) -> int:
    """Copies dropped: a replay of a seq already taken counts as a duplicate (as the copies
    from a second broker do), anything else as a rejection."""
    try:
        facts = json.loads(status.read_text())
        return int(facts["rejected"]) + int(facts["duplicates"])
    except (OSError, ValueError, KeyError):
        return 0
