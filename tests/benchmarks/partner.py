"""A raw partner: a paho client that speaks protocol v1 with a unit's pair key.

It seals real ``thanks`` messages as the partner device would (same envelope, same key, same
topics) and opens the unit's ``ack`` messages, so a unit under test can receive thousands of
events without a second Runtime in the way.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from tests.benchmarks.common import raw_client

#: The seq of the raw partner's presence (presence is ordered on its own, newest wins).
PRESENCE_SEQ = 1_000_000


class RawPartner:
    """Plays the partner of ``pair`` (the unit's own Pair): sends thanks, counts acks."""

    def __init__(self, pair: Any, port: int, name: str = "Alex") -> None:
        from micromance.protocol import pair_names

        self.pair = pair
        self.name = name
        self.unit, self.mine = pair_names(pair.key, pair.device_id, pair.partner_id)
        self.acked: set[int] = set()
        self.acks = 0              # ack messages received
        self.rejected = 0
        self.sent = 0
        self.last_payload = b""    # the last sealed thanks, as published
        self._changed = threading.Condition()
        self.client = raw_client(f"bench-partner-{pair.partner_id}", port,
                                 subscribe=[(self.unit.events, 1)],
                                 on_message=self._on_message)
        self.client.publish(self.mine.presence, self._presence(), qos=1, retain=True)

    def _presence(self) -> bytes:
        """Sealed ``online`` (a seq of its own, far from the thanks' 1, 2, 3...)."""
        from micromance.protocol import Message, format_time, seal

        message = Message(type="presence", sender=self.mine.member, seq=PRESENCE_SEQ,
                          time=format_time(datetime.now().astimezone()), name=self.name,
                          sent_total=0, online=True)
        return seal(message, key=self.pair.key, topic=self.mine.presence)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        from micromance.protocol import ProtocolError, open_sealed

        try:
            opened = open_sealed(message.payload, key=self.pair.key, topic=message.topic,
                                 expected_sender=self.unit.member)
        except ProtocolError:
            with self._changed:
                self.rejected += 1
            return
        if opened.type == "ack":
            with self._changed:
                self.acks += 1
                self.acked.update(opened.seqs)
                self._changed.notify_all()

    def send_thanks(self, count: int, *, window: int = 32, timeout: float = 30.0) -> float:
        """Send ``count`` thanks (seq and total 1..count), at most ``window`` unacknowledged.

        Returns the seconds it took until the last one was acknowledged.
        """
        from micromance.protocol import Message, format_time, seal

        started = time.monotonic()
        now = format_time(datetime.now().astimezone())
        for seq in range(self.sent + 1, self.sent + count + 1):
            with self._changed:
                if not self._changed.wait_for(lambda s=seq: s - len(self.acked) <= window,
                                              timeout):
                    raise RuntimeError(f"partner: no ack for {window} thanks within {timeout}s")
            message = Message(type="thanks", sender=self.mine.member, seq=seq, time=now,
                              name=self.name, sent_total=seq)
            self.last_payload = seal(message, key=self.pair.key, topic=self.mine.events)
            self.client.publish(self.mine.events, self.last_payload, qos=1)
            self.sent = seq
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.acked) >= self.sent, timeout):
                raise RuntimeError(f"partner: {self.sent - len(self.acked)} thanks unacknowledged")
        return time.monotonic() - started

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
