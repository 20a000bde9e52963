"""The partner protocol, sans I/O: what goes over the wire and what it means, nothing else.

No sockets, files, clocks or threads live here: bytes come in, values and bytes go out,
randomness and time are passed in (only fresh nonces, keys and ids use ``os.urandom``). So the
core, the MQTT adapter, the store and the tests share one implementation, and each part can be
tested with fixed vectors. ``docs/protocol.md`` describes the same rules in prose.

- ``messages``: ids, :class:`MessageType`, the plaintext :class:`Message` and its strict parser
- ``envelope``: topics, sealing and opening (ChaCha20-Poly1305 bound to topic, sender, seq)
- ``replay``:   :class:`ReplayWindow`, the anti-replay sliding window
- ``pairing``:  the pairing state machine (numeric comparison with a commitment)
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
    TOPIC_ROOT,
    Topics,
    associated_data,
    open_sealed,
    parse_topic,
    seal,
    sealed_size,
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
    valid_pair_id,
    valid_seq,
)
from micromance.protocol.replay import WINDOW_SIZE, ReplayWindow

__all__ = [
    "AAD_PREFIX",
    "CHANNELS",
    "EVENTS",
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
    "SEALED_CHANNELS",
    "SEQS_PER_SECOND",
    "STATE",
    "TAG_BYTES",
    "TOPIC_ROOT",
    "VERSION",
    "WINDOW_SIZE",
    "Message",
    "MessageType",
    "ProtocolError",
    "Reason",
    "ReplayWindow",
    "Topics",
    "associated_data",
    "format_time",
    "new_device_id",
    "new_key",
    "new_pair_id",
    "open_sealed",
    "parse_topic",
    "seal",
    "sealed_size",
    "valid_device_id",
    "valid_pair_id",
    "valid_seq",
]
