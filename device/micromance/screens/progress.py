"""The install screen: which step of how many, as words and a bar, and what it is doing.

Shown by ``micromance.install_screen`` while a unit installs itself at first boot, when no
keyboard or terminal is at hand: the person at the counter sees that something is happening
and roughly how far it got. A failure is not drawn here: it is a ``ProblemView``.
"""

from __future__ import annotations

from micromance.screens.layout import Block, Canvas, fit_block, row, stack, text_block
from micromance.screens.notices import SMALL, TINY
from micromance.screens.text import cap_height, font
from micromance.screens.views import ProgressView

BAR_HEIGHT, BAR_HEIGHT_COMPACT = 7, 5


def draw_progress(c: Canvas, v: ProgressView) -> None:
    """``Installing`` over ``3/5`` and a bar, with what the step does under them."""
    total = max(1, v.total)
    step = max(0, min(v.step, total))
    title = " ".join(v.title.split()) or "Working"
    detail = " ".join(v.detail.split())
    count = f"{step}/{total}"
    if c.compact:
        head = fit_block(f"{title} {count}", (13, SMALL), c.width, c.height, 1, True)
        blocks = [head, bar_block(step, total, c.width, BAR_HEIGHT_COMPACT)]
        if detail:
            blocks.append(fit_block(detail, (TINY,), c.width, c.height, 1, True))
        stack(c, blocks, [3, 3])
        return
    head = fit_block(title, (17, 13, SMALL), c.width, c.height, 1, True)
    label = text_block(count, font(SMALL))
    bar = bar_block(step, total, c.width - label.width - 5, BAR_HEIGHT)
    blocks = [head, row([bar, label], gap=5, align="middle")]
    if detail:
        blocks.append(fit_block(detail, (SMALL,), c.width, 2 * cap_height(font(SMALL)) + 6,
                                2, True))
    stack(c, blocks, [6, 6])


def bar_block(step: int, total: int, width: int, height: int) -> Block:
    """An outlined bar, filled for the steps finished before ``step`` (the one running is
    drawn half full, so the bar moves as soon as a step starts)."""
    width = max(4, width)

    def paint(c: Canvas, x: int, y: int) -> None:
        c.rect((x, y, width, height), outline=True)
        inner = width - 4
        done = (max(0, step - 1) + (0.5 if step > 0 else 0)) / total
        c.rect((x + 2, y + 2, round(inner * min(1.0, done)), height - 4))

    return Block(width, height, paint)

