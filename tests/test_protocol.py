"""Partner link protocol v2: fixed test vectors, opaque names, strict rejection, fuzzing,
anti-replay.

The test vectors pin the wire format: if one of them breaks, the change is a protocol change
that needs a version bump (docs/protocol.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance import protocol as proto
from micromance.errors import LinkError
from micromance.protocol import (
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_SEQS,
    REASONS,
    Message,
    Names,
    ProtocolError,
    ReplayWindow,
    open_sealed,
    seal,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NONCE = bytes(range(1, 13))
ALICE = "0123456789abcdef"   # member ids (any 16 hex characters will do for these tests)
BOB = "fedcba9876543210"
ALICE_TOPICS = Names.derive(KEY, ALICE)
BOB_TOPICS = Names.derive(KEY, BOB)
TIME = "2026-11-25T12:00:00+01:00"

THANKS = Message(type="thanks", sender=ALICE, seq=1, time=TIME, name="Sam", sent_total=1)
THANKS_PLAINTEXT = (b'{"type":"thanks","id":"0123456789abcdef:1",'
                    b'"time":"2026-11-25T12:00:00+01:00","name":"Sam","sent_total":1}')
THANKS_PAYLOAD = (
    b'{"v":2,"nonce":"AQIDBAUGBwgJCgsM","ct":"H6owE3k3holqnS0musr/LJLe+vpks517Su+f/XPZ2A0h2uvL'
    b'/FdHwHaUZvoS0/hV5X3B2EsDCtaARRoqJWg04dWSIIrEndkD23bWnff7UrGgO0UdpgeGZjlS/YgWilcz+kdTW2p4'
    b'ilAf1+1QKjUUtg8SBwHsAWncWpc="}')

ACK = Message(type="ack", sender=ALICE, seq=7, time="2026-11-25T12:00:05+01:00", name="Zoë",
              sent_total=3, seqs=(2, 3, 5))
ACK_PLAINTEXT = ('{"type":"ack","id":"0123456789abcdef:7","time":"2026-11-25T12:00:05+01:00",'
                 '"name":"Zoë","sent_total":3,"seqs":[2,3,5]}').encode()
ACK_PAYLOAD = (
    b'{"v":2,"nonce":"AQIDBAUGBwgJCgsM","ct":"H6owE3k3holqiCYs9o2uZ9reqbx2uI14T+ia/n7Wjld73+zO'
    b'ogUD1mXCI7UDmK8S9XfR3FYADdaDQWMpIgY149WSJZvEnMgD2m7Kj7u2HbrjbAJl8+Z+JXhSos8Lm2YzykddQyku'
    b'm0YM2emy8zfuN6oD/7O0eJhIGhvkEASMlk8BKBpoHaWq"}')

#: The same thanks as protocol 1.x sealed it (from, seq and a longer AAD): a v2 unit refuses it.
V1_THANKS_PAYLOAD = (
    b'{"v":1,"from":"0123456789abcdef","seq":1,"nonce":"AQIDBAUGBwgJCgsM","ct":"H6owE3k3holq'
    b'nS0musr/LJLe+vpks517Su+f/XPZ2A0h2uvL/FdHwHaUZvoS0/hV5X3B2EsDCtaARRoqJWg04dWSIIrEndkD23b'
    b'Wnff7UrGgO0UdpgeGZjlS/YgWilcz+kdTW2p4ilAf1xbip1wRuaWp/iSNuezgF80="}')


def open_from_alice(payload: bytes, **overrides) -> Message:
    """Open as Bob does: Alice's events topic, Alice expected, the pair key."""
    kwargs = {"key": KEY, "topic": ALICE_TOPICS.events, "expected_sender": ALICE}
    return open_sealed(payload, **(kwargs | overrides))


def reason_of(payload: bytes, **overrides) -> str:
    with pytest.raises(ProtocolError) as caught:
        open_from_alice(payload, **overrides)
    return caught.value.reason


def envelope(**changes) -> bytes:
    """The thanks vector's envelope with some keys changed (None removes a key)."""
    data = json.loads(THANKS_PAYLOAD) | changes
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def seal_raw(plaintext: bytes, *, topic: str = ALICE_TOPICS.events, key: bytes = KEY) -> bytes:
    """Seal any plaintext correctly, bypassing Message validation: tests the plaintext checks."""
    ct = ChaCha20Poly1305(key).encrypt(NONCE, plaintext, b"micromance/v2\n" + topic.encode())
    return json.dumps({"v": 2, "nonce": base64.b64encode(NONCE).decode(),
                       "ct": base64.b64encode(ct).decode()}, separators=(",", ":")).encode()


def plaintext(**changes) -> bytes:
    """The thanks vector's plaintext with some keys changed (None removes a key)."""
    data = json.loads(THANKS_PLAINTEXT) | changes
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


