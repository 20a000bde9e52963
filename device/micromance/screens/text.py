"""Fonts, measuring and word wrapping for 1-bit screens.

One font family everywhere: Pillow's bundled scalable default font (Aileron Regular,
``ImageFont.load_default(size=N)``). It needs no system package, so golden images match on any
machine with the same Pillow (and FreeType), and it stays legible from 9 px to 28 px.

How it is turned into crisp 1-bit pixels (measured on a 128x64 panel, see ``word_mask``):
- 11 px and up is rendered anti-aliased and thresholded low, which keeps every stroke solid;
  from 16 px up words are also drawn a pixel wider, a pixel-font "bold";
- 9 px and below uses FreeType's own 1-bit hinting, the clearest at that size;
- the font's space is only 2-3 px, which runs words together, so lines are laid out word by
  word with a wider space (``space_width``);
- it covers ASCII and a few typographic marks only, so other characters are mapped to a close
  ASCII form (``displayable``) instead of showing "tofu" boxes.

Pillow is imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont

#: Text up to this size (px) is rasterised 1-bit by FreeType; larger text is thresholded.
MONO_UP_TO = 9
#: Grey level (of 255) from which an anti-aliased pixel is lit. Low enough that thin strokes
#: survive as solid 1 px lines, high enough that small letters keep their holes open.
THRESHOLD = 80
#: Text from this size (px) up is drawn a pixel bolder: 1 px strokes look frail from afar.
BOLD_FROM = 14

#: Typographic characters that are easier to read as their plain forms on a tiny panel.
_REPLACEMENTS = {
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\t": " ",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "AE", "\u0153": "oe", "\u0152": "OE",
    "\u00f8": "o", "\u00d8": "O", "\u0142": "l", "\u0141": "L", "\u00f0": "d", "\u00fe": "th",
}


@functools.lru_cache(maxsize=32)
def font(size: int) -> FreeTypeFont:
    """The screen font at ``size`` px; cached because loading parses the whole font file."""
    from PIL import ImageFont

    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise RuntimeError("Pillow was built without FreeType; micromance needs it for text")
    return loaded


@functools.lru_cache(maxsize=32)
def space_width(fnt: FreeTypeFont) -> int:
    """Gap between words: the font's own space is too narrow to read on a 1-bit panel."""
    return max(round(fnt.getlength(" ")), round(fnt.size * 0.35))


@functools.lru_cache(maxsize=64)
def metrics(fnt: FreeTypeFont) -> tuple[int, int, int]:
    """``(cap_top, baseline, descent_bottom)`` offsets from the draw origin, in px.

    Layouts position text by its ink (the top of capitals), not by Pillow's origin, which
    sits a size-dependent distance above the letters.
    """
    mode = render_mode(fnt)
    _, cap_top, _, baseline = fnt.getbbox("H", mode=mode)
    _, _, _, bottom = fnt.getbbox("gjpqy", mode=mode)
    return int(cap_top), int(baseline), int(bottom)  # whole pixels (Pillow types say float)


@functools.lru_cache(maxsize=64)
def ascent(fnt: FreeTypeFont) -> int:
    """How far the tallest ASCII glyphs (``f``, brackets, ``|``) rise above the capitals."""
    mode = render_mode(fnt)
    cap_top = metrics(fnt)[0]
    return max(0, cap_top - min(int(fnt.getbbox(ch, mode=mode)[1]) for ch in _ASCII))


_ASCII = "".join(chr(c) for c in range(33, 127))


def cap_height(fnt: FreeTypeFont) -> int:
    """Height of capitals and digits in px: the visible size of a text line."""
    cap_top, baseline, _ = metrics(fnt)
    return baseline - cap_top


def line_height(fnt: FreeTypeFont) -> int:
    """From the top of capitals to the bottom of descenders, in px."""
    cap_top, _, bottom = metrics(fnt)
    return bottom - cap_top


@functools.lru_cache(maxsize=1)
def _missing_glyph() -> bytes:
    return _glyph_key("\ufffe")


