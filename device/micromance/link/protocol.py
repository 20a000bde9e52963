"""Partner link protocol v1: topics, the sealed envelope, plaintext messages, anti-replay.

This is the **contract** of DESIGN.md ("Partner link — protocol v1") as code. It is pure:
no sockets, no files, no clock reads, no threads. The only system call is ``os.urandom`` for
fresh nonces, keys and pair ids, so the MQTT adapter, the store and the tests can all share it.

Wire format of a sealed payload (UTF-8 JSON, keys in this order, no whitespace)::

    {"v":1,"from":D,"seq":n,"nonce":B64(12 bytes),"ct":B64(ChaCha20-Poly1305(plaintext))}

with associated data ``b"micromance/v1\\n" + topic + b"\\n" + from + b"\\n" + str(seq)``, so a
payload only opens on the topic it was sealed for, under the sender and seq it claims.

The parser trusts nothing: everything is checked before it is used, every failure is a
:class:`ProtocolError` with a reason from :data:`REASONS`, and no error text ever contains
payload bytes (the daemon logs rejections once at WARNING; a dump would leak and spam).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

# --- constants of the contract ----------------------------------------------------------

VERSION = 1
TOPIC_ROOT = "micromance/v1"
AAD_PREFIX = b"micromance/v1\n"
MAX_PAYLOAD_BYTES = 4096
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_SEQ = 2**53 - 1  # largest integer every JSON implementation keeps exact
MAX_SEQS = 256  # seqs listed in one ack or seen; 256 seqs below 10**9 always fit in a payload
MAX_NAME_CHARS = 16
MAX_TIME_CHARS = 64  # a full isoformat() with microseconds in time and offset is 42

EVENTS, STATE, PRESENCE = "events", "state", "presence"
CHANNELS = (EVENTS, STATE, PRESENCE)
SEALED_CHANNELS = (EVENTS, STATE)
RETAINED = {EVENTS: False, STATE: True, PRESENCE: True}
QOS = 1
PRESENCE_ONLINE = b"online"
PRESENCE_OFFLINE = b"offline"

THANKS, SEEN, DONE, ACK, STATE_TYPE = "thanks", "seen", "done", "ack", "state"
#: Sent once by a unit whose person ran ``pair --forget``: the partner forgets the pair too.
UNPAIR = "unpair"
MESSAGE_TYPES = (THANKS, SEEN, DONE, ACK, STATE_TYPE, UNPAIR)

_ENVELOPE_KEYS = ("v", "from", "seq", "nonce", "ct")
_BASE_KEYS = ("type", "id", "time", "name", "sent_total")
# Keys each type carries beyond the base ones: (required, optional).
_EXTRA_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    THANKS: ((), ()),
    SEEN: ((), ("seqs",)),
    DONE: (("streak",), ()),
    ACK: (("seqs",), ()),
    STATE_TYPE: (("last_seq", "streak"), ()),
    UNPAIR: ((), ()),
}

_DEVICE_ID = re.compile(r"[0-9a-f]{16}")
_PAIR_ID = re.compile(r"[0-9a-f]{32}")
_CANONICAL_SEQ = re.compile(r"[1-9][0-9]{0,15}")

Reason = Literal[
    "oversized",      # more than MAX_PAYLOAD_BYTES: dropped before any parsing
    "bad_topic",      # the topic is not a sealed v1 topic (events or state)
    "wrong_pair",     # the topic belongs to another pair
    "wrong_sender",   # the topic is not the expected sender's, or "from" is not the topic's
    "not_json",       # not UTF-8, or not JSON
    "bad_envelope",   # not an object, wrong keys, wrong types or ranges, duplicate keys
    "bad_version",    # "v" is an integer other than 1
    "undecryptable",  # wrong key, tampered, or moved to another topic / sender / seq
    "bad_plaintext",  # decrypted, but not a valid v1 message (or id not bound to envelope)
    "unknown_type",   # a valid plaintext object whose "type" this version does not know
]
REASONS: tuple[str, ...] = get_args(Reason)


class ProtocolError(Exception):
    """A payload that is not a valid message sealed by the partner.

    Deliberately *not* a :class:`micromance.errors.LinkError`: those are setup failures that end
    the program with an exit code, while a bad payload is routine hostile input from the network
    that is dropped, counted and logged, and must never stop the daemon.
    ``reason`` is one of :data:`REASONS` (for counters and logs); the message never quotes the
    payload.
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown ProtocolError reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: str = reason
        self.detail = detail


# --- ids, keys and topics ----------------------------------------------------------------


def valid_device_id(value: object) -> bool:
    """16 lowercase hex characters (64 random bits), as it appears in topics."""
    return isinstance(value, str) and _DEVICE_ID.fullmatch(value) is not None


def valid_pair_id(value: object) -> bool:
    """32 lowercase hex characters (128 random bits), as it appears in topics."""
    return isinstance(value, str) and _PAIR_ID.fullmatch(value) is not None


def valid_seq(value: object) -> bool:
    """An int (not a bool) in 1 .. 2**53-1."""
    return type(value) is int and 1 <= value <= MAX_SEQ


