"""Pairing two units: numeric comparison with a commitment, as a pure state machine.

Two buttons cannot type a code, so the units agree on a key the way Bluetooth LE numeric
comparison does. Both meet on a rendezvous topic (``names.room_topic``), each under an id it
draws for this attempt alone (no device id ever goes into the room); for each couple, the unit
with the lower id initiates:

    A -> B  commit   H(pkA || nA)            A is bound to its key and nonce before...
    B -> A  key      pkB, nB                 ...it sees B's,
    A -> B  reveal   pkA, nA                 and B checks the commitment.

Both then show a 6-digit code derived from the X25519 secret and both public values and
nonces. Someone controlling the broker can sit in the middle, but cannot make the two codes
match: the commitment stops them from choosing their key after seeing A's nonce, so each
exchange gives them a one-in-a-million chance. The people compare the codes and press THANKS
on both units; each unit then proves it holds the same key (a MAC), and only when both did is
the pair key (and pair id) derived with HKDF and kept. The result tells each unit its role
(``a`` initiated, ``b`` responded), from which both derive both member ids
(``names.member_id``): the names the two use within the pair from then on.

Anybody can write into the room, so nobody there locks a unit out before the code is shown:

- A searching unit answers *every* ``hello`` from a higher id with its commitment (it reveals
  nothing) and binds to the first unit that answers with a ``key``.
- A unit that answered a commitment with its key and hears nothing more (a stranger that went
  silent) searches again after ``STEP_SECONDS``, with fresh values, within the same search
  time. Each such answer is one more chance for someone relaying, so a unit gives at most
  ``MAX_EXCHANGES`` of them per attempt.
- Messages that would contradict the exchange before a code is shown (another commitment, a
  reveal that breaks the commitment, an unauthenticated ``cancel``) are ignored.
- A ``cancel`` counts only once the code is shown, and only with a MAC only the bound peer
  can compute. Once a code is on screen, the people decide (as before: a confirmation with
  the wrong MAC or a contradicting key ends the attempt).

Nothing here touches the network, the disk or a clock: randomness comes in as ``entropy``,
time as ``at``, received payloads as bytes; outgoing payloads are returned. A restart draws
its fresh values from the attempt's secret with HKDF, so ``begin``'s entropy is all it needs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from micromance.protocol.names import ROLES, member_id, other_role

VERSION = 2
ENTROPY_BYTES = 64            # 32 private key, 16 nonce, 8 session id, 8 this attempt's id
_VALUES_BYTES = 56            # what a restart draws afresh: all but the id
MAX_PAYLOAD_BYTES = 1024
HELLO_EVERY = 2.0             # seconds between announcements while searching
RESEND_EVERY = 2.0            # the last step's message again, until answered
SEARCH_SECONDS = 120.0        # no partner found within this (restarts included): timed out
STEP_SECONDS = 8.0            # a key unanswered this long (three resends): search again
CONFIRM_SECONDS = 180.0       # people have this long to compare and press THANKS
MAX_EXCHANGES = 2             # keys a unit gives out per attempt (each a chance for a relay)

_HEX32 = 64
_HEX16 = 32


class Phase(Enum):
    SEARCHING = "searching"   # bound to nobody: announcing, answering hellos with commitments
    EXCHANGING = "exchanging"  # answered a commitment with our key; waiting for the reveal
    CODE = "code"
    WAITING = "waiting"       # confirmed here; waiting for the other unit's confirmation
    CONFIRMED = "confirmed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


FINISHED = (Phase.CONFIRMED, Phase.FAILED, Phase.TIMED_OUT, Phase.CANCELLED)
SHOWING_CODE = (Phase.CODE, Phase.WAITING)


@dataclass(frozen=True)
class PairResult:
    """What a pairing made: the pair key and id, and this unit's role in making them.

    ``role`` is ``a`` (this unit initiated) or ``b``; the member ids follow from the key and
    the roles, so both units know both without sending either.
    """

    pair_id: str
    key: bytes
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError("role must be 'a' (initiator) or 'b' (responder)")

    @property
    def member_id(self) -> str:
        """This unit's member id in the new pair."""
        return member_id(self.key, self.role)

    @property
    def partner_id(self) -> str:
        """The partner's member id in the new pair (what ``pair.json`` keeps as partner_id)."""
        return member_id(self.key, other_role(self.role))

    def __repr__(self) -> str:
        return f"PairResult(pair_id={self.pair_id[:8]}…, role={self.role})"


