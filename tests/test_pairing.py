"""Pairing as a pure state machine: codes, commitment, a relay in the middle, interference,
and the v2 identities (a random id per attempt, roles and member ids in the result)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance.protocol import names, pairing
from micromance.protocol.pairing import Phase

#: Each attempt's id in the room comes from its entropy (the last 8 bytes): the tests choose
#: them, so that they know who initiates (the lower id).
A_ID, B_ID, C_ID = "1111111111111111", "5555555555555555", "9999999999999999"
V = pairing.VERSION


def entropy(tag: int, me: str = A_ID) -> bytes:
    """An attempt's entropy: 56 bytes of values from ``tag``, then ``me`` as its id."""
    return bytes((tag * 7 + i) % 256 for i in range(56)) + bytes.fromhex(me)


def assert_partners(ra: pairing.PairResult, rb: pairing.PairResult) -> None:
    """A initiated, B responded; each knows the other's member id, and they are the key's."""
    assert (ra.role, rb.role) == ("a", "b")
    assert (ra.partner_id, rb.partner_id) == (rb.member_id, ra.member_id)
    assert ra.member_id == names.member_id(ra.key, "a") != rb.member_id
    assert rb.member_id == names.member_id(rb.key, "b")


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
    session, out = pairing.begin(entropy(tag, me), 0.0)
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
    assert_partners(ra, rb)
    assert len(ra.key) == 32 and len(ra.pair_id) == 32


def test_fresh_keys_every_attempt():
    first, second = start(A_ID, B_ID), {A_ID: Unit(*_begin(A_ID, 5)),
                                       B_ID: Unit(*_begin(B_ID, 6))}
    room(first)
    room(second)
    assert first[A_ID].session.public_key != second[A_ID].session.public_key
    assert first[A_ID].session.code != second[A_ID].session.code


def test_the_room_hears_only_each_attempts_own_id_and_version_2():
    units = start(A_ID, B_ID)
    heard: list[dict] = []
    for _ in range(10):
        heard += [json.loads(m) for u in units.values() for m in u.outbox]
        room(units, rounds=1)
    both_confirm(units)
    assert {m["t"] for m in heard} == {"hello", "commit", "key", "reveal"}
    assert {m["from"] for m in heard} == {A_ID, B_ID} and {m["v"] for m in heard} == {2}
    assert units[A_ID].session.me == A_ID  # the id is the entropy's last 8 bytes
    again, [hello] = pairing.begin(entropy(0, "0123456789abcdef"), 0.0)
    assert json.loads(hello)["from"] == again.me == "0123456789abcdef"


def test_a_version_1_unit_is_not_answered():
    session, _ = pairing.begin(entropy(0, A_ID), 0.0)
    for version in (1, 3, None, "2"):
        hello = json.dumps({"v": version, "t": "hello", "from": B_ID}).encode()
        assert pairing.receive(session, hello, 0.1) == (session, [])
    hello = json.dumps({"v": 2, "t": "hello", "from": B_ID}).encode()
    assert [json.loads(m)["t"] for m in pairing.receive(session, hello, 0.1)[1]] == ["commit"]


def test_the_result_gives_the_role_and_both_member_ids():
    units = start(A_ID, B_ID)
    room(units)
    both_confirm(units)
    ra, rb = units[A_ID].session.result, units[B_ID].session.result
    assert_partners(ra, rb)
    assert names.members(ra.key, "0123456789abcdef", ra.partner_id) == (ra.member_id,
                                                                        rb.member_id)
    assert names.members(rb.key, "fedcba9876543210", rb.partner_id) == (rb.member_id,
                                                                        ra.member_id)
    with pytest.raises(ValueError):
        pairing.PairResult(ra.pair_id, ra.key, "c")
    # A new pairing of the same two units: new key, so new member ids as well.
    again = {A_ID: Unit(*_begin(A_ID, 5)), B_ID: Unit(*_begin(B_ID, 6))}
    room(again)
    both_confirm(again)
    assert again[A_ID].session.result.member_id != ra.member_id


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
    relay.as_b = Unit(*pairing.begin(entropy(tag_a % 251 + 3, B_ID), 0.0))
    relay.as_a = Unit(*pairing.begin(entropy(tag_b % 251 + 3, A_ID), 0.0))
    relay.run()
    assert relay.a.session.code != relay.b.session.code or relay.a.session.code != honest_code


