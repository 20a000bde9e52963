"""Protocol v1 envelope: the topics, sealing and opening, bound to topic, sender and seq.

Pure: no sockets, files, clocks or threads (``os.urandom`` makes fresh nonces). The wire format
is described in ``docs/protocol.md``; in short, a sealed payload is UTF-8 JSON, keys in this
order, no whitespace::

    {"v":1,"from":D,"seq":n,"nonce":B64(12 bytes),"ct":B64(ChaCha20-Poly1305(plaintext))}

with associated data ``b"micromance/v1\\n" + topic + b"\\n" + from + b"\\n" + str(seq)``, so a
payload only opens on the topic it was sealed for, under the sender and seq it claims.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from micromance.protocol.messages import (
    EVENTS,
    KEY_BYTES,
    MAX_SEQ,
    PRESENCE,
    STATE,
    VERSION,
    Message,
    ProtocolError,
    strict_json,
    valid_device_id,
    valid_pair_id,
    valid_seq,
)

TOPIC_ROOT = "micromance/v1"
AAD_PREFIX = b"micromance/v1\n"
MAX_PAYLOAD_BYTES = 4096
NONCE_BYTES = 12
TAG_BYTES = 16

CHANNELS = (EVENTS, STATE, PRESENCE)
SEALED_CHANNELS = (EVENTS, STATE, PRESENCE)
RETAINED = {EVENTS: False, STATE: True, PRESENCE: True}
QOS = 1
_ENVELOPE_KEYS = ("v", "from", "seq", "nonce", "ct")


@dataclass(frozen=True)
class Topics:
    """The three topics one device publishes on within a pair."""

    pair_id: str
    device_id: str

    def __post_init__(self) -> None:
        if not valid_pair_id(self.pair_id):
            raise ValueError("pair id must be 32 lowercase hex characters")
        if not valid_device_id(self.device_id):
            raise ValueError("device id must be 16 lowercase hex characters")

    def _topic(self, channel: str) -> str:
        return f"{TOPIC_ROOT}/{self.pair_id}/{self.device_id}/{channel}"

    @property
    def events(self) -> str:
        """Sealed events; QoS 1, not retained."""
        return self._topic(EVENTS)

    @property
    def state(self) -> str:
        """Sealed summary of the device; QoS 1, retained."""
        return self._topic(STATE)

    @property
    def presence(self) -> str:
        """Sealed presence (``online`` true or false); retained, also the Last Will."""
        return self._topic(PRESENCE)


def parse_topic(topic: object) -> tuple[str, str, str] | None:
    """``(pair_id, device_id, channel)`` of a v1 device topic, or None for anything else."""
    if not isinstance(topic, str):
        return None
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    _, _, pair_id, device_id, channel = parts
    if valid_pair_id(pair_id) and valid_device_id(device_id) and channel in CHANNELS:
        return pair_id, device_id, channel
    return None


def associated_data(topic: str, sender: str, seq: int) -> bytes:
    """What the AEAD tag binds besides the plaintext: the topic, the sender and the seq."""
    return AAD_PREFIX + topic.encode() + b"\n" + sender.encode() + b"\n" + str(seq).encode()


# --- sealing and opening --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sealed_size(message: Message) -> int:
    """Exact length of ``seal(message, ...)`` without encrypting (used to split long acks).

    Any ack of up to MAX_SEQS seqs below 10**9 fits, whatever its other fields hold.
    """
    plaintext_bytes = len(message.to_plaintext().encode("utf-8"))
    ct_chars = 4 * -(-(plaintext_bytes + TAG_BYTES) // 3)
    nonce_chars = 4 * -(-NONCE_BYTES // 3)
    skeleton = _envelope_json(message.sender, message.seq, "", "")
    return len(skeleton) + nonce_chars + ct_chars


def _envelope_json(sender: str, seq: int, nonce: str, ct: str) -> bytes:
    envelope = {"v": VERSION, "from": sender, "seq": seq, "nonce": nonce, "ct": ct}
    return json.dumps(envelope, separators=(",", ":")).encode("ascii")


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"the pair key must be {KEY_BYTES} bytes")
    return key


def seal(message: Message, *, key: bytes, topic: str, nonce: bytes | None = None) -> bytes:
    """The payload to publish on ``topic``. ValueError for anything the partner would reject.

    ``nonce`` is for test vectors only: reusing a nonce under one key breaks the cipher.
    """
    _check_key(key)
    parsed = parse_topic(topic)
    if parsed is None or parsed[2] not in SEALED_CHANNELS:
        raise ValueError("sealed messages go on a v1 device topic")
    if parsed[1] != message.sender:
        raise ValueError("a device seals only on its own topics")
    if parsed[2] != message.channel:
        raise ValueError(f"a {message.type!r} message belongs on the {message.channel} topic")
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
    if sealed_size(message) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"sealed message would exceed {MAX_PAYLOAD_BYTES} bytes; send fewer seqs")
    ct = ChaCha20Poly1305(key).encrypt(
        nonce, message.to_plaintext().encode("utf-8"),
        associated_data(topic, message.sender, message.seq))
    return _envelope_json(message.sender, message.seq, _b64(nonce), _b64(ct))


def open_sealed(payload: bytes, *, key: bytes, topic: str, expected_sender: str,
                expected_pair: str | None = None) -> Message:
    """The partner's message in ``payload`` received on ``topic``, or ProtocolError.

    ``expected_sender`` is the partner's device id; ``expected_pair`` (optional, the key already
    binds the pair) turns a message on another pair's topic into ``wrong_pair`` instead of
    ``undecryptable``. A returned Message is authentic and bound to ``topic``; replay checking
    (:class:`ReplayWindow`) is the caller's next step.
    """
    cipher = ChaCha20Poly1305(_check_key(key))
    if not valid_device_id(expected_sender):
        raise ValueError("expected_sender must be a device id")
    if expected_pair is not None and not valid_pair_id(expected_pair):
        raise ValueError("expected_pair must be a pair id")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError("payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"{len(payload)} bytes")
    parsed = parse_topic(topic)
    if parsed is None or parsed[2] not in SEALED_CHANNELS:
        raise ProtocolError("bad_topic", "not a v1 device topic")
    topic_pair, topic_device, channel = parsed
    if expected_pair is not None and topic_pair != expected_pair:
        raise ProtocolError("wrong_pair", "topic of another pair")
    if topic_device != expected_sender:
        raise ProtocolError("wrong_sender", "topic of another device")

    envelope = strict_json(bytes(payload), "not_json")
    sender, seq, nonce, ct = _check_envelope(envelope)
    if sender != topic_device:
        raise ProtocolError("wrong_sender", "'from' is not the topic's device")
    try:
        plaintext = cipher.decrypt(nonce, ct, associated_data(topic, sender, seq))
    except InvalidTag:
        raise ProtocolError("undecryptable", "wrong key, tampered or moved") from None

    message = Message.from_plaintext(plaintext)
    if message.sender != sender or message.seq != seq:
        raise ProtocolError("bad_plaintext", "id does not match the envelope")
    if message.channel != channel:
        raise ProtocolError("bad_plaintext", f"{message.type!r} on the {channel} topic")
    return message



def _canonical_b64(value: object) -> bytes | None:
    """Decode standard padded base64 only in its one canonical spelling (no malleability)."""
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64(raw) == value else None


def _check_envelope(envelope: object) -> tuple[str, int, bytes, bytes]:
    if not isinstance(envelope, dict):
        raise ProtocolError("bad_envelope", "not a JSON object")
    if "v" not in envelope or type(envelope["v"]) is not int:
        raise ProtocolError("bad_envelope", "v missing or not an integer")
    if envelope["v"] != VERSION:
        raise ProtocolError("bad_version", "not protocol v1")
    if set(envelope) != set(_ENVELOPE_KEYS):
        raise ProtocolError("bad_envelope", "wrong key set")
    sender, seq = envelope["from"], envelope["seq"]
    if not valid_device_id(sender):
        raise ProtocolError("bad_envelope", "from is not a device id")
    if not valid_seq(seq):
        raise ProtocolError("bad_envelope", f"seq is not an int in 1..{MAX_SEQ}")
    nonce = _canonical_b64(envelope["nonce"])
    if nonce is None or len(nonce) != NONCE_BYTES:
        raise ProtocolError("bad_envelope", "nonce is not 12 bytes of canonical base64")
    ct = _canonical_b64(envelope["ct"])
    if ct is None or len(ct) < TAG_BYTES:
        raise ProtocolError("bad_envelope", "ct is not canonical base64 of at least 16 bytes")
    return sender, seq, nonce, ct