@dataclass(frozen=True)
class Session:
    """One pairing attempt, from one unit's side."""

    me: str                        # this attempt's id in the room (random, from the entropy)
    secret: bytes                  # X25519 private key (fresh per attempt and per restart)
    nonce: bytes
    session_nonce: bytes           # our session id, when we initiate
    phase: Phase = Phase.SEARCHING
    peer: str = ""                 # bound: from the key we answered, or the commit we took
    session: str = ""              # the bound exchange's session id (hex)
    initiator: bool = False
    commitment: bytes = b""        # the initiator's, as received by the responder
    peer_key: bytes = b""          # known once the code is shown
    peer_nonce: bytes = b""
    code: str = ""
    confirmed_here: bool = False
    confirmed_there: bool = False
    detail: str = ""
    deadline: float = 0.0          # the current phase's time limit
    search_deadline: float = 0.0   # the whole search's, kept across restarts
    exchanges: int = 0             # keys given out in this attempt (at most MAX_EXCHANGES)
    resend_at: float | None = None
    last_sent: bytes = b""         # resent until the step is answered
    my_confirm: bytes = b""
    result: PairResult | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Session(me={self.me}, phase={self.phase.value}, peer={self.peer or '-'})"

    @property
    def public_key(self) -> bytes:
        return _public(self.secret)

    @property
    def own_session(self) -> str:
        return self.session_nonce.hex()

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


Step = tuple[Session, list[bytes]]


# --- the protocol ----------------------------------------------------------------------------


def begin(entropy: bytes, at: float) -> Step:
    """Start an attempt: announce ourselves in the room.

    ``entropy`` is :data:`ENTROPY_BYTES` fresh random bytes: the X25519 private key, the
    nonce, the session id, and last the 8 bytes of this attempt's id (``Session.me``), which
    names the unit in the room and nowhere else.
    """
    if not isinstance(entropy, bytes) or len(entropy) != ENTROPY_BYTES:
        raise ValueError(f"pairing needs {ENTROPY_BYTES} bytes of entropy")
    return _search(entropy[_VALUES_BYTES:].hex(), entropy[:_VALUES_BYTES], at,
                   search_deadline=at + SEARCH_SECONDS, exchanges=0)


def receive(session: Session, payload: bytes, at: float) -> Step:
    """Handle one payload from the room; anything malformed or not for us is ignored."""
    message = _parse(payload)
    if message is None or message["from"] == session.me:
        return session, []
    if session.finished:
        return session, _after_the_end(session, message)
    if message["t"] == "hello":
        return session, _on_hello(session, message["from"])
    if message.get("to") != session.me:
        return session, []
    if session.phase is Phase.SEARCHING:
        return _while_searching(session, message, at)
    if message["from"] != session.peer or message.get("s") != session.session:
        return session, []  # another unit, or another attempt: it cannot take this one over
    handler = {"key": _on_key, "reveal": _on_reveal, "confirm": _on_confirm,
               "cancel": _on_cancel, "commit": _on_repeat}.get(message["t"])
    return handler(session, message, at) if handler else (session, [])


def confirm(session: Session, at: float) -> Step:
    """The person pressed THANKS: the codes match on both screens."""
    if session.phase is not Phase.CODE:
        return session, []
    mac = _confirm_mac(session, session.me)
    message = _to_peer(session, "confirm", mac=mac.hex())
    session = replace(session, confirmed_here=True, phase=Phase.WAITING,
                      resend_at=at + RESEND_EVERY, last_sent=message, my_confirm=message)
    return _maybe_done(session), [message]


def cancel(session: Session, at: float, detail: str = "cancelled") -> Step:
    """The person pressed NEXT, or gave up: tell the other unit, if there is one.

    The ``cancel`` carries a MAC under a key from the shared secret, so it can only be sent
    (and only counts) once the code is shown; before that there is nobody to tell.
    """
    if session.finished:
        return session, []
    return _finish(session, Phase.CANCELLED, detail), _cancel_message(session)


