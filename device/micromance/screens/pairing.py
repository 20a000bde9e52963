"""The pairing screens: searching, the code to compare, waiting, and how it ended; and the
web page's access code, the other code people read off the unit.

The code is the one thing people must read across a kitchen, so it gets the biggest type on
any screen, split ``123 456`` like a phone number, with the two-button legend under it.
"""

from __future__ import annotations

from micromance.screens.layout import Block, Canvas, fit_block, stack, text_block
from micromance.screens.notices import SMALL, headline, title_size, word_with_mark
from micromance.screens.text import font, text_width
from micromance.screens.views import AccessCodeView, PairingPhase, PairingView

CODE, CODE_COMPACT = 28, 20
WAITING_CODE, WAITING_CODE_COMPACT = 20, 16

_RETRY = "hold both buttons to retry"
#: Headline, detail, warning sign. Compact panels say "hold both to retry": one line.
_ENDINGS = {
    PairingPhase.SEARCHING: ("Pairing", "looking for partner", False),
    PairingPhase.FAILED: ("Pairing failed", _RETRY, True),
    PairingPhase.TIMED_OUT: ("Timed out", _RETRY, True),
    PairingPhase.CANCELLED: ("Cancelled", "pairing stopped", False),
}


def format_code(code: str) -> str:
    """``123456`` -> ``123 456``: two groups of three are easier to compare aloud.

    Anything but letters and digits is dropped (a code never has more) and letters are
    shown as capitals, which have no descenders to collide with the legend below.
    """
    chars = "".join(ch for ch in code if ch.isascii() and ch.isalnum()).upper()
    if len(chars) == 6:
        return f"{chars[:3]} {chars[3:]}"
    return chars or "--- ---"


def _code_block(code: str, sizes: tuple[int, ...], c: Canvas) -> Block:
    return fit_block(code, sizes, c.width, c.height, 1, True)


def draw_pairing(c: Canvas, v: PairingView) -> None:
    """One screen per phase; the code phases put the code first and biggest."""
    small = font(SMALL)
    code = format_code(v.code)
    if v.phase == PairingPhase.CODE:
        big = _code_block(code, (CODE_COMPACT, 17, 13) if c.compact else (CODE, 20, 17), c)
        if c.compact:
            stack(c, [big, button_legend(c.width)], [4])
        else:
            question = text_block("Same code on both?", small)
            stack(c, [question, big, button_legend(c.width)], [6, 7])
    elif v.phase == PairingPhase.WAITING:
        sizes = (WAITING_CODE_COMPACT, 13) if c.compact else (WAITING_CODE, 17, 13)
        big = _code_block(code, sizes, c)
        stack(c, [big, text_block("waiting for partner", small)], [5 if c.compact else 8])
    elif v.phase == PairingPhase.CONFIRMED:
        paired = word_with_mark("Paired", "tick", title_size(c))
        stack(c, [paired, text_block("ready for thanks", small)], [5 if c.compact else 8])
    else:
        head, detail, warning = _ENDINGS[v.phase]
        if v.phase == PairingPhase.FAILED and v.detail.strip():
            detail = v.detail.strip()
        if v.phase == PairingPhase.SEARCHING and not c.compact:
            detail = f"{detail}\nNEXT = cancel"
        if detail == _RETRY and c.compact:
            detail = "hold both to retry"
        headline(c, head, detail, warning)


def draw_access_code(c: Canvas, v: AccessCodeView) -> None:
    """The caption above, the code as big as the pairing code, and what NEXT does below
    where there is room."""
    small = font(SMALL)
    big = _code_block(format_code(v.code), (CODE_COMPACT, 17, 13) if c.compact
                      else (CODE, 20, 17), c)
    caption = text_block(v.caption, small)
    if c.compact:
        stack(c, [caption, big], [5])
    else:
        stack(c, [caption, big, text_block("NEXT = hide", small)], [7, 7])


def button_legend(width: int) -> Block:
    """What the two buttons do now: ``THANKS = match`` on the left, ``NEXT = cancel`` right.

    The left/right placement mirrors the buttons. On 128 px the long wording does not fit, so
    the legend answers the question above the code instead: ``THANKS: yes``, ``NEXT: no``.
    """
    fnt = font(SMALL)
    for left, right in (("THANKS = match", "NEXT = cancel"), ("THANKS: yes", "NEXT: no")):
        if text_width(left, fnt) + text_width(right, fnt) + 5 <= width:
            a, b = text_block(left, fnt), text_block(right, fnt)

            def paint(c: Canvas, x: int, y: int, a: Block = a, b: Block = b) -> None:
                a.paint(c, x, y)
                b.paint(c, x + width - b.width, y)

            rise, fall = max(a.ascent, b.ascent), max(a.descent, b.descent)
            return Block(width, a.height, paint, fall, rise)
    return text_block("THANKS / NEXT", fnt)
