"""Protocol v2 messages: ids, the plaintext message types and their strict parser.

Pure: no sockets, files, clocks or threads (``os.urandom`` makes fresh ids and keys). The
wire format and every rule here are described in ``docs/protocol.md``.

The parser trusts nothing: everything is checked before it is used, every failure is a
:class:`ProtocolError` with a reason from :data:`REASONS`, and no error text ever contains
payload bytes (the daemon logs rejections once at WARNING; a dump would leak and spam).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NoReturn, get_args

# --- limits -------------------------------------------------------------------------------

VERSION = 2  # the sealed envelope's "v"
KEY_BYTES = 32
MAX_SEQ = 2**53 - 1  # largest integer every JSON implementation keeps exact
MAX_SEQS = 256  # seqs listed in one ack or seen; 256 seqs below 10**9 always fit in a payload
MAX_NAME_CHARS = 16
#: A unit numbers each run's messages from its wall clock on: this many seqs a second since
#: the epoch (1024 a second lasts 280,000 years below MAX_SEQ). So a store that went back in
#: time never numbers new messages with seqs its partner saw, and a receiver can tell a
#: plausible seq from one that could only come from a broken or hostile sender.
SEQS_PER_SECOND = 1024
#: The largest total a message may carry (a couple does not thank each other 4 billion times).
MAX_TOTAL = 2**32
MAX_TIME_CHARS = 64  # a full isoformat() with microseconds in time and offset is 42


class MessageType(StrEnum):
    """What a sealed message says; the value is its ``type`` on the wire."""

    THANKS = "thanks"      # a thank-you (reliable: kept in the outbox until acked)
    SEEN = "seen"          # the person looked at the partner's thank-you(s) (reliable)
    DONE = "done"          # today's gesture marked done (reliable)
    ACK = "ack"            # end-to-end acknowledgement of the partner's seqs
    STATE = "state"        # the retained summary: totals, and what we saw of the partner
    UNPAIR = "unpair"      # the person ran ``pair --forget``: the partner forgets the pair
    PRESENCE = "presence"  # online or offline, retained; the Last Will is one too


#: Every type there is, in wire order (property tests draw from it).
MESSAGE_TYPES: tuple[MessageType, ...] = tuple(MessageType)
#: The channels (last topic level) a device publishes on; every one carries sealed messages.
EVENTS, STATE, PRESENCE = "events", "state", "presence"

_BASE_KEYS = ("type", "id", "time", "name", "sent_total")
# Keys each type carries beyond the base ones: (required, optional).
_EXTRA_KEYS: dict[MessageType, tuple[tuple[str, ...], tuple[str, ...]]] = {
    MessageType.THANKS: ((), ()),
    MessageType.SEEN: ((), ("seqs",)),
    MessageType.DONE: (("streak",), ()),
    MessageType.ACK: (("seqs",), ()),
    MessageType.STATE: (("last_seq", "streak"), ("seen_seq", "seen_total")),
    MessageType.UNPAIR: ((), ()),
    MessageType.PRESENCE: (("online",), ()),
}
#: Keys left out of the plaintext while they hold their default (optional ones).
_DEFAULTS: dict[str, object] = {"seqs": (), "seen_seq": 0, "seen_total": 0}

_DEVICE_ID = re.compile(r"[0-9a-f]{16}")
_PAIR_ID = re.compile(r"[0-9a-f]{32}")
_CANONICAL_SEQ = re.compile(r"[1-9][0-9]{0,15}")

Reason = Literal[
    "oversized",      # more than MAX_PAYLOAD_BYTES: dropped before any parsing
    "bad_topic",      # the topic is none of the expected sender's (events, state, presence)
    "wrong_sender",   # authentic, but the plaintext's sender is not the expected member
    "not_json",       # not UTF-8, or not JSON
    "bad_envelope",   # not an object, wrong keys, wrong types or ranges, duplicate keys
    "bad_version",    # "v" is an integer other than 2
    "undecryptable",  # wrong key, tampered, or moved to another topic
    "bad_plaintext",  # decrypted, but not a valid message (or on another type's channel)
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



# --- ids and keys -----------------------------------------------------------------------


def valid_device_id(value: object) -> bool:
    """16 lowercase hex characters (64 random bits). Since v2 never on the wire."""
    return isinstance(value, str) and _DEVICE_ID.fullmatch(value) is not None


def valid_member_id(value: object) -> bool:
    """A member id (a unit within its pair, ``names.member_id``): the form of a device id,
    16 lowercase hex characters. It is a message's sender."""
    return valid_device_id(value)