def test_a_reveal_that_breaks_the_commitment_is_ignored_and_the_real_one_still_counts():
    units = start(A_ID, B_ID)
    a, b = units[A_ID], units[B_ID]
    room(units, drop=lambda m: json.loads(m)["t"] == "reveal")  # hold the reveal back
    assert b.session.phase is Phase.EXCHANGING and a.session.phase is Phase.CODE
    forged = json.dumps({"v": V, "t": "reveal", "from": A_ID, "to": B_ID,
                         "s": b.session.session, "pk": "ab" * 32, "n": "cd" * 16}).encode()
    b.take(pairing.receive(b.session, forged, 1.0))
    assert b.session.phase is Phase.EXCHANGING and b.outbox == []  # A cannot have sent it
    b.take(pairing.tick(b.session, 2.5))  # B asks again (its key); A reveals again
    room(units, 2.5)
    assert b.session.phase is Phase.CODE and b.session.code == a.session.code
    both_confirm(units, 3.0)
    assert a.session.result is not None and b.session.result is not None
    assert a.session.result.key == b.session.result.key


def test_a_conflicting_commitment_before_the_code_is_ignored():
    units = start(A_ID, B_ID)
    a, b = units[A_ID], units[B_ID]
    room(units, drop=lambda m: json.loads(m)["t"] == "key")
    assert b.session.phase is Phase.EXCHANGING
    forged = json.dumps({"v": V, "t": "commit", "from": A_ID, "to": B_ID,
                         "s": b.session.session, "c": "ee" * 32}).encode()
    b.take(pairing.receive(b.session, forged, 1.0))
    assert b.session.phase is Phase.EXCHANGING and b.outbox == []
    b.take(pairing.tick(b.session, 2.5))  # the key again, now delivered
    room(units, 2.5)
    assert a.session.phase is b.session.phase is Phase.CODE
    assert a.session.code == b.session.code


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
    assert units[A_ID].session.phase is Phase.SEARCHING  # not bound until a key arrives
    assert units[B_ID].session.phase is Phase.EXCHANGING
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
    forged_key = json.dumps({"v": V, "t": "key", "from": B_ID, "to": A_ID,
                             "s": a.session.session, "pk": c.session.public_key.hex(),
                             "n": "00" * 16}).encode()
    a.take(pairing.receive(a.session, forged_key, 1.0))
    assert a.session.phase is Phase.FAILED and a.session.detail == "another unit interfering"
    assert a.session.result is None and b.session.result is None
    assert c.session.phase is Phase.SEARCHING and c.session.peer == ""


def test_timeouts_at_every_step():
    lonely, _ = pairing.begin(entropy(1, A_ID), 0.0)
    session, _ = pairing.tick(lonely, pairing.SEARCH_SECONDS)
    assert session.phase is Phase.TIMED_OUT and session.detail == "no other unit in the room"
    # The initiator is bound to nobody until a key arrives: without one it just searches on.
    units = start(A_ID, B_ID)
    room(units, drop=lambda m: json.loads(m)["t"] in ("key", "reveal"))
    a, b = units[A_ID].session, units[B_ID].session
    a, _ = pairing.tick(a, pairing.SEARCH_SECONDS - 1)
    assert a.phase is Phase.SEARCHING
    # The responder, unanswered, searches again once; the second time it gives up, silently
    # (a cancel cannot be authenticated before the code is shown).
    assert b.phase is Phase.EXCHANGING and b.exchanges == 1
    b, out = pairing.tick(b, pairing.STEP_SECONDS)
    assert b.phase is Phase.SEARCHING and [json.loads(m)["t"] for m in out] == ["hello"]
    b, _ = pairing.receive(b, pairing.receive(a, out[0], 9.0)[1][0], 9.0)  # A's commit again
    assert b.phase is Phase.EXCHANGING and b.exchanges == pairing.MAX_EXCHANGES
    b, out = pairing.tick(b, 9.0 + pairing.STEP_SECONDS)
    assert b.phase is Phase.TIMED_OUT and b.detail == "the other unit stopped answering"
    assert out == []
    # Showing the code, time runs out: the authenticated cancel tells the other unit.
    units = start(A_ID, B_ID)
    room(units)
    b, out = pairing.tick(units[B_ID].session, pairing.CONFIRM_SECONDS + 1)
    assert b.phase is Phase.TIMED_OUT and b.detail == "not confirmed on both units"
    a, _ = pairing.receive(units[A_ID].session, out[0], pairing.CONFIRM_SECONDS + 1)
    assert a.phase is Phase.FAILED and a.detail == "cancelled on the other unit"


