"""Screens for moments worth a glance: Together, the week at a glance, and the button help.

- Together: both partners pressed THANKS within minutes of each other. Two hearts slide in
  from the sides and meet, one tucked behind the other, over ``Together``.
- Week: the last seven days of thank-yous (both ways) as bars, today's on the right, with the
  week's total and the gesture streak.
- Help: what each button does, in the words the README uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from micromance.screens import icons
from micromance.screens.layout import (
    Block,
    Canvas,
    heart_block,
    lines_block,
    row,
    stack,
    text_block,
    tick_block,
)
from micromance.screens.notices import SMALL, TINY, TITLE, TITLE_COMPACT
from micromance.screens.text import ascent, cap_height, font, text_width
from micromance.screens.views import TOGETHER_FRAMES, HelpView, TogetherView, WeekView

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

# --------------------------------------------------------------------------- together


def hearts_block(width: int, frame: int, travel: int) -> Block:
    """Two hearts ``width`` px wide that meet over the animation's frames.

    Each starts ``travel`` px further out and slides in, slowing down; in the last frame
    (and any later one) they overlap by a third, the right one behind the left with a dark
    rim between them, so both outlines stay readable on a 1-bit panel. The block is as wide
    as the still hearts; the first frames reach ``travel`` px beyond it on either side.
    """
    frame = max(0, min(frame, TOGETHER_FRAMES - 1))
    w, h = icons.heart_mask(width).size
    overlap = w // 3
    still = 2 * w - overlap
    spread = round((1 - frame / (TOGETHER_FRAMES - 1)) ** 1.6 * travel)

    def paint(c: Canvas, x: int, y: int) -> None:
        left_x = x - spread
        right_x = x + w - overlap + spread
        c.heart((right_x, y), width)
        # A dark rim around the left heart separates it from the one behind.
        mask = icons.heart_mask(width)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                c.draw.bitmap((c.left + left_x + dx, c.top + y + dy), mask, fill=0)
        c.heart((left_x, y), width)

    return Block(still, h, paint)


def draw_together(c: Canvas, v: TogetherView) -> None:
    """Two hearts meet; ``Together``; ``you both said thanks`` under it."""
    partner = " ".join(v.partner.split()) or "your partner"
    small = font(SMALL)
    if c.compact:
        hearts = hearts_block(15, v.frame, travel=5)
        hearts.paint(c, 6, (c.height - hearts.height) // 2)
        x = 6 + hearts.width + 10
        title = text_block("Together", font(TITLE_COMPACT))
        words = _first_fitting(("both said thanks", "both at once"), small, c.width - x)
        stack(c, [title, words], [4], left=x)
        return
    hearts = hearts_block(19, v.frame, travel=22)
    words = _first_fitting((f"you and {partner} both said thanks", "you both said thanks",
                            "both said thanks"), small, c.width)
    title = text_block("Together", font(TITLE - 3))
    stack(c, [hearts, title, words], [5, 5])


def _first_fitting(candidates: tuple[str, ...], fnt: FreeTypeFont, width: int) -> Block:
    for words in candidates:
        if text_width(words, fnt) <= width:
            return text_block(words, fnt)
    return text_block(candidates[-1], fnt)


# --------------------------------------------------------------------------- week

DAY_LETTERS = "MTWTFSS"


def week_labels(weekday: int) -> list[str]:
    """The day letters of the seven bars, oldest first, for a week ending on ``weekday``."""
    return [DAY_LETTERS[(weekday - 6 + i) % 7] for i in range(7)]


def draw_week(c: Canvas, v: WeekView) -> None:
    """Seven bars, today's last and marked, with the week's total and the streak."""
    days = list(v.days[-7:])
    days = [0] * (7 - len(days)) + [max(0, d) for d in days]
    if c.compact:
        _week_compact(c, v, days)
    else:
        _week_tall(c, v, days)


def _week_tall(c: Canvas, v: WeekView, days: list[int]) -> None:
    small, tiny = font(SMALL), font(TINY)
    total = sum(days)
    thanks = [f"{total} this week", f"{total}"]
    y = ascent(small)
    # The longest pair that fits: "♥ 23 this week   ✓ 4-day streak", else shorter.
    streaks: list[Block | None] = [None]
    if v.streak:
        streaks = [streak_block(v.streak, small), row([tick_block(7), text_block(
            f"{v.streak} days", small)], gap=3), row([tick_block(7), text_block(
                f"{v.streak}", small)], gap=3)]
    for right in streaks:
        for left_words in thanks:
            left = row([heart_block(7), text_block(left_words, small)], gap=4)
            if left.width + (right.width + 8 if right else 0) <= c.width:
                break
        else:
            continue
        break
    left.paint(c, 0, y)
    if right is not None:
        right.paint(c, c.width - right.width, y + cap_height(small) - right.height)
    letters_top = c.height - cap_height(tiny) - 1  # room for the badge
    _bars(c, v, days, top=y + cap_height(small) + 4, bottom=letters_top - 3,
          numbers=True, left=0, width=c.width)


def streak_block(streak: int, fnt: FreeTypeFont) -> Block:
    """``✓ 4-day streak``; the number stands a pixel apart, as at 11 px the hyphen would
    join the crossbar of a 4."""
    return row([tick_block(7), row([text_block(f"{streak}", fnt),
                                    text_block("-day streak", fnt)], gap=1)], gap=3)


def _week_compact(c: Canvas, v: WeekView, days: list[int]) -> None:
    small = font(SMALL)
    total = sum(days)
    left_w = 34
    blocks = [row([heart_block(7), text_block(f"{total}", small)], gap=3)]
    if v.streak > 0:
        blocks.append(row([tick_block(7), text_block(f"{v.streak}", small)], gap=3))
    lines = [b for b in blocks if b.width <= left_w]
    for i, block in enumerate(lines):
        block.paint(c, 0, 2 + ascent(small) + i * 14)
    tiny = font(TINY)
    _bars(c, v, days, top=0, bottom=c.height - cap_height(tiny) - 4, numbers=False,
          left=left_w + 4, width=c.width - left_w - 4)


def _bars(c: Canvas, v: WeekView, days: list[int], *, top: int, bottom: int, numbers: bool,
          left: int, width: int) -> None:
    """Seven bars from ``bottom`` up, scaled to the week's best day; day letters under them."""
    tiny = font(TINY)
    pitch = width // 7
    bar_w = max(3, pitch - (6 if pitch >= 14 else 3))
    label_room = cap_height(tiny) + 2 if numbers else 0
    tallest = max(1, bottom - top - label_room)
    most = max(days) or 1
    letters = week_labels(v.weekday)
    letters_top = c.height - cap_height(tiny) - 1  # room for the badge
    for i, count in enumerate(days):
        x = left + i * pitch + (pitch - bar_w) // 2
        height = 1 if count == 0 else max(2, round(count / most * tallest))
        c.rect((x, bottom - height + 1, bar_w, height))
        if numbers and count > 0:
            label = str(count) if count < 1000 else f"{min(count // 1000, 99)}k"
            lw = text_width(label, tiny)
            lx = min(max(0, x + (bar_w - lw) // 2), c.width - lw)
            c.text((lx, bottom - height - 1 - cap_height(tiny)), label, tiny)
        letter = letters[i]
        lw = text_width(letter, tiny)
        lx = x + (bar_w - lw) // 2
        if i == 6:  # today: the letter cut out of a small badge
            c.rounded((lx - 2, letters_top - 1, lw + 4, cap_height(tiny) + 2))
            c.text((lx, letters_top), letter, tiny, fill=0)
        else:
            c.text((lx, letters_top), letter, tiny)


# --------------------------------------------------------------------------- help

#: What the buttons do, as the README's key table says it.
HELP_LINES = (
    "THANKS: send thanks",
    "NEXT: next gesture",
    "hold NEXT 2 s: done",
    "press both: your week",
    "hold both 5 s: pair",
)
#: Compact panels show them in two pages (``HelpView.page``).
HELP_PAGES_COMPACT = (HELP_LINES[:3], HELP_LINES[3:])


def draw_help(c: Canvas, v: HelpView) -> None:
    """What the buttons do, one line each (on compact panels, two pages in small type)."""
    if c.compact:
        lines = HELP_PAGES_COMPACT[v.page % len(HELP_PAGES_COMPACT)]
        stack(c, [lines_block(list(lines), font(TINY), gap=1, centred=False)], [], left=0)
        return
    small = font(SMALL)
    block = lines_block(list(HELP_LINES), small, gap=2, centred=False)
    stack(c, [block], [], left=0)
