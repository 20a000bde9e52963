"""A drawing surface with margins, and blocks that stack and centre themselves.

Screens describe *what* goes where in coordinates relative to the content box; this module
turns that into pixels. The content box keeps a margin on every side that is at least the
largest OLED-care pixel shift, so a shifted layout never leaves the panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from micromance.screens import icons, text

if TYPE_CHECKING:
    from PIL.ImageDraw import ImageDraw
    from PIL.ImageFont import FreeTypeFont

#: Largest pixel shift (either axis) the runtime applies for burn-in care.
MAX_SHIFT = 2
#: Blank border around the content box: the shift must never push ink off the panel.
MARGIN = MAX_SHIFT


def is_compact(content_height: int) -> bool:
    """Short panels (128x32) get a denser layout with fewer lines."""
    return content_height < 40


@dataclass(frozen=True)
class Canvas:
    """The content box of one frame: ``(0, 0)`` is its top-left corner after the shift."""

    draw: ImageDraw
    left: int
    top: int
    width: int
    height: int

    @property
    def compact(self) -> bool:
        return is_compact(self.height)

    def text(self, xy: tuple[int, int], line: str, fnt: FreeTypeFont, fill: int = 1) -> None:
        """One line, capitals' top at ``xy``; ``fill=0`` cuts it out of a lit area."""
        text.draw_line(self.draw, (self.left + xy[0], self.top + xy[1]), line, fnt, fill)

    def bitmap(self, xy: tuple[int, int], bitmap: icons.Bitmap, fill: int = 1) -> None:
        icons.draw_bitmap(self.draw, (self.left + xy[0], self.top + xy[1]), bitmap, fill)

    def heart(self, xy: tuple[int, int], width: int) -> None:
        icons.draw_heart(self.draw, (self.left + xy[0], self.top + xy[1]), width)

    def tick(self, xy: tuple[int, int], width: int) -> None:
        icons.draw_tick(self.draw, (self.left + xy[0], self.top + xy[1]), width)

    def rect(self, box: tuple[int, int, int, int], fill: int = 1, outline: bool = False) -> None:
        """``box`` is ``(x, y, width, height)``; filled, or a 1 px outline."""
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return
        xy = (self.left + x, self.top + y, self.left + x + w - 1, self.top + y + h - 1)
        if outline:
            self.draw.rectangle(xy, outline=255 if fill else 0)
        else:
            self.draw.rectangle(xy, fill=255 if fill else 0)

    def rounded(self, box: tuple[int, int, int, int], fill: int = 1) -> None:
        """A filled rectangle with its four corner pixels cut: a soft badge."""
        x, y, w, h = box
        self.rect(box, fill)
        if w > 2 and h > 2:
            for cx, cy in ((x, y), (x + w - 1, y), (x, y + h - 1), (x + w - 1, y + h - 1)):
                self.rect((cx, cy, 1, 1), 1 - fill)


Painter = Callable[[Canvas, int, int], None]
Align = Literal["bottom", "middle"]


@dataclass(frozen=True)
class Block:
    """Something of known size that can paint itself with its top-left at ``(x, y)``."""

    width: int
    height: int
    paint: Painter
    descent: int = 0  # ink below ``height``: descenders of the last text line
    ascent: int = 0  # ink above the top: ascenders and i-dots taller than the capitals


def text_block(line: str, fnt: FreeTypeFont) -> Block:
    """One line of text; its height is the capitals' (descenders hang below, unlisted)."""
    return Block(
        text.text_width(line, fnt),
        text.cap_height(fnt),
        lambda c, x, y: c.text((x, y), line, fnt),
        _descent(line, fnt),
        _ascent(line, fnt),
    )


def _descent(line: str, fnt: FreeTypeFont) -> int:
    """How far ``line`` reaches below the baseline (0 without descenders)."""
    _, baseline, _ = text.metrics(fnt)
    bottom = max((text.word_box(w, fnt)[3] for w in line.split()), default=baseline)
    return max(0, bottom - baseline)


def _ascent(line: str, fnt: FreeTypeFont) -> int:
    """How far ``line`` reaches above the top of the capitals."""
    cap_top = text.metrics(fnt)[0]
    top = min((text.word_box(w, fnt)[1] for w in line.split()), default=cap_top)
    return max(0, cap_top - top)