def test_cancel_reaches_the_other_unit():
    units = start(A_ID, B_ID)
    room(units)
    units[B_ID].take(pairing.cancel(units[B_ID].session, 1.0))
    room(units, 1.0)
    assert units[B_ID].session.phase is Phase.CANCELLED
    assert units[A_ID].session.phase is Phase.FAILED
    assert units[A_ID].session.detail == "cancelled on the other unit"


def test_a_cancel_carries_a_mac_and_is_sent_only_once_the_code_is_shown():
    units = start(A_ID, B_ID)
    assert pairing.cancel(units[A_ID].session, 0.5)[1] == []  # searching: nobody to tell
    room(units, drop=lambda m: json.loads(m)["t"] == "reveal")
    assert pairing.cancel(units[B_ID].session, 0.5)[1] == []  # exchanging: cannot sign it
    _, [sent] = pairing.cancel(units[A_ID].session, 0.5)  # A shows the code
    body = json.loads(sent)
    assert body["t"] == "cancel" and body["to"] == B_ID and len(body["mac"]) == 64


def test_the_real_peers_cancel_ends_the_attempt_also_while_waiting():
    units = start(A_ID, B_ID)
    room(units)
    units[A_ID].take(pairing.confirm(units[A_ID].session, 1.0))
    room(units, 1.0)
    assert units[A_ID].session.phase is Phase.WAITING
    units[B_ID].take(pairing.cancel(units[B_ID].session, 2.0, "codes rejected"))
    room(units, 2.0)
    assert units[B_ID].session.phase is Phase.CANCELLED
    assert units[A_ID].session.phase is Phase.FAILED
    assert units[A_ID].session.detail == "cancelled on the other unit"


# --- griefing: someone else in the room ----------------------------------------------------


def cancel_payload(sender: str, to: str, s: str, mac: str | None) -> bytes:
    body = {"v": V, "t": "cancel", "from": sender, "to": to, "s": s}
    if mac is not None:
        body["mac"] = mac
    return json.dumps(body, separators=(",", ":")).encode()


def forged_cancels(to: Unit, claimed: str, extra_macs: tuple[str, ...] = ()) -> list[bytes]:
    """Cancels in ``claimed``'s name for ``to``'s attempt: no MAC, junk MACs, given MACs."""
    sessions = {to.session.session, to.session.own_session} - {""}
    macs = (None, "00" * 32, "zz" * 32, "ab", *extra_macs)
    return [cancel_payload(claimed, to.session.me, s, mac) for s in sessions for mac in macs]


def reach_phase(phase: str) -> dict[str, Unit]:
    units = start(A_ID, B_ID)
    if phase == "exchanging":
        room(units, drop=lambda m: json.loads(m)["t"] == "key")  # B gave its key, A waits
    elif phase in ("code", "waiting"):
        room(units)
    if phase == "waiting":
        for unit in units.values():
            unit.take(pairing.confirm(unit.session, 0.5))  # in flight: not delivered yet
    return units


def spec_mac(units: dict[str, Unit], label: str, sender: str) -> str:
    """The confirm or cancel MAC of ``sender`` in A and B's exchange, as docs/protocol.md
    defines it: HMAC under HKDF(shared, nA || nB, "micromance/v1 <label>" LF pkA pkB)."""
    a, b = units[A_ID].session, units[B_ID].session
    shared = X25519PrivateKey.from_private_bytes(a.secret).exchange(
        X25519PublicKey.from_public_bytes(b.public_key))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=a.nonce + b.nonce,
               info=f"micromance/v1 {label}\n".encode() + a.public_key + b.public_key
               ).derive(shared)
    text = f"{label}\n{sender}\n{a.own_session}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("phase", ["searching", "exchanging", "code", "waiting"])