def tick(session: Session, at: float) -> Step:
    """Time passed: resend what is unanswered, search again after a stalled exchange, or
    give up when the attempt took too long."""
    if session.finished:
        return session, []
    if at >= session.deadline:
        if (session.phase is Phase.EXCHANGING and session.exchanges < MAX_EXCHANGES
                and at < session.search_deadline):
            return _restart(session, at)
        return _finish(session, Phase.TIMED_OUT, _timeout_detail(session)), \
            _cancel_message(session)
    if session.resend_at is not None and at >= session.resend_at and session.last_sent:
        return replace(session, resend_at=at + RESEND_EVERY), [session.last_sent]
    return session, []


def next_deadline(session: Session) -> float | None:
    if session.finished:
        return None
    return min(session.deadline, session.resend_at or session.deadline)


# --- steps -----------------------------------------------------------------------------------


def _search(me: str, values: bytes, at: float, *, search_deadline: float,
            exchanges: int) -> Step:
    session = Session(me=me, secret=values[:32], nonce=values[32:48],
                      session_nonce=values[48:_VALUES_BYTES], deadline=search_deadline,
                      search_deadline=search_deadline, exchanges=exchanges)
    hello = _message(me, "hello")
    return replace(session, resend_at=at + HELLO_EVERY, last_sent=hello), [hello]


def _restart(session: Session, at: float) -> Step:
    """The exchange stalled before any code was shown: search again with fresh values.

    Reusing the key and nonce we gave out would let whoever saw them choose a commitment to
    suit them; fresh ones come from the attempt's secret (HKDF), the search time and the
    attempt's id are kept.
    """
    fresh = HKDF(algorithm=hashes.SHA256(), length=_VALUES_BYTES, salt=None,
                 info=b"micromance/v1 restart").derive(
                     session.secret + session.nonce + session.session_nonce)
    return _search(session.me, fresh, at, search_deadline=session.search_deadline,
                   exchanges=session.exchanges)


def _on_hello(session: Session, sender: str) -> list[bytes]:
    """Searching, we answer every higher id with our commitment: it reveals nothing, so any
    number of units may have it, and we bind only to the first that answers with its key. A
    stranger that says hello and goes silent takes nothing from the real partner."""
    if session.phase is not Phase.SEARCHING or sender < session.me:
        return []  # the unit with the lower id initiates; the other waits for it
    c = commitment(session.public_key, session.nonce)
    return [_message(session.me, "commit", sender, session.own_session, c=c.hex())]


def _while_searching(session: Session, message: dict[str, Any], at: float) -> Step:
    """Bound to nobody yet: a commitment from a lower id, or a key from a higher id answering
    our own commitment, binds us; anything else is ignored."""
    kind, sender = message["t"], message["from"]
    if kind == "commit" and sender < session.me:
        return _on_commit(session, message, at)
    if kind == "key" and sender > session.me and message.get("s") == session.own_session:
        return _on_first_key(session, message, at)
    return session, []


def _on_commit(session: Session, message: dict[str, Any], at: float) -> Step:
    committed = _hex(message.get("c"), _HEX32)
    sid = message.get("s")
    if committed is None or not isinstance(sid, str) or not _is_hex(sid, 8):
        return session, []
    session = replace(session, peer=message["from"], session=sid, commitment=committed,
                      phase=Phase.EXCHANGING, deadline=at + STEP_SECONDS,
                      exchanges=session.exchanges + 1)
    key = _to_peer(session, "key", pk=session.public_key.hex(), n=session.nonce.hex())
    return replace(session, resend_at=at + RESEND_EVERY, last_sent=key), [key]


def _on_first_key(session: Session, message: dict[str, Any], at: float) -> Step:
    values = _peer_values(message)
    if values is None:
        return session, []
    peer_key, peer_nonce = values
    session = replace(session, peer=message["from"], session=session.own_session,
                      initiator=True, peer_key=peer_key, peer_nonce=peer_nonce)
    return replace(_show_code(session, at), resend_at=None, last_sent=b""), [_reveal(session)]


def _peer_values(message: dict[str, Any]) -> tuple[bytes, bytes] | None:
    """The public key and nonce a ``key`` or ``reveal`` message carries, if well formed."""
    key, nonce = _hex(message.get("pk"), _HEX32), _hex(message.get("n"), _HEX16)
    return (key, nonce) if key is not None and nonce is not None else None


