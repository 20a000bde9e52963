"""Screens: golden images of every sample frame, and properties that must hold for any view.

Golden images live in ``tests/golden/<name>-<w>x<h>.png`` (native size, mode "1"). When a
rendering differs, the actual image is written beside the reference as ``.actual.png``; look
at both, and if the change is intended, re-create the references with
``MICROMANCE_UPDATE_GOLDEN=1 pytest tests/test_screens.py``. Text pixels depend on the
FreeType that Pillow bundles: the references were made with Pillow 13.0.0 (FreeType 2.14.3).
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import PIL
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageFilter, features

from micromance.screens import home, text
from micromance.screens.layout import MARGIN
from micromance.screens.preview import SCALE, sample_frames, write_previews
from micromance.screens.render import prompt_pages, render
from micromance.screens.views import (
    RECEIVED_FRAMES,
    TOGETHER_FRAMES,
    DoneView,
    Frame,
    HelpView,
    HomeView,
    LinkMark,
    PairingPhase,
    PairingView,
    Practice,
    ProblemView,
    QuietView,
    ReceivedView,
    SentView,
    TogetherView,
    WeekView,
)

GOLDEN = Path(__file__).parent / "golden"
SIZES = ((128, 64), (128, 32))
SAMPLES = sample_frames()
UPDATE = os.environ.get("MICROMANCE_UPDATE_GOLDEN") == "1"
SHIFTS = ((2, 2), (-2, -2), (2, -2), (-2, 2))


def lit(image: Image.Image) -> int:
    return image.histogram()[-1]


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- golden images


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_matches_golden_image(name, size):
    width, height = size
    actual = render(SAMPLES[name], width, height)
    expected_path = GOLDEN / f"{name}-{width}x{height}.png"
    actual_path = expected_path.with_suffix(".actual.png")
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        actual.save(expected_path)
        actual_path.unlink(missing_ok=True)
        return
    assert expected_path.exists(), (
        f"no golden image {expected_path.name}; create it with MICROMANCE_UPDATE_GOLDEN=1"
    )
    with Image.open(expected_path) as stored:
        expected = stored.convert("1")
    if same_pixels(actual, expected):
        actual_path.unlink(missing_ok=True)
        return
    actual.save(actual_path)
    pytest.fail(
        f"{name} at {width}x{height} differs from {expected_path.name}; the actual rendering "
        f"is in {actual_path}. If the change is intended, rerun with MICROMANCE_UPDATE_GOLDEN=1."
        f" (Pillow {PIL.__version__}, FreeType {features.version('freetype2')})"
    )


def test_golden_images_have_no_strays():
    """Every reference belongs to a sample, so renamed samples do not leave stale files."""
    expected = {f"{n}-{w}x{h}.png" for n in SAMPLES for w, h in SIZES}
    stored = {p.name for p in GOLDEN.glob("*.png") if not p.name.endswith(".actual.png")}
    assert stored <= expected


# --------------------------------------------------------------------------- every sample


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_is_not_blank_and_keeps_its_margin(name, size):
    image = render(SAMPLES[name], *size)
    assert image.mode == "1" and image.size == size
    assert lit(image) > 0
    width, height = size
    inner = image.crop((MARGIN, MARGIN, width - MARGIN, height - MARGIN))
    assert lit(inner) == lit(image), "ink in the margin would leave the panel when shifted"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_shift_moves_the_whole_layout(name, size):
    base = render(SAMPLES[name], *size)
    for dx, dy in SHIFTS:
        shifted = render(Frame(SAMPLES[name].view, (dx, dy)), *size)
        assert lit(shifted) == lit(base)
        assert same_pixels(shifted, ImageChops.offset(base, dx, dy))


def test_shift_is_clamped_to_the_margin():
    view = SAMPLES["home"].view
    assert same_pixels(render(Frame(view, (9, -9)), 128, 64), render(Frame(view, (2, -2)), 128, 64))


def test_quiet_without_pending_is_dark():
    for size in SIZES:
        assert lit(render(Frame(QuietView()), *size)) == 0


def test_equal_frames_give_identical_images():
    for name, frame in SAMPLES.items():
        again = Frame(frame.view, frame.shift)
        assert same_pixels(render(frame, 128, 64), render(again, 128, 64)), name


def test_received_animation_ends_on_the_still_heart():
    frames = [render(Frame(ReceivedView("Sam", frame=i)), 128, 64) for i in range(RECEIVED_FRAMES)]
    assert len({f.tobytes() for f in frames}) == RECEIVED_FRAMES  # every frame moves
    later = render(Frame(ReceivedView("Sam", frame=RECEIVED_FRAMES + 3)), 128, 64)
    assert same_pixels(later, frames[-1])


def test_every_practice_has_its_own_mark():
    images = {
        render(Frame(HomeView("Hug", practice=p, today=0, total=0)), 128, 32).tobytes()
        for p in Practice
    }
    assert len(images) == len(Practice)


def test_every_link_problem_shows_a_mark():
    ok = render(Frame(HomeView("Hug", Practice.CALM, 1, 2)), 128, 64)
    marks = set()
    for link in LinkMark:
        image = render(Frame(HomeView("Hug", Practice.CALM, 1, 2, link=link)), 128, 64)
        assert same_pixels(image, ok) == (link == LinkMark.OK)
        marks.add(image.tobytes())
    assert len(marks) == len(LinkMark)


def test_long_prompt_pages_wrap_around():
    prompt = SAMPLES["home-long-page-0"].view.prompt
    pages = prompt_pages(prompt, 128, 64)
    assert len(pages) > 1
    first = render(Frame(HomeView(prompt, Practice.PRESENT, 1, 42)), 128, 64)
    again = render(Frame(HomeView(prompt, Practice.PRESENT, 1, 42, page=len(pages))), 128, 64)
    assert same_pixels(first, again)


# --------------------------------------------------------------------------- legibility


def ink_height(size: int, letters: str = "HEFT") -> int:
    """Capitals' height in px as the screens really draw them (``draw_line``)."""
    image = Image.new("1", (120, 60))
    from PIL import ImageDraw

    text.draw_line(ImageDraw.Draw(image), (4, 10), letters, text.font(size))
    box = image.getbbox()
    assert box is not None
    return box[3] - box[1]


