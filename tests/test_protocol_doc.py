"""docs/protocol.md's test vectors are recomputed with the real code, so the two cannot drift.

Each ```vector block holds ``field: value`` lines; an indented line continues the previous
value (joined with nothing in between). Every output in a block is recomputed from its inputs:
changing a vector in the document, or the code it describes, fails here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from micromance.protocol import (
    Message,
    MessageType,
    Names,
    ReplayWindow,
    associated_data,
    device_member_id,
    invite,
    member_id,
    open_sealed,
    pairing,
    room_topic,
    seal,
)
from micromance.protocol.words import WORDS

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
EXPECTED = {
    "member-ids", "names", "rooms",
    "envelope-thanks", "envelope-ack", "envelope-state", "envelope-presence", "replay-window",
    "replay-window-jump", "commitment", "code-and-pair-secrets", "x25519-pairing",
    "pairing-messages",
}


def parse_vectors(text: str) -> dict[str, dict[str, str]]:
    vectors: dict[str, dict[str, str]] = {}
    for body in re.findall(r"^```vector\n(.*?)^```$", text, flags=re.S | re.M):
        fields: dict[str, str] = {}
        last = None
        for line in body.splitlines():
            if line.startswith(" "):
                assert last is not None, f"continuation without a field: {line!r}"
                fields[last] += line.strip()
            elif line.strip():
                key, sep, value = line.partition(": ")
                assert sep and key not in fields, f"bad or repeated field line: {line!r}"
                fields[key] = value
                last = key
        name = fields.pop("name")
        assert name not in vectors, f"two vectors named {name}"
        vectors[name] = fields
    return vectors


VECTORS = parse_vectors(DOC.read_text(encoding="utf-8"))


def vector(name: str) -> dict[str, str]:
    return VECTORS[name]


def test_every_vector_is_present_and_checked():
    assert set(VECTORS) == EXPECTED


def test_parser_joins_continuation_lines():
    text = "```vector\nname: x\na: 12\n    34\nb: {\"k\":1}\n```\n"
    assert parse_vectors(text) == {"x": {"a": "1234", "b": '{"k":1}'}}


# --- names ---------------------------------------------------------------------------------


def hmac256(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha256).digest()


def test_member_ids_vector():
    v = vector("member-ids")
    key = bytes.fromhex(v["key"])
    for who in ("a", "b"):
        assert member_id(key, who) == v[f"member_{who}"]
        assert hmac256(key, b"micromance/v2 member\n" + who.encode())[:8].hex() == \
            v[f"member_{who}"]
        device = v[f"device_{who}"]
        assert device_member_id(key, device) == v[f"device_member_{who}"]
        assert hmac256(key, b"micromance/v2 member\n" + device.encode())[:8].hex() == \
            v[f"device_member_{who}"]


def test_names_vector():
    v = vector("names")
    key, member = bytes.fromhex(v["key"]), v["member"]
    assert member == vector("member-ids")["member_a"]
    names = Names.derive(key, member)
    assert (names.events, names.state, names.presence, names.client_id) == (
        v["events"], v["state"], v["presence"], v["client_id"])
    # The same from the document's derivation alone.
    names_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                     info=b"micromance/v2 names").derive(key)
    assert names_key.hex() == v["names_key"]
    for channel in ("events", "state", "presence"):
        text = f"topic\n{member}\n{channel}".encode()
        assert hmac256(names_key, text)[:16].hex() == v[channel]
    assert hmac256(names_key, f"client\n{member}".encode())[:11].hex() == v["client_id"]
    assert len(v["client_id"]) <= 23


def test_rooms_vector():
    v = vector("rooms")
    assert room_topic(v["room"]) == room_topic() == v["room_topic"]
    assert hashlib.sha256(b"micromance/v2 room\n" + v["room"].encode()).digest()[:16].hex() == \
        v["room_topic"]
    entropy = bytes.fromhex(v["invite_entropy"])
    assert invite.make_invite(entropy) == v["invite"]
    number = 100 + int.from_bytes(entropy[:4], "big") % 900
    assert v["invite"] == " ".join([str(number), *(WORDS[b] for b in entropy[4:])])
    assert invite.parse_invite(v["invite_typed"]) == v["invite"]
    assert invite.invite_room(v["invite"]) == invite.invite_room(v["invite_typed"]) == \
        v["invite_topic"]
    assert hashlib.sha256(b"micromance/v2 invite\n" + v["invite"].encode()).digest()[
        :16].hex() == v["invite_topic"]


# --- sealed envelopes ------------------------------------------------------------------------


#: Each envelope vector and the channel its message type belongs on.
CHANNELS = {"envelope-thanks": "events", "envelope-ack": "events", "envelope-state": "state",
            "envelope-presence": "presence"}


@pytest.mark.parametrize("name", list(CHANNELS))
def test_envelope_vector(name):
    v = vector(name)
    key, nonce, topic = bytes.fromhex(v["key"]), bytes.fromhex(v["nonce"]), v["topic"]
    plaintext, payload = v["plaintext"].encode("utf-8"), v["payload"].encode("ascii")
    message = Message.from_plaintext(plaintext)
    assert message.to_plaintext().encode("utf-8") == plaintext  # the plaintext is canonical
    assert message.sender == v["sender"]
    names = Names.derive(key, v["sender"])
    assert names.channel(topic) == message.channel == CHANNELS[name]
    assert (key.hex(), v["sender"]) == (vector("names")["key"], vector("names")["member"])
    assert topic == vector("names")[message.channel]
    aad = associated_data(topic)
    assert aad.hex() == v["aad"] and aad == b"micromance/v2\n" + topic.encode()
    assert seal(message, key=key, topic=topic, nonce=nonce) == payload
    # The same without the code's sealing: the document's description is enough.
    outer = json.loads(payload)
    assert list(outer) == ["v", "nonce", "ct"] and outer["v"] == 2
    assert base64.b64decode(outer["nonce"]) == nonce
    ct = base64.b64decode(outer["ct"])
    assert ChaCha20Poly1305(key).decrypt(nonce, ct, bytes.fromhex(v["aad"])) == plaintext
    assert open_sealed(payload, key=key, topic=topic, expected_sender=v["sender"]) == message


def test_presence_vector_is_an_online_presence():
    message = Message.from_plaintext(vector("envelope-presence")["plaintext"])
    assert message.type is MessageType.PRESENCE and message.online is True
    assert message.sent_total == 0


# --- replay window ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["replay-window", "replay-window-jump"])
def test_replay_vector(name):
    v = vector(name)
    window = ReplayWindow.from_json(v["start"])
    for seq in map(int, v["accept"].split()):
        window = window.accept(seq)
    assert window.to_json() == v["window"]
    assert all(window.check(int(seq)) for seq in v["fresh"].split())
    assert not any(window.check(int(seq)) for seq in v["refused"].split())


# --- pairing ---------------------------------------------------------------------------------


def test_commitment_vector():
    v = vector("commitment")
    pk, nonce = bytes.fromhex(v["pk"]), bytes.fromhex(v["n"])
    assert pairing.commitment(pk, nonce).hex() == v["commitment"]
    assert hashlib.sha256(b"micromance/v1 commit\n" + pk + nonce).hexdigest() == v["commitment"]


def test_code_and_pair_secrets_vector():
    v = vector("code-and-pair-secrets")
    inputs = [bytes.fromhex(v[k]) for k in ("shared", "pk_a", "pk_b", "n_a", "n_b")]
    assert pairing.comparison_code(*inputs) == v["code"]
    key, pair_id = pairing.pair_secrets(*inputs)
    assert (key.hex(), pair_id) == (v["pair_key"], v["pair_id"])


def test_x25519_pairing_vector():
    v = vector("x25519-pairing")
    sk_a, sk_b = bytes.fromhex(v["sk_a"]), bytes.fromhex(v["sk_b"])
    n_a, n_b = bytes.fromhex(v["n_a"]), bytes.fromhex(v["n_b"])
    assert v["entropy_a"] == v["sk_a"] + v["n_a"] + v["session"] + v["id_a"]
    assert v["entropy_b"].startswith(v["sk_b"] + v["n_b"]) and v["entropy_b"].endswith(v["id_b"])
    assert len(bytes.fromhex(v["entropy_b"])) == pairing.ENTROPY_BYTES
    private_a = X25519PrivateKey.from_private_bytes(sk_a)
    pk_a = private_a.public_key().public_bytes_raw()
    pk_b = X25519PrivateKey.from_private_bytes(sk_b).public_key().public_bytes_raw()
    shared = private_a.exchange(X25519PublicKey.from_public_bytes(pk_b))
    assert (pk_a.hex(), pk_b.hex(), shared.hex()) == (v["pk_a"], v["pk_b"], v["shared"])
    assert pairing.commitment(pk_a, n_a).hex() == v["commitment"]
    inputs = (shared, pk_a, pk_b, n_a, n_b)
    assert pairing.comparison_code(*inputs) == v["code"]
    key, pair_id = pairing.pair_secrets(*inputs)
    assert (key.hex(), pair_id) == (v["pair_key"], v["pair_id"])
    for who in ("a", "b"):
        assert hmac.new(key, b"micromance/v2 member\n" + who.encode(), hashlib.sha256
                        ).digest()[:8].hex() == v[f"member_{who}"]
    # The confirm and cancel keys and MACs as the document defines them (the code keeps these
    # private; the pairing-messages vector checks that its messages carry these MACs).
    prk = hmac.new(n_a + n_b, shared, hashlib.sha256).digest()
    for label, mac_field in (("confirm", "mac_{}"), ("cancel", "cancel_mac_{}")):
        info = f"micromance/v1 {label}\n".encode() + pk_a + pk_b
        mac_key = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
        assert mac_key.hex() == v[f"{label}_key"]
        for who in ("a", "b"):
            text = f"{label}\n{v[f'id_{who}']}\n{v['session']}".encode()
            assert hmac.new(mac_key, text, hashlib.sha256).hexdigest() == \
                v[mac_field.format(who)]
    assert v["cancel_key"] != v["confirm_key"]


def test_pairing_messages_vector():
    v = vector("pairing-messages")
    x = vector(v["inputs"])
    a, b = x["id_a"], x["id_b"]
    assert a < b  # the lower id initiates
    session_a, [hello_a] = pairing.begin(bytes.fromhex(x["entropy_a"]), 0.0)
    session_b, [hello_b] = pairing.begin(bytes.fromhex(x["entropy_b"]), 0.0)
    assert (session_a.me, session_b.me) == (a, b)  # the entropy's last 8 bytes
    assert pairing.receive(session_b, hello_a, 0.1)[1] == []
    session_a, [commit] = pairing.receive(session_a, hello_b, 0.1)
    session_b, [key] = pairing.receive(session_b, commit, 0.2)
    session_a, [reveal] = pairing.receive(session_a, key, 0.3)
    session_b, _ = pairing.receive(session_b, reveal, 0.4)
    assert session_a.code == session_b.code == x["code"]
    _, [cancel_b] = pairing.cancel(session_b, 0.5)
    _, [cancel_a] = pairing.cancel(session_a, 0.5)
    # A's unit accepts that cancel (and only it: not the same without its MAC).
    unsigned = json.dumps({k: w for k, w in json.loads(cancel_b).items() if k != "mac"},
                          separators=(",", ":")).encode()
    assert pairing.receive(session_a, unsigned, 0.6)[0] == session_a
    assert pairing.receive(session_a, cancel_b, 0.6)[0].phase is pairing.Phase.FAILED
    session_a, [confirm_a] = pairing.confirm(session_a, 1.0)
    session_b, [confirm_b] = pairing.confirm(session_b, 1.0)
    session_a, _ = pairing.receive(session_a, confirm_b, 1.1)
    session_b, _ = pairing.receive(session_b, confirm_a, 1.1)
    sent = {"hello_a": hello_a, "hello_b": hello_b, "commit": commit, "key": key,
            "reveal": reveal, "confirm_a": confirm_a, "confirm_b": confirm_b,
            "cancel_b": cancel_b}
    assert {name: payload.decode() for name, payload in sent.items()} == {
        name: v[name] for name in sent}
    assert json.loads(confirm_a)["mac"] == x["mac_a"]
    assert json.loads(confirm_b)["mac"] == x["mac_b"]
    assert json.loads(cancel_b)["mac"] == x["cancel_mac_b"]
    assert json.loads(cancel_a)["mac"] == x["cancel_mac_a"]
    for session in (session_a, session_b):
        assert session.result.key.hex() == x["pair_key"]
        assert session.result.pair_id == x["pair_id"]
    assert (session_a.result.role, session_b.result.role) == ("a", "b")
    assert (session_a.result.member_id, session_b.result.member_id) == (x["member_a"],
                                                                        x["member_b"])
    assert (session_a.result.partner_id, session_b.result.partner_id) == (x["member_b"],
                                                                          x["member_a"])
    assert all(json.loads(m)["v"] == 2 for m in sent.values())
