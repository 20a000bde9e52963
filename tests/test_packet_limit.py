"""Huge packets never reach a unit's memory (issue "Hardening", item 4).

Every client of ours announces an MQTT 5 Maximum Packet Size in its CONNECT, so the broker
drops anything larger instead of sending it: paho would read a whole packet into memory
before the 4 KiB check of the envelope could refuse it. The private mosquitto has no packet
limit of its own, so what protects the unit here is its own announcement.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from micromance import protocol
from micromance.link.pair_file import pair_locally
from tests.benchmarks.common import (
    LINK_UP_LINE,
    MIB,
    RECEIVED_LINE,
    UnitProcess,
    raw_client,
    status_kib,
    write_config,
)

HUGE = 64 * MIB
PEAK_ALLOWANCE_KIB = 10 * 1024   # the unit's peak RSS may exceed its idle RSS by this much


def reset_peak_rss(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0, writable by the process's owner)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def wait_connected(config: Path, timeout: float = 20.0) -> None:
    """Until the unit's status.json says the link is up (the unit is idle after that)."""
    from micromance.config import load_config
    from micromance.status import collect_status

    loaded = load_config(config)
    deadline = time.monotonic() + timeout
    while collect_status(loaded).get("link") != "connected":
        assert time.monotonic() < deadline, "the unit never reported its link connected"
        time.sleep(0.05)


def test_a_64_mb_publish_leaves_the_units_peak_rss_within_10_mb_of_idle(tmp_path, broker):
    unit_dir, partner_dir = tmp_path / "a", tmp_path / "b"
    _, partner = pair_locally(unit_dir, partner_dir)
    config = write_config(unit_dir, broker.port, "Sam")
    sender = protocol.pair_names(partner.key, partner.device_id, partner.partner_id)[0]
    events = sender.events  # what the unit reads
    unit = UnitProcess(config)
    publisher = None
    try:
        unit.wait_line(LINK_UP_LINE)
        wait_connected(config)
        idle_kib = status_kib(unit.pid, "VmRSS")
        if not reset_peak_rss(unit.pid):  # then the start-up peak counts too
            idle_kib = max(idle_kib, status_kib(unit.pid, "VmHWM"))
        publisher = raw_client("flood", broker.port)
        publisher.publish(events, b"\0" * HUGE, qos=1).wait_for_publish(60)
        # Then a genuine thank-you on the same topic: it arrives after the flood, so once it
        # is logged the unit has been handed (or spared) the 64 MB.
        thanks = protocol.Message(type=protocol.MessageType.THANKS, sender=sender.member,
                                  seq=1, time="2026-11-25T12:00:00+01:00", name="Alex",
                                  sent_total=1)
        sealed = protocol.seal(thanks, key=partner.key, topic=events)
        publisher.publish(events, sealed, qos=1).wait_for_publish(10)
        unit.wait_line(RECEIVED_LINE, timeout=60)
        peak_kib = status_kib(unit.pid, "VmHWM")
        print(f"unit RSS idle {idle_kib / 1024:.1f} MiB, peak {peak_kib / 1024:.1f} MiB")
        assert peak_kib - idle_kib <= PEAK_ALLOWANCE_KIB, (
            f"a 64 MB publish took the unit from {idle_kib / 1024:.1f} MiB to "
            f"{peak_kib / 1024:.1f} MiB")
        assert unit.process.poll() is None
    finally:
        if publisher is not None:
            with contextlib.suppress(Exception):
                publisher.loop_stop()
                publisher.disconnect()
        assert unit.stop() == 0


def test_the_limit_leaves_room_for_our_largest_packets():
    """A sealed payload (4096 bytes) with its topic, or a pairing payload, fits with margin."""
    from micromance.link.client import MAX_PACKET_BYTES, connect_properties

    topic = protocol.room_topic("lobby")  # v2 topics: 32 characters
    # fixed header (5 at most), topic length and topic, packet id, properties (empty: 1)
    largest = 5 + 2 + len(topic) + 2 + 1 + protocol.MAX_PAYLOAD_BYTES
    assert largest + 2048 <= MAX_PACKET_BYTES <= 16 * 1024  # margin, and still small
    assert connect_properties().MaximumPacketSize == MAX_PACKET_BYTES


def test_the_shipped_mosquitto_config_refuses_packets_over_8_kib(tmp_path):
    """firmware_config/mosquitto/micromance.conf: a full sealed payload passes, a packet over
    the limit does not (its sender is disconnected)."""
    import threading

    from micromance.link.client import MAX_PACKET_BYTES
    from tests.selfhosted import start_selfhosted
    from tests.test_firmware_config import TOPIC, UNIT_A, UNIT_B, Session

    broker = start_selfhosted(tmp_path / "mosquitto", (UNIT_A, UNIT_B))
    unit = None
    try:
        unit = Session(broker.port, broker.ca_file, UNIT_A)
        dropped = threading.Event()
        unit.client.on_disconnect = lambda *args: dropped.set()
        topic = TOPIC
        info = unit.client.publish(topic, b"x" * protocol.MAX_PAYLOAD_BYTES, qos=1)
        assert not unit._wait(info.mid).is_failure
        assert not dropped.is_set()
        unit.client.publish(topic, b"x" * MAX_PACKET_BYTES, qos=1)
        assert dropped.wait(5), "the broker accepted a packet over its max_packet_size"
    finally:
        if unit is not None:
            unit.close()
        broker.stop()