def test_the_gesture_sizes_have_capitals_of_11_10_9_and_8_px():
    assert [ink_height(size) for size in home.PROMPT_SIZES] == [11, 10, 9, 8]
    assert [text.cap_height(text.font(size)) for size in home.PROMPT_SIZES] == [11, 10, 9, 8]
    assert ink_height(home.PROMPT_COMPACT) == 8


def test_a_short_gesture_is_drawn_big_and_a_long_one_smaller_but_on_one_page():
    big = home.prompt_layout("Hug them a little longer than usual", 128, 64)
    assert big.size == home.PROMPT_SIZES[0] and len(big.pages) == 1
    medium = home.prompt_layout("Hear their mood this morning, and match it", 128, 64)
    assert medium.size == 14 and len(medium.pages) == 1
    long_one = home.prompt_layout(SAMPLES["home-long-page-0"].view.prompt, 128, 64)
    assert long_one.size == home.PROMPT_SIZES[-1] and len(long_one.pages) == 2


def test_pages_turn_at_a_full_stop_before_a_comma_before_a_clause_word():
    fnt = text.font(11)
    pages = text.clause_pages("Breathe slowly for a moment. Then tell them, gently, what you "
                              "need", fnt, 124, 2)
    assert [" ".join(p) for p in pages] == ["Breathe slowly for a moment.",
                                            "Then tell them, gently, what you need"]
    pages = text.clause_pages("Ask about their day and listen without your phone", fnt, 124, 2)
    assert [" ".join(p) for p in pages] == ["Ask about their day",
                                            "and listen without your phone"]


def test_a_page_of_one_word_beats_a_break_mid_clause_and_loses_to_a_clean_one():
    fnt = text.font(11)
    pages = text.clause_pages("Make their drink the way they like it, unasked", fnt, 124, 2)
    assert pages == [["Make their drink", "the way they like it,"], ["unasked"]]
    pages = text.clause_pages("Call them, and give them your full attention", fnt, 124, 2)
    assert pages == [["Call them,"], ["and give them", "your full attention"]]


def test_a_clause_longer_than_a_page_is_split_in_lines_as_a_last_resort():
    fnt = text.font(11)
    words = "one two three four five six seven eight nine ten eleven twelve thirteen " * 3
    pages = text.clause_pages(words, fnt, 60, 2)
    assert len(pages) > 1 and all(len(p) <= 2 for p in pages)
    assert " ".join(" ".join(p) for p in pages).split() == words.split()


