"""Tiny hand-drawn bitmaps: hearts, ticks, warning signs, the seven practices, link marks.

Drawn as pixel art rather than font glyphs so that they look the same with any font, stay
crisp on a 1-bit panel and cost almost nothing to draw. ``#`` is a lit pixel.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from micromance.screens.views import LinkMark, Practice

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageDraw import ImageDraw

Bitmap = tuple[str, ...]

HEART_7: Bitmap = (
    ".##.##.",
    "#######",
    "#######",
    ".#####.",
    "..###..",
    "...#...",
)

HEART_9: Bitmap = (
    ".##...##.",
    "####.####",
    "#########",
    "#########",
    ".#######.",
    "..#####..",
    "...###...",
    "....#....",
)

TICK_7: Bitmap = (
    "......#",
    ".....##",
    "#...##.",
    "##.##..",
    ".###...",
    "..#....",
)

WARNING_11: Bitmap = (  # a filled warning triangle with the "!" cut out
    ".....#.....",
    "....###....",
    "....###....",
    "...##.##...",
    "...##.##...",
    "..###.###..",
    "..###.###..",
    ".#########.",
    ".####.####.",
    "###########",
)

WARNING_9: Bitmap = (  # the same, for small headlines
    "....#....",
    "...###...",
    "...#.#...",
    "..##.##..",
    "..##.##..",
    ".#######.",
    ".###.###.",
    "#########",
)

STAR_6: Bitmap = (  # the day's focus, on the compact footer's 6 rows
    "...#...",
    "..###..",
    "#######",
    ".#####.",
    "..###..",
    ".##.##.",
)

PRACTICE_ICONS: dict[Practice, Bitmap] = {
    Practice.PRESENT: (  # an eye: notice them
        "...###...",
        ".##...##.",
        "#..###..#",
        "#..###..#",
        ".##...##.",
        "...###...",
    ),
    Practice.REINFORCE: (  # a note: thank them, say so
        "#########",
        "##.....##",
        "#.#...#.#",
        "#..#.#..#",
        "#...#...#",
        "#.......#",
        "#########",
    ),
    Practice.CLOSENESS: (  # speech bubble: ask about their day
        "#########",
        "#.......#",
        "#.##.##.#",
        "#.......#",
        "#########",
        ".##......",
        ".#.......",
    ),
    Practice.DELIGHT: (  # a gift: small surprises
        ".##.#.##.",
        "...###...",
        "#########",
        "#...#...#",
        "#########",
        ".#..#..#.",
        ".#..#..#.",
        ".#######.",
    ),
    Practice.CALM: (  # a crescent moon: lower the temperature
        "..####...",
        ".##......",
        "##.......",
        "##.......",
        "##.......",
        "##.......",
        ".##......",
        "..####...",
    ),
    Practice.AFFIRM: (  # a star: let them know they matter
        "....#....",
        "...###...",
        "#########",
        ".#######.",
        "..#####..",
        "..##.##..",
        ".##...##.",
        ".#.....#.",
    ),
    Practice.ATTUNE: (  # a face: read their mood
        "..#####..",
        ".#.....#.",
        "#..#.#..#",
        "#.......#",
        "#.#...#.#",
        "#..###..#",
        ".#.....#.",
        "..#####..",
    ),
}

LINK_ICONS: dict[LinkMark, Bitmap] = {
    LinkMark.BROKER_UNREACHABLE: (  # a cloud with a cross: the broker is out of reach
        "...##......",
        ".#####.....",
        "#######....",
        "#######.#.#",
        "#######..#.",
        ".#####..#.#",
    ),
    LinkMark.PARTNER_OFFLINE: (  # a person with a cross: the partner's unit is offline
        "..###......",
        ".#####.....",
        ".#####.....",
        "..###......",
        "...........",
        "#######.#.#",
        "#######..#.",
        "#######.#.#",
    ),
    LinkMark.NOT_PAIRED: (  # two chain links, apart: no partner yet
        ".###...###.",
        "#...#.#...#",
        "#.###.###.#",
        "#...#.#...#",
        ".###...###.",
    ),
}

def size(bitmap: Bitmap) -> tuple[int, int]:
    """``(width, height)`` of a bitmap."""
    return max((len(row) for row in bitmap), default=0), len(bitmap)


def draw_bitmap(draw: ImageDraw, xy: tuple[int, int], bitmap: Bitmap, fill: int = 1) -> None:
    """Set the ``#`` pixels of ``bitmap`` to ``fill``, its top-left corner at ``xy``."""
    x0, y0 = xy
    points = [
        (x0 + x, y0 + y)
        for y, row in enumerate(bitmap)
        for x, cell in enumerate(row)
        if cell == "#"
    ]
    if points:
        draw.point(points, fill=255 if fill else 0)


@functools.lru_cache(maxsize=64)
def heart_mask(width: int) -> Image:
    """A filled, left-right symmetric heart ``width`` px wide, as a mode "1" mask.

    Small sizes use the hand-drawn bitmaps; larger ones sample the classic implicit heart
    curve ``(x²+y²-1)³ - x²y³ <= 0`` at pixel centres, which keeps them symmetric.
    """
    from PIL import Image

    width = max(1, width)
    if width <= 8:
        return _bitmap_image(HEART_7)
    if width <= 10:
        return _bitmap_image(HEART_9)
    height = round(width * 0.9)
    image = Image.new("1", (width, height))
    for j in range(height):
        y = 1.25 - (j + 0.5) / height * 2.3
        for i in range(width):
            x = ((i + 0.5) / width * 2 - 1) * 1.16
            if (x * x + y * y - 1) ** 3 - x * x * y**3 <= 0:
                image.putpixel((i, j), 255)
    return image


def _bitmap_image(bitmap: Bitmap) -> Image:
    from PIL import Image, ImageDraw

    image = Image.new("1", size(bitmap))
    draw_bitmap(ImageDraw.Draw(image), (0, 0), bitmap)
    return image


def draw_heart(draw: ImageDraw, xy: tuple[int, int], width: int) -> tuple[int, int]:
    """Draw a heart with its top-left at ``xy``; returns its ``(width, height)``."""
    mask = heart_mask(width)
    draw.bitmap(xy, mask, fill=255)
    return mask.size


def tick_size(width: int) -> tuple[int, int]:
    """``(width, height)`` of the tick ``draw_tick`` draws for ``width``."""
    return size(TICK_7) if width <= 8 else (width, round(width * 0.8))


def draw_tick(draw: ImageDraw, xy: tuple[int, int], width: int) -> tuple[int, int]:
    """Draw a tick (check mark) ``width`` px wide, its stroke scaled to its size."""
    if width <= 8:
        draw_bitmap(draw, xy, TICK_7)
        return size(TICK_7)
    x, y = xy
    _, height = tick_size(width)
    stroke = max(2, round(width / 5))
    half = stroke // 2
    elbow = (x + round(width * 0.38), y + height - 1 - half)
    draw.line(
        [(x + half, y + round(height * 0.5)), elbow, (x + width - 1 - half, y + half)],
        fill=255,
        width=stroke,
        joint="curve",
    )
    return width, height
