"""The home screen: today's gesture prompt, its practice, the counter and status marks.

Tall panels (128x64)::

    [icon] Practice label          [link] [♥ 2 new]
         Ask about their day and listen
             without your phone
    ♥ 3 today · 128 total                    ■ □

Compact panels (128x32) move the icons into a narrow left column and shorten the counter.
"""

from __future__ import annotations

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
    text_block,
)
from micromance.screens.text import (
    ascent,
    balanced_wrap,
    cap_height,
    font,
    line_height,
    paginate,
    text_width,
    wrap,
)
from micromance.screens.views import HomeView, LinkMark, Practice

PROMPT, PROMPT_COMPACT = 13, 11
SMALL, TINY = 11, 9
#: Prompt lines per page.
PROMPT_LINES, PROMPT_LINES_COMPACT = 3, 2
#: One-word practice names for when status marks leave no room for the full label.
SHORT_LABELS = {
    Practice.PRESENT: "Present",
    Practice.REINFORCE: "Reinforce",
    Practice.CLOSENESS: "Closeness",
    Practice.DELIGHT: "Delight",
    Practice.CALM: "Calm",
    Practice.AFFIRM: "Affirm",
    Practice.ATTUNE: "Attune",
}
#: Tall: rows of the header: the label's capitals on rows 1-8, its f above, descenders below.
HEADER_H = 11
#: Rows 1-8: the line icons and the header label's capitals are centred on.
ICON_BAND = (1, 8)
#: Compact: width of the icon column, and its gap to the prompt.
COLUMN_W, COLUMN_GAP = 11, 3


def prompt_pages(prompt: str, width: int, height: int) -> list[list[str]]:
    """The pages ``prompt`` is split into on a ``width`` x ``height`` panel (at least one).

    ``HomeView.page`` selects one of them, modulo their number.
    """
    content_w, content_h = width - 2 * MARGIN, height - 2 * MARGIN
    if is_compact(content_h):
        fnt, per_page = font(PROMPT_COMPACT), PROMPT_LINES_COMPACT
        text_w = content_w - COLUMN_W - COLUMN_GAP
    else:
        fnt, text_w, per_page = font(PROMPT), content_w, PROMPT_LINES
    lines = wrap(prompt, fnt, text_w)
    if len(lines) <= per_page:  # one page: even lines look calmer than one full, one short
        lines = balanced_wrap(prompt, fnt, text_w)
    return paginate(lines, per_page)


def draw_home(c: Canvas, v: HomeView) -> None:
    """The page of the prompt ``v.page`` selects, with the marks and counter around it."""
    pages = prompt_pages(v.prompt, c.width + 2 * MARGIN, c.height + 2 * MARGIN)
    page = v.page % len(pages)
    if c.compact:
        _compact(c, v, pages[page], page, len(pages))
    else:
        _tall(c, v, pages[page], page, len(pages))