def _glyph_key(ch: str) -> bytes:
    """The rendered pixels of ``ch``: a missing glyph renders as the font's "tofu" box."""
    from PIL import Image, ImageDraw

    fnt = font(16)
    image = Image.new("1", (32, 32))
    ImageDraw.Draw(image).text((4, 4), ch, font=fnt, fill=255)
    return image.tobytes()


@functools.lru_cache(maxsize=1024)
def _has_glyph(ch: str) -> bool:
    return ch == " " or _glyph_key(ch) != _missing_glyph()


@functools.lru_cache(maxsize=256)
def displayable(text: str) -> str:
    """``text`` with every character the font lacks replaced by a close one it has.

    Accents are dropped (``é`` -> ``e``), dashes become hyphens, anything else unknown
    becomes ``?`` -- never an empty box.
    """
    out = []
    for ch in text:
        if ch == "\n" or _has_glyph(ch):
            out.append(ch)
            continue
        if ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
            continue
        if ch.isspace():
            out.append(" ")
            continue
        if unicodedata.category(ch).startswith("C"):  # control and format characters
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        )
        out.append(base if base and all(_has_glyph(c) for c in base) else "?")
    return "".join(out)


def text_width(text: str, fnt: FreeTypeFont) -> int:
    """Width of one line as ``draw_line`` lays it out (words + fixed spaces), in px."""
    words = text.split(" ")
    gaps = space_width(fnt) * (len(words) - 1)
    return gaps + sum(_word_width(word, fnt) for word in words)


@functools.lru_cache(maxsize=2048)
def word_box(word: str, fnt: FreeTypeFont) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the word's ink as ``render_mode`` draws it.

    Cached, as ``word_mask`` is: FreeType lays the word out afresh for every box, and a
    screen measures the same few words on every redraw (widths, ascent, descent).
    """
    left, top, right, bottom = fnt.getbbox(word, mode=render_mode(fnt))
    return int(left), int(top), int(right), int(bottom)


@functools.lru_cache(maxsize=2048)
def _word_width(word: str, fnt: FreeTypeFont) -> int:
    if not word:
        return 0
    # The ink can reach past the advance, or start left of the pen; count both.
    left, _, right, _ = word_box(word, fnt)
    advance = round(fnt.getlength(word, mode=render_mode(fnt)))
    return max(advance, right + is_bold(fnt)) - min(left, 0)


def render_mode(fnt: FreeTypeFont) -> str:
    """How ``fnt`` is rasterised, and so measured: ``"1"`` (hinted 1-bit) or ``"L"`` (grey)."""
    return "1" if fnt.size <= MONO_UP_TO else "L"


def is_bold(fnt: FreeTypeFont) -> bool:
    """Whether ``fnt`` is drawn a pixel wider (see ``BOLD_FROM``)."""
    return fnt.size >= BOLD_FROM


@functools.lru_cache(maxsize=2048)
def word_mask(word: str, fnt: FreeTypeFont) -> tuple[Image, int, int]:
    """``(mask, dx, dy)``: the word's 1-bit ink and its offset from (pen x, capitals' top).

    From 10 px up, FreeType's 1-bit hinting gives Aileron uneven stems and spacing; the grey
    rendering thresholded at ``THRESHOLD`` is steadier and bolder. Measuring uses the same
    mode (``render_mode``), so the ink always matches ``text_width``. Cached: a screen
    redraws the same few words every time.
    """
    from PIL import Image, ImageDraw

    mode = render_mode(fnt)
    left, top, right, bottom = word_box(word, fnt)
    size = (max(1, right - left), max(1, bottom - top))
    if mode == "1":
        mask = Image.new("1", size)
        ImageDraw.Draw(mask).text((-left, -top), word, font=fnt, fill=255)
    else:
        grey = Image.new("L", size)
        ImageDraw.Draw(grey).text((-left, -top), word, font=fnt, fill=255)
        mask = grey.point([0 if v < THRESHOLD else 255 for v in range(256)], "1")
    if is_bold(fnt):
        mask = _embolden(mask)
    return mask, max(left, 0), top - metrics(fnt)[0]


def _embolden(mask: Image) -> Image:
    """Widen every stroke by a pixel to the right, unless that would close a 1 px gap.

    Plain "draw it twice" bold runs letters together ("rr" becomes a blot); keeping the gaps
    keeps the letters apart.
    """
    from PIL import Image, ImageChops

    w, h = mask.size
    here, left_of, right_of = (Image.new("1", (w + 1, h)) for _ in range(3))
    here.paste(mask, (0, 0))
    left_of.paste(mask, (1, 0))  # pixel x holds mask[x - 1]
    right_of.paste(mask.crop((1, 0, w, h)), (0, 0))  # pixel x holds mask[x + 1]
    grow = ImageChops.logical_and(left_of, ImageChops.invert(right_of))
    return ImageChops.logical_or(here, grow)


def draw_line(
    draw: ImageDraw, xy: tuple[int, int], text: str, fnt: FreeTypeFont, fill: int = 1
) -> None:
    """Draw one line with its capitals' top at ``xy``; ink stays within ``text_width``.

    ``fill`` 1 lights the letters, 0 cuts them out of a lit area.
    """
    x, top = xy
    gap = space_width(fnt)
    for word in text.split(" "):
        if word:
            mask, dx, dy = word_mask(word, fnt)
            draw.bitmap((x + dx, top + dy), mask, fill=255 if fill else 0)
        x += _word_width(word, fnt) + gap


def wrap(text: str, fnt: FreeTypeFont, max_width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width``, on spaces only.

    A newline forces a break. A single word wider than a line is split with a hyphen as a
    last resort; nothing is ever dropped. Each line is as full as it can be.
    """
    return list(_wrap(text, fnt, max_width))