def test_unauthenticated_cancels_never_end_a_pairing(phase):
    units = reach_phase(phase)
    a, b = units[A_ID], units[B_ID]
    before = {name: unit.session.phase for name, unit in units.items()}
    # Neither a confirmation's MAC nor one's own cancel MAC, sent back, is the peer's.
    wrong = (spec_mac(units, "confirm", A_ID), spec_mac(units, "confirm", B_ID))
    forged = (forged_cancels(a, B_ID, (*wrong, spec_mac(units, "cancel", A_ID)))
              + forged_cancels(b, A_ID, (*wrong, spec_mac(units, "cancel", B_ID)))
              + forged_cancels(a, C_ID) + forged_cancels(b, C_ID))
    for payload in forged:
        for unit in units.values():
            unit.take(pairing.receive(unit.session, payload, 0.7))
    assert {name: unit.session.phase for name, unit in units.items()} == before
    for unit in units.values():  # whatever was held back is sent again
        unit.take(pairing.tick(unit.session, pairing.RESEND_EVERY + 0.5))
    room(units, 3.0)
    if phase != "waiting":
        both_confirm(units, 4.0)
    room(units, 4.0)
    ra, rb = a.session.result, b.session.result
    assert ra is not None and rb is not None and ra.key == rb.key
    assert_partners(ra, rb)


def test_a_cancel_with_a_wrong_mac_is_ignored_and_the_right_one_is_not():
    units = start(A_ID, B_ID)
    room(units)
    a, b = units[A_ID], units[B_ID]
    right = spec_mac(units, "cancel", B_ID)
    flipped = f"{int(right[0], 16) ^ 1:x}" + right[1:]
    for mac in (flipped, "00" * 32, right.upper(), spec_mac(units, "confirm", B_ID),
                spec_mac(units, "cancel", A_ID)):
        a.take(pairing.receive(a.session, cancel_payload(B_ID, A_ID, a.session.session, mac),
                               1.0))
        assert a.session.phase is Phase.CODE
    _, [real] = pairing.cancel(b.session, 1.0)
    assert real == cancel_payload(B_ID, A_ID, a.session.session, right)
    a.take(pairing.receive(a.session, real, 1.0))
    assert a.session.phase is Phase.FAILED and a.session.detail == "cancelled on the other unit"


class Stranger:
    """Someone else in the room: hears everything; writes what ``speak`` (every step) and
    ``react`` (at once, to what it heard) return."""

    def __init__(self, me: str) -> None:
        self.me = me
        self.heard: list[dict] = []

    def hear(self, payload: bytes) -> list[bytes]:
        self.heard.append(json.loads(payload))
        return self.react(self.heard[-1])

    def react(self, message: dict) -> list[bytes]:
        return []

    def speak(self, at: float) -> list[bytes]:
        return []

    def hello(self, sender: str | None = None) -> bytes:
        return json.dumps({"v": V, "t": "hello", "from": sender or self.me}).encode()


class SilentUnit(Stranger):
    """Says hello every two seconds like a searching unit, and never answers anything."""

    def __init__(self, me: str) -> None:
        super().__init__(me)
        self.next_hello = 0.0

    def speak(self, at: float) -> list[bytes]:
        if at < self.next_hello:
            return []
        self.next_hello = at + pairing.HELLO_EVERY
        return [self.hello()]


class CommitsOnce(Stranger):
    """Answers the first hello from a higher id with a commitment, then goes silent."""

    def __init__(self, me: str) -> None:
        super().__init__(me)
        self.done = False

    def react(self, message: dict) -> list[bytes]:
        if self.done or message["t"] != "hello" or message["from"] < self.me:
            return []
        self.done = True
        return [json.dumps({"v": V, "t": "commit", "from": self.me, "to": message["from"],
                            "s": "5e" * 8, "c": "c0" * 32}).encode()]


