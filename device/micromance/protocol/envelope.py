"""Protocol v2 envelope: sealing and opening, bound to the topic.

Pure: no sockets, files, clocks or threads (``os.urandom`` makes fresh nonces). The wire format
is described in ``docs/protocol.md``; in short, a sealed payload is UTF-8 JSON, keys in this
order, no whitespace::

    {"v":2,"nonce":B64(12 bytes),"ct":B64(ChaCha20-Poly1305(plaintext))}

with associated data ``b"micromance/v2\\n" + topic``. The sender and the seq travel only inside
the ciphertext (the plaintext ``id``), and the topic is derived from the pair key and the
sender's member id (:mod:`names`), so a payload only opens on the topic it was sealed for, and
the receiver checks that the sender inside is the member whose topic it is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from micromance.protocol.messages import (
    EVENTS,
    KEY_BYTES,
    PRESENCE,
    STATE,
    VERSION,
    Message,
    ProtocolError,
    strict_json,
    valid_member_id,
)
from micromance.protocol.names import Names

AAD_PREFIX = b"micromance/v2\n"
MAX_PAYLOAD_BYTES = 4096
NONCE_BYTES = 12
TAG_BYTES = 16

CHANNELS = (EVENTS, STATE, PRESENCE)
SEALED_CHANNELS = CHANNELS
RETAINED = {EVENTS: False, STATE: True, PRESENCE: True}
QOS = 1
_ENVELOPE_KEYS = ("v", "nonce", "ct")


def associated_data(topic: str) -> bytes:
    """What the AEAD tag binds besides the plaintext: the topic (and with it the pair, the
    sender and the channel, all of which the topic is derived from)."""
    return AAD_PREFIX + topic.encode()


# --- sealing and opening --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sealed_size(message: Message) -> int:
    """Exact length of ``seal(message, ...)`` without encrypting (used to split long acks).

    Any ack of up to MAX_SEQS seqs below 10**9 fits, whatever its other fields hold.
    """
    return _sealed_size(len(message.to_plaintext().encode("utf-8")))


def _sealed_size(plaintext_bytes: int) -> int:
    ct_chars = 4 * -(-(plaintext_bytes + TAG_BYTES) // 3)
    nonce_chars = 4 * -(-NONCE_BYTES // 3)
    return len(_envelope_json("", "")) + nonce_chars + ct_chars


def _envelope_json(nonce: str, ct: str) -> bytes:
    envelope = {"v": VERSION, "nonce": nonce, "ct": ct}
    return json.dumps(envelope, separators=(",", ":")).encode("ascii")


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"the pair key must be {KEY_BYTES} bytes")
    return key


def seal(message: Message, *, key: bytes, topic: str, nonce: bytes | None = None) -> bytes:
    """The payload to publish on ``topic``. ValueError for anything the partner would reject.

    ``topic`` must be the sender's own topic for the message's channel
    (``Names.derive(key, message.sender)``). ``nonce`` is for test vectors only: reusing a
    nonce under one key breaks the cipher.
    """
    channel = _names(_check_key(key), message.sender).channel(topic)
    if channel is None:
        raise ValueError("a unit seals only on its own topics (names.Names of its member id)")
    if channel != message.channel:
        raise ValueError(f"a {message.type!r} message belongs on the {message.channel} topic")
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce must be {NONCE_BYTES} bytes")
    plaintext = message.to_plaintext().encode("utf-8")
    if _sealed_size(len(plaintext)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"sealed message would exceed {MAX_PAYLOAD_BYTES} bytes; send fewer seqs")
    ct = _cipher(key).encrypt(nonce, plaintext, associated_data(topic))
    return _envelope_json(_b64(nonce), _b64(ct))


# A unit seals and opens with one pair key and two member ids for months: the names (HKDF and
# four HMACs) and the cipher object are made once, not for every message (0.3 ms per message
# on a loaded machine, on the way to the partner's light). Keys are 32 bytes and hashable.
@functools.lru_cache(maxsize=8)
def _names(key: bytes, member: str) -> Names:
    return Names.derive(key, member)


@functools.lru_cache(maxsize=4)
def _cipher(key: bytes) -> ChaCha20Poly1305:
    return ChaCha20Poly1305(key)


def open_sealed(payload: bytes, *, key: bytes, topic: str, expected_sender: str) -> Message:
    """The partner's message in ``payload`` received on ``topic``, or ProtocolError.

    ``expected_sender`` is the partner's member id; ``topic`` must be one of its three topics
    (``bad_topic`` otherwise), the plaintext's sender must be it (``wrong_sender``) and the
    message's type must belong on that topic's channel (``bad_plaintext``). A returned Message
    is authentic and bound to ``topic``; replay checking (:class:`ReplayWindow`) is the
    caller's next step.
    """
    cipher = _cipher(_check_key(key))
    if not valid_member_id(expected_sender):
        raise ValueError("expected_sender must be a member id")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError("payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError("oversized", f"{len(payload)} bytes")
    channel = _names(key, expected_sender).channel(topic)
    if channel is None:
        raise ProtocolError("bad_topic", "not one of the partner's topics")

    envelope = strict_json(bytes(payload), "not_json")
    nonce, ct = _check_envelope(envelope)
    try:
        plaintext = cipher.decrypt(nonce, ct, associated_data(topic))
    except InvalidTag:
        raise ProtocolError("undecryptable", "wrong key, tampered or moved") from None

    message = Message.from_plaintext(plaintext)
    if message.sender != expected_sender:
        raise ProtocolError("wrong_sender", "sealed under another member's id")
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


def _check_envelope(envelope: object) -> tuple[bytes, bytes]:
    if not isinstance(envelope, dict):
        raise ProtocolError("bad_envelope", "not a JSON object")
    if "v" not in envelope or type(envelope["v"]) is not int:
        raise ProtocolError("bad_envelope", "v missing or not an integer")
    if envelope["v"] != VERSION:
        raise ProtocolError("bad_version", f"not protocol v{VERSION}")
    if set(envelope) != set(_ENVELOPE_KEYS):
        raise ProtocolError("bad_envelope", "wrong key set")
    nonce = _canonical_b64(envelope["nonce"])
    if nonce is None or len(nonce) != NONCE_BYTES:
        raise ProtocolError("bad_envelope", "nonce is not 12 bytes of canonical base64")
    ct = _canonical_b64(envelope["ct"])
    if ct is None or len(ct) < TAG_BYTES:
        raise ProtocolError("bad_envelope", "ct is not canonical base64 of at least 16 bytes")
    return nonce, ct
