"""Pairing as a pure state machine: codes, commitment, a relay in the middle, interference."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance.protocol import pairing
from micromance.protocol.pairing import Phase

A_ID, B_ID, C_ID = "1111111111111111", "5555555555555555", "9999999999999999"


def entropy(tag: int) -> bytes:
    return bytes((tag * 7 + i) % 256 for i in range(pairing.ENTROPY_BYTES))


@dataclass
class Unit:
    session: pairing.Session
    outbox: list[bytes] = field(default_factory=list)

    def take(self, step) -> None:
        self.session, out = step
        self.outbox += out


def room(units: dict[str, Unit], at: float = 0.0, rounds: int = 20, drop=None) -> None:
    """Deliver everything anyone sent to everyone else, until nobody has anything to say."""
    for _ in range(rounds):
        pending = [(name, m) for name, u in units.items() for m in u.outbox]
        for unit in units.values():
            unit.outbox = []
        if not pending:
            return
        for sender, message in pending:
            if drop and drop(message):
                continue
            for name, unit in units.items():
                if name != sender:
                    unit.take(pairing.receive(unit.session, message, at))


def start(*ids: str) -> dict[str, Unit]:
    return {me: Unit(*_begin(me, i)) for i, me in enumerate(ids)}


def _begin(me: str, tag: int):
    session, out = pairing.begin(me, entropy(tag), 0.0)
    return session, out


def both_confirm(units: dict[str, Unit], at: float = 1.0) -> None:
    for unit in units.values():
        unit.take(pairing.confirm(unit.session, at))
    room(units, at)


def test_two_units_agree_on_code_then_key_only_after_both_confirm():
    units = start(A_ID, B_ID)
    room(units)
    a, b = units[A_ID].session, units[B_ID].session
    assert a.phase is b.phase is Phase.CODE
    assert a.code == b.code and len(a.code) == 6 and a.code.isdigit()
    assert a.initiator and not b.initiator
    units[A_ID].take(pairing.confirm(a, 1.0))
    room(units, 1.0)
    assert units[A_ID].session.phase is Phase.WAITING
    assert units[B_ID].session.phase is Phase.CODE  # B's person has not pressed yet
    assert units[A_ID].session.result is None
    units[B_ID].take(pairing.confirm(units[B_ID].session, 2.0))
    room(units, 2.0)
    ra, rb = units[A_ID].session.result, units[B_ID].session.result
    assert ra and rb and ra.key == rb.key and ra.pair_id == rb.pair_id
    assert (ra.partner_id, rb.partner_id) == (B_ID, A_ID)
    assert len(ra.key) == 32 and len(ra.pair_id) == 32


def test_fresh_keys_every_attempt():
    first, second = start(A_ID, B_ID), {A_ID: Unit(*_begin(A_ID, 5)),
                                       B_ID: Unit(*_begin(B_ID, 6))}
    room(first)
    room(second)
    assert first[A_ID].session.public_key != second[A_ID].session.public_key
    assert first[A_ID].session.code != second[A_ID].session.code


class Relay:
    """Someone controlling the broker: talks to A as "B" and to B as "A", with own keys."""

    def __init__(self) -> None:
        self.a = Unit(*_begin(A_ID, 1))
        self.b = Unit(*_begin(B_ID, 2))
        self.as_b = Unit(*_begin(B_ID, 40))   # faces A
        self.as_a = Unit(*_begin(A_ID, 41))   # faces B

    def run(self, rounds: int = 20, relay_confirms: bool = False) -> None:
        for _ in range(rounds):
            moves = [(self.a, self.as_b), (self.as_b, self.a), (self.b, self.as_a),
                     (self.as_a, self.b)]
            busy = False
            for source, target in moves:
                out, source.outbox = source.outbox, []
                for message in out:
                    busy = True
                    target.take(pairing.receive(target.session, message, 1.0))
                    if relay_confirms and json.loads(message)["t"] == "confirm":
                        self._pass_confirm_through(message, source)
            if not busy:
                return

    def _pass_confirm_through(self, message: bytes, source: Unit) -> None:
        """Forward a real unit's confirmation to the other real unit, session id rewritten."""
        body = json.loads(message)
        target = self.b if source is self.a else self.a if source is self.b else None
        if target is None:
            return
        body["s"] = target.session.session
        target.take(pairing.receive(target.session, json.dumps(body).encode(), 1.0))