class Flooder(Stranger):
    """Every step: hellos under many names; commitments, keys and reveals for sessions that
    are not the units'; junk. And at once, for every message of an exchange it hears: forged
    cancels both ways (no MAC, a junk MAC, every MAC it has seen)."""

    NAMES = ("ffffffffffffffff", "f0f0f0f0f0f0f0f0", "0000000000000000", "7777777777777777")

    def speak(self, at: float) -> list[bytes]:
        out = [self.hello(name) for name in (self.me, *self.NAMES)]
        for target in {m["from"] for m in self.heard}:
            body = {"v": V, "from": self.me, "to": target, "s": "ab" * 8}
            out += [json.dumps({**body, "t": "commit", "c": "11" * 32}).encode(),
                    json.dumps({**body, "t": "key", "pk": "22" * 32, "n": "33" * 16}).encode(),
                    json.dumps({**body, "t": "reveal", "pk": "44" * 32, "n": "55" * 16,
                                "from": "0000000000000000"}).encode(),
                    b'{"v":2,"t":"commit"', b"\xff" * 40]
        return out

    def react(self, message: dict) -> list[bytes]:
        if "s" not in message or message["t"] == "cancel":
            return []
        macs = {m["mac"] for m in self.heard if "mac" in m} | {None, "66" * 32}
        sender, to, sid = message["from"], message["to"], message["s"]
        return [cancel_payload(x, y, sid, mac) for mac in macs
                for x, y in ((sender, to), (to, sender))]


def live(starts: dict[str, float], strangers: tuple[Stranger, ...] = (), *,
         until: float = pairing.SEARCH_SECONDS + pairing.CONFIRM_SECONDS, step: float = 0.25,
         ) -> tuple[dict[str, Unit], float]:
    """The room on a clock: each unit begins at its start time; every step each unit ticks,
    the strangers speak, and everything written reaches everybody else (strangers react at
    once) until it is quiet. The people press THANKS as soon as their unit shows a code.
    Returns the units once all have finished, and when the last of them showed its code."""
    units: dict[str, Unit] = {}
    at, shown = 0.0, {}
    while at <= until:
        for tag, (me, begins) in enumerate(starts.items()):
            if me not in units and at >= begins:
                units[me] = Unit(*pairing.begin(entropy(tag, me), at))
        for unit in units.values():
            unit.take(pairing.tick(unit.session, at))
        pending = [("", m) for stranger in strangers for m in stranger.speak(at)]
        for _ in range(50):
            for name, unit in units.items():
                if unit.session.phase is Phase.CODE:
                    shown.setdefault(name, at)
                    unit.take(pairing.confirm(unit.session, at))
            pending += [(name, m) for name, unit in units.items() for m in unit.outbox]
            for unit in units.values():
                unit.outbox = []
            if not pending:
                break
            replies = []
            for sender, message in pending:
                if sender:
                    replies += [("", m) for stranger in strangers for m in stranger.hear(message)]
                for name, unit in units.items():
                    if name != sender:
                        unit.take(pairing.receive(unit.session, message, at))
            pending = replies
        if len(units) == len(starts) and all(u.session.finished for u in units.values()):
            break
        at += step
    return units, max(shown.values(), default=at)


def assert_they_paired(units: dict[str, Unit], code_at: float) -> None:
    a, b = units[A_ID].session, units[B_ID].session
    assert a.phase is b.phase is Phase.CONFIRMED, (a, a.detail, b, b.detail)
    assert a.result is not None and b.result is not None
    assert_partners(a.result, b.result)
    assert (a.result.key, a.result.pair_id) == (b.result.key, b.result.pair_id)
    assert code_at < pairing.SEARCH_SECONDS


def test_a_silent_stranger_saying_hello_first_does_not_capture_the_lower_unit():
    stranger = SilentUnit(C_ID)  # a higher id than both: A would initiate with it
    units, code_at = live({A_ID: 0.0, B_ID: 3.0}, (stranger,))
    assert_they_paired(units, code_at)
    assert code_at == 3.0  # found at once: the stranger's hellos cost A nothing


