"""Protocol v2 names: member ids, topics, client ids and rendezvous rooms, all opaque.

Nothing a broker (or anyone subscribed to ``#``) sees names the product, a device or the pair:
every topic is 32 lowercase hex characters, a single level, derived from the pair key; every
client id 22 hex characters, likewise. A new pairing makes a new key, so all of a pair's names
change with it and nobody can link a unit's pairs. The rendezvous room's topic is a hash of the
room name: anyone who knows the name can compute it (that is how two units meet), nobody can
read the name from it.

Pure: no sockets, files, clocks or threads (``os.urandom`` makes a throw-away client id). The
derivations are described in ``docs/protocol.md`` (Names on the broker); in short::

    member id  = hex(HMAC-SHA256(pair key, "micromance/v2 member" LF role)[:8])
                 (pairs made before v2: LF device id instead of LF role)
    names key  = HKDF-SHA256(ikm = pair key, no salt, info = "micromance/v2 names", 32 bytes)
    topic      = hex(HMAC-SHA256(names key, "topic" LF member id LF channel)[:16])
    client id  = hex(HMAC-SHA256(names key, "client" LF member id)[:11])
    room topic = hex(SHA-256("micromance/v2 room" LF room name)[:16])
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from micromance.protocol.messages import (
    EVENTS,
    KEY_BYTES,
    PRESENCE,
    STATE,
    valid_device_id,
    valid_member_id,
    valid_pair_id,
)

#: A pairing's two roles: ``a`` the initiator, ``b`` the responder (see ``pairing``).
ROLES = ("a", "b")
#: The room two units meet in when none is configured.
DEFAULT_ROOM = "lobby"
TOPIC_CHARS = 32
#: MQTT 3.1.1 servers must accept client ids of 1..23 characters of [0-9a-zA-Z].
CLIENT_ID_CHARS = 22

MEMBER_LABEL = b"micromance/v2 member\n"
NAMES_INFO = b"micromance/v2 names"
ROOM_LABEL = b"micromance/v2 room\n"

_TOPIC = re.compile(rf"[0-9a-f]{{{TOPIC_CHARS}}}")
_CLIENT_ID = re.compile(rf"[0-9a-f]{{{CLIENT_ID_CHARS}}}")
_ROOM = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise ValueError(f"the pair key must be {KEY_BYTES} bytes")
    return key


def _member(key: bytes, label: str) -> str:
    return hmac.new(_check_key(key), MEMBER_LABEL + label.encode("ascii"),
                    hashlib.sha256).digest()[:8].hex()


# --- member ids ----------------------------------------------------------------------------


def other_role(role: str) -> str:
    """The partner's role: ``b`` for ``a`` and ``a`` for ``b``."""
    if role not in ROLES:
        raise ValueError("the role must be 'a' (initiator) or 'b' (responder)")
    return ROLES[1 - ROLES.index(role)]


def member_id(key: bytes, role: str) -> str:
    """The member id of the unit that had ``role`` in the v2 pairing that made ``key``."""
    other_role(role)  # validates
    return _member(key, role)


def device_member_id(key: bytes, device_id: str) -> str:
    """The member id of a unit in a pair made before v2 (``pair.json`` holds device ids):
    both units compute both ids from what they already have, without talking."""
    if not valid_device_id(device_id):
        raise ValueError("device id must be 16 lowercase hex characters")
    return _member(key, device_id)


def members(key: bytes, device_id: str, partner_id: str) -> tuple[str, str]:
    """``(mine, partner's)`` member ids of a pair as ``pair.json`` keeps it.

    A pair made by v2 pairing keeps the partner's member id as ``partner_id`` (that is
    :attr:`PairResult.partner_id`); ours is then the other role's, and ``device_id`` (this
    unit's own id) plays no part. Any other ``partner_id`` is a device id, from a pair made
    before v2: both member ids derive from the device ids. (A random device id equals one of
    the two role ids of a key made later with a chance of 2^-63.)
    """
    if not (valid_device_id(device_id) and valid_member_id(partner_id)):
        raise ValueError("device and partner ids must be 16 lowercase hex characters")
    for role in ROLES:
        if partner_id == member_id(key, role):
            return member_id(key, other_role(role)), partner_id
    return device_member_id(key, device_id), device_member_id(key, partner_id)