def test_relay_substituting_keys_gives_mismatching_codes():
    relay = Relay()
    relay.run()
    a, b = relay.a.session, relay.b.session
    assert a.phase is b.phase is Phase.CODE
    assert a.code != b.code  # the people comparing them see it
    # Even if both pressed THANKS anyway, the relayed confirmations prove different keys.
    relay.a.take(pairing.confirm(a, 2.0))
    relay.b.take(pairing.confirm(b, 2.0))
    relay.run(relay_confirms=True)
    for unit in (relay.a, relay.b):
        assert unit.session.result is None
        assert unit.session.phase is Phase.FAILED
        assert unit.session.detail == "codes did not match"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_grinding_relay_keys_cannot_choose_the_code(tag_a, tag_b):
    """With A's nonce hidden behind the commitment, the relay's choice fixes nothing."""
    units = {A_ID: Unit(*_begin(A_ID, 1)), B_ID: Unit(*_begin(B_ID, 2))}
    room(units)
    honest_code = units[A_ID].session.code
    relay = Relay()
    relay.as_b = Unit(*pairing.begin(B_ID, entropy(tag_a % 251 + 3), 0.0))
    relay.as_a = Unit(*pairing.begin(A_ID, entropy(tag_b % 251 + 3), 0.0))
    relay.run()
    assert relay.a.session.code != relay.b.session.code or relay.a.session.code != honest_code


def test_reveal_that_breaks_the_commitment_aborts():
    units = start(A_ID, B_ID)
    a, b = units[A_ID], units[B_ID]
    room(units, drop=lambda m: json.loads(m)["t"] == "reveal")  # hold the reveal back
    assert b.session.phase is Phase.EXCHANGING
    forged = json.dumps({"v": 1, "t": "reveal", "from": A_ID, "to": B_ID,
                         "s": b.session.session, "pk": "ab" * 32, "n": "cd" * 16}).encode()
    b.take(pairing.receive(b.session, forged, 1.0))
    assert b.session.phase is Phase.FAILED and b.session.detail == "protocol violation"
    assert json.loads(b.outbox[-1])["t"] == "cancel"
    room(units, 1.0)
    assert a.session.phase is Phase.FAILED  # told by B's cancel


def test_duplicates_out_of_order_and_late_messages_are_harmless():
    units = start(A_ID, B_ID)
    a, b = units[A_ID], units[B_ID]
    # Capture everything, then replay it twice, reversed, to both.
    log: list[bytes] = []
    for _ in range(10):
        pending = a.outbox + b.outbox
        log += pending
        room(units, rounds=1)
    assert a.session.phase is b.session.phase is Phase.CODE
    code = a.session.code
    for message in reversed(log + log):
        a.take(pairing.receive(a.session, message, 2.0))
        b.take(pairing.receive(b.session, message, 2.0))
    room(units, 2.0)
    assert a.session.phase is b.session.phase is Phase.CODE and a.session.code == code
    both_confirm(units, 3.0)
    assert a.session.result is not None and b.session.result is not None
    assert (a.session.result.key, a.session.result.pair_id) == \
        (b.session.result.key, b.session.result.pair_id)
    late = a.session
    for message in log:
        a.take(pairing.receive(a.session, message, 4.0))
    assert a.session.result == late.result


def test_lost_messages_are_resent_until_answered():
    units = start(A_ID, B_ID)
    lost = {"key"}
    room(units, drop=lambda m: json.loads(m)["t"] in lost)
    assert units[A_ID].session.phase is Phase.EXCHANGING
    lost.clear()
    for unit in units.values():
        unit.take(pairing.tick(unit.session, pairing.RESEND_EVERY + 0.1))
    room(units, 3.0)
    assert units[A_ID].session.phase is units[B_ID].session.phase is Phase.CODE


def test_a_third_unit_cannot_take_over_a_pairing_in_progress():
    units = start(A_ID, B_ID)
    room(units)
    a, b = units[A_ID], units[B_ID]
    code = a.session.code
    c = Unit(*_begin(C_ID, 9))
    units[C_ID] = c
    room(units, 1.0)  # C's hello reaches A and B: both are busy, neither answers
    assert a.session.peer == B_ID and b.session.peer == A_ID and a.session.code == code
    # C forges messages in A's name, inside A and B's attempt.
    forged_key = json.dumps({"v": 1, "t": "key", "from": B_ID, "to": A_ID,
                             "s": a.session.session, "pk": c.session.public_key.hex(),
                             "n": "00" * 16}).encode()
    a.take(pairing.receive(a.session, forged_key, 1.0))
    assert a.session.phase is Phase.FAILED and a.session.detail == "another unit interfering"
    assert a.session.result is None and b.session.result is None
    assert c.session.phase is Phase.SEARCHING and c.session.peer == ""