def _on_key(session: Session, message: dict[str, Any], at: float) -> Step:
    """The bound peer's key again: the code is shown here already."""
    values = _peer_values(message) if session.initiator else None
    if values is None:
        return session, []
    if values == (session.peer_key, session.peer_nonce):
        return session, [_reveal(session)]  # our reveal was lost: send it again
    return _abort(session, "another unit interfering")


def _on_reveal(session: Session, message: dict[str, Any], at: float) -> Step:
    values = None if session.initiator else _peer_values(message)
    if values is None:
        return session, []
    if session.peer_key:
        if values == (session.peer_key, session.peer_nonce):
            return session, []  # a duplicate
        return _abort(session, "another unit interfering")
    peer_key, peer_nonce = values
    if not hmac.compare_digest(commitment(peer_key, peer_nonce), session.commitment):
        return session, []  # not what our peer committed to: forged; the real one may follow
    session = replace(session, peer_key=peer_key, peer_nonce=peer_nonce)
    return replace(_show_code(session, at), resend_at=None, last_sent=b""), []


def _on_confirm(session: Session, message: dict[str, Any], at: float) -> Step:
    if session.phase not in SHOWING_CODE:
        return session, []
    mac = _hex(message.get("mac"), _HEX32)
    if mac is None:
        return session, []
    if not hmac.compare_digest(mac, _confirm_mac(session, session.peer)):
        # The other unit holds a different key: someone was in the middle.
        return _abort(session, "codes did not match")
    return _maybe_done(replace(session, confirmed_there=True)), []


def _after_the_end(session: Session, message: dict[str, Any]) -> list[bytes]:
    """Paired here, but the other unit may lack our confirmation: it keeps sending its own."""
    if (session.phase is Phase.CONFIRMED and message["t"] == "confirm"
            and message["from"] == session.peer and message.get("s") == session.session):
        return [session.my_confirm]
    return []


def _on_cancel(session: Session, message: dict[str, Any], at: float) -> Step:
    """Only the bound peer can compute the cancel MAC, and only once the code is shown."""
    mac = _hex(message.get("mac"), _HEX32)
    if session.phase not in SHOWING_CODE or mac is None:
        return session, []
    if not hmac.compare_digest(mac, _cancel_mac(session, session.peer)):
        return session, []
    return _finish(session, Phase.FAILED, "cancelled on the other unit"), []


def _on_repeat(session: Session, message: dict[str, Any], at: float) -> Step:
    """The initiator's commit again (our key was lost): answer it again, if it is the same.

    A different commitment in the same session is not our peer's (it is bound to its own):
    ignored, like a reveal that does not match."""
    if session.initiator or session.phase is not Phase.EXCHANGING:
        return session, []
    if _hex(message.get("c"), _HEX32) != session.commitment:
        return session, []
    return session, [session.last_sent]


def _reveal(session: Session) -> bytes:
    return _to_peer(session, "reveal", pk=session.public_key.hex(), n=session.nonce.hex())


def _show_code(session: Session, at: float) -> Session:
    return replace(session, phase=Phase.CODE, code=_code(session), deadline=at + CONFIRM_SECONDS)


def _maybe_done(session: Session) -> Session:
    if not (session.confirmed_here and session.confirmed_there):
        return session
    key, pair_id = pair_secrets(*_ordered_inputs(session))
    result = PairResult(pair_id=pair_id, key=key, role="a" if session.initiator else "b")
    return replace(_finish(session, Phase.CONFIRMED, ""), result=result)


def _abort(session: Session, detail: str) -> Step:
    return _finish(session, Phase.FAILED, detail), _cancel_message(session)


def _cancel_message(session: Session) -> list[bytes]:
    """A ``cancel`` for the bound peer, when it can be authenticated (the code is shown)."""
    if not session.peer_key:
        return []
    return [_to_peer(session, "cancel", mac=_cancel_mac(session, session.me).hex())]


def _finish(session: Session, phase: Phase, detail: str) -> Session:
    return replace(session, phase=phase, detail=detail, resend_at=None, last_sent=b"")