def test_the_status_is_said_in_words_not_only_an_icon():
    """With an icon beside them when they leave room: the words are the message."""
    base = HomeView("Hug them", Practice.CALM, 1, 2, link=LinkMark.PARTNER_OFFLINE,
                    partner="Alex", away_since="18:05")
    assert home.link_phrases(base)[0] == ("Alex away since 18:05",)
    block = home.status_block(base, 124, home.SMALL)
    assert block.width > 60  # words, not a 7 px mark
    for link in LinkMark:
        if link is not LinkMark.OK:
            phrases = home.link_phrases(HomeView("x", Practice.CALM, 0, 0, link=link))
            assert all(len(p[0]) >= 4 for p in phrases)
    compact = render(Frame(HomeView("Hug them", Practice.CALM, 1, 2,
                                    link=LinkMark.BROKER_UNREACHABLE, page=1)), 128, 32)
    first = render(Frame(HomeView("Hug them", Practice.CALM, 1, 2,
                                  link=LinkMark.BROKER_UNREACHABLE, page=0)), 128, 32)
    assert not same_pixels(compact, first)  # a page of its own on a 128x32 panel


def test_together_animation_ends_on_the_still_hearts():
    frames = [render(Frame(TogetherView("Sam", frame=i)), 128, 64)
              for i in range(TOGETHER_FRAMES)]
    assert len({f.tobytes() for f in frames}) == TOGETHER_FRAMES  # every frame moves
    later = render(Frame(TogetherView("Sam", frame=TOGETHER_FRAMES + 3)), 128, 64)
    assert same_pixels(later, frames[-1])


def test_the_weeks_bars_grow_with_the_count():
    def bar_ink(days: tuple[int, ...]) -> int:
        return lit(render(Frame(WeekView(days=days, weekday=3)), 128, 64))

    assert bar_ink((0, 0, 0, 0, 0, 0, 1)) < bar_ink((0, 0, 0, 0, 0, 5, 10))
    assert lit(render(Frame(WeekView(days=(), weekday=0)), 128, 32)) > 0  # day letters


def test_write_previews(tmp_path):
    paths = write_previews(tmp_path, sizes=((128, 32),))
    assert len(paths) == len(SAMPLES)
    assert {p.name for p in paths} == {f"{n}-128x32.png" for n in SAMPLES}
    for name in SAMPLES:
        assert name == name.lower() and " " not in name and "_" not in name
    with Image.open(tmp_path / "home-128x32.png") as image:
        assert image.size == (128 * SCALE, 32 * SCALE)


# --------------------------------------------------------------------------- wrapping


def test_wrap_breaks_on_spaces_only():
    fnt = text.font(13)
    prompt = "Ask about their day and listen without your phone"
    lines = text.wrap(prompt, fnt, 124)
    assert len(lines) > 1 and all(text.text_width(line, fnt) <= 124 for line in lines)
    assert " ".join(lines) == prompt


def test_wrap_hyphenates_only_a_word_longer_than_the_line():
    fnt = text.font(13)
    lines = text.wrap("a Pneumonoultramicroscopicsilicovolcanoconiosis b", fnt, 60)
    assert all(text.text_width(line, fnt) <= 60 for line in lines)
    assert "".join(lines).replace("-", "").replace(" ", "") == (
        "aPneumonoultramicroscopicsilicovolcanoconiosisb"
    )
    assert lines[0] == "a"


def test_wrap_keeps_forced_line_breaks():
    assert text.wrap("one\ntwo", text.font(11), 124) == ["one", "two"]


def test_characters_the_font_lacks_become_close_ones():
    assert text.displayable("Zoë’s café — naïve") == "Zoe’s cafe - naive"
    assert text.displayable("\U0001f600 ok") == "? ok"


def test_balanced_wrap_keeps_the_line_count():
    fnt = text.font(13)
    prompt = "Tell them one thing you admire about them"
    greedy, balanced = text.wrap(prompt, fnt, 124), text.balanced_wrap(prompt, fnt, 124)
    assert len(balanced) == len(greedy) and " ".join(balanced) == prompt
    assert max(map(len, balanced)) - min(map(len, balanced)) <= max(map(len, greedy)) - min(
        map(len, greedy)
    )


# --------------------------------------------------------------------------- properties

words = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation, min_size=1, max_size=24
)
prompts = st.lists(words, min_size=0, max_size=40).map(" ".join).map(lambda s: s[:200])