# --- topics and client ids -----------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """One member's names on a broker: its three topics and its MQTT client id.

    Make it with :meth:`derive` (from the pair key) or :func:`pair_names`; the plain
    constructor takes names already derived (kept in a store, say) and only checks their form.
    The pair key is not kept.
    """

    member: str
    events: str     # sealed events; QoS 1, not retained
    state: str      # sealed summary; QoS 1, retained
    presence: str   # sealed presence; QoS 1, retained, also the Last Will
    client_id: str  # stable for the pair, so the broker keeps the member's session

    def __post_init__(self) -> None:
        if not valid_member_id(self.member):
            raise ValueError("member id must be 16 lowercase hex characters")
        topics = self.topics
        if not all(isinstance(t, str) and _TOPIC.fullmatch(t) for t in topics) or len(
                set(topics)) != len(topics):
            raise ValueError(f"topics must be three different strings of {TOPIC_CHARS} "
                             "lowercase hex characters")
        if not isinstance(self.client_id, str) or not _CLIENT_ID.fullmatch(self.client_id):
            raise ValueError(f"client id must be {CLIENT_ID_CHARS} lowercase hex characters")

    @classmethod
    def derive(cls, key: bytes, member: str) -> Names:
        """The names of ``member`` in the pair whose key is ``key``."""
        if not valid_member_id(member):
            raise ValueError("member id must be 16 lowercase hex characters")
        names_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                         info=NAMES_INFO).derive(_check_key(key))

        def name(text: str, size: int) -> str:
            return hmac.new(names_key, text.encode("ascii"), hashlib.sha256).digest()[:size].hex()

        def topic(channel: str) -> str:
            return name(f"topic\n{member}\n{channel}", TOPIC_CHARS // 2)

        return cls(member, events=topic(EVENTS), state=topic(STATE), presence=topic(PRESENCE),
                   client_id=name(f"client\n{member}", CLIENT_ID_CHARS // 2))

    @property
    def topics(self) -> tuple[str, str, str]:
        """``(events, state, presence)``, the order of :data:`CHANNELS`."""
        return self.events, self.state, self.presence

    def channel(self, topic: object) -> str | None:
        """``events``, ``state`` or ``presence`` when ``topic`` is one of these topics."""
        for channel, mine in zip((EVENTS, STATE, PRESENCE), self.topics, strict=True):
            if topic == mine:
                return channel
        return None


def pair_names(key: bytes, device_id: str, partner_id: str) -> tuple[Names, Names]:
    """``(mine, partner's)`` names for a pair as ``pair.json`` keeps it (see :func:`members`).

    A unit publishes on ``mine`` with ``mine.member`` as every message's sender, connects as
    ``mine.client_id``, subscribes to the partner's three topics and opens what arrives there
    with ``expected_sender=partner.member``.
    """
    mine, partner = members(key, device_id, partner_id)
    return Names.derive(key, mine), Names.derive(key, partner)


def v1_retained_topics(pair_id: str, device_id: str) -> tuple[str, str]:
    """``(state, presence)``: the retained topics a unit of protocol 1.x published on, which
    named the product, the pair and the device. Only so that an upgraded unit can clear them
    (empty retained payloads); nothing of v2 is ever published there."""
    if not (valid_pair_id(pair_id) and valid_device_id(device_id)):
        raise ValueError("a pair id (32 hex) and a device id (16 hex)")
    return (f"micromance/v1/{pair_id}/{device_id}/{STATE}",
            f"micromance/v1/{pair_id}/{device_id}/{PRESENCE}")


def new_client_id() -> str:
    """A fresh random client id for a short-lived connection (pairing room, a one-off
    publish, doctor): same form as a member's, linked to nothing."""
    return os.urandom(CLIENT_ID_CHARS // 2).hex()


# --- the rendezvous ------------------------------------------------------------------------


def room_topic(room: str = "") -> str:
    """The pairing room's topic: 32 hex characters of SHA-256 over a label and the name.

    ``room`` is ``[A-Za-z0-9_-]{1,64}``, or empty for :data:`DEFAULT_ROOM`. Anyone who knows
    (or guesses) the name computes the same topic: a room keeps away who does not, it is no
    secret. An invite's room (``invite.invite_room``) is derived under another label, so it
    never equals a named room's.
    """
    name = room or DEFAULT_ROOM
    if not isinstance(name, str) or not _ROOM.fullmatch(name):
        raise ValueError(f"room {name!r}: use letters, digits, - and _ (at most 64)")
    return hashlib.sha256(ROOM_LABEL + name.encode("ascii")).digest()[:TOPIC_CHARS // 2].hex()
