"""The prompt library (shipped and user file) and the shuffle-bag rotation."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from micromance.config import PRACTICES
from micromance.content.library import load_library
from micromance.core.prompts import (
    MAX_TEXT_CHARS,
    TIME_TAGS,
    USER_ID_PREFIX,
    Prompt,
    ShuffleBag,
    is_eligible,
    prompt_id,
)
from micromance.errors import ConfigError
from micromance.screens.views import Practice

# 2025-06-02 is a Monday; 2025-06-07/08 are Saturday/Sunday.
MONDAY = datetime(2025, 6, 2)
FRIDAY = datetime(2025, 6, 6)
SATURDAY = datetime(2025, 6, 7)
SUNDAY = datetime(2025, 6, 8)


def at(day: datetime, hh: int, mm: int) -> datetime:
    return day.replace(hour=hh, minute=mm)


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


# --- the shipped library ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[Prompt, ...]:
    return load_library()


def test_shipped_library_is_large_enough_and_covers_every_practice(shipped):
    counts = Counter(prompt.practice for prompt in shipped)
    assert len(shipped) >= 105
    assert set(counts) == set(Practice)
    assert min(counts.values()) >= 15, counts


def test_shipped_practices_match_the_config_keys():
    assert {practice.value for practice in Practice} == set(PRACTICES)


def test_shipped_texts_and_ids_are_unique(shipped):
    texts = [prompt.text for prompt in shipped]
    assert len(set(texts)) == len(texts)
    assert len({normalised(text) for text in texts}) == len(texts)
    ids = [prompt.id for prompt in shipped]
    assert len(set(ids)) == len(ids)
    assert not any(id_.startswith(USER_ID_PREFIX) for id_ in ids)


def test_shipped_texts_fit_the_screen_and_its_font(shipped):
    for prompt in shipped:
        assert prompt.text.strip() == prompt.text != ""
        assert len(prompt.text) <= 80, prompt.text
        assert prompt.text.isascii() and prompt.text.isprintable(), prompt.text
    short = sum(len(prompt.text) <= 60 for prompt in shipped)
    assert short >= 0.9 * len(shipped)


def test_shipped_gestures_fit_one_page_in_big_type_on_a_128x64_panel(shipped):
    """Each fits one page at 8 px capitals or more; nearly all at 10 px or more (bold)."""
    from micromance.screens import home, text

    sizes = Counter()
    for prompt in shipped:
        layout = home.prompt_layout(prompt.text, 128, 64)
        assert len(layout.pages) == 1, prompt.text
        sizes[text.cap_height(text.font(layout.size))] += 1
    assert min(sizes) >= 8
    assert sum(n for cap, n in sizes.items() if cap >= 10) >= 0.95 * len(shipped), sizes


def test_shipped_gestures_turn_pages_only_between_clauses_on_a_128x32_panel(shipped):
    """At most two pages, and the second starts a sentence, a clause or a phrase: never a
    page of one word, never mid-clause."""
    from micromance.screens import home, text

    for prompt in shipped:
        pages = home.prompt_pages(prompt.text, 128, 32)
        assert len(pages) <= 2, prompt.text
        if len(pages) == 2:
            first, second = (" ".join(page).split() for page in pages)
            assert len(first) > 1 and len(second) > 1, pages
            assert text.break_cost(first[-1], second[0]) < text.WORD_BREAK, pages


def test_shipped_tags_are_known_and_each_is_used(shipped):
    used = Counter(tag for prompt in shipped for tag in prompt.when)
    assert set(used) == set(TIME_TAGS)
    untagged = [prompt for prompt in shipped if not prompt.when]
    assert len(untagged) > len(shipped) / 2  # most prompts fit any time


def test_shipped_ids_are_stable_across_releases(shipped):
    # Pinned: if this changes, stored rotations and history lose track of the prompt.
    by_text = {prompt.text: prompt for prompt in shipped}
    prompt = by_text["Ask about their day and keep your phone face down"]
    assert prompt.id == "6809b1885f"
    assert prompt.practice is Practice.PRESENT and prompt.when == frozenset({"evening"})
    assert [p.id for p in load_library()] == [p.id for p in shipped]


def test_prompt_id_depends_on_practice_and_text():
    base = prompt_id(Practice.CALM, "Breathe")
    assert base != prompt_id(Practice.AFFIRM, "Breathe")
    assert base != prompt_id(Practice.CALM, "Breathe out")
    assert prompt_id(Practice.CALM, "Breathe", USER_ID_PREFIX) == USER_ID_PREFIX + base


# --- the user's extra file -------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-prompts.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD_EXTRA = """\
# our own
[[prompt]]
practice = "delight"
text = "Hum our song while the kettle boils"
when = ["morning", "weekend"]