def new_pair_id() -> str:
    """A fresh random pair id (pairing derives the real one; this serves tests and tools)."""
    return os.urandom(16).hex()


def new_device_id() -> str:
    """A fresh random device id."""
    return os.urandom(8).hex()


def new_key() -> bytes:
    """A fresh random 32-byte pair key."""
    return os.urandom(KEY_BYTES)


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
        """Plain ``online``/``offline``; retained, also the Last Will."""
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


def format_time(wall: datetime) -> str:
    """A message's ``time`` from an aware local datetime (whole seconds, with offset)."""
    if wall.utcoffset() is None:
        raise ValueError("message time needs a timezone offset")
    return wall.isoformat(timespec="seconds")


# --- messages -----------------------------------------------------------------------------


def _valid_count(value: object) -> bool:
    """A grow-only total or streak: an int (not a bool) in 0 .. 2**53-1."""
    return type(value) is int and 0 <= value <= MAX_SEQ


def _valid_name(value: object) -> bool:
    return (isinstance(value, str) and 1 <= len(value) <= MAX_NAME_CHARS
            and value.isprintable())


def _valid_time(value: object) -> bool:
    """Parses with fromisoformat and carries an offset: the receiver shows the sender's day."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TIME_CHARS or not value.isascii():
        return False
    try:
        return datetime.fromisoformat(value).utcoffset() is not None
    except (ValueError, OverflowError):
        return False


def _valid_seqs(value: object) -> bool:
    """1..MAX_SEQS distinct valid seqs (a well-behaved sender never repeats one)."""
    return (isinstance(value, tuple) and 1 <= len(value) <= MAX_SEQS
            and all(valid_seq(seq) for seq in value) and len(set(value)) == len(value))


@dataclass(frozen=True)
class Message:
    """One plaintext message, valid by construction (ValueError otherwise).

    ``sender`` and ``seq`` travel in the envelope and, bound to it, as the plaintext ``id``.
    Fields a type does not carry must keep their defaults, so that every Message survives a
    round trip over the wire unchanged. ``seqs`` is empty for a ``seen`` without seqs.
    """

    type: str
    sender: str
    seq: int
    time: str
    name: str
    sent_total: int
    streak: int = 0
    seqs: tuple[int, ...] = ()
    last_seq: int = 0

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid {self.type!r} message: {problem}")

    def _problem(self) -> str:
        if self.type not in MESSAGE_TYPES:
            return "unknown type"
        if not valid_device_id(self.sender):
            return "sender must be a device id (16 lowercase hex characters)"
        if not valid_seq(self.seq):
            return f"seq must be an int in 1..{MAX_SEQ}"
        if not _valid_time(self.time):
            return "time must be ISO-8601 with a UTC offset"
        if not _valid_name(self.name):
            return f"name must be 1..{MAX_NAME_CHARS} printable characters"
        for field in ("sent_total", "streak", "last_seq"):
            if not _valid_count(getattr(self, field)):
                return f"{field} must be an int in 0..{MAX_SEQ}"
        required, optional = _EXTRA_KEYS[self.type]
        carried = set(required) | set(optional)
        if "streak" not in carried and self.streak != 0:
            return "streak is not carried by this type"
        if "last_seq" not in carried and self.last_seq != 0:
            return "last_seq is not carried by this type"
        if "seqs" not in carried and self.seqs != ():
            return "seqs is not carried by this type"
        if ("seqs" in required or self.seqs != ()) and not _valid_seqs(self.seqs):
            return f"seqs must be a tuple of 1..{MAX_SEQS} distinct valid seqs"
        return ""

    @property
    def id(self) -> str:
        """``"<sender>:<seq>"``: the message's identity, used for dedup and acks."""
        return f"{self.sender}:{self.seq}"

    @property
    def channel(self) -> str:
        """The only channel this message may be sealed for: state on state, the rest on events."""
        return STATE if self.type == STATE_TYPE else EVENTS

    def to_plaintext(self) -> str:
        """The exact plaintext JSON (compact, keys in contract order); the outbox keeps it."""
        data: dict[str, Any] = {"type": self.type, "id": self.id, "time": self.time,
                                "name": self.name, "sent_total": self.sent_total}
        required, optional = _EXTRA_KEYS[self.type]
        for key in (*required, *optional):
            value = getattr(self, key)
            if key == "seqs":
                if value:
                    data[key] = list(value)
            else:
                data[key] = value
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_plaintext(cls, text: str | bytes) -> Message:
        """Parse a plaintext; ProtocolError ``bad_plaintext`` or ``unknown_type`` if invalid."""
        data = _strict_json(text, "bad_plaintext")
        if not isinstance(data, dict):
            raise ProtocolError("bad_plaintext", "not a JSON object")
        kind = data.get("type")
        if not isinstance(kind, str):
            raise ProtocolError("bad_plaintext", "type missing or not a string")
        if kind not in MESSAGE_TYPES:
            raise ProtocolError("unknown_type", "type not known to protocol v1")
        required, optional = _EXTRA_KEYS[kind]
        keys = set(data)
        if not set(_BASE_KEYS) | set(required) <= keys <= set(_BASE_KEYS) | set(required) | set(
                optional):
            raise ProtocolError("bad_plaintext", f"wrong key set for {kind}")
        sender, seq = _parse_id(data["id"])
        seqs = data.get("seqs", [])
        if not isinstance(seqs, list):
            raise ProtocolError("bad_plaintext", "seqs is not a list")
        if "seqs" in data and not seqs:
            raise ProtocolError("bad_plaintext", "seqs is empty")
        try:
            return cls(type=kind, sender=sender, seq=seq, time=data["time"], name=data["name"],
                       sent_total=data["sent_total"], streak=data.get("streak", 0),
                       seqs=tuple(seqs), last_seq=data.get("last_seq", 0))
        except ValueError as exc:
            raise ProtocolError("bad_plaintext", str(exc).split(": ", 1)[-1]) from None