# --- test vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "expected_plaintext", "expected_payload"), [
    (THANKS, THANKS_PLAINTEXT, THANKS_PAYLOAD),
    (ACK, ACK_PLAINTEXT, ACK_PAYLOAD),
], ids=["thanks", "ack-utf8-name"])
def test_vector_is_byte_exact_and_decrypts_independently(message, expected_plaintext,
                                                         expected_payload):
    topic = ALICE_TOPICS.events
    payload = seal(message, key=KEY, topic=topic, nonce=NONCE)
    assert payload == expected_payload
    assert proto.sealed_size(message) == len(payload)

    outer = json.loads(payload)
    assert list(outer) == ["v", "nonce", "ct"] and outer["v"] == 2
    assert base64.b64decode(outer["nonce"]) == NONCE
    aad = b"micromance/v2\n" + topic.encode()
    assert proto.associated_data(topic) == aad
    inner = ChaCha20Poly1305(KEY).decrypt(NONCE, base64.b64decode(outer["ct"]), aad)
    assert inner == expected_plaintext
    assert message.to_plaintext().encode() == expected_plaintext

    assert open_from_alice(payload) == message


def spec_names(key: bytes, member: str) -> dict[str, str]:
    """A member's names as docs/protocol.md defines them, written out without the code."""
    names_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                     info=b"micromance/v2 names").derive(key)

    def mac(text: str) -> bytes:
        return hmac.new(names_key, text.encode(), hashlib.sha256).digest()

    names = {c: mac(f"topic\n{member}\n{c}")[:16].hex() for c in ("events", "state", "presence")}
    return names | {"client_id": mac(f"client\n{member}")[:11].hex()}


def test_vector_topics_are_exact():
    assert ALICE_TOPICS.events == "452afcc3a6c99038d823c9652261623a"
    assert ALICE_TOPICS.state == "0840864eb50b68f06fca156096dee5ba"
    assert ALICE_TOPICS.presence == "6bb3eaa2538fb5ac20405e60bac6f733"
    assert ALICE_TOPICS.client_id == "18520e1e82a20f4251cb67"
    for member, topics in ((ALICE, ALICE_TOPICS), (BOB, BOB_TOPICS)):
        assert spec_names(KEY, member) == {"events": topics.events, "state": topics.state,
                                           "presence": topics.presence,
                                           "client_id": topics.client_id}
    assert proto.RETAINED == {"events": False, "state": True, "presence": True}
    assert proto.QOS == 1


def test_a_v1_payload_is_refused():
    assert reason_of(V1_THANKS_PAYLOAD) == "bad_version"


# --- round trips --------------------------------------------------------------------------

EVERY_TYPE = [
    THANKS,
    Message(type="seen", sender=ALICE, seq=2, time=TIME, name="Sam", sent_total=1),
    Message(type="seen", sender=ALICE, seq=3, time=TIME, name="Sam", sent_total=1,
            seqs=(4, 9)),
    Message(type="done", sender=ALICE, seq=4, time=TIME, name="Sam", sent_total=1, streak=12),
    ACK,
    Message(type="presence", sender=ALICE, seq=9, time=TIME, name="Sam", sent_total=1,
            online=True),
    Message(type="state", sender=ALICE, seq=10, time=TIME, name="Sam", sent_total=128,
            last_seq=5, streak=3, seen_seq=41, seen_total=40),
    Message(type="state", sender=ALICE, seq=6, time="2026-11-25T12:00:00.250000-05:00",
            name="Sam", sent_total=128, last_seq=5, streak=3),
]


@pytest.mark.parametrize("message", EVERY_TYPE, ids=lambda m: f"{m.type}-{m.seq}")
def test_every_type_round_trips(message):
    topic = getattr(ALICE_TOPICS, message.channel)
    payload = seal(message, key=KEY, topic=topic)
    assert len(payload) <= MAX_PAYLOAD_BYTES
    assert open_from_alice(payload, topic=topic) == message
    assert Message.from_plaintext(message.to_plaintext()) == message
    assert message.id == f"{ALICE}:{message.seq}"


def test_seen_without_seqs_omits_the_key():
    assert "seqs" not in json.loads(EVERY_TYPE[1].to_plaintext())
    assert json.loads(EVERY_TYPE[2].to_plaintext())["seqs"] == [4, 9]


def test_fresh_nonce_every_time():
    first, second = (seal(THANKS, key=KEY, topic=ALICE_TOPICS.events) for _ in range(2))
    assert first != second
    assert json.loads(first)["nonce"] != json.loads(second)["nonce"]
    assert open_from_alice(first) == open_from_alice(second) == THANKS


def test_memoryview_and_bytearray_payloads_open():
    assert open_from_alice(bytearray(THANKS_PAYLOAD)) == THANKS
    assert open_from_alice(memoryview(THANKS_PAYLOAD)) == THANKS


# --- rejections: size, JSON, envelope -----------------------------------------------------


@pytest.mark.parametrize("payload", [
    b"x" * (MAX_PAYLOAD_BYTES + 1),
    b"\xff" * 1_000_000,
    THANKS_PAYLOAD[:-1] + b" " * (MAX_PAYLOAD_BYTES + 1 - len(THANKS_PAYLOAD)) + b"}",
], ids=["4097-garbage", "1MB-garbage", "valid-padded-to-4097"])
def test_oversized_is_rejected_before_parsing(payload):
    assert len(payload) > MAX_PAYLOAD_BYTES
    assert reason_of(payload) == "oversized"
    assert reason_of(payload, topic="not even a topic") == "oversized"


