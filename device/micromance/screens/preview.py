"""Every screen, rendered to PNG files people can look at (``micromance preview``).

``sample_frames`` is also the set of golden images the tests compare against, so a change in
any screen shows up both in the previews and in a failing test.
"""

from __future__ import annotations

from pathlib import Path

from micromance.screens.views import (
    RECEIVED_FRAMES,
    TOGETHER_FRAMES,
    AccessCodeView,
    DoneView,
    Frame,
    HelpView,
    HomeView,
    LinkMark,
    PairingPhase,
    PairingView,
    Practice,
    ProblemView,
    ProgressView,
    QuietView,
    ReceivedView,
    SentView,
    TogetherView,
    WeekView,
)

#: How much the PNGs are enlarged (nearest neighbour, so every pixel stays a crisp square).
SCALE = 4

_SHORT = "Ask a follow-up question about what they said"
_LONG = (
    "Tonight, put the phones in another room and ask them about the best and the hardest "
    "moment of their week, then just listen"
)


def _status_page(prompt: str) -> int:
    """The page after the gesture's on a 128x32 panel: the status in words."""
    from micromance.screens.home import prompt_pages

    return len(prompt_pages(prompt, 128, 32))


def sample_frames() -> dict[str, Frame]:
    """A representative frame of every screen and state, by a lowercase, dashed name."""
    home = HomeView(prompt=_SHORT, practice=Practice.CLOSENESS, today=3, total=128)
    long_home = HomeView(prompt=_LONG, practice=Practice.PRESENT, today=1, total=42)
    frames: dict[str, object] = {
        "home": home,
        "home-big": HomeView(prompt="Hug them a little longer than usual",
                             practice=Practice.PRESENT, today=4, total=57),
        "home-long-page-0": long_home,
        "home-long-page-1": HomeView(**{**long_home.__dict__, "page": 1}),
        "home-offline": HomeView(
            prompt="Send a sweet text in the middle of their day",
            practice=Practice.DELIGHT, today=0, total=128, link=LinkMark.PARTNER_OFFLINE,
            partner="Alex", away_since="18:05",
        ),
        "home-offline-status": HomeView(
            prompt="Send a sweet text in the middle of their day",
            practice=Practice.DELIGHT, today=0, total=128, link=LinkMark.PARTNER_OFFLINE,
            partner="Alex", away_since="yesterday 21:40",
            page=_status_page("Send a sweet text in the middle of their day"),
        ),
        "home-no-broker": HomeView(
            prompt="Thank them for something from this week",
            practice=Practice.REINFORCE, today=2, total=7, link=LinkMark.BROKER_UNREACHABLE,
        ),
        "home-no-broker-status": HomeView(
            prompt="Thank them for something from this week",
            practice=Practice.REINFORCE, today=2, total=7, link=LinkMark.BROKER_UNREACHABLE,
            page=_status_page("Thank them for something from this week"),
        ),
        "home-not-paired": HomeView(
            prompt="Tell them why you're proud of them",
            practice=Practice.AFFIRM, today=0, total=0, link=LinkMark.NOT_PAIRED,
        ),
        "home-focus": HomeView(
            prompt="Tell them something you admire in them",
            practice=Practice.AFFIRM, today=5, total=1024, focus=True,
        ),
        "home-pending": HomeView(
            prompt="Read their mood before you share your own news",
            practice=Practice.ATTUNE, today=0, total=311, pending=2, partner="Sam",
            pending_when="2 h ago",
        ),
        "home-pending-status": HomeView(
            prompt="Read their mood before you share your own news",
            practice=Practice.ATTUNE, today=0, total=311, pending=2, partner="Sam",
            pending_when="2 h ago",
            page=_status_page("Read their mood before you share your own news"),
        ),
        "home-calm": HomeView(
            prompt="Offer a cup of tea before the hard talk",
            practice=Practice.CALM, today=12, total=9876,
        ),
        "sent": SentView(),
        "sent-queued": SentView(queued=True),
        "seen": SentView(seen=True, seen_when="just now"),
        "seen-later": SentView(seen=True, seen_when="yesterday 21:40"),
        "received-frame-0": ReceivedView(sender="Sam", frame=0),
        "received-frame-last": ReceivedView(sender="Sam", frame=RECEIVED_FRAMES - 1),
        "received-count-3": ReceivedView(sender="Sam", frame=RECEIVED_FRAMES - 1, count=3),
        "received-missed": ReceivedView(sender="Sam", frame=RECEIVED_FRAMES - 1,
                                        when="2 h ago"),
        "received-missed-yesterday": ReceivedView(
            sender="Sam", frame=RECEIVED_FRAMES - 1, count=2, when="yesterday 21:40"),
        "together-frame-0": TogetherView(partner="Sam", frame=0),
        "together-frame-last": TogetherView(partner="Sam", frame=TOGETHER_FRAMES - 1),
        "week": WeekView(days=(3, 0, 5, 2, 8, 4, 6), weekday=6, streak=4),
        "week-quiet": WeekView(days=(0, 0, 1, 0, 0, 0, 2), weekday=2, streak=0),
        "help": HelpView(),
        "help-page-1": HelpView(page=1),
        "done": DoneView(streak=3),
        "problem-no-broker": ProblemView(reason="No broker"),
        "problem-config-error": ProblemView(
            reason="Config error", detail="display.width: expected a number"
        ),
        "quiet": QuietView(pending=2),
        "access-code": AccessCodeView(code="482913"),
        "installing": ProgressView(title="Installing", step=3, total=6,
                                   detail="the Python packages"),
        "install-failed": ProblemView(
            reason="Install failed",
            detail="No internet for the Wi-Fi hotspot (comitup). Tries again at power-on"),
    }
    for phase in PairingPhase:
        frames[f"pairing-{phase.value.replace('_', '-')}"] = PairingView(
            phase=phase,
            code="123456" if phase in (PairingPhase.CODE, PairingPhase.WAITING) else "",
            detail="codes did not match" if phase == PairingPhase.FAILED else "",
        )
    return {name: Frame(view) for name, view in frames.items()}  # type: ignore[arg-type]


def write_previews(
    out_dir: Path, sizes: tuple[tuple[int, int], ...] = ((128, 64), (128, 32))
) -> list[Path]:
    """Render every sample at every size to ``<name>-<w>x<h>.png``, enlarged for viewing."""
    from PIL import Image

    from micromance.screens.render import render

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in sample_frames().items():
        for width, height in sizes:
            image = render(frame, width, height)
            big = image.resize((width * SCALE, height * SCALE), Image.Resampling.NEAREST)
            path = out_dir / f"{name}-{width}x{height}.png"
            big.save(path)
            written.append(path)
    return written
