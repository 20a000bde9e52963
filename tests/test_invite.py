"""Invites: a number and four words read over the phone, and the pairing room they name."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micromance import protocol
from micromance.protocol import invite
from micromance.protocol.words import WORDS

#: English words that sound like another word (spelled otherwise) or have two spellings:
#: a person hearing one could type the other. None may be an invite word.
_SOUND_ALIKES = """
    bare bear pair pear pare sun son night knight flour flower tail tale sail sale road rode
    rose rows mail male plane plain see sea berry bury hair hare deer dear meat meet peace
    piece steel steal week weak hole whole wood would knot not beach beech board bored bread
    bred cell sell cent scent dew due fair fare flea flee heel heal horse hoarse hour our
    key quay made maid nose knows one won pane pain pole poll rain reign ring wring root route
    scene seen sole soul sum some tea tee toe tow wait weight way weigh wine whine write right
    blue blew brake break cue queue doe dough find fined gate gait him hymn jeans genes loan
    lone mist missed new knew oar ore pause paws plum plumb read reed stair stare stake steak
    tide tied throne thrown waist waste whale wail yolk yoke die dye for four great grate heard
    herd maze maize minor miner muscle mussel peak peek pray prey sight site soar sore tire
    tyre metal medal colour color grey gray centre center theatre theater jewellery jewelry
    mould mold plough plow ant aunt bee bean been by buy which witch weather whether
    pedal peddle rap wrap sew sow so seem seam some sum steal steel
"""
SOUND_ALIKES = set(_SOUND_ALIKES.split())


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


# --- the word list -------------------------------------------------------------------------


def test_the_words_are_256_short_distinct_plain_words_in_order():
    assert len(WORDS) == 256 == len(set(WORDS))
    assert list(WORDS) == sorted(WORDS)
    assert all(re.fullmatch(r"[a-z]{3,7}", word) for word in WORDS)
    assert len({word[:3] for word in WORDS}) == 256  # three letters name a word
    assert not SOUND_ALIKES & set(WORDS)


def test_one_typo_never_turns_a_word_into_another():
    close = [(a, b) for i, a in enumerate(WORDS) for b in WORDS[i + 1:] if levenshtein(a, b) < 2]
    assert close == []


# --- making and reading codes --------------------------------------------------------------


def test_a_code_is_a_number_and_four_words():
    code = invite.make_invite(bytes(range(8)))
    number = 100 + int.from_bytes(bytes(range(4)), "big") % 900
    assert code == f"{number} {WORDS[4]} {WORDS[5]} {WORDS[6]} {WORDS[7]}"
    assert code == "451 ankle apple apron arrow"
    assert invite.make_invite(bytes(8)) == "100 acorn acorn acorn acorn"
    assert invite.make_invite(b"\xff" * 8) == "895 zoo zoo zoo zoo"
    assert invite.parse_invite(code) == code
    for size in (0, 7, 9):
        with pytest.raises(ValueError):
            invite.make_invite(bytes(size))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=invite.INVITE_ENTROPY_BYTES, max_size=invite.INVITE_ENTROPY_BYTES))
def test_every_code_reads_back_and_has_about_42_bits(entropy):
    code = invite.make_invite(entropy)
    number, *words = code.split()
    assert 100 <= int(number) <= 999 and len(words) == 4 and set(words) <= set(WORDS)
    assert invite.parse_invite(code) == code
    assert invite.parse_invite(code.upper().replace(" ", "-")) == code


def test_fresh_codes_differ():
    codes = {invite.make_invite(os.urandom(invite.INVITE_ENTROPY_BYTES)) for _ in range(50)}
    assert len(codes) == 50


@pytest.mark.parametrize("typed", [
    "417 maple river candle otter",
    "  417   Maple River CANDLE otter ",
    "417-maple-river-candle-otter",
    "417 maple-river, candle. otter",
    "maple river candle otter 417",        # the number may stand anywhere
    "417 map riv can ott",                 # three letters name a word
    "417 mapl rive cand otte",
    "417\tmaple\nriver candle_otter",
])
def test_parse_is_forgiving_about_form(typed):
    assert invite.parse_invite(typed) == "417 maple river candle otter"


@pytest.mark.parametrize(("typed", "message"), [
    ("417 maple rivr candle otter", "'rivr' is not in the invite words; did you mean 'river'?"),
    ("417 maple river candel otter", "did you mean 'candle'?"),
    ("417 maple river candle", "has 4 words after the number"),
    ("417 maple river candle otter otter", "this has 5"),
    ("maple river candle otter", "this has no number"),
    ("417 12 maple river candle", "this has 2 numbers"),
    ("41 maple river candle otter", "'41' is not one"),
    ("1417 maple river candle otter", "'1417' is not one"),
    ("099 maple river candle otter", "'099' is not one"),
    ("417 maple river candle xqzv", "'xqzv' is not in the invite words (check the spelling)"),
    ("417 ma river candle otter", "'ma' is not in the invite words"),
    ("417 maples river candle otter", "did you mean 'maple'?"),
    ("", "this has no number"),
    ("٤١٧ maple river candle otter", "is not one"),
])
def test_parse_says_what_is_wrong(typed, message):
    with pytest.raises(ValueError) as caught:
        invite.parse_invite(typed)
    assert message in str(caught.value)


def test_parse_refuses_what_is_not_text():
    with pytest.raises(ValueError):
        invite.parse_invite(b"417 maple river candle otter")  # type: ignore[arg-type]


# --- the room ------------------------------------------------------------------------------


def test_the_room_topic_of_an_invite():
    room = invite.invite_room("417 maple river candle otter")
    assert room == hashlib.sha256(
        b"micromance/v2 invite\n417 maple river candle otter").digest()[:16].hex()
    assert re.fullmatch(r"[0-9a-f]{32}", room)
    assert invite.invite_room("Maple-River-Candle-Otter-417") == room  # any spelling
    assert invite.invite_room("417 maple river candle owl") != room
    with pytest.raises(ValueError):
        invite.invite_room("417 maple river candle")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=invite.INVITE_ENTROPY_BYTES, max_size=invite.INVITE_ENTROPY_BYTES))
def test_an_invite_room_is_never_a_named_room(entropy):
    code = invite.make_invite(entropy)
    topic = invite.invite_room(code)
    assert topic != protocol.room_topic()
    # Not even the room whose name is the code spelled as a room name would be.
    assert topic != protocol.room_topic(code.replace(" ", "-"))
    assert topic != protocol.room_topic(code.replace(" ", "_"))


def test_the_package_exports_the_invite_functions():
    assert protocol.make_invite is invite.make_invite
    assert protocol.parse_invite is invite.parse_invite
    assert protocol.invite_room is invite.invite_room
