"""Short-lived screens: Sent / Seen, Received, Done, Problem, Quiet.

Each says one thing in one big word or line, with a drawn mark (heart, tick, warning sign)
and at most one small line of context underneath.
"""

from __future__ import annotations

from typing import Literal

from micromance.screens import icons
from micromance.screens.layout import (
    Block,
    Canvas,
    bitmap_block,
    fit_block,
    heart_block,
    lines_block,
    row,
    stack,
    stack_height,
    text_block,
    tick_block,
)
from micromance.screens.text import (
    balanced_wrap,
    cap_height,
    ellipsize,
    font,
    text_width,
)
from micromance.screens.views import (
    RECEIVED_FRAMES,
    DoneView,
    ProblemView,
    QuietView,
    ReceivedView,
    SentView,
)

TITLE, TITLE_COMPACT = 20, 17
SMALL, TINY = 11, 9


def title_size(c: Canvas) -> int:
    """Size of the one big word of a notice."""
    return TITLE_COMPACT if c.compact else TITLE


def word_with_mark(word: str, mark: Literal["heart", "tick"], size: int) -> Block:
    """``Sent ♥``, ``Seen ✓``, ``Done ✓``: a big word and a drawn mark as tall as its capitals."""
    fnt = font(size)
    cap = cap_height(fnt)
    icon = heart_block(cap + 3) if mark == "heart" else tick_block(cap + 3)
    return row([text_block(word, fnt), icon], gap=max(4, cap // 3))


#: What a press taken offline is told, longest first: the first that fits is shown.
QUEUED_WORDS = ("Offline: your thanks will wait", "Offline: thanks will wait",
                "thanks will wait", "will wait")


def draw_sent(c: Canvas, v: SentView) -> None:
    """``Sent ♥`` at once (that it waits, while offline), ``Seen ✓`` and when, once seen."""
    if v.seen:
        title = word_with_mark("Seen", "tick", title_size(c))
    else:
        title = word_with_mark("Sent", "heart", title_size(c))
    blocks = [title]
    small = font(SMALL)
    if v.seen and v.seen_when:
        blocks.append(fit_block(v.seen_when, (SMALL,), c.width, c.height, 1, True))
    elif v.queued and not v.seen:
        if c.compact:
            words = next((w for w in QUEUED_WORDS if text_width(w, small) <= c.width),
                         QUEUED_WORDS[-1])
            blocks.append(text_block(words, small))
        else:
            lines = balanced_wrap(QUEUED_WORDS[0], small, c.width)
            blocks.append(lines_block(lines, small, gap=1, centred=True))
    two_lines = v.queued and not v.seen and not c.compact
    stack(c, blocks, [4 if c.compact else (6 if two_lines else 9)])


def draw_done(c: Canvas, v: DoneView) -> None:
    """``Done ✓`` and the streak it extends."""
    blocks = [word_with_mark("Done", "tick", title_size(c))]
    if v.streak >= 1:
        size = SMALL if c.compact else 13
        blocks.append(text_block(f"{v.streak}-day streak", font(size)))
    stack(c, blocks, [6 if c.compact else 9])


# --------------------------------------------------------------------------- received

#: Heart width per animation frame, as a share of the still heart: grow, overshoot, settle.
HEART_STEPS = (0.3, 0.55, 0.8, 1.12, 0.92, 1.0)


def heart_width(frame: int, full: int) -> int:
    """The heart's width in ``frame``; the last frame (and any later one) is the still heart."""
    frame = max(0, min(frame, RECEIVED_FRAMES - 1))
    if frame == RECEIVED_FRAMES - 1:
        return full
    step = HEART_STEPS[frame * len(HEART_STEPS) // RECEIVED_FRAMES]
    return max(7, round(full * step))


def draw_received(c: Canvas, v: ReceivedView) -> None:
    """A growing, pulsing, then still heart; who sent it; how many wait if more than one."""
    sender = " ".join(v.sender.split()) or "your partner"
    if c.compact:
        full, cx, cy = 22, 13, c.height // 2
    else:
        full, cx, cy = 26, c.width // 2, 15
    # The heart grows from a fixed centre; the count badge sits on the still heart's shoulder
    # so it does not jump around while the heart pulses.
    width = heart_width(v.frame, full)
    w, h = icons.heart_mask(width).size
    c.heart((cx - w // 2, cy - h // 2), width)
    fw, fh = icons.heart_mask(full).size
    badge_right = cx + fw // 2
    if v.count > 1:
        badge = count_badge(v.count)
        badge.paint(c, badge_right + 1, max(0, cy - fh // 2 - 2))
        badge_right += 1 + badge.width

    when = " ".join(v.when.split())
    if c.compact:
        text_x, gap = max(38, badge_right + 5), 4
        room_w = c.width - text_x
        if when:  # "From Sam" and, under it, when it came
            blocks = _name_and_when(f"From {sender}", when, (13, SMALL), room_w, c.height,
                                    centred=False)
            stack(c, blocks, [3], left=text_x)
            return
        label = text_block("From", font(SMALL))
        room = c.height - stack_height([label], []) - gap
        name = fit_block(sender, (TITLE_COMPACT, 13, SMALL), room_w, room, 1, False)
        stack(c, [label, name], [gap], left=text_x)
    else:
        area_top = cy + (fh + 1) // 2 + 2
        area = (area_top, c.height - area_top)
        if when:
            blocks = _name_and_when(f"From {sender}", when, (16, 13, SMALL), c.width, area[1],
                                    centred=True)
            stack(c, blocks, [3], area=area)
            return
        name = fit_block(f"From {sender}", (16, 13, SMALL), c.width, area[1], 3, True)
        stack(c, [name], [], area=area)


def _name_and_when(name: str, when: str, sizes: tuple[int, ...], width: int, height: int,
                   centred: bool) -> list[Block]:
    """``From Sam`` on one line, as big as still leaves room for ``2 h ago`` under it."""
    small = font(SMALL)
    if text_width(when, small) > width:  # "yesterday 21:40" -> "yesterday"
        when = when.rsplit(" ", 1)[0]
    when_block = fit_block(when, (SMALL,), width, height, 1, centred)
    room = height - stack_height([when_block], []) - 3
    return [fit_block(name, sizes, width, room, 1, centred), when_block]


def count_badge(count: int) -> Block:
    """A small inverted number, like a notification badge."""
    fnt = font(SMALL)
    label = f"{count}" if count < 100 else "99+"
    w, h = text_width(label, fnt) + 4, cap_height(fnt) + 4

    def paint(c: Canvas, x: int, y: int) -> None:
        c.rounded((x, y, w, h))
        c.text((x + 2, y + 2), label, fnt, fill=0)

    return Block(w, h, paint)


# --------------------------------------------------------------------------- problem / quiet


def headline(c: Canvas, head: str, detail: str, warning: bool) -> None:
    """A short headline (optionally behind a warning sign) over a small wrapped detail.

    The headline shrinks before the detail loses words; only when even the smallest
    headline leaves too little room is the detail cut, and the cut is marked with "...".
    """
    gaps: tuple[int, ...]
    if c.compact:
        sizes, head_lines, detail_font, gaps = (TITLE_COMPACT, 13, SMALL), 1, font(TINY), (3, 1)
    else:
        sizes, head_lines, detail_font, gaps = (17, 13, SMALL), 2, font(SMALL), (6,)
    pitch_gap = 0 if c.compact else 1
    detail_lines = balanced_wrap(detail, detail_font, c.width) if detail else []
    if not detail_lines:
        stack(c, [_head_block(head, sizes, head_lines, c, warning)], [])
        return
    for i in range(len(sizes)):
        head_block = _head_block(head, sizes[i:], head_lines, c, warning)
        block = lines_block(detail_lines, detail_font, gap=pitch_gap, centred=True)
        for gap in gaps:
            if stack_height([head_block, block], [gap]) <= c.height:
                stack(c, [head_block, block], [gap])
                return
    # Too long for the panel: the headline at its largest complete size, the detail cut.
    head_block = _head_block(head, sizes, head_lines, c, warning)
    for n in range(len(detail_lines) - 1, 0, -1):
        shown = ellipsize(detail_lines, detail_font, c.width, n)
        block = lines_block(shown, detail_font, gap=pitch_gap, centred=True)
        if stack_height([head_block, block], [gaps[-1]]) <= c.height:
            stack(c, [head_block, block], [gaps[-1]])
            return
    stack(c, [head_block], [])


def _head_block(
    head: str, sizes: tuple[int, ...], max_lines: int, c: Canvas, warning: bool
) -> Block:
    sign_w = icons.size(icons.WARNING_11)[0] + 5 if warning else 0
    block = fit_block(head, sizes, c.width - sign_w, c.height, max_lines, True)
    if not warning:
        return block
    sign = icons.WARNING_11 if block.height >= 11 else icons.WARNING_9
    return row([bitmap_block(sign), block], gap=5, align="bottom")


def draw_problem(c: Canvas, v: ProblemView) -> None:
    """One clear reason (and a detail line): what a person can act on, never a traceback."""
    reason, detail = " ".join(v.reason.split()), " ".join(v.detail.split())
    headline(c, reason or "Problem", detail, warning=True)


def draw_quiet(c: Canvas, v: QuietView) -> None:
    """Dark; a tiny heart and count in a corner when thanks wait for the morning."""
    if v.pending <= 0:
        return
    label = str(v.pending) if v.pending < 100 else "99+"
    mark = row([heart_block(7), text_block(label, font(TINY))], gap=2)
    mark.paint(c, c.width - mark.width, c.height - mark.height)