def test_timeouts_at_every_step():
    lonely, _ = pairing.begin(A_ID, entropy(1), 0.0)
    session, _ = pairing.tick(lonely, pairing.SEARCH_SECONDS)
    assert session.phase is Phase.TIMED_OUT and session.detail == "no other unit in the room"
    units = start(A_ID, B_ID)
    room(units, drop=lambda m: json.loads(m)["t"] in ("key", "reveal"))
    a = units[A_ID].session
    for at in (5.0, 10.0, 15.0):
        a, _ = pairing.tick(a, at)
    a, out = pairing.tick(a, pairing.STEP_SECONDS + 0.1)
    assert a.phase is Phase.TIMED_OUT and json.loads(out[0])["t"] == "cancel"
    units = start(A_ID, B_ID)
    room(units)
    b, _ = pairing.tick(units[B_ID].session, pairing.CONFIRM_SECONDS + 1)
    assert b.phase is Phase.TIMED_OUT and b.detail == "not confirmed on both units"


def test_cancel_reaches_the_other_unit():
    units = start(A_ID, B_ID)
    room(units)
    units[B_ID].take(pairing.cancel(units[B_ID].session, 1.0))
    room(units, 1.0)
    assert units[B_ID].session.phase is Phase.CANCELLED
    assert units[A_ID].session.phase is Phase.FAILED
    assert units[A_ID].session.detail == "cancelled on the other unit"


@given(st.binary(max_size=2000))
def test_garbage_in_the_room_never_breaks_a_session(payload):
    session, _ = pairing.begin(A_ID, entropy(1), 0.0)
    after, out = pairing.receive(session, payload, 1.0)
    assert after == session and out == []


def test_secrets_never_show_in_reprs():
    units = start(A_ID, B_ID)
    room(units)
    both_confirm(units)
    session = units[A_ID].session
    assert session.secret.hex() not in repr(session)
    assert session.result.key.hex() not in repr(session.result)


# --- fixed test vectors: the key schedule and the code must never change silently -----------


SHARED = bytes(range(32))
PK_A, PK_B = bytes([0xA0] * 32), bytes([0xB0] * 32)
N_A, N_B = bytes([0x01] * 16), bytes([0x02] * 16)


def test_vector_commitment():
    expected = "2b164efc4e99168e748b0caa18f7455543ce87b8ead6a58827a933f853ab2183"
    assert pairing.commitment(PK_A, N_A).hex() == expected
    assert hashlib.sha256(b"micromance/v1 commit\n" + PK_A + N_A).hexdigest() == expected


def test_vector_code_and_pair_secrets():
    assert pairing.comparison_code(SHARED, PK_A, PK_B, N_A, N_B) == "583555"
    digest = hashlib.sha256(b"micromance/v1 code\n" + SHARED + PK_A + PK_B + N_A + N_B)
    assert int.from_bytes(digest.digest()[:8], "big") % 1_000_000 == 583555
    key, pair_id = pairing.pair_secrets(SHARED, PK_A, PK_B, N_A, N_B)
    assert key.hex() == "4cc70e278403017bb201403a33036d19d741e866ac508cbfb94c7188f9d1f467"
    assert pair_id == "2450281435737fbedff1a35e47606ef4"
    # The same with HKDF written out (RFC 5869: extract, then one expand... two blocks).
    prk = hmac.new(N_A + N_B, SHARED, hashlib.sha256).digest()
    info = b"micromance/v1 pair\n" + PK_A + PK_B
    t1 = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    t2 = hmac.new(prk, t1 + info + b"\x02", hashlib.sha256).digest()
    assert (t1 + t2)[:32] == key and (t1 + t2)[32:48].hex() == pair_id


def test_vector_x25519_session():
    """A whole attempt from fixed entropy: both units derive the recorded code and pair."""
    units = start(A_ID, B_ID)
    room(units)
    both_confirm(units)
    result = units[A_ID].session.result
    assert units[A_ID].session.code == "445121"
    assert result.pair_id == "3133dbcec2b5aadf40e2b447d5298029"


@pytest.mark.parametrize("size", [pairing.ENTROPY_BYTES - 1, pairing.ENTROPY_BYTES + 1])
def test_entropy_must_be_exact(size):
    with pytest.raises(ValueError):
        pairing.begin(A_ID, bytes(size), 0.0)