def _timeout_detail(session: Session) -> str:
    if session.phase is Phase.SEARCHING:
        return "no other unit in the room"
    if session.phase in SHOWING_CODE:
        return "not confirmed on both units"
    return "the other unit stopped answering"


# --- the cryptography ----------------------------------------------------------------------
# The labels still say v1: these derivations have not changed since protocol 1.0 (v2 changed
# only what the ids in the MACs are: each attempt's own random id, not a device id).


def commitment(public_key: bytes, nonce: bytes) -> bytes:
    return hashlib.sha256(b"micromance/v1 commit\n" + public_key + nonce).digest()


def comparison_code(shared: bytes, pk_a: bytes, pk_b: bytes, n_a: bytes, n_b: bytes) -> str:
    """Six digits both people compare; A is the initiator."""
    digest = hashlib.sha256(b"micromance/v1 code\n" + shared + pk_a + pk_b + n_a + n_b).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def pair_secrets(shared: bytes, pk_a: bytes, pk_b: bytes, n_a: bytes, n_b: bytes
                 ) -> tuple[bytes, str]:
    """(pair key, pair id) from HKDF over the shared secret and both public values."""
    okm = HKDF(algorithm=hashes.SHA256(), length=48, salt=n_a + n_b,
               info=b"micromance/v1 pair\n" + pk_a + pk_b).derive(shared)
    return okm[:32], okm[32:].hex()


def _mac_key(label: bytes, shared: bytes, pk_a: bytes, pk_b: bytes, n_a: bytes, n_b: bytes
             ) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=n_a + n_b,
                info=b"micromance/v1 " + label + b"\n" + pk_a + pk_b).derive(shared)


def _session_mac(session: Session, label: bytes, sender: str) -> bytes:
    """HMAC under the exchange's ``label`` key over label LF sender LF session id."""
    key = _mac_key(label, *_ordered_inputs(session))
    text = label + b"\n" + sender.encode() + b"\n" + session.session.encode()
    return hmac.new(key, text, hashlib.sha256).digest()


def _confirm_mac(session: Session, sender: str) -> bytes:
    return _session_mac(session, b"confirm", sender)


def _cancel_mac(session: Session, sender: str) -> bytes:
    return _session_mac(session, b"cancel", sender)


def _ordered_inputs(session: Session) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    shared = _shared(session.secret, session.peer_key)
    mine, theirs = (session.public_key, session.nonce), (session.peer_key, session.peer_nonce)
    (pk_a, n_a), (pk_b, n_b) = (mine, theirs) if session.initiator else (theirs, mine)
    return shared, pk_a, pk_b, n_a, n_b


def _code(session: Session) -> str:
    return comparison_code(*_ordered_inputs(session))


def _public(secret: bytes) -> bytes:
    # public_bytes_raw, not public_bytes(Encoding.Raw, ...): the serialization package pulls
    # in SSH, RSA and DSA support the daemon never uses (~1 MB resident).
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def _shared(secret: bytes, peer_key: bytes) -> bytes:
    private = X25519PrivateKey.from_private_bytes(secret)
    return private.exchange(X25519PublicKey.from_public_bytes(peer_key))


# --- wire format ---------------------------------------------------------------------------


def _message(me: str, kind: str, to: str = "", s: str = "", **fields: str) -> bytes:
    body: dict[str, object] = {"v": VERSION, "t": kind, "from": me}
    if kind != "hello":
        body.update(to=to, s=s)
    body.update(fields)
    return json.dumps(body, separators=(",", ":")).encode()


def _to_peer(session: Session, kind: str, **fields: str) -> bytes:
    return _message(session.me, kind, session.peer, session.session, **fields)


def _parse(payload: bytes) -> dict[str, Any] | None:
    if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        return None
    if message.get("t") not in ("hello", "commit", "key", "reveal", "confirm", "cancel"):
        return None
    if not _is_hex(message.get("from"), 8):
        return None
    return message


def _is_hex(value: object, size: int) -> bool:
    if not isinstance(value, str) or len(value) != 2 * size:
        return False
    return all(c in "0123456789abcdef" for c in value)


def _hex(value: object, length: int) -> bytes | None:
    if not isinstance(value, str) or len(value) != length:
        return None
    try:
        return bytes.fromhex(value) if value == value.lower() else None
    except ValueError:
        return None