[[prompt]]
practice = "Attune"
text = '''Ask Alex how
   the   climb went'''
"""


def test_extra_file_merges_after_the_shipped_prompts(tmp_path, shipped):
    library = load_library(write(tmp_path, GOOD_EXTRA))
    assert library[: len(shipped)] == shipped
    hum, climb = library[len(shipped):]
    assert hum.practice is Practice.DELIGHT
    assert hum.when == frozenset({"morning", "weekend"})
    assert hum.id.startswith(USER_ID_PREFIX)
    assert climb.practice is Practice.ATTUNE  # practice names are case-insensitive
    assert climb.text == "Ask Alex how the climb went"  # whitespace folded for the screen
    assert climb.when == frozenset()


def test_extra_file_accepts_a_string_path_and_empty_means_none(tmp_path, shipped):
    assert len(load_library(str(write(tmp_path, GOOD_EXTRA)))) == len(shipped) + 2
    assert load_library("") == shipped
    assert load_library(write(tmp_path, "# nothing yet\n")) == shipped


def test_disabled_practices_filter_shipped_and_user_prompts(tmp_path, shipped):
    library = load_library(write(tmp_path, GOOD_EXTRA), disabled_practices=("delight", "calm"))
    practices = {prompt.practice for prompt in library}
    assert practices == set(Practice) - {Practice.DELIGHT, Practice.CALM}
    assert [p.text for p in library if p.id.startswith(USER_ID_PREFIX)] == [
        "Ask Alex how the climb went"
    ]
    expected = sum(p.practice not in (Practice.DELIGHT, Practice.CALM) for p in shipped) + 1
    assert len(library) == expected


def test_unknown_disabled_practice_is_a_config_error():
    with pytest.raises(ConfigError, match='did you mean "affirm"'):
        load_library(disabled_practices=["afirm"])


LONG = "x" * (MAX_TEXT_CHARS + 1)

BAD_EXTRAS = {
    # name: (file text, line the message must name, fragments it must contain)
    "syntax error": (
        '[[prompt]]\npractice = "calm"\ntext = Breathe slowly\n',
        3, ["not valid TOML"],
    ),
    "unknown practice": (
        '[[prompt]]\npractice = "present"\ntext = "One"\n\n'
        '[[prompt]]\ntext = "Two"\npractice = "presnt"\n',
        7, ["unknown practice 'presnt'", 'did you mean "present"'],
    ),
    "practice written as its label": (
        '[[prompt]]\npractice = "Be present"\ntext = "One"\n',
        2, ['did you mean "present"'],
    ),
    "missing practice": (
        '\n[[prompt]]\ntext = "One"\n',
        2, ["practice is missing"],
    ),
    "missing text": (
        '# mine\n\n[[prompt]]\npractice = "calm"\nwhen = ["evening"]\n',
        3, ["text is missing"],
    ),
    "empty text": (
        '[[prompt]]\npractice = "calm"\n\ntext = "   "\n',
        4, ["text is empty"],
    ),
    "text not a string": (
        '[[prompt]]\npractice = "calm"\ntext = 42\n',
        3, ["text is not a quoted string"],
    ),
    "text too long": (
        f'[[prompt]]\npractice = "calm"\ntext = "{LONG}"\n',
        3, [f"more than {MAX_TEXT_CHARS}"],
    ),
    "unknown key": (
        '[[prompt]]\npractice = "calm"\ntxt = "One"\n',
        3, ["unknown key 'txt'", 'did you mean "text"'],
    ),
    "unknown when tag": (
        '[[prompt]]\npractice = "calm"\ntext = "One"\nwhen = ["mornings"]\n',
        4, ["unknown when tag 'mornings'", 'did you mean "morning"'],
    ),
    "when not a list": (
        '[[prompt]]\npractice = "calm"\ntext = "One"\nwhen = "evening"\n',
        4, ['when = ["morning"]'],
    ),
    "duplicate in the file": (
        '[[prompt]]\npractice = "calm"\ntext = "Breathe slowly"\n\n'
        '[[prompt]]\npractice = "affirm"\ntext = "breathe  slowly!"\n',
        7, ["repeats a prompt from line 3 of this file"],
    ),
    "duplicate of a shipped prompt": (
        '[[prompt]]\npractice = "present"\n'
        'text = "Hug them a little longer than usual."\n',
        3, ["repeats a prompt from the shipped library"],
    ),
    "unknown top-level key": (
        'version = 2\n[[prompt]]\npractice = "calm"\ntext = "One"\n',
        1, ["unknown key 'version'"],
    ),
    "single brackets": (
        '# one prompt\n[prompt]\npractice = "calm"\ntext = "One"\n',
        2, ["[[prompt]]"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_EXTRAS))
def test_bad_extra_file_names_file_line_problem_and_fix(tmp_path, case):
    text, line, fragments = BAD_EXTRAS[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_library(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"line {line}" in message
    assert "fix:" in message
    for fragment in fragments:
        assert fragment in message


def test_missing_extra_file_is_named(tmp_path):
    path = tmp_path / "nowhere" / "prompts.toml"
    with pytest.raises(ConfigError) as caught:
        load_library(path)
    assert str(path) in str(caught.value)
    assert "not found" in str(caught.value)


def test_extra_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[prompt]]\npractice = "calm"\ntext = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_library(path)


# --- time of day -----------------------------------------------------------------------------


def tagged(*tags: str, id_: str = "p") -> Prompt:
    return Prompt(id=id_, text="t", practice=Practice.PRESENT, when=frozenset(tags))


@pytest.mark.parametrize(("now", "expected"), [
    (at(MONDAY, 4, 59), False), (at(MONDAY, 5, 0), True),
    (at(MONDAY, 11, 59), True), (at(MONDAY, 12, 0), False),
])
def test_morning_boundaries(now, expected):
    assert is_eligible(tagged("morning"), now) is expected


@pytest.mark.parametrize(("now", "expected"), [
    (at(MONDAY, 16, 59), False), (at(MONDAY, 17, 0), True),
    (at(MONDAY, 23, 59), True), (at(MONDAY, 0, 0), False),
])
def test_evening_boundaries(now, expected):
    assert is_eligible(tagged("evening"), now) is expected


@pytest.mark.parametrize(("now", "expected"), [
    (at(FRIDAY, 23, 59), False), (at(SATURDAY, 0, 0), True),
    (at(SUNDAY, 23, 59), True), (at(SUNDAY + timedelta(days=1), 0, 0), False),
])
def test_weekend_boundaries(now, expected):
    assert is_eligible(tagged("weekend"), now) is expected


def test_several_tags_mean_any_of_them():
    prompt = tagged("morning", "weekend")
    assert is_eligible(prompt, at(MONDAY, 9, 0))
    assert is_eligible(prompt, at(SATURDAY, 20, 0))
    assert not is_eligible(prompt, at(MONDAY, 20, 0))


@given(st.datetimes())
def test_untagged_prompts_always_fit_and_tags_partition_sensibly(now):
    assert is_eligible(tagged(), now)
    both = is_eligible(tagged("morning", "evening"), now)
    assert both == (is_eligible(tagged("morning"), now) or is_eligible(tagged("evening"), now))
    assert not (is_eligible(tagged("morning"), now) and is_eligible(tagged("evening"), now))


# --- the shuffle bag -------------------------------------------------------------------------


@st.composite
def libraries(draw, min_size: int = 1, max_size: int = 25) -> tuple[Prompt, ...]:
    size = draw(st.integers(min_size, max_size))
    tag_sets = st.frozensets(st.sampled_from(TIME_TAGS), max_size=2)
    return tuple(
        Prompt(id=f"p{i}", text=f"prompt {i}", practice=draw(st.sampled_from(list(Practice))),
               when=draw(tag_sets))
        for i in range(size)
    )


times = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31))
seeds = st.integers(0, 2**32)


def eligible_ids(library: tuple[Prompt, ...], now: datetime) -> set[str]:
    ids = {prompt.id for prompt in library if is_eligible(prompt, now)}
    return ids or {prompt.id for prompt in library}  # nothing fits: tags are ignored


def run(bag: ShuffleBag, library, now, draw_seeds, restart_at=frozenset()):
    """Draw once per seed; before each draw in ``restart_at`` the bag goes through JSON."""
    shown = []
    for step, seed in enumerate(draw_seeds):
        if step in restart_at:
            bag = ShuffleBag.from_json(bag.to_json())
        prompt, bag = bag.draw(library, now, seed)
        shown.append(prompt.id)
    return shown, bag


def assert_cycles_cover_eligible(shown: list[str], eligible: set[str]) -> None:
    size = len(eligible)
    for start in range(0, len(shown) - size + 1, size):
        chunk = shown[start:start + size]
        assert sorted(chunk) == sorted(eligible), f"cycle at {start} is {chunk}"
    tail = shown[len(shown) - len(shown) % size:]
    assert len(set(tail)) == len(tail) and set(tail) <= eligible
    if size > 1:
        assert all(a != b for a, b in pairwise(shown))


@given(libraries(), times, seeds, st.lists(seeds, min_size=1, max_size=80))
def test_bag_shows_every_eligible_prompt_once_per_cycle(library, now, fresh_seed, draw_seeds):
    bag = ShuffleBag.fresh([p.id for p in library], fresh_seed)
    shown, _ = run(bag, library, now, draw_seeds)
    assert_cycles_cover_eligible(shown, eligible_ids(library, now))


@given(libraries(), times, st.lists(seeds, min_size=1, max_size=80), st.data())
def test_bag_survives_json_round_trips_mid_cycle(library, now, draw_seeds, data):
    restarts = data.draw(st.frozensets(st.integers(0, len(draw_seeds) - 1)))
    straight, straight_bag = run(ShuffleBag(), library, now, draw_seeds)
    restarted, restarted_bag = run(ShuffleBag(), library, now, draw_seeds, restarts)
    assert restarted == straight  # a restart changes nothing at all
    assert restarted_bag == straight_bag
    assert_cycles_cover_eligible(restarted, eligible_ids(library, now))


@given(libraries(), times, st.lists(seeds, max_size=40))
def test_json_round_trip_gives_an_equal_bag(library, now, draw_seeds):
    _, bag = run(ShuffleBag.fresh([p.id for p in library], 7), library, now, draw_seeds)
    text = bag.to_json()
    assert ShuffleBag.from_json(text) == bag
    assert ShuffleBag.from_json(text.encode()) == bag


@given(st.lists(st.text(max_size=8), max_size=20), seeds)
def test_fresh_bag_is_a_permutation_without_duplicates(ids, seed):
    bag = ShuffleBag.fresh(ids, seed)
    assert sorted(bag.order) == sorted(set(ids))
    assert bag.shown == frozenset() and bag.position == 0 and bag.last_shown is None
    assert ShuffleBag.fresh(ids, seed) == bag  # the seed alone decides the order


def test_ineligible_prompts_wait_in_the_cycle_for_their_time():
    library = (tagged("morning", id_="m"), tagged("evening", id_="e"),
               tagged(id_="a"), tagged(id_="b"))
    bag = ShuffleBag.fresh(["m", "e", "a", "b"], seed=1)
    morning = at(MONDAY, 8, 0)
    shown, bag = run(bag, library, morning, [1, 2, 3])
    assert sorted(shown) == ["a", "b", "m"]
    prompt, bag = bag.draw(library, at(MONDAY, 19, 0), seed=4)
    assert prompt.id == "e"  # kept for the evening, same cycle: no repeat of a or b first
    assert bag.shown == frozenset({"a", "b", "m", "e"})
    prompt, bag = bag.draw(library, at(MONDAY, 19, 5), seed=5)
    assert prompt.id in {"a", "b"} and bag.shown == frozenset({prompt.id})  # new cycle


def test_nothing_left_fits_now_starts_a_new_cycle():
    library = (tagged("morning", id_="m"), tagged(id_="a"), tagged(id_="b"))
    evening = at(MONDAY, 20, 0)
    shown, _ = run(ShuffleBag.fresh(["m", "a", "b"], 3), library, evening, [1, 2, 3, 4])
    assert sorted(shown[:2]) == ["a", "b"]
    assert shown[2] != shown[1] and shown[2] in {"a", "b"}
    assert "m" not in shown


@given(seeds, seeds)
def test_new_cycle_never_opens_with_the_last_prompt(fresh_seed, draw_seed):
    library = (tagged(id_="a"), tagged(id_="b"))
    bag = ShuffleBag.fresh(["a", "b"], fresh_seed)
    shown, _ = run(bag, library, at(MONDAY, 10, 0), [draw_seed] * 9)
    assert all(x != y for x, y in pairwise(shown))


def test_when_no_prompt_fits_now_tags_are_ignored():
    library = (tagged("morning", id_="m1"), tagged("morning", id_="m2"))
    shown, _ = run(ShuffleBag(), library, at(MONDAY, 21, 0), [1, 2, 3, 4])
    assert sorted(shown[:2]) == ["m1", "m2"] and sorted(shown[2:]) == ["m1", "m2"]


def test_drawing_from_an_empty_library_is_a_programming_error():
    with pytest.raises(ValueError, match="empty"):
        ShuffleBag().draw((), MONDAY, 1)


@given(
    libraries(min_size=2, max_size=20),
    st.data(),
    seeds,
    st.lists(seeds, min_size=60, max_size=60),
)
def test_library_changes_between_restarts(library, data, fresh_seed, draw_seeds):
    untagged = tuple(Prompt(p.id, p.text, p.practice, frozenset()) for p in library)
    now = at(MONDAY, 14, 0)
    before = data.draw(st.integers(1, len(untagged) - 1), label="draws before the update")
    shown_before, bag = run(ShuffleBag.fresh([p.id for p in untagged], fresh_seed),
                            untagged, now, draw_seeds[:before])
    removed = data.draw(st.sets(st.sampled_from([p.id for p in untagged])), label="removed")
    added = tuple(Prompt(f"new{i}", f"new prompt {i}", Practice.CALM, frozenset())
                  for i in range(data.draw(st.integers(0, 5), label="added")))
    updated = tuple(p for p in untagged if p.id not in removed) + added
    assume(updated)

    restored = ShuffleBag.from_json(bag.to_json())
    shown_after, _ = run(restored, updated, now, draw_seeds[before:])

    current = {p.id for p in updated}
    assert set(shown_after) <= current  # removed prompts never come back
    rest_of_cycle = current - set(shown_before)
    if rest_of_cycle:
        assert sorted(shown_after[:len(rest_of_cycle)]) == sorted(rest_of_cycle)
        following = shown_after[len(rest_of_cycle):]
    else:
        following = shown_after
    assert_cycles_cover_eligible(following, current)


@settings(max_examples=20)
@given(times, st.lists(seeds, min_size=1, max_size=5), st.data())
def test_shipped_library_rotates_fully_across_restarts(shipped, now, restart_seeds, data):
    eligible = eligible_ids(shipped, now)
    draw_seeds = data.draw(st.lists(seeds, min_size=len(eligible) + 3,
                                    max_size=len(eligible) + 3))
    restarts = frozenset(s % len(draw_seeds) for s in restart_seeds)
    shown, _ = run(ShuffleBag(), shipped, now, draw_seeds, restarts)
    assert_cycles_cover_eligible(shown, eligible)


CORRUPT_STATES = [
    "", "null", "not json", "[]", "{}", "{\"version\": 2, \"order\": []}",
    json.dumps({"version": 1, "order": ["a", "a"], "position": 0, "shown": [],
                "last_shown": None}),
    json.dumps({"version": 1, "order": ["a"], "position": 5, "shown": [], "last_shown": None}),
    json.dumps({"version": 1, "order": ["a"], "position": 0, "shown": ["b"],
                "last_shown": None}),
    json.dumps({"version": 1, "order": ["a"], "position": True, "shown": [],
                "last_shown": None}),
    json.dumps({"version": 1, "order": [1], "position": 0, "shown": [], "last_shown": None}),
    json.dumps({"version": 1, "order": ["a"], "position": 0, "shown": [["x"]],
                "last_shown": 3}),
    "[" * 100_000,
]


@pytest.mark.parametrize("text", CORRUPT_STATES)
def test_corrupt_state_gives_an_empty_bag_that_still_works(text):
    bag = ShuffleBag.from_json(text)
    assert bag == ShuffleBag()
    prompt, _ = bag.draw((tagged(id_="a"),), MONDAY, 1)
    assert prompt.id == "a"


@given(st.one_of(st.text(), st.binary()))
def test_from_json_never_raises(text):
    assert isinstance(ShuffleBag.from_json(text), ShuffleBag)