def test_exactly_the_limit_is_parsed():
    padded = THANKS_PAYLOAD[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(THANKS_PAYLOAD)) + b"}"
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert open_from_alice(padded) == THANKS
    assert reason_of(b"x" * MAX_PAYLOAD_BYTES) == "not_json"


@pytest.mark.parametrize("payload", [
    b"", b"{", b"not json", b"\xff\xfe{}", b'{"v":2,}', b"\xef\xbb\xbf{}",
    '{"v":2}'.encode("utf-16"), b"[" * 4000 + b"]" * 96, b'{"v":NaN}', b'{"v":Infinity}',
], ids=["empty", "brace", "text", "bad-utf8", "trailing-comma", "utf8-bom", "utf16",
        "deep-nesting", "nan", "infinity"])
def test_not_json(payload):
    assert reason_of(payload) == "not_json"


@pytest.mark.parametrize("payload", [
    b"[]", b'"x"', b"1", b"null", b"true", b"[" * 500 + b"]" * 500,
    envelope(ct=None), envelope(nonce=None), envelope(v=None),
    envelope(extra="x"), envelope(seq=1), envelope(**{"from": ALICE}), envelope(V="2"),
    envelope(v="2"), envelope(v=True), envelope(v=2.0),
    envelope(nonce=base64.b64encode(bytes(11)).decode()),
    envelope(nonce=base64.b64encode(bytes(13)).decode()),
    envelope(nonce="AQIDBAUGBwgJCgsM\n"), envelope(nonce="AQIDBAUGBwgJCgs-"),
    envelope(nonce="AQIDBAUGBwgJCgsN"[:-2] + "=="), envelope(nonce=12),
    envelope(ct=base64.b64encode(bytes(15)).decode()), envelope(ct=""),
    envelope(ct=json.loads(THANKS_PAYLOAD)["ct"].rstrip("=")), envelope(ct=[1]),
    THANKS_PAYLOAD.replace(b'{"v":2,', b'{"v":2,"v":2,'),
], ids=lambda p: p[:60].decode("ascii", "replace"))
def test_bad_envelope(payload):
    assert reason_of(payload) == "bad_envelope"


