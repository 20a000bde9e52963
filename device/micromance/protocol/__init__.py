"""The partner protocol (v2), sans I/O: what goes over the wire and what it means, nothing else.

No sockets, files, clocks or threads live here: bytes come in, values and bytes go out,
randomness and time are passed in (only fresh nonces, keys and ids use ``os.urandom``). So the
core, the MQTT adapter, the store and the tests share one implementation, and each part can be
tested with fixed vectors. ``docs/protocol.md`` describes the same rules in prose.

- ``messages``: ids, :class:`MessageType`, the plaintext :class:`Message` and its strict parser
- ``names``:    member ids, :class:`Names` (a member's topics and client id), room topics;
                every name on the wire is opaque and derived from the pair key
- ``envelope``: sealing and opening (ChaCha20-Poly1305 bound to the topic)
- ``replay``:   :class:`ReplayWindow`, the anti-replay sliding window
- ``pairing``:  the pairing state machine (numeric comparison with a commitment)
- ``invite``:   invite codes (a number and four words) and the room they name
"""

from micromance.protocol.envelope import (
    AAD_PREFIX,
    CHANNELS,
    MAX_PAYLOAD_BYTES,
    NONCE_BYTES,
    QOS,
    RETAINED,
    SEALED_CHANNELS,
    TAG_BYTES,
    associated_data,
    open_sealed,
    seal,
    sealed_size,
)
from micromance.protocol.invite import (
    INVITE_ENTROPY_BYTES,
    invite_room,
    make_invite,
    parse_invite,
)
from micromance.protocol.messages import (
    EVENTS,
    KEY_BYTES,
    MAX_NAME_CHARS,
    MAX_SEQ,
    MAX_SEQS,
    MAX_TOTAL,
    MESSAGE_TYPES,
    PRESENCE,
    REASONS,
    SEQS_PER_SECOND,
    STATE,
    VERSION,
    Message,
    MessageType,
    ProtocolError,
    Reason,
    format_time,
    new_device_id,
    new_key,
    new_pair_id,
    valid_device_id,
    valid_member_id,
    valid_pair_id,
    valid_seq,
)
from micromance.protocol.names import (
    DEFAULT_ROOM,
    ROLES,
    Names,
    device_member_id,
    member_id,
    members,
    new_client_id,
    other_role,
    pair_names,
    room_topic,
    v1_retained_topics,
)
from micromance.protocol.replay import WINDOW_SIZE, ReplayWindow

__all__ = [
    "AAD_PREFIX",
    "CHANNELS",
    "DEFAULT_ROOM",
    "EVENTS",
    "INVITE_ENTROPY_BYTES",
    "KEY_BYTES",
    "MAX_NAME_CHARS",
    "MAX_PAYLOAD_BYTES",
    "MAX_SEQ",
    "MAX_SEQS",
    "MAX_TOTAL",
    "MESSAGE_TYPES",
    "NONCE_BYTES",
    "PRESENCE",
    "QOS",
    "REASONS",
    "RETAINED",
    "ROLES",
    "SEALED_CHANNELS",
    "SEQS_PER_SECOND",
    "STATE",
    "TAG_BYTES",
    "VERSION",
    "WINDOW_SIZE",
    "Message",
    "MessageType",
    "Names",
    "ProtocolError",
    "Reason",
    "ReplayWindow",
    "associated_data",
    "device_member_id",
    "format_time",
    "invite_room",
    "make_invite",
    "member_id",
    "members",
    "new_client_id",
    "new_device_id",
    "new_key",
    "new_pair_id",
    "open_sealed",
    "other_role",
    "pair_names",
    "parse_invite",
    "room_topic",
    "seal",
    "sealed_size",
    "v1_retained_topics",
    "valid_device_id",
    "valid_member_id",
    "valid_pair_id",
    "valid_seq",
]