def valid_pair_id(value: object) -> bool:
    """32 lowercase hex characters (128 bits): the pair's name on the unit (never on the
    wire since v2)."""
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

    ``sender`` (a member id) and ``seq`` travel as the plaintext ``id``, inside the seal.
    Fields a type does not carry must keep their defaults, so that every Message survives a
    round trip over the wire unchanged. ``seqs`` is empty for a ``seen`` without seqs.
    """

    type: MessageType          # a plain string of a known type is taken too
    sender: str
    seq: int
    time: str
    name: str
    sent_total: int
    streak: int = 0
    seqs: tuple[int, ...] = ()
    last_seq: int = 0
    seen_seq: int = 0          # state: the highest seq accepted from the partner...
    seen_total: int = 0        # ...and the partner's total as we know it
    online: bool = False       # presence

    def __post_init__(self) -> None:
        if not isinstance(self.type, MessageType) and self.type in MESSAGE_TYPES:
            object.__setattr__(self, "type", MessageType(self.type))  # a plain "thanks" too
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid {self.type!r} message: {problem}")

    def _problem(self) -> str:
        if self.type not in MESSAGE_TYPES:
            return "unknown type"
        if not valid_member_id(self.sender):
            return "sender must be a member id (16 lowercase hex characters)"
        if not valid_seq(self.seq):
            return f"seq must be an int in 1..{MAX_SEQ}"
        if not _valid_time(self.time):
            return "time must be ISO-8601 with a UTC offset"
        if not _valid_name(self.name):
            return f"name must be 1..{MAX_NAME_CHARS} printable characters"
        for field in ("sent_total", "streak", "last_seq", "seen_seq", "seen_total"):
            if not _valid_count(getattr(self, field)):
                return f"{field} must be an int in 0..{MAX_SEQ}"
        if type(self.online) is not bool:
            return "online must be true or false"
        required, optional = _EXTRA_KEYS[self.type]
        carried = set(required) | set(optional)
        for field, default in (("streak", 0), ("last_seq", 0), ("seqs", ()), ("seen_seq", 0),
                               ("seen_total", 0), ("online", False)):
            if field not in carried and getattr(self, field) != default:
                return f"{field} is not carried by this type"
        if ("seqs" in required or self.seqs != ()) and not _valid_seqs(self.seqs):
            return f"seqs must be a tuple of 1..{MAX_SEQS} distinct valid seqs"
        return ""

    @property
    def id(self) -> str:
        """``"<sender>:<seq>"``: the message's identity, used for dedup and acks."""
        return f"{self.sender}:{self.seq}"

    @property
    def channel(self) -> str:
        """The only channel this message may be sealed for: state and presence on their own
        channels, the rest on events."""
        if self.type is MessageType.STATE:
            return STATE
        return PRESENCE if self.type is MessageType.PRESENCE else EVENTS

    def to_plaintext(self) -> str:
        """The exact plaintext JSON (compact, keys in contract order); the outbox keeps it."""
        data: dict[str, Any] = {"type": self.type, "id": self.id, "time": self.time,
                                "name": self.name, "sent_total": self.sent_total}
        required, optional = _EXTRA_KEYS[self.type]
        for key in (*required, *optional):
            value = getattr(self, key)
            if key in optional and value == _DEFAULTS[key]:
                continue
            data[key] = list(value) if key == "seqs" else value
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_plaintext(cls, text: str | bytes) -> Message:
        """Parse a plaintext; ProtocolError ``bad_plaintext`` or ``unknown_type`` if invalid."""
        data = strict_json(text, "bad_plaintext")
        if not isinstance(data, dict):
            raise ProtocolError("bad_plaintext", "not a JSON object")
        kind = data.get("type")
        if not isinstance(kind, str):
            raise ProtocolError("bad_plaintext", "type missing or not a string")
        if kind not in MESSAGE_TYPES:
            raise ProtocolError("unknown_type", f"type not known to protocol v{VERSION}")
        kind = MessageType(kind)
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
                       seqs=tuple(seqs), last_seq=data.get("last_seq", 0),
                       seen_seq=data.get("seen_seq", 0), seen_total=data.get("seen_total", 0),
                       online=data.get("online", False))
        except ValueError as exc:
            raise ProtocolError("bad_plaintext", str(exc).split(": ", 1)[-1]) from None


def _parse_id(value: object) -> tuple[str, int]:
    """``"<member id>:<seq>"`` in canonical form (no sign, no leading zeros)."""
    if isinstance(value, str) and value.count(":") == 1:
        sender, seq_text = value.split(":")
        if valid_device_id(sender) and _CANONICAL_SEQ.fullmatch(seq_text):
            seq = int(seq_text)
            if seq <= MAX_SEQ:
                return sender, seq
    raise ProtocolError("bad_plaintext", "id is not <member id>:<seq>")

# --- strict JSON ----------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Reject duplicate keys: two parsers must never disagree on which value counts."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey("duplicate key")
    return result


def no_constant(name: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


#: One decoder for every message (``json.loads`` with hooks builds a new one per call; each
#: received message is parsed twice, the envelope and the plaintext).
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=no_constant)


def strict_json(data: str | bytes, reason: Reason) -> object:
    """Strict UTF-8 JSON: no other encodings, no NaN, no duplicate keys, no deep-nesting crash."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return _STRICT.decode(text)
    except _DuplicateKey:
        raise ProtocolError("bad_envelope" if reason == "not_json" else reason,
                            "duplicate key") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise ProtocolError(reason, "not UTF-8 JSON") from None