def _parse_id(value: object) -> tuple[str, int]:
    """``"<device id>:<seq>"`` in canonical form (no sign, no leading zeros)."""
    if isinstance(value, str) and value.count(":") == 1:
        sender, seq_text = value.split(":")
        if valid_device_id(sender) and _CANONICAL_SEQ.fullmatch(seq_text):
            seq = int(seq_text)
            if seq <= MAX_SEQ:
                return sender, seq
    raise ProtocolError("bad_plaintext", "id is not <device id>:<seq>")


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
        raise ValueError("sealed messages go on a v1 events or state topic")
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
        raise ProtocolError("bad_topic", "not a v1 events or state topic")
    topic_pair, topic_device, channel = parsed
    if expected_pair is not None and topic_pair != expected_pair:
        raise ProtocolError("wrong_pair", "topic of another pair")
    if topic_device != expected_sender:
        raise ProtocolError("wrong_sender", "topic of another device")

    envelope = _strict_json(bytes(payload), "not_json")
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


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Reject duplicate keys: two parsers must never disagree on which value counts."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey("duplicate key")
    return result


def _no_constant(name: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _strict_json(data: str | bytes, reason: Reason) -> object:
    """Strict UTF-8 JSON: no other encodings, no NaN, no duplicate keys, no deep-nesting crash."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey:
        raise ProtocolError("bad_envelope" if reason == "not_json" else reason,
                            "duplicate key") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise ProtocolError(reason, "not UTF-8 JSON") from None


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


# --- anti-replay ----------------------------------------------------------------------------

WINDOW_SIZE = 64
_WINDOW_MASK = (1 << WINDOW_SIZE) - 1


@dataclass(frozen=True)
class ReplayWindow:
    """Which seqs of one sender were already accepted, like IPsec's sliding window.

    ``highest`` is the largest accepted seq (0: none yet); bit ``i`` of ``bitmap`` says that
    ``highest - i`` was accepted. Seqs at or below ``highest - 64`` are too old to tell apart
    from replays and are refused; that costs nothing in practice, because a sender's outbox
    redelivers in seq order and the partner acks, so reordering spans a few seqs at most.
    Immutable: the caller stores the new window in the same transaction as the effect.
    """

    highest: int = 0
    bitmap: int = 0

    def __post_init__(self) -> None:
        if type(self.highest) is not int or not 0 <= self.highest <= MAX_SEQ:
            raise ValueError(f"highest must be an int in 0..{MAX_SEQ}")
        if type(self.bitmap) is not int or not 0 <= self.bitmap <= _WINDOW_MASK:
            raise ValueError("bitmap must be an unsigned 64-bit int")
        if self.highest and not self.bitmap & 1:
            raise ValueError("bitmap must mark highest as accepted")
        if self.bitmap >> self.highest:
            raise ValueError("bitmap marks seqs below 1")

    def check(self, seq: int) -> bool:
        """True if ``seq`` is valid and was not accepted before (and is not too old to know)."""
        if not valid_seq(seq):
            return False
        if seq > self.highest:
            return True
        offset = self.highest - seq
        return offset < WINDOW_SIZE and not (self.bitmap >> offset) & 1

    def accept(self, seq: int) -> ReplayWindow:
        """The window after accepting ``seq``; ValueError unless ``check(seq)``."""
        if not self.check(seq):
            raise ValueError("seq is a replay, too old, or invalid")
        if seq > self.highest:
            shift = seq - self.highest
            bitmap = ((self.bitmap << shift) | 1) & _WINDOW_MASK if shift < WINDOW_SIZE else 1
            return ReplayWindow(highest=seq, bitmap=bitmap)
        return ReplayWindow(highest=self.highest, bitmap=self.bitmap | 1 << (self.highest - seq))

    def to_json(self) -> str:
        """Compact JSON for the store."""
        return json.dumps({"highest": self.highest, "bitmap": self.bitmap},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ReplayWindow:
        """Inverse of :meth:`to_json`; ValueError for anything else (the store decides)."""
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (TypeError, ValueError, RecursionError):
            raise ValueError("replay window is not JSON") from None
        if not isinstance(data, dict) or set(data) != {"highest", "bitmap"}:
            raise ValueError("replay window must be {'highest': n, 'bitmap': n}")
        return cls(highest=data["highest"], bitmap=data["bitmap"])