def test_non_canonical_base64_is_rejected():
    """Base64 with non-zero padding bits decodes to the same bytes: refuse such twins."""
    ct = json.loads(THANKS_PAYLOAD)["ct"]
    last = ct.rstrip("=")[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = ct.rstrip("=")[:-1] + alphabet[alphabet.index(last) + 1] + "=" * ct.count("=")
    assert base64.b64decode(twin) == base64.b64decode(ct)
    assert reason_of(envelope(ct=twin)) == "bad_envelope"


@pytest.mark.parametrize("version", [0, 1, 3, -1, 10**6])
def test_other_versions(version):
    assert reason_of(envelope(v=version)) == "bad_version"
    assert reason_of(envelope(v=version, extra="future field")) == "bad_version"


# --- rejections: topics, senders, keys ----------------------------------------------------


def test_sealed_by_another_member_is_wrong_sender():
    """Only a key holder can seal at all; on Alice's topic it must be Alice speaking."""
    assert reason_of(seal_raw(plaintext(id=f"{BOB}:1"))) == "wrong_sender"
    bobs = replace(THANKS, sender=BOB)
    assert reason_of(seal_raw(bobs.to_plaintext().encode())) == "wrong_sender"


def test_wrong_key_is_undecryptable():
    assert reason_of(THANKS_PAYLOAD, key=OTHER_KEY,
                     topic=Names.derive(OTHER_KEY, ALICE).events) == "undecryptable"


def test_moved_to_another_pairs_topic():
    moved = Names.derive(OTHER_KEY, ALICE).events
    assert moved != ALICE_TOPICS.events  # the same member id in another pair: other names
    assert reason_of(THANKS_PAYLOAD, topic=moved) == "bad_topic"
    assert reason_of(THANKS_PAYLOAD, topic=moved, key=OTHER_KEY) == "undecryptable"


def test_moved_to_another_members_topic():
    # Bob's own topic, opened by someone expecting Bob: the tag binds Alice's topic.
    assert reason_of(THANKS_PAYLOAD, topic=BOB_TOPICS.events,
                     expected_sender=BOB) == "undecryptable"
    # Bob's topic while expecting Alice: not the partner's topic at all.
    assert reason_of(THANKS_PAYLOAD, topic=BOB_TOPICS.events) == "bad_topic"


def test_moved_to_another_channel():
    assert reason_of(THANKS_PAYLOAD, topic=ALICE_TOPICS.state) == "undecryptable"
    assert reason_of(THANKS_PAYLOAD, topic=ALICE_TOPICS.presence) == "undecryptable"


@pytest.mark.parametrize("topic", [
    f"micromance/v1/00112233445566778899aabbccddeeff/{ALICE}/events", "", "events",
    ALICE_TOPICS.events + "/", ALICE_TOPICS.events.upper(), "/" + ALICE_TOPICS.events,
    ALICE_TOPICS.client_id, BOB_TOPICS.events, proto.room_topic(), None,
    ALICE_TOPICS.events.encode(),
])
def test_not_a_sealed_topic(topic):
    assert reason_of(THANKS_PAYLOAD, topic=topic) == "bad_topic"


def test_caller_mistakes_are_not_protocol_errors():
    with pytest.raises(ValueError):
        open_from_alice(THANKS_PAYLOAD, key=KEY[:16])
    with pytest.raises(ValueError):
        open_from_alice(THANKS_PAYLOAD, expected_sender="alice")
    with pytest.raises(TypeError):
        open_from_alice(THANKS_PAYLOAD.decode())
    with pytest.raises(TypeError):
        open_from_alice(THANKS_PAYLOAD, expected_pair="gone in v2")


# --- rejections: plaintext ----------------------------------------------------------------


def test_seal_raw_reproduces_the_vector():
    assert seal_raw(THANKS_PLAINTEXT) == THANKS_PAYLOAD
    assert open_from_alice(seal_raw(THANKS_PLAINTEXT)) == THANKS


@pytest.mark.parametrize("inner", [
    b"not json", b"\xff", b"[]", b'"thanks"', b"", THANKS_PLAINTEXT + b"x",
    plaintext(type=None), plaintext(type=5), plaintext(type=["thanks"]),
    plaintext(id=None), plaintext(id=f"{ALICE}:0"),
    plaintext(id=f"{ALICE}:01"), plaintext(id=f"{ALICE}:+1"), plaintext(id=f"{ALICE}:1:1"),
    plaintext(id=f"{ALICE}:1 "), plaintext(id=1), plaintext(id=f"{ALICE.upper()}:1"),
    plaintext(id=f"{ALICE}:{MAX_SEQ + 1}"), plaintext(id=ALICE),
    plaintext(name=""), plaintext(name="x" * 17), plaintext(name="Sam\n"),
    plaintext(name="\x00"), plaintext(name="\u202e"), plaintext(name="\ud800"),
    plaintext(name=None), plaintext(name=5),
    plaintext(time="2026-11-25T12:00:00"), plaintext(time="2026-11-25"),
    plaintext(time="yesterday"), plaintext(time=""), plaintext(time=1764068400),
    plaintext(time="2026-11-25T12:00:00+01:00" + " " * 50),
    plaintext(time="２０２６-11-25T12:00:00+01:00"), plaintext(time=None),
    plaintext(sent_total=-1), plaintext(sent_total=True), plaintext(sent_total=1.0),
    plaintext(sent_total=2**53), plaintext(sent_total="1"), plaintext(sent_total=None),
    plaintext(extra=1), plaintext(streak=1), plaintext(seqs=[1]), plaintext(last_seq=1),
    plaintext(type="done"), plaintext(type="done", streak=-1), plaintext(type="done", streak=False),
    plaintext(type="ack"), plaintext(type="ack", seqs=[]), plaintext(type="ack", seqs=[0]),
    plaintext(type="ack", seqs=[True]), plaintext(type="ack", seqs=[1.0]),
    plaintext(type="ack", seqs=[1, 1]), plaintext(type="ack", seqs=list(range(1, 258))),
    plaintext(type="ack", seqs=[MAX_SEQ + 1]), plaintext(type="ack", seqs="1"),
    plaintext(type="ack", seqs={"1": 1}), plaintext(type="ack", seqs=[[1]]),
    plaintext(type="seen", seqs=[]), plaintext(type="seen", seqs=[-3]),
    plaintext(type="state", last_seq=1, streak=0),  # state on the events topic
    plaintext(type="presence", online=True),         # presence on the events topic
    THANKS_PLAINTEXT.replace(b'"name":"Sam"', b'"name":"Sam","name":"Max"'),
    THANKS_PLAINTEXT.replace(b'"sent_total":1', b'"sent_total":NaN'),
], ids=lambda p: p[:70].decode("utf-8", "replace"))
def test_bad_plaintext(inner):
    assert reason_of(seal_raw(inner)) == "bad_plaintext"


def test_the_seq_travels_only_inside():
    """v2 has no seq in the clear: the plaintext's is the message's (and the replay window's)."""
    assert open_from_alice(seal_raw(plaintext(id=f"{ALICE}:2"))) == replace(THANKS, seq=2)


def test_event_on_the_state_topic_is_bad_plaintext():
    payload = seal_raw(THANKS_PLAINTEXT, topic=ALICE_TOPICS.state)
    assert reason_of(payload, topic=ALICE_TOPICS.state) == "bad_plaintext"
    payload = seal_raw(EVERY_TYPE[-1].to_plaintext().encode(), topic=ALICE_TOPICS.presence)
    assert reason_of(payload, topic=ALICE_TOPICS.presence) == "bad_plaintext"


@pytest.mark.parametrize("kind", ["hug", "THANKS", "", "thanks ", "ack2"])
def test_unknown_type(kind):
    assert reason_of(seal_raw(plaintext(type=kind))) == "unknown_type"


def test_longest_name_and_unicode_name_are_fine():
    for name in ("x" * 16, "Zoë & Léa", "山田", "😀" * 16):
        message = replace(THANKS, name=name)
        assert open_from_alice(seal(message, key=KEY, topic=ALICE_TOPICS.events)) == message


# --- every bit flip -----------------------------------------------------------------------


def flip(payload: bytes, bit: int) -> bytes:
    data = bytearray(payload)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def test_every_single_bit_flip_of_the_vector_is_rejected():
    for bit in range(len(THANKS_PAYLOAD) * 8):
        with pytest.raises(ProtocolError):
            open_from_alice(flip(THANKS_PAYLOAD, bit))


def test_every_single_bit_flip_of_the_topic_is_rejected():
    topic = ALICE_TOPICS.events.encode()
    for bit in range(len(topic) * 8):
        with pytest.raises(ProtocolError) as caught:
            open_from_alice(THANKS_PAYLOAD, topic=flip(topic, bit).decode("latin-1"))
        assert caught.value.reason == "bad_topic"


# --- hypothesis ---------------------------------------------------------------------------

member_ids = st.binary(min_size=8, max_size=8).map(bytes.hex)
seqs = st.integers(1, MAX_SEQ)
counts = st.integers(0, MAX_SEQ)
names = st.text(st.characters(codec="utf-8").filter(str.isprintable), min_size=1, max_size=16)
times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(-23 * 60, 23 * 60))
seq_lists = st.lists(st.integers(1, 10**9 - 1), min_size=1, max_size=MAX_SEQS, unique=True)