def balanced_wrap(text: str, fnt: FreeTypeFont, max_width: int) -> list[str]:
    """Like ``wrap`` with the same number of lines, but of even length.

    Centred text looks deliberate when its lines are alike ("Tell them one / thing you
    admire / about them") rather than full lines and an orphan ("... about / them").
    """
    return list(_balanced(text, fnt, max_width))


@functools.lru_cache(maxsize=512)
def _balanced(text: str, fnt: FreeTypeFont, max_width: int) -> tuple[str, ...]:
    lines = _wrap(text, fnt, max_width)
    if len(lines) < 2:
        return lines
    # The narrowest width that still gives as many lines, never narrower than a word.
    lo = max((_word_width(w, fnt) for w in displayable(text).split()), default=1)
    hi = max_width
    if lo >= hi:
        return lines
    while lo < hi:
        mid = (lo + hi) // 2
        if len(_wrap(text, fnt, mid)) <= len(lines):
            hi = mid
        else:
            lo = mid + 1
    return _wrap(text, fnt, lo)


@functools.lru_cache(maxsize=512)
def _wrap(text: str, fnt: FreeTypeFont, max_width: int) -> tuple[str, ...]:
    lines: list[str] = []
    for paragraph in displayable(text).split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, fnt) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            pieces = _split_word(word, fnt, max_width)
            lines.extend(pieces[:-1])
            line = pieces[-1]
        if line:
            lines.append(line)
    return tuple(lines)


def _split_word(word: str, fnt: FreeTypeFont, max_width: int) -> list[str]:
    """Cut an over-long word into pieces that fit (at least one letter per piece).

    After one of its own hyphens if possible ("Alexandria-" / "Josephine"), otherwise
    anywhere, with a hyphen added to mark the cut.
    """
    pieces = []
    while text_width(word, fnt) > max_width and len(word) > 1:
        own = [i + 1 for i, ch in enumerate(word[:-1]) if ch == "-"]
        fitting = [i for i in own if text_width(word[:i], fnt) <= max_width]
        if fitting:
            pieces.append(word[: fitting[-1]])
            word = word[fitting[-1] :]
            continue
        cut = 1
        while cut < len(word) - 1 and text_width(word[: cut + 1] + "-", fnt) <= max_width:
            cut += 1
        pieces.append(word[:cut] + "-")
        word = word[cut:]
    pieces.append(word)
    return pieces


def paginate(lines: list[str], per_page: int) -> list[list[str]]:
    """Group lines into pages of ``per_page``; always at least one (possibly empty) page."""
    per_page = max(1, per_page)
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)]
    return pages or [[]]


