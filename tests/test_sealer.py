"""The sealer: a message sealed on a thread of its own, beside the commit's wait for the disk."""

from __future__ import annotations

import threading

import pytest

from micromance.link import sealer as sealer_module
from micromance.link.sealer import Sealer
from micromance.protocol import Message, MessageType, open_sealed, pair_names

KEY = bytes(range(32))
MINE, THEIRS = pair_names(KEY, "0123456789abcdef", "fedcba9876543210")


def thanks(total: int) -> Message:
    return Message(type=MessageType.THANKS, sender=MINE.member, seq=1_000 + total,
                   time="2026-12-02T09:00:00+01:00", name="Sam", sent_total=total)


@pytest.fixture
def sealer():
    sealer = Sealer()
    yield sealer
    sealer.close()


@pytest.fixture
def seals_seen(monkeypatch):
    """The threads protocol.seal ran on, each set as it finishes."""
    seen: list[str] = []
    done = threading.Event()
    real = sealer_module.seal

    def recorded(message, *, key, topic):
        payload = real(message, key=key, topic=topic)
        seen.append(threading.current_thread().name)
        done.set()
        return payload

    monkeypatch.setattr(sealer_module, "seal", recorded)
    return seen, done


def test_a_message_is_sealed_on_its_own_thread_before_anyone_asks(sealer, seals_seen):
    seen, done = seals_seen
    sealing = sealer.seal(thanks(1), key=KEY, topic=MINE.events)
    # The caller waits on something else meanwhile (as the commit waits for the disk).
    assert done.wait(5)
    assert seen == ["sealer"]
    opened = open_sealed(sealing.payload(), key=KEY, topic=MINE.events,
                         expected_sender=MINE.member)
    assert opened == thanks(1)
    assert sealing.payload() == sealing.payload()  # asked again: the same bytes, at once
    assert seen == ["sealer"]


def test_messages_are_sealed_in_order_and_each_with_a_fresh_nonce(sealer):
    sealings = [sealer.seal(thanks(total), key=KEY, topic=MINE.events) for total in (1, 2, 3)]
    payloads = [s.payload() for s in sealings]
    assert len(set(payloads)) == 3
    assert [open_sealed(p, key=KEY, topic=MINE.events, expected_sender=MINE.member).sent_total
            for p in payloads] == [1, 2, 3]


def test_a_seal_that_fails_raises_where_the_payload_is_asked_for(sealer):
    sealing = sealer.seal(thanks(1), key=KEY, topic=THEIRS.events)  # not our topic
    with pytest.raises(ValueError, match="own topics"):
        sealing.payload()
    ok = sealer.seal(thanks(2), key=KEY, topic=MINE.events)  # the thread carries on
    assert open_sealed(ok.payload(), key=KEY, topic=MINE.events,
                       expected_sender=MINE.member).sent_total == 2


def test_close_seals_what_was_given_and_a_later_message_starts_it_again(sealer):
    running = {t for t in threading.enumerate() if t.name == "sealer"}
    sealing = sealer.seal(thanks(1), key=KEY, topic=MINE.events)
    started = {t for t in threading.enumerate() if t.name == "sealer"} - running
    sealer.close()
    assert len(started) == 1 and not started.pop().is_alive()
    assert open_sealed(sealing.payload(), key=KEY, topic=MINE.events,
                       expected_sender=MINE.member).sent_total == 1
    again = sealer.seal(thanks(2), key=KEY, topic=MINE.events)
    assert open_sealed(again.payload(), key=KEY, topic=MINE.events,
                       expected_sender=MINE.member).sent_total == 2
