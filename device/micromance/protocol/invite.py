"""Invites: a code one person reads to the other over the phone, naming a pairing room.

An invite is a three-digit number and four words, ``"417 maple river candle otter"``: about
42 bits (900 numbers, 256 words of :data:`WORDS` each). Both units derive the same room topic
from it (:func:`invite_room`), and nobody who does not know the code can find that room by its
name. The code is no secret that pairing relies on: whoever watches the broker sees the room
topic and can speak in the room, exactly as in a named room. Pairing itself is protected by the
six digits the two people compare (``pairing``); an invite only keeps the rest of the world,
and other couples pairing at the same time, out of the way.

Pure: the randomness comes in as ``entropy``; nothing here reads a clock or the disk (the word
list is a tuple in ``words.py``).
"""

from __future__ import annotations

import difflib
import hashlib
import re

from micromance.protocol.names import TOPIC_CHARS
from micromance.protocol.words import WORDS

#: Bytes :func:`make_invite` takes: 4 for the number, one for each word.
INVITE_ENTROPY_BYTES = 8
WORDS_PER_INVITE = 4
INVITE_LABEL = b"micromance/v2 invite\n"
_LOWEST, _NUMBERS = 100, 900  # three digits, never a leading zero
_INDEX = {word: index for index, word in enumerate(WORDS)}
_PREFIXES = {word[:3]: word for word in WORDS}
_SEPARATORS = re.compile(r"[\s\-_.,;:/]+")
_EXAMPLE = "417 maple river candle otter"


def make_invite(entropy: bytes) -> str:
    """A fresh invite from :data:`INVITE_ENTROPY_BYTES` random bytes, in normal form."""
    if not isinstance(entropy, bytes) or len(entropy) != INVITE_ENTROPY_BYTES:
        raise ValueError(f"an invite needs {INVITE_ENTROPY_BYTES} bytes of entropy")
    number = _LOWEST + int.from_bytes(entropy[:4], "big") % _NUMBERS  # bias below 10^-6
    return " ".join([str(number), *(WORDS[byte] for byte in entropy[4:])])


def parse_invite(text: str) -> str:
    """The invite in ``text`` in normal form (``"417 maple river candle otter"``).

    Case, spaces, dashes, dots and commas do not matter, nor where the number stands; a word
    may be given by its first three letters or more (no two words share them). Anything else
    is a ValueError whose message says what is wrong in words a person can act on (it quotes
    what was typed: the code is not a secret).
    """
    if not isinstance(text, str):
        raise ValueError("an invite is text, like " + repr(_EXAMPLE))
    tokens = [token for token in _SEPARATORS.split(text.strip().lower()) if token]
    numbers = [token for token in tokens if token.isdigit()]
    words = [token for token in tokens if not token.isdigit()]
    if len(numbers) != 1:
        found = "no number" if not numbers else f"{len(numbers)} numbers"
        raise ValueError(f"an invite has one three-digit number and {WORDS_PER_INVITE} words, "
                         f"like {_EXAMPLE!r}; this has {found}")
    number = numbers[0]
    if not (len(number) == 3 and number.isascii() and int(number) >= _LOWEST):
        raise ValueError(f"the number in an invite has three digits, 100 to 999; "
                         f"{number!r} is not one")
    if len(words) != WORDS_PER_INVITE:
        raise ValueError(f"an invite has {WORDS_PER_INVITE} words after the number, like "
                         f"{_EXAMPLE!r}; this has {len(words)}")
    return " ".join([number, *(_word(token) for token in words)])


def invite_room(code: str) -> str:
    """The pairing room's topic for an invite (any spelling :func:`parse_invite` takes).

    32 hex characters of SHA-256 under its own label, so it never equals a named room's topic
    (``names.room_topic``)."""
    normal = parse_invite(code)
    return hashlib.sha256(INVITE_LABEL + normal.encode("ascii")).digest()[:TOPIC_CHARS // 2].hex()


def _word(token: str) -> str:
    if token in _INDEX:
        return token
    if len(token) >= 3 and token.isascii() and token.isalpha():
        word = _PREFIXES.get(token[:3])
        if word is not None and word.startswith(token):
            return word
    guess = difflib.get_close_matches(token, WORDS, n=1, cutoff=0.6)
    hint = f"; did you mean {guess[0]!r}?" if guess else " (check the spelling)"
    raise ValueError(f"{token!r} is not in the invite words{hint}")