def ellipsize(lines: list[str], fnt: FreeTypeFont, max_width: int, max_lines: int) -> list[str]:
    """Keep ``max_lines`` lines and mark the cut with "..." at a word boundary if possible."""
    if len(lines) <= max_lines:
        return lines
    if max_lines <= 0:
        return []
    kept = lines[:max_lines]
    last = kept[-1]
    while last and text_width(last + "...", fnt) > max_width:
        last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
    kept[-1] = last.rstrip("-") + "..."
    return kept


# --------------------------------------------------------------------------- pages

#: Words that open a clause or a phrase of their own: a page may start with one.
CLAUSE_WORDS = frozenset({
    "and", "but", "or", "so", "then", "before", "after", "when", "while", "until", "unless",
    "if", "because", "as", "once", "since", "where", "instead", "even", "that", "how", "what",
    "why", "who", "which", "whether",
})
#: Words that open a phrase that reads well on its own, but less of a pause than a clause.
PHRASE_WORDS = frozenset({"without", "with", "to", "for", "in", "on", "at", "from"})
#: What a page break costs before a word, by what ends the word before it or opens the
#: word itself: the splitter takes the cheapest set of breaks with the fewest pages.
SENTENCE_BREAK, CLAUSE_BREAK, CLAUSE_WORD_BREAK, PHRASE_BREAK, WORD_BREAK = 0, 1, 2, 4, 100


def break_cost(before: str, word: str) -> int:
    """What a page break between ``before`` and ``word`` costs (``WORD_BREAK``: mid-clause)."""
    if before.endswith((".", "!", "?")):
        return SENTENCE_BREAK
    if before.endswith((",", ";", ":")) or before in ("-", "--") or word in ("-", "--"):
        return CLAUSE_BREAK
    bare = word.strip("'\"(").casefold()
    if bare in CLAUSE_WORDS:
        return CLAUSE_WORD_BREAK
    if bare in PHRASE_WORDS:
        return PHRASE_BREAK
    return WORD_BREAK


def clause_pages(text: str, fnt: FreeTypeFont, max_width: int,
                 per_page: int) -> list[list[str]]:
    """``text`` in pages of at most ``per_page`` lines, turned at sentence or clause breaks.

    A page ends in the middle of a clause only when a clause alone is longer than a page,
    and holds a single word only when nothing else avoids that; otherwise the fewest pages,
    then the cheapest breaks (``break_cost``): a full stop before a comma, a comma before
    "and". Each page is wrapped on its own, lines balanced.
    """
    return [list(page) for page in _clause_pages(text, fnt, max_width, max(1, per_page))]


@functools.lru_cache(maxsize=256)
def _clause_pages(text: str, fnt: FreeTypeFont, max_width: int,
                  per_page: int) -> tuple[tuple[str, ...], ...]:
    words = displayable(text).split()
    if not words:
        return ((),)
    n = len(words)

    def lines_of(i: int, j: int) -> tuple[str, ...]:
        return _wrap(" ".join(words[i:j]), fnt, max_width)

    # best[j]: (breaks mid-clause, pages of one word, pages, cost, start of the last page)
    # for the words before j, compared in that order: a break in the middle of a clause is
    # worse than a page of one word ("unasked"), which is worse than another page.
    best: list[tuple[int, int, int, int, int] | None] = [None] * (n + 1)
    best[0] = (0, 0, 0, 0, 0)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            if len(lines_of(i, j)) > per_page:
                break  # a longer page from further back cannot fit either
            before = best[i]
            if before is None:
                continue
            cost = break_cost(words[i - 1], words[i]) if i else 0
            candidate = (before[0] + (cost >= WORD_BREAK), before[1] + (j - i == 1 < n),
                         before[2] + 1, before[3] + cost, i)
            current = best[j]
            if current is None or candidate[:4] < current[:4]:
                best[j] = candidate
    if best[n] is None:  # a single word longer than a page: plain lines, hyphenated
        lines = list(_wrap(text, fnt, max_width))
        return tuple(tuple(page) for page in paginate(lines, per_page))
    pages: list[tuple[str, ...]] = []
    j = n
    while j > 0:
        entry = best[j]
        assert entry is not None
        i = entry[4]
        pages.append(_balanced(" ".join(words[i:j]), fnt, max_width))
        j = i
    return tuple(reversed(pages))