@st.composite
def messages(draw, sender=None) -> Message:
    kind = draw(st.sampled_from(proto.MESSAGE_TYPES))
    extra = {}
    if kind == "done":
        extra = {"streak": draw(counts)}
    elif kind == "ack" or (kind == "seen" and draw(st.booleans())):
        extra = {"seqs": tuple(draw(seq_lists))}
    elif kind == "state":
        extra = {"last_seq": draw(counts), "streak": draw(counts), "seen_seq": draw(counts),
                 "seen_total": draw(counts)}
    elif kind == "presence":
        extra = {"online": draw(st.booleans())}
    return Message(type=kind, sender=sender or draw(member_ids), seq=draw(seqs),
                   time=draw(times), name=draw(names), sent_total=draw(counts), **extra)


def topic_for(message: Message, key: bytes = KEY) -> str:
    return getattr(Names.derive(key, message.sender), message.channel)


@settings(max_examples=200, deadline=None)
@given(messages(), st.binary(min_size=32, max_size=32))
def test_any_valid_message_round_trips_and_fits(message, key):
    topic = topic_for(message, key)
    payload = seal(message, key=key, topic=topic)
    assert len(payload) == proto.sealed_size(message) <= MAX_PAYLOAD_BYTES
    assert open_sealed(payload, key=key, topic=topic, expected_sender=message.sender) == message


@settings(max_examples=300, deadline=None)
@given(messages(sender=ALICE), st.data())
def test_any_bit_flip_is_rejected(message, data):
    topic = topic_for(message)
    payload = seal(message, key=KEY, topic=topic)
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    try:
        opened = open_from_alice(flip(payload, bit), topic=topic)
    except ProtocolError:
        return
    pytest.fail(f"bit {bit} flipped and still opened (same message: {opened == message})")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 100))
def test_arbitrary_bytes_only_raise_protocol_error(payload):
    with pytest.raises(ProtocolError) as caught:
        open_from_alice(payload)
    assert caught.value.reason in REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
envelope_values = {
    "v": st.sampled_from([2, 1, 0, True, "2", 2.0, None]) | json_values,
    "nonce": st.sampled_from([base64.b64encode(NONCE).decode(), "", "===="]) | json_values,
    "ct": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | json_values,
    "from": st.sampled_from([ALICE, BOB]) | json_values,   # v1's keys, now extras
    "seq": st.sampled_from([1, 0, MAX_SEQ]) | json_values,
}


@st.composite
def envelope_like(draw) -> dict:
    keys = draw(st.lists(st.sampled_from([*envelope_values, "extra"]), unique=True))
    return {key: draw(envelope_values.get(key, json_values)) for key in keys}


@settings(max_examples=500, deadline=None)
@given(envelope_like())
def test_arbitrary_envelopes_only_raise_protocol_error(data):
    with pytest.raises(ProtocolError):
        open_from_alice(json.dumps(data).encode())


plaintext_values = {
    "type": st.sampled_from(proto.MESSAGE_TYPES) | json_values,
    "id": st.sampled_from([f"{ALICE}:1", f"{ALICE}:2", f"{BOB}:1"]) | json_values,
    "time": times | json_values,
    "name": names | json_values,
    "sent_total": counts | json_values,
    "streak": counts | json_values,
    "last_seq": counts | json_values,
    "seqs": seq_lists | json_values,
}


