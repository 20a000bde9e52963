"""The home screen: today's gesture, as big as it fits, and one line of plain words under it.

Tall panels (128x64)::

         Ask a follow-up
         question about              the gesture: the largest of PROMPT_SIZES that
         what they said              fits one page (capitals of 11, 10, 9 or 8 px)
    [icon] Be present     ♥ 3 · 128  practice and counter, or what matters more:
                                     "Sam away since 18:05", or (inverted) "♥ From Sam · 2 h ago"

Compact panels (128x32) give the gesture the whole width at 8 px capitals, two lines a page,
and turn pages only between sentences or clauses (``text.clause_pages``); a status in words
("Offline — your thanks will wait") gets a page of its own, after the gesture's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from micromance.screens import icons
from micromance.screens.layout import (
    MARGIN,
    Block,
    Canvas,
    bitmap_block,
    heart_block,
    is_compact,
    lines_block,
    row,
    stack,
    text_block,
)
from micromance.screens.text import (
    ascent,
    balanced_wrap,
    cap_height,
    clause_pages,
    font,
    line_height,
    text_width,
)
from micromance.screens.views import HomeView, LinkMark, Practice

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

#: The gesture's sizes on tall panels, largest first: capitals of 11, 10, 9 and 8 px (for
#: each cap height the narrowest size that has it). The largest in which the whole gesture
#: fits one page is used; below 8 px capitals nobody reads it from across a kitchen.
PROMPT_SIZES = (16, 14, 12, 11)
PROMPT_COMPACT = 11
SMALL, TINY = 11, 9
#: Compact: prompt lines per page.
PROMPT_LINES_COMPACT = 2
#: Tall: rows of the bottom line (the pending bar's height: a blank row, ascenders,
#: capitals, descenders); the gesture keeps one more blank row above it.
INFO_H = 12
#: One-word practice names for when the counter leaves no room for the full label.
SHORT_LABELS = {
    Practice.PRESENT: "Present",
    Practice.REINFORCE: "Reinforce",
    Practice.CLOSENESS: "Closeness",
    Practice.DELIGHT: "Delight",
    Practice.CALM: "Calm",
    Practice.AFFIRM: "Affirm",
    Practice.ATTUNE: "Attune",
}
#: Compact: the practice in capitals (no descenders: the footer sits on the last rows).
COMPACT_LABELS = {
    Practice.PRESENT: "PRESENT",
    Practice.REINFORCE: "REINFORCE",
    Practice.CLOSENESS: "CLOSENESS",
    Practice.DELIGHT: "DELIGHT",
    Practice.CALM: "CALM",
    Practice.AFFIRM: "AFFIRM",
    Practice.ATTUNE: "ATTUNE",
}
#: Rows 1-8: the practice icon is centred on them (the bottom line's capitals, tall).
ICON_BAND = (1, 8)
#: Width of the practice mark (the focus badge), and its gap to the label.
COLUMN_W, COLUMN_GAP = 11, 3


@dataclass(frozen=True)
class PromptLayout:
    """How a gesture is set on a panel: its size, the pages and the room they get."""

    size: int
    pages: tuple[tuple[str, ...], ...]
    width: int
    height: int             # rows for the gesture (capitals' top of line one to descenders)
    gap: int                # blank rows between lines


@functools.lru_cache(maxsize=256)
def prompt_layout(prompt: str, width: int, height: int) -> PromptLayout:
    """The gesture on a ``width`` x ``height`` panel: the largest size that fits one page.

    Tall panels try ``PROMPT_SIZES`` in turn; a gesture too long even for the smallest is
    paged at the smallest, turning pages at sentence or clause breaks. Compact panels use
    ``PROMPT_COMPACT`` and two lines a page.
    """
    content_w, content_h = width - 2 * MARGIN, height - 2 * MARGIN
    if is_compact(content_h):
        fnt = font(PROMPT_COMPACT)
        pages = clause_pages(prompt, fnt, content_w, PROMPT_LINES_COMPACT)
        return PromptLayout(PROMPT_COMPACT, tuple(tuple(p) for p in pages), content_w,
                            content_h, 0)
    room = max(1, content_h - INFO_H - 1)
    for size in PROMPT_SIZES:
        fnt = font(size)
        lines = balanced_wrap(prompt, fnt, content_w)
        for gap in (1, 0):  # a blank row between lines when there is room for it
            if _prompt_height(len(lines), fnt, gap) <= room:
                return PromptLayout(size, (tuple(lines),), content_w, room, gap)
    size = PROMPT_SIZES[-1]
    fnt = font(size)
    per_page = 1
    while _prompt_height(per_page + 1, fnt, 0) <= room:
        per_page += 1
    pages = clause_pages(prompt, fnt, content_w, per_page)
    return PromptLayout(size, tuple(tuple(p) for p in pages), content_w, room, 0)


def _prompt_height(lines: int, fnt: FreeTypeFont, gap: int) -> int:
    """Rows ``lines`` prompt lines take with all their ink (ascenders of the first line,
    descenders of the last)."""
    return ascent(fnt) + (line_height(fnt) + gap) * (lines - 1) + line_height(fnt)


def prompt_pages(prompt: str, width: int, height: int) -> list[list[str]]:
    """The pages ``prompt`` is split into on a ``width`` x ``height`` panel (at least one).

    ``HomeView.page`` selects one of them (or, on compact panels, a status page after them),
    modulo their number.
    """
    return [list(page) for page in prompt_layout(prompt, width, height).pages]


def draw_home(c: Canvas, v: HomeView) -> None:
    """The page ``v.page`` selects, with the bottom line of words under it."""
    layout = prompt_layout(v.prompt, c.width + 2 * MARGIN, c.height + 2 * MARGIN)
    if c.compact:
        _compact(c, v, layout)
    else:
        _tall(c, v, layout)


# --------------------------------------------------------------------------- tall


def _tall(c: Canvas, v: HomeView, layout: PromptLayout) -> None:
    pages = len(layout.pages)
    page = v.page % pages
    info_top = c.height - INFO_H
    dots = page_dots(page, pages, SMALL, fill=0 if v.pending > 0 else 1)
    if v.pending > 0:
        _pending_bar(c, v, info_top, dots)
    else:
        _info_line(c, v, info_top, dots)
    fnt = font(layout.size)
    lines = layout.pages[page]
    block = lines_block(lines, fnt, gap=layout.gap, centred=True)
    used = _prompt_height(len(lines), fnt, layout.gap) if lines else 0
    top = max(0, (layout.height - used) // 2) + ascent(fnt)
    block.paint(c, (c.width - block.width) // 2, top)


def _info_line(c: Canvas, v: HomeView, info_top: int, dots: Block | None) -> None:
    """The bottom line: what is wrong with the link in words, else practice and counter."""
    small = font(SMALL)
    y = info_top + 1 + ascent(small)  # capitals' top
    room = c.width - (dots.width + 6 if dots else 0)
    if dots:
        dots.paint(c, c.width - dots.width, y + (cap_height(small) - dots.height) // 2)
    if v.link != LinkMark.OK:
        status = status_block(v, room, SMALL)
        status.paint(c, 0, y + cap_height(small) - status.height)
        return
    mark = practice_mark(v)
    room -= COLUMN_W + COLUMN_GAP
    mark.paint(c, 0, y - ICON_BAND[0])
    counters = counter_forms(v, SMALL, short=False)
    labels = (v.practice.label, SHORT_LABELS[v.practice], "")
    # Both counts with the longest label that leaves room for them; today's count alone last.
    tries = [(lb, ct) for lb in labels for ct in counters[:-1]]
    for label, counter in [*tries, ("", counters[-1]), ("", None)]:
        need = text_width(label, small) + (counter.width + 8 if counter else 0)
        if need <= room:
            if label:
                c.text((COLUMN_W + COLUMN_GAP, y), label, small)
            if counter:
                x = COLUMN_W + COLUMN_GAP + room - counter.width
                counter.paint(c, x, y + cap_height(small) - counter.height)
            return


def _pending_bar(c: Canvas, v: HomeView, info_top: int, dots: Block | None) -> None:
    """Thank-yous that wait: a lit bar across the bottom, ``♥ From Sam · 2 h ago`` cut out."""
    small = font(SMALL)
    c.rounded((0, info_top, c.width, INFO_H))
    y = info_top + 1 + ascent(small)
    heart_w, heart_h = icons.size(icons.HEART_7)
    x = 3
    c.bitmap((x, y + cap_height(small) - heart_h), icons.HEART_7, fill=0)
    x += heart_w + 4
    room = c.width - x - 3 - (dots.width + 6 if dots else 0)
    for parts in pending_phrases(v):
        words = phrase_block(parts, small, fill=0)
        if words.width <= room:
            words.paint(c, x, y)
            break
    if dots:
        dots.paint(c, c.width - 3 - dots.width, y + (cap_height(small) - dots.height) // 2)


# --------------------------------------------------------------------------- compact


def _compact(c: Canvas, v: HomeView, layout: PromptLayout) -> None:
    tiny = font(TINY)
    status = compact_status(v, c.width)
    pages = len(layout.pages) + (1 if status else 0)
    page = v.page % pages

    # Footer: practice and counter on the left, "2 new" and page dots on the right.
    footer_top = c.height - cap_height(tiny)
    right: list[Block] = []
    if v.pending > 0:
        right.append(text_block(f"{v.pending} new", tiny))
    dots = page_dots(page, pages, TINY)
    if dots:
        right.append(dots)
    marks = row(right, gap=6, align="middle")
    if right:
        marks.paint(c, c.width - marks.width, footer_top + (cap_height(tiny) - marks.height) // 2)
    room = c.width - (marks.width + 6 if right else 0)
    left = _compact_left(v, room)
    left.paint(c, 0, footer_top + cap_height(tiny) - left.height)

    fnt = font(PROMPT_COMPACT)
    area = footer_top - 2  # a blank row above the footer
    if page == len(layout.pages) and status:
        stack(c, [status], [], area=(0, area), left=0)
        return
    # The gesture: left-aligned, two lines at a tight 10 px pitch so that ascenders,
    # descenders and the footer all keep a blank row between them.
    lines = layout.pages[page]
    block = lines_block(lines, fnt, gap=0, centred=False)
    top = ascent(fnt)
    if len(lines) == 1:  # one line: centre it in the prompt area
        top += (area - top - line_height(fnt)) // 2
    block.paint(c, 0, top)


def _compact_left(v: HomeView, room: int) -> Block:
    """``PRACTICE ♥ 3 · 128`` (a star for the day's focus), or less of it."""
    label = _compact_label(v)
    counter = counter_block(v, room, TINY, short=True)
    if label.width + 6 + counter.width <= room:
        return row([label, counter], gap=6)
    return counter


def _compact_label(v: HomeView) -> Block:
    """The practice in small capitals; the day's focus gets a star before it."""
    label = text_block(COMPACT_LABELS[v.practice], font(TINY))
    if not v.focus:
        return label
    return row([bitmap_block(icons.STAR_6), label], gap=2)


def compact_status(v: HomeView, width: int) -> Block | None:
    """The compact status page: an icon beside two lines of words (None: nothing to say)."""
    fnt = font(PROMPT_COMPACT)
    if v.link != LinkMark.OK:
        icon = bitmap_block(icons.LINK_ICONS[v.link])
        candidates = [", ".join(parts) for parts in link_phrases(v)]
    elif v.pending > 0 and v.pending_when:
        icon = heart_block(9)
        candidates = [", ".join(parts) for parts in pending_phrases(v)]
    else:
        return None
    width -= icon.width + 5
    for words in candidates:
        lines = balanced_wrap(words, fnt, width)
        if len(lines) <= 2:
            text = lines_block(lines, fnt, gap=0, centred=False)
            return row([icon, text], gap=5, align="middle")
    return row([icon, text_block(candidates[-1], fnt)], gap=5, align="middle")


# --------------------------------------------------------------------------- words


def short_when(when: str) -> str:
    """``yesterday 21:40`` -> ``yesterday``: a time phrase without its clock time."""
    head, _, tail = when.rpartition(" ")
    if head and ":" in tail and tail.replace(":", "").isdigit():
        return head
    return when


def link_phrases(v: HomeView) -> list[tuple[str, ...]]:
    """What is wrong with the link, in words, longest first (each a tuple of parts)."""
    name = " ".join(v.partner.split()) or "Partner"
    if v.link == LinkMark.BROKER_UNREACHABLE:
        return [("Offline: your thanks will wait",), ("Offline: thanks will wait",),
                ("Offline: thanks wait",), ("Offline",)]
    if v.link == LinkMark.NOT_PAIRED:
        return [("Not paired: hold both buttons 5 s",), ("Not paired: hold both 5 s",),
                ("Not paired yet",), ("Not paired",)]
    if v.link == LinkMark.PARTNER_OFFLINE:
        since, short = v.away_since, short_when(v.away_since)
        forms = [] if not since else [
            (f"{name} away since {since}",), (f"{name} away since {short}",),
            (f"Away since {since}",), (f"Away since {short}",)]
        return [*forms, (f"{name} is away",), ("Partner away",), ("Away",)]
    return [("",)]


def pending_phrases(v: HomeView) -> list[tuple[str, ...]]:
    """Thank-yous that wait, in words, longest first: ``From Sam · 2 h ago`` or less."""
    name = " ".join(v.partner.split()) or "your partner"
    who = [f"From {name}", "New thanks"] if v.pending == 1 else \
        [f"{v.pending} from {name}", f"{v.pending} new"]
    when, short = v.pending_when, short_when(v.pending_when)
    forms: list[tuple[str, ...]] = []
    for head in who:
        if when:
            forms.append((head, when))
            if short != when:
                forms.append((head, short))
    return forms + [(head,) for head in who] + [("New",)]


def status_block(v: HomeView, room: int, size: int) -> Block:
    """The link's status in words, with its icon beside them when there is room."""
    fnt = font(size)
    icon = bitmap_block(icons.LINK_ICONS[v.link])
    phrases = link_phrases(v)
    for parts in phrases:  # words before the icon: the longest words that fit, then the icon
        words = phrase_block(parts, fnt)
        if icon.width + 5 + words.width <= room:
            return row([icon, words], gap=5, align="bottom")
        if words.width <= room:
            return words
    return phrase_block(phrases[-1], fnt)


def phrase_block(parts: tuple[str, ...], fnt: FreeTypeFont, fill: int = 1) -> Block:
    """Parts of a phrase joined by a middle dot drawn as a 2x2 square (the font's own is a
    single, easily lost pixel); ``fill=0`` cuts it out of a lit area."""
    blocks: list[Block] = []
    for i, part in enumerate(parts):
        if i:
            blocks.append(_dot(int(fnt.size), fill))
        blocks.append(_text(part, fnt, fill))
    return row(blocks, gap=4)


def _text(line: str, fnt: FreeTypeFont, fill: int) -> Block:
    block = text_block(line, fnt)
    if fill:
        return block
    return Block(block.width, block.height, lambda c, x, y: c.text((x, y), line, fnt, fill=0),
                 block.descent, block.ascent)


# --------------------------------------------------------------------------- marks


def practice_mark(v: HomeView) -> Block:
    """The practice icon, centred on the text line; the day's focus shows it inverted.

    The icon sits on the same rows either way; the inverted badge (11x10) grows around it.
    """
    bitmap = icons.PRACTICE_ICONS[v.practice]
    w, h = icons.size(bitmap)
    band_top, band = ICON_BAND

    def paint(c: Canvas, x: int, y: int) -> None:
        xy = (x + (COLUMN_W - w) // 2, y + band_top + (band - h) // 2)
        if v.focus:
            c.rounded((x, y, COLUMN_W, band + 2))
            c.bitmap(xy, bitmap, fill=0)
        else:
            c.bitmap(xy, bitmap)

    return Block(COLUMN_W, band + 2, paint)


def _dot(fnt_size: int, fill: int = 1) -> Block:
    """A middle dot drawn as a 2x2 square: the font's own is a single, easily lost pixel."""
    cap = cap_height(font(fnt_size))
    return Block(2, cap, lambda c, x, y: c.rect((x, y + (cap - 2) // 2, 2, 2), fill=fill))


def counter_forms(v: HomeView, fnt_size: int, short: bool) -> list[Block]:
    """``♥ 3 today · 128 total`` and its shorter forms, longest first."""
    fnt = font(fnt_size)
    forms: list[tuple[str, str]] = [(f"{v.today}", f"{v.total}")]
    if not short:
        forms = [(f"{v.today} today", f"{v.total} total"), (f"{v.today} today", f"{v.total}"),
                 *forms]
    gap = 4 if fnt_size >= SMALL else 3
    blocks = [row([heart_block(7), text_block(today, fnt), _dot(fnt_size),
                   text_block(total, fnt)], gap=gap) for today, total in forms]
    return [*blocks, row([heart_block(7), text_block(f"{v.today}", fnt)], gap=3)]


def counter_block(v: HomeView, max_width: int, fnt_size: int, short: bool) -> Block:
    """The longest counter form that fits ``max_width`` (the shortest if none does)."""
    forms = counter_forms(v, fnt_size, short)
    return next((form for form in forms if form.width <= max_width), forms[-1])


def page_dots(page: int, pages: int, fnt_size: int, fill: int = 1) -> Block | None:
    """Which page this is: squares for a few pages, ``2/7`` for many (``fill=0``: cut out)."""
    if pages <= 1:
        return None
    if pages > 5:
        return _text(f"{page + 1}/{pages}", font(fnt_size), fill)

    def paint(c: Canvas, x: int, y: int) -> None:
        for i in range(pages):
            c.rect((x + i * 6, y, 4, 4), fill=fill, outline=i != page)

    return Block(pages * 6 - 2, 4, paint)
