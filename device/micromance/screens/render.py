"""Screens: pure functions from a view model to a 1-bit PIL image of the panel's size.

``render(frame, width, height)`` is the entry point the runtime and the preview use. It picks
the screen for the view type and applies the OLED-care pixel shift; the layouts live in
``home``, ``notices``, ``moments`` and ``pairing``. Nothing here reads clocks, files or
globals: equal frames give identical images, which the golden tests rely on.

Pillow is imported on the first render, not at import: importing the screens stays cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from micromance.screens import home, moments, notices, pairing, progress
from micromance.screens.layout import MARGIN, MAX_SHIFT, Canvas
from micromance.screens.views import (
    AccessCodeView,
    DoneView,
    Frame,
    HelpView,
    HomeView,
    PairingView,
    ProblemView,
    ProgressView,
    QuietView,
    ReceivedView,
    SentView,
    TogetherView,
    WeekView,
)

if TYPE_CHECKING:
    from PIL.Image import Image

#: Below this many pixels of content box nothing useful fits; the frame stays dark.
MIN_CONTENT = 8
#: Frames ``render_packed`` remembers (about 1 KiB each on a 128x64 panel).
RECENT_FRAMES = 32

_SCREENS: dict[type, Callable[[Canvas, Any], None]] = {
    HomeView: home.draw_home,
    SentView: notices.draw_sent,
    ReceivedView: notices.draw_received,
    DoneView: notices.draw_done,
    PairingView: pairing.draw_pairing,
    ProblemView: notices.draw_problem,
    QuietView: notices.draw_quiet,
    TogetherView: moments.draw_together,
    WeekView: moments.draw_week,
    HelpView: moments.draw_help,
    AccessCodeView: pairing.draw_access_code,
    ProgressView: progress.draw_progress,
}


def render(frame: Frame, width: int, height: int) -> Image:
    """Draw ``frame`` as a mode "1" image of exactly ``width`` x ``height`` (1 = lit pixel).

    The whole layout moves by ``frame.shift`` for burn-in care; the shift is clamped to the
    margin (``MAX_SHIFT``) so that nothing can be pushed off the panel. Panels other than
    128x64 and 128x32 get a best effort: never an error, at worst a crowded screen.
    """
    from PIL import Image, ImageDraw

    try:
        screen = _SCREENS[type(frame.view)]
    except KeyError:
        raise TypeError(f"no screen for {type(frame.view).__name__}") from None
    image = Image.new("1", (max(1, width), max(1, height)))
    content_w, content_h = width - 2 * MARGIN, height - 2 * MARGIN
    if content_w < MIN_CONTENT or content_h < MIN_CONTENT:
        return image
    dx, dy = (max(-MAX_SHIFT, min(MAX_SHIFT, int(s))) for s in frame.shift)
    canvas = Canvas(ImageDraw.Draw(image), MARGIN + dx, MARGIN + dy, content_w, content_h)
    screen(canvas, frame.view)
    return image


@functools.lru_cache(maxsize=RECENT_FRAMES)
def render_packed(frame: Frame, width: int, height: int) -> bytes:
    """``render`` as packed mode "1" bytes (``Image.tobytes``), remembered: a unit shows the
    same frames again and again (Sent, Seen, the heart's six steps, a prompt's pages), and a
    Pi Zero then draws each only once. Packed, a 128x64 frame is 1 KiB; as an Image, 10 KiB.
    """
    return render(frame, width, height).tobytes()


def prompt_pages(prompt: str, width: int, height: int) -> list[list[str]]:
    """The pages a home prompt is split into on a ``width`` x ``height`` panel.

    ``HomeView.page`` picks one, modulo their number; the core may use the count to decide
    how long to stay on a prompt.
    """
    return home.prompt_pages(prompt, width, height)