@st.composite
def plaintext_like(draw) -> dict:
    keys = draw(st.lists(st.sampled_from([*plaintext_values, "extra"]), unique=True))
    return {key: draw(plaintext_values.get(key, json_values)) for key in keys}


@settings(max_examples=500, deadline=None)
@given(plaintext_like())
def test_arbitrary_plaintexts_open_only_as_valid_messages(data):
    """Correctly sealed junk: a ProtocolError, or a message that says exactly what was sent."""
    try:
        message = open_from_alice(seal_raw(json.dumps(data).encode()))
    except ProtocolError as error:
        assert error.reason in ("bad_plaintext", "unknown_type", "wrong_sender", "oversized")
        return
    assert json.loads(message.to_plaintext()) == data
    assert message.sender == ALICE


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_from_plaintext_on_arbitrary_input_only_raises_protocol_error(text):
    with pytest.raises(ProtocolError):
        Message.from_plaintext(text)


# --- building: nothing invalid leaves the unit ----------------------------------------------


@pytest.mark.parametrize("changes", [
    {"type": "hug"}, {"sender": "alice"}, {"seq": 0}, {"seq": True}, {"seq": MAX_SEQ + 1},
    {"time": "2026-11-25T12:00:00"}, {"name": ""}, {"name": "x" * 17}, {"name": "a\tb"},
    {"sent_total": -1}, {"sent_total": 1.0}, {"streak": 2}, {"seqs": (1,)}, {"last_seq": 1},
])
def test_invalid_messages_cannot_be_made(changes):
    with pytest.raises(ValueError):
        replace(THANKS, **changes)


@pytest.mark.parametrize("changes", [
    {"seqs": ()}, {"seqs": [1]}, {"seqs": (1, 1)}, {"seqs": (0,)},
    {"seqs": tuple(range(1, MAX_SEQS + 2))}, {"streak": 1},
])
def test_invalid_acks_cannot_be_made(changes):
    with pytest.raises(ValueError):
        replace(ACK, **changes)


def test_seal_refuses_what_the_partner_would_reject():
    with pytest.raises(ValueError, match="own topics"):
        seal(THANKS, key=KEY, topic=BOB_TOPICS.events)
    with pytest.raises(ValueError, match="own topics"):
        seal(THANKS, key=KEY, topic=Names.derive(OTHER_KEY, ALICE).events)
    with pytest.raises(ValueError, match="own topics"):
        seal(THANKS, key=KEY, topic="micromance/v1/00112233445566778899aabbccddeeff/"
             f"{ALICE}/events")
    with pytest.raises(ValueError, match="state topic"):
        seal(EVERY_TYPE[-1], key=KEY, topic=ALICE_TOPICS.events)
    with pytest.raises(ValueError, match="events topic"):
        seal(THANKS, key=KEY, topic=ALICE_TOPICS.state)
    with pytest.raises(ValueError):
        seal(THANKS, key=KEY, topic=ALICE_TOPICS.presence)
    with pytest.raises(ValueError):
        seal(THANKS, key=KEY[:31], topic=ALICE_TOPICS.events)
    with pytest.raises(ValueError):
        seal(THANKS, key=KEY, topic=ALICE_TOPICS.events, nonce=bytes(8))


def test_seal_refuses_oversized_and_the_documented_ack_always_fits():
    worst = Message(type="ack", sender=ALICE, seq=MAX_SEQ, time="2026-11-25T12:00:00.123456"
                    "+05:30:15.123456", name="😀" * 16, sent_total=MAX_SEQ,
                    seqs=tuple(range(10**9 - MAX_SEQS, 10**9)))
    assert proto.sealed_size(worst) <= MAX_PAYLOAD_BYTES
    assert len(seal(worst, key=KEY, topic=ALICE_TOPICS.events)) <= MAX_PAYLOAD_BYTES
    too_big = replace(worst, seqs=tuple(range(MAX_SEQ - MAX_SEQS, MAX_SEQ)))
    assert proto.sealed_size(too_big) > MAX_PAYLOAD_BYTES
    with pytest.raises(ValueError, match="exceed"):
        seal(too_big, key=KEY, topic=ALICE_TOPICS.events)


def test_format_time():
    wall = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert proto.format_time(wall) == TIME
    with pytest.raises(ValueError):
        proto.format_time(wall.replace(tzinfo=None))


# --- names: member ids, topics, client ids, rooms -------------------------------------------


def test_member_ids_are_derived_from_the_key():
    a, b = proto.member_id(KEY, "a"), proto.member_id(KEY, "b")
    assert a == hmac.new(KEY, b"micromance/v2 member\na", hashlib.sha256).digest()[:8].hex()
    assert b == hmac.new(KEY, b"micromance/v2 member\nb", hashlib.sha256).digest()[:8].hex()
    assert proto.device_member_id(KEY, ALICE) == hmac.new(
        KEY, b"micromance/v2 member\n" + ALICE.encode(), hashlib.sha256).digest()[:8].hex()
    assert len({a, b, proto.member_id(OTHER_KEY, "a"), proto.device_member_id(KEY, ALICE),
                proto.device_member_id(OTHER_KEY, ALICE), ALICE}) == 6
    assert proto.valid_member_id(a) and proto.other_role("a") == "b"
    for bad in ("c", "A", "", "ab"):
        with pytest.raises(ValueError):
            proto.member_id(KEY, bad)
    with pytest.raises(ValueError):
        proto.device_member_id(KEY, ALICE.upper())
    with pytest.raises(ValueError):
        proto.member_id(KEY[:31], "a")