def _tall(c: Canvas, v: HomeView, lines: list[str], page: int, pages: int) -> None:
    small = font(SMALL)
    # Header: practice mark and label on the left, status marks on the right, all centred on
    # the label's capitals.
    band_top, band = ICON_BAND
    marks: list[Block] = []
    if v.link != LinkMark.OK:
        marks.append(bitmap_block(icons.LINK_ICONS[v.link]))
    if v.pending > 0:
        marks.append(_pending_badge(v.pending))
    x = c.width
    for mark in reversed(marks):
        x -= mark.width
        mark.paint(c, x, max(0, band_top + (band - mark.height) // 2))
        x -= 5
    practice_mark(v).paint(c, 0, 0)
    label_x = COLUMN_W + 3
    room = x + 5 - label_x - (5 if marks else 0)
    for label in (v.practice.label, SHORT_LABELS[v.practice]):
        if text_width(label, small) <= room:
            c.text((label_x, band_top), label, small)
            break

    # Footer: counter on the left, page dots on the right.
    footer_top = c.height - line_height(small)
    dots = page_dots(page, pages, SMALL)
    dots_w = dots.width + 6 if dots else 0
    counter_block(v, c.width - dots_w, SMALL, short=False).paint(c, 0, footer_top)
    if dots:
        dots.paint(c, c.width - dots.width, footer_top + (cap_height(small) - dots.height) // 2)

    # Prompt: centred between header and footer, one blank row from each at the least.
    fnt = font(PROMPT)
    block = lines_block(lines, fnt, gap=0, centred=True)
    top, bottom = HEADER_H + 1, footer_top - 1
    rise, fall = ascent(fnt), line_height(fnt) - cap_height(fnt)
    y = top + max(0, (bottom - top - rise - block.height - fall) // 2) + rise
    block.paint(c, (c.width - block.width) // 2, y)


def _compact(c: Canvas, v: HomeView, lines: list[str], page: int, pages: int) -> None:
    tiny = font(TINY)
    # Icon column: practice mark on top, link mark under it.
    practice_mark(v).paint(c, 0, 0)
    if v.link != LinkMark.OK:  # centred on the second prompt line
        link = bitmap_block(icons.LINK_ICONS[v.link])
        fnt = font(PROMPT_COMPACT)
        line2 = ascent(fnt) + line_height(fnt)
        link.paint(c, (COLUMN_W - link.width) // 2, line2 + (cap_height(fnt) - link.height) // 2)

    # Footer: counter on the left, "2 new" and page dots on the right.
    x0 = COLUMN_W + COLUMN_GAP
    footer_top = c.height - cap_height(tiny)
    right: list[Block] = []
    if v.pending > 0:
        right.append(text_block(f"{v.pending} new", tiny))
    dots = page_dots(page, pages, TINY)
    if dots:
        right.append(dots)
    marks = row(right, gap=6, align="middle")
    marks.paint(c, c.width - marks.width, footer_top + (cap_height(tiny) - marks.height) // 2)
    room = c.width - x0 - (marks.width + 6 if right else 0)
    counter = counter_block(v, room, TINY, short=True)
    counter.paint(c, x0, footer_top + cap_height(tiny) - counter.height)

    # Prompt: left-aligned beside the icon column, two lines at a tight 10 px pitch so that
    # ascenders, descenders and the footer all keep a blank row between them.
    fnt = font(PROMPT_COMPACT)
    block = lines_block(lines, fnt, gap=0, centred=False)
    top = ascent(fnt)
    if len(lines) == 1:  # one line: centre it in the prompt area
        top += (footer_top - 2 - top - line_height(fnt)) // 2
    block.paint(c, x0, top)


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


def _pending_badge(count: int) -> Block:
    """Thank-yous that arrived while nobody looked: an inverted ``♥ 2 new`` badge."""
    fnt = font(SMALL)
    label = f"{count} new"
    heart_w, heart_h = icons.size(icons.HEART_7)
    cap = cap_height(fnt)
    w, h = 3 + heart_w + 3 + text_width(label, fnt) + 3, cap + 2

    def paint(c: Canvas, x: int, y: int) -> None:
        c.rounded((x, y, w, h))
        c.bitmap((x + 3, y + 1 + cap - heart_h), icons.HEART_7, fill=0)
        c.text((x + 3 + heart_w + 3, y + 1), label, fnt, fill=0)

    return Block(w, h, paint)


def _dot(fnt_size: int) -> Block:
    """A middle dot drawn as a 2x2 square: the font's own is a single, easily lost pixel."""
    cap = cap_height(font(fnt_size))
    return Block(2, cap, lambda c, x, y: c.rect((x, y + (cap - 2) // 2, 2, 2)))


def counter_block(v: HomeView, max_width: int, fnt_size: int, short: bool) -> Block:
    """``♥ 3 today · 128 total``, or the longest shorter form that fits ``max_width``."""
    fnt = font(fnt_size)
    forms: list[tuple[str, str]] = [(f"{v.today}", f"{v.total}")]
    if not short:
        forms = [(f"{v.today} today", f"{v.total} total"), (f"{v.today} today", f"{v.total}"),
                 *forms]
    gap = 4 if fnt_size >= SMALL else 3
    for today, total in forms:
        candidate = row(
            [heart_block(7), text_block(today, fnt), _dot(fnt_size), text_block(total, fnt)],
            gap=gap,
        )
        if candidate.width <= max_width:
            return candidate
    return row([heart_block(7), text_block(f"{v.today}", fnt)], gap=3)


def page_dots(page: int, pages: int, fnt_size: int) -> Block | None:
    """Which page of a long prompt this is: squares for a few pages, ``2/7`` for many."""
    if pages <= 1:
        return None
    if pages > 5:
        return text_block(f"{page + 1}/{pages}", font(fnt_size))

    def paint(c: Canvas, x: int, y: int) -> None:
        for i in range(pages):
            c.rect((x + i * 6, y, 4, 4), outline=i != page)

    return Block(pages * 6 - 2, 4, paint)