@settings(max_examples=150, deadline=None)
@given(prompt=prompts)
def test_any_prompt_wraps_into_pages_that_fit(prompt):
    for width, height in SIZES:
        layout = home.prompt_layout(prompt, width, height)
        fnt = text.font(layout.size)
        pages = prompt_pages(prompt, width, height)
        assert layout.size in (*home.PROMPT_SIZES, home.PROMPT_COMPACT)
        assert layout.width == width - 2 * MARGIN
        if prompt.strip():
            for page in pages:
                assert len(page) >= 1
                assert home._prompt_height(len(page), fnt, layout.gap) <= layout.height
        else:
            assert pages == [[]]
        for page in pages:
            for line in page:
                assert text.text_width(line, fnt) <= layout.width, line
        # Nothing is lost: the same characters, only spaces and added hyphens differ.
        joined = "".join(line for page in pages for line in page)
        assert joined.replace(" ", "").replace("-", "") == prompt.replace(" ", "").replace("-", "")


short_prompts = st.lists(words, min_size=0, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=short_prompts, practice=st.sampled_from(Practice), page=st.integers(0, 20),
       link=st.sampled_from(LinkMark), focus=st.booleans(), pending=st.integers(0, 120),
       today=st.integers(0, 10**5), total=st.integers(0, 10**7))
def test_any_home_page_stays_clear_of_the_header_and_footer(
    prompt, practice, page, link, focus, pending, today, total
):
    """The prompt never touches the icons or counter: no overlap, not even adjacent pixels."""
    for size in SIZES:
        full = render(Frame(HomeView(prompt, practice, today, total, link, page, focus,
                                     pending)), *size)
        chrome = render(Frame(HomeView("", practice, today, total, link, page, focus,
                                       pending)), *size)
        if len(prompt_pages(prompt, *size)) > 1:
            continue  # page dots would differ from the one-page chrome
        prompt_only = ImageChops.logical_xor(full, chrome)
        halo = chrome.convert("L").filter(ImageFilter.MaxFilter(3)).convert("1")
        assert lit(ImageChops.logical_and(prompt_only, halo)) == 0
        assert lit(ImageChops.logical_and(chrome, full)) == lit(chrome)


names = st.text(min_size=0, max_size=40)
whens = st.one_of(st.just(""), st.sampled_from(["just now", "2 h ago", "yesterday 21:40",
                                                 "Mon 08:15", "12 Nov", "today 09:55"]),
                  st.text(max_size=30))
views = st.one_of(
    st.builds(HomeView, prompt=prompts, practice=st.sampled_from(Practice),
              today=st.integers(0, 10**6), total=st.integers(0, 10**9),
              link=st.sampled_from(LinkMark), page=st.integers(0, 10**6), focus=st.booleans(),
              pending=st.integers(0, 10**4), partner=names, away_since=whens,
              pending_when=whens),
    st.builds(SentView, seen=st.booleans(), queued=st.booleans(), seen_when=whens),
    st.builds(ReceivedView, sender=names, frame=st.integers(-3, RECEIVED_FRAMES + 3),
              count=st.integers(1, 10**4), when=whens),
    st.builds(TogetherView, partner=names, frame=st.integers(-3, TOGETHER_FRAMES + 3)),
    st.builds(WeekView, days=st.lists(st.integers(-2, 10**5), max_size=9).map(tuple),
              weekday=st.integers(0, 6), streak=st.integers(0, 10**5)),
    st.builds(HelpView, page=st.integers(0, 10**6)),
    st.builds(DoneView, streak=st.integers(0, 10**5)),
    st.builds(PairingView, phase=st.sampled_from(PairingPhase),
              code=st.one_of(st.from_regex(r"\A[0-9]{6}\Z"), st.text(max_size=12)),
              detail=st.text(max_size=80)),
    st.builds(ProblemView, reason=st.text(max_size=60), detail=st.text(max_size=120)),
    st.builds(QuietView, pending=st.integers(0, 10**4)),
)


def blank_allowed(view: object) -> bool:
    return isinstance(view, QuietView) and view.pending == 0


@settings(max_examples=300, deadline=None)
@given(view=views)
def test_any_view_renders_on_screen(view):
    for size in SIZES:
        base = render(Frame(view), *size)
        assert base.mode == "1" and base.size == size
        assert blank_allowed(view) or lit(base) > 0
        for shift in SHIFTS[:2]:
            assert lit(render(Frame(view, shift), *size)) == lit(base), shift


@settings(max_examples=100, deadline=None)
@given(view=views, width=st.integers(1, 300), height=st.integers(1, 160),
       shift=st.tuples(st.integers(-5, 5), st.integers(-5, 5)))
def test_any_size_renders_without_error(view, width, height, shift):
    """Unusual panels (a config may name any luma size) get a best effort, never a crash."""
    image = render(Frame(view, shift), width, height)
    assert image.mode == "1" and image.size == (width, height)