def test_a_stranger_flooding_the_room_does_not_stop_a_pairing():
    flooder = Flooder(C_ID)
    units, code_at = live({A_ID: 0.0, B_ID: 1.0}, (flooder,))
    assert_they_paired(units, code_at)
    heard = {m["t"] for m in flooder.heard}
    assert {"commit", "key", "reveal", "confirm"} <= heard  # it had every exchange to forge on


def test_a_stranger_that_commits_and_goes_silent_only_delays_the_responder():
    stranger = CommitsOnce("0000000000000001")  # lower than both: B takes its commitment
    units, code_at = live({B_ID: 0.0, A_ID: 1.0}, (stranger,))
    assert_they_paired(units, code_at)
    b = units[B_ID].session
    assert stranger.done and b.exchanges == 2  # the stranger's exchange, then A's
    assert pairing.STEP_SECONDS <= code_at < pairing.STEP_SECONDS + 3
    first_key = next(m for m in stranger.heard if m["t"] == "key" and m["to"] == stranger.me)
    assert first_key["pk"] != b.public_key.hex() and first_key["n"] != b.nonce.hex()
    assert b.search_deadline == pairing.SEARCH_SECONDS  # the search time was kept
    assert b.me == B_ID  # and so was the attempt's id


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["commit", "reveal", "cancel", "wait"]),
                          st.integers(0, 3), st.floats(0, 10)), max_size=40))
def test_a_unit_gives_out_at_most_max_exchanges_keys_per_attempt(actions):
    """Each key answered and abandoned is one more chance for a relay: they are counted."""
    b, _ = pairing.begin(entropy(2, B_ID), 0.0)
    lower = ["0000000000000000", "0123456789abcdef", A_ID, "2222222222222222"]
    keys, at = set(), 0.0
    for kind, who, wait in actions:
        body = {"v": V, "t": kind, "from": lower[who], "to": B_ID,
                "s": b.session or f"{who:016x}"}
        if kind == "wait":
            at += wait
            b, out = pairing.tick(b, at)
        else:
            extra = {"commit": {"c": f"{who:02x}" * 32, "s": f"{at:016.0f}"},
                     "reveal": {"pk": "ab" * 32, "n": "cd" * 16}, "cancel": {}}[kind]
            b, out = pairing.receive(b, json.dumps({**body, **extra}).encode(), at)
        keys |= {(m["pk"], m["n"]) for m in map(json.loads, out) if m["t"] == "key"}
    while not b.finished:
        at += 1.0
        b, out = pairing.tick(b, at)
        keys |= {(m["pk"], m["n"]) for m in map(json.loads, out) if m["t"] == "key"}
    assert len(keys) <= pairing.MAX_EXCHANGES and b.exchanges <= pairing.MAX_EXCHANGES
    assert b.code == "" and b.result is None
    assert at <= pairing.SEARCH_SECONDS + pairing.STEP_SECONDS + 1


def test_a_lost_reveal_is_sent_again_also_after_thanks_was_pressed():
    units = start(A_ID, B_ID)
    room(units, drop=lambda m: json.loads(m)["t"] == "reveal")
    a, b = units[A_ID], units[B_ID]
    a.take(pairing.confirm(a.session, 1.0))
    room(units, 1.0, drop=lambda m: json.loads(m)["t"] == "reveal")
    assert a.session.phase is Phase.WAITING and b.session.phase is Phase.EXCHANGING
    b.take(pairing.tick(b.session, 2.5))  # B asks again with its key
    room(units, 2.5)
    assert b.session.phase is Phase.CODE and b.session.code == a.session.code
    b.take(pairing.confirm(b.session, 3.0))
    a.take(pairing.tick(a.session, 3.5))  # A's confirmation again, now that B shows the code
    room(units, 3.5)
    assert a.session.result is not None and b.session.result is not None


@given(st.binary(max_size=2000))
def test_garbage_in_the_room_never_breaks_a_session(payload):
    session, _ = pairing.begin(entropy(1, A_ID), 0.0)
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
        pairing.begin(bytes(size), 0.0)