def test_members_of_a_pair_from_either_kind_of_pair_file():
    """v2 pairs keep the partner's member id, pairs from before keep device ids."""
    a, b = proto.member_id(KEY, "a"), proto.member_id(KEY, "b")
    assert proto.members(KEY, ALICE, b) == (a, b)   # this unit was A; its device id is moot
    assert proto.members(KEY, BOB, a) == (b, a)
    legacy = proto.members(KEY, ALICE, BOB)
    assert legacy == (proto.device_member_id(KEY, ALICE), proto.device_member_id(KEY, BOB))
    assert proto.members(KEY, BOB, ALICE) == legacy[::-1]  # the partner computes the same
    mine, partner = proto.pair_names(KEY, ALICE, BOB)
    assert (mine.member, partner.member) == legacy
    assert mine == Names.derive(KEY, legacy[0]) and partner == Names.derive(KEY, legacy[1])
    with pytest.raises(ValueError):
        proto.members(KEY, "alice", BOB)


def test_topics_are_opaque_and_unlinkable():
    everything = [name for key in (KEY, OTHER_KEY) for member in (ALICE, BOB)
                  for name in (*Names.derive(key, member).topics,
                               Names.derive(key, member).client_id)]
    assert len(set(everything)) == len(everything)  # other pair or member: other names
    for topics in (ALICE_TOPICS, BOB_TOPICS):
        assert all(len(t) == 32 and "/" not in t and ALICE not in t for t in topics.topics)
        assert len(topics.client_id) == 22 <= 23  # an MQTT 3.1.1 broker takes it
    for channel in ("events", "state", "presence"):
        assert ALICE_TOPICS.channel(getattr(ALICE_TOPICS, channel)) == channel
    for other in (BOB_TOPICS.events, ALICE_TOPICS.client_id, "", None, 5, ALICE_TOPICS.events[:-1]):
        assert ALICE_TOPICS.channel(other) is None
    assert ALICE_TOPICS.topics == (ALICE_TOPICS.events, ALICE_TOPICS.state,
                                   ALICE_TOPICS.presence)
    assert KEY.hex() not in repr(ALICE_TOPICS)


@pytest.mark.parametrize("changes", [
    {"member": "alice"}, {"events": "x"}, {"state": ALICE_TOPICS.state.upper()},
    {"presence": ALICE_TOPICS.events}, {"client_id": "micromance-0123456789abcdef"},
    {"client_id": ALICE_TOPICS.client_id + "0"},
])
def test_topics_refuse_malformed_names(changes):
    assert Names(**vars(ALICE_TOPICS)) == ALICE_TOPICS  # stored names come back
    with pytest.raises(ValueError):
        replace(ALICE_TOPICS, **changes)


def test_derive_refuses_bad_ids_and_keys():
    for member in (ALICE.upper(), ALICE[:-1], "+", None):
        with pytest.raises(ValueError):
            Names.derive(KEY, member)
    with pytest.raises(ValueError):
        Names.derive(KEY[:16], ALICE)


def test_room_topics():
    lobby = proto.room_topic()
    assert lobby == proto.room_topic("lobby") == proto.room_topic(proto.DEFAULT_ROOM)
    assert lobby == hashlib.sha256(b"micromance/v2 room\nlobby").digest()[:16].hex()
    assert proto.room_topic("Lobby") != lobby and len(proto.room_topic("a" * 64)) == 32
    for bad in ("a b", "a/b", "#", "+", "a" * 65, "ümlaut"):
        with pytest.raises(ValueError):
            proto.room_topic(bad)
    assert len(proto.new_client_id()) == 22 and proto.new_client_id() != proto.new_client_id()


def test_v1_names_are_only_for_clearing_and_the_transition():
    pair = "00112233445566778899aabbccddeeff"
    assert proto.v1_retained_topics(pair, ALICE) == (f"micromance/v1/{pair}/{ALICE}/state",
                                                     f"micromance/v1/{pair}/{ALICE}/presence")
    with pytest.raises(ValueError):
        proto.v1_retained_topics(pair, "alice")
    old_state, old_presence = proto.v1_retained_topics(pair, ALICE)
    with pytest.raises(ValueError, match="own topics"):
        seal(THANKS, key=KEY, topic=old_state)
    assert reason_of(THANKS_PAYLOAD, topic=old_presence) == "bad_topic"


# --- ids, errors ----------------------------------------------------------------------------