def lines_block(lines: Sequence[str], fnt: FreeTypeFont, gap: int, centred: bool) -> Block:
    """Several lines, ``gap`` px between one line's descenders and the next capitals."""
    pitch = text.line_height(fnt) + gap
    widths = [text.text_width(line, fnt) for line in lines]
    width = max(widths, default=0)
    height = pitch * (len(lines) - 1) + text.cap_height(fnt) if lines else 0

    def paint(c: Canvas, x: int, y: int) -> None:
        for i, (line, w) in enumerate(zip(lines, widths, strict=True)):
            c.text((x + ((width - w) // 2 if centred else 0), y + i * pitch), line, fnt)

    if not lines:
        return Block(width, height, paint)
    return Block(width, height, paint, _descent(lines[-1], fnt), _ascent(lines[0], fnt))


def fit_block(
    line: str, sizes: Sequence[int], width: int, height: int, max_lines: int, centred: bool
) -> Block:
    """``line`` at the largest of ``sizes`` that fits ``width`` x ``height`` in ``max_lines``.

    Height counts all ink (ascenders, descenders). If nothing fits, the smallest size is used
    with as many lines as fit, the cut marked "..." (names and details; prompts page instead).
    """
    for size in sizes:
        fnt = text.font(size)
        lines = text.balanced_wrap(line, fnt, width)
        if len(lines) > max_lines:
            continue
        for gap in (1, 0):  # a blank row between lines if there is room for it
            block = lines_block(lines, fnt, gap=gap, centred=centred)
            if stack_height([block], []) <= height:
                return block
    fnt = text.font(sizes[-1])
    lines = text.wrap(line, fnt, width)
    for n in range(min(len(lines), max_lines), 0, -1):
        block = lines_block(text.ellipsize(lines, fnt, width, n), fnt, gap=1, centred=centred)
        if stack_height([block], []) <= height:
            return block
    return lines_block([], fnt, gap=1, centred=centred)


def heart_block(width: int) -> Block:
    """A filled heart ``width`` px wide (see ``icons.heart_mask``)."""
    w, h = icons.heart_mask(width).size
    return Block(w, h, lambda c, x, y: c.heart((x, y), width))


def tick_block(width: int) -> Block:
    """A tick ``width`` px wide."""
    w, h = icons.tick_size(width)
    return Block(w, h, lambda c, x, y: c.tick((x, y), width))


def bitmap_block(bitmap: icons.Bitmap) -> Block:
    """A pixel-art icon."""
    w, h = icons.size(bitmap)
    return Block(w, h, lambda c, x, y: c.bitmap((x, y), bitmap))


def row(blocks: Sequence[Block], gap: int, align: Align = "bottom") -> Block:
    """Blocks side by side, ``gap`` px apart, on a shared bottom (the baseline) or middle."""
    width = sum(b.width for b in blocks) + gap * max(0, len(blocks) - 1)
    height = max((b.height for b in blocks), default=0)
    offsets = [height - b.height if align == "bottom" else (height - b.height) // 2 for b in blocks]
    ascent = max((b.ascent - dy for b, dy in zip(blocks, offsets, strict=True)), default=0)
    descent = max(
        (dy + b.height + b.descent - height for b, dy in zip(blocks, offsets, strict=True)),
        default=0,
    )

    def paint(c: Canvas, x: int, y: int) -> None:
        for b, dy in zip(blocks, offsets, strict=True):
            b.paint(c, x, y + dy)
            x += b.width + gap

    return Block(width, height, paint, max(0, descent), max(0, ascent))


def stack(
    canvas: Canvas,
    blocks: Sequence[Block],
    gaps: Sequence[int],
    area: tuple[int, int] | None = None,
    left: int | None = None,
) -> None:
    """Paint blocks one under another, centred horizontally and vertically in ``area``.

    ``gaps[i]`` is the blank space between block ``i``'s lowest ink (descenders included) and
    block ``i + 1``; ``area`` is the vertical ``(top, height)`` range inside the canvas
    (default: all of it). Gaps shrink (down to 1 px) when the blocks would not fit. With
    ``left``, blocks are aligned on that x instead of centred.
    """
    top, height = area if area is not None else (0, canvas.height)
    gaps = list(gaps)
    while stack_height(blocks, gaps) > height and any(g > 1 for g in gaps):
        widest = max(range(len(gaps)), key=lambda i: gaps[i])  # too tall: tighten, never clip
        gaps[widest] -= 1
    y = top + max(0, (height - stack_height(blocks, gaps)) // 2)
    for i, b in enumerate(blocks):
        y += b.ascent
        b.paint(canvas, (canvas.width - b.width) // 2 if left is None else left, y)
        y += b.height + b.descent + (gaps[i] if i < len(gaps) else 0)


def stack_height(blocks: Sequence[Block], gaps: Sequence[int]) -> int:
    """Rows ``stack`` needs, from the highest ink of the first block to the lowest of the last."""
    inner = sum(gaps[: max(0, len(blocks) - 1)])
    return inner + sum(b.ascent + b.height + b.descent for b in blocks)