def test_ids_and_keys():
    assert proto.valid_pair_id(proto.new_pair_id())
    assert proto.valid_device_id(proto.new_device_id())
    assert len(proto.new_key()) == 32
    assert proto.new_key() != proto.new_key()
    pair = "00112233445566778899aabbccddeeff"
    for bad in (pair.upper(), pair[:-1], pair + "0", pair + "\n", "g" * 32, None, 0):
        assert not proto.valid_pair_id(bad)
    for bad in (ALICE.upper(), ALICE[:-1], ALICE + "0", ALICE + "\n", "g" * 16, None, 0):
        assert not proto.valid_device_id(bad) and not proto.valid_member_id(bad)


def test_protocol_error_is_not_a_setup_failure_and_never_quotes_the_payload():
    assert not issubclass(ProtocolError, LinkError)
    secret = b'{"v":2,"nonce":"SECRETSECRET","ct":"AA=="}'
    for payload in (secret, secret[:-1], secret + b"x" * 5000,
                    seal_raw(b'{"type":"SECRET"}'), seal_raw(plaintext(name="SECRET\n"))):
        with pytest.raises(ProtocolError) as caught:
            open_from_alice(payload)
        assert "SECRET" not in str(caught.value)
    with pytest.raises(ValueError):
        ProtocolError("something_else")
    assert set(REASONS) == {"oversized", "bad_topic", "wrong_sender", "not_json",
                            "bad_envelope", "bad_version", "undecryptable", "bad_plaintext",
                            "unknown_type"}


# --- replay window ------------------------------------------------------------------------


def accept_all(seqs) -> tuple[ReplayWindow, list[int]]:
    window, accepted = ReplayWindow(), []
    for seq in seqs:
        if window.check(seq):
            window = window.accept(seq)
            accepted.append(seq)
    return window, accepted


def test_new_seqs_accepted_once():
    window, accepted = accept_all([1, 2, 3, 2, 3, 1, 4])
    assert accepted == [1, 2, 3, 4]
    assert (window.highest, window.bitmap) == (4, 0b1111)


def test_out_of_order_within_the_window_accepted_once():
    window, accepted = accept_all([100, 40, 37, 99, 40, 50, 37, 100])
    assert accepted == [100, 40, 37, 99, 50]
    assert window.check(38) and window.check(98)


def test_older_than_the_window_is_refused():
    window, _ = accept_all([100])
    assert window.check(37) and not window.check(36) and not window.check(1)
    window = window.accept(200)
    assert not window.check(136) and window.check(137)
    window = window.accept(10**6)  # a jump wider than the window keeps only the new seq
    assert (window.highest, window.bitmap) == (10**6, 1)


def test_the_window_is_immutable_and_accept_requires_check():
    window = ReplayWindow().accept(5)
    assert window.accept(6) != window
    assert window.highest == 5
    with pytest.raises(ValueError):
        window.accept(5)
    with pytest.raises(AttributeError):
        window.highest = 9  # type: ignore[misc]


@pytest.mark.parametrize("seq", [0, -1, True, 1.0, "2", None, MAX_SEQ + 1])
def test_invalid_seqs_are_never_acceptable(seq):
    assert not ReplayWindow().check(seq)
    with pytest.raises(ValueError):
        ReplayWindow().accept(seq)


def test_largest_seq_is_acceptable():
    assert ReplayWindow().accept(MAX_SEQ).highest == MAX_SEQ


def test_window_json_round_trip():
    window, _ = accept_all([70, 3, 64, 69, 10**5, 10**5 - 63])
    text = window.to_json()
    assert json.loads(text) == {"highest": window.highest, "bitmap": window.bitmap}
    assert ReplayWindow.from_json(text) == window
    assert ReplayWindow.from_json(text.encode()) == window
    assert ReplayWindow.from_json(ReplayWindow().to_json()) == ReplayWindow()


@pytest.mark.parametrize("text", [
    "", "garbage", "null", "[]", "{}", '{"highest":1}', '{"highest":1,"bitmap":1,"x":0}',
    '{"highest":true,"bitmap":1}', '{"highest":1,"bitmap":1.0}', '{"highest":-1,"bitmap":0}',
    '{"highest":5,"bitmap":18446744073709551616}', '{"highest":5,"bitmap":2}',
    '{"highest":0,"bitmap":1}', '{"highest":2,"bitmap":7}', '{"highest":1,"bitmap":NaN}',
    '{"highest":9007199254740992,"bitmap":1}', b"\xff", None, 5, "[" * 100_000,
])
def test_window_from_garbage_is_a_value_error(text):
    with pytest.raises(ValueError):
        ReplayWindow.from_json(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(1, 300) | st.integers(1, MAX_SEQ), max_size=200))
def test_window_matches_its_specification(offered):
    """Accepted iff new and above highest-64; every seq above all earlier ones is accepted."""
    window, accepted = ReplayWindow(), set()
    for index, seq in enumerate(offered):
        expected = seq not in accepted and seq > window.highest - 64
        assert window.check(seq) == expected
        if seq > max(offered[:index], default=0):
            assert expected
        if expected:
            window = window.accept(seq)
            accepted.add(seq)
        assert ReplayWindow.from_json(window.to_json()) == window
    _, accepted_list = accept_all(offered)
    assert len(accepted_list) == len(set(accepted_list)) == len(accepted)
