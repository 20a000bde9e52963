"""Every screen, rendered to PNG files people can look at (``micromance preview``).

``sample_frames`` is also the set of golden images the tests compare against, so a change in
any screen shows up both in the previews and in a failing test.
"""

from __future__ import annotations

from pathlib import Path

from micromance.screens.views import (
    RECEIVED_FRAMES,
    DoneView,
    Frame,
    HomeView,
    LinkMark,
    PairingPhase,
    PairingView,
    Practice,
    ProblemView,
    QuietView,
    ReceivedView,
    SentView,
)

#: How much the PNGs are enlarged (nearest neighbour, so every pixel stays a crisp square).
SCALE = 4

_SHORT = "Ask about their day and listen without your phone"
_LONG = (
    "Tonight, put the phones in another room and ask them about the best and the hardest "
    "moment of their week, then just listen"
)


def sample_frames() -> dict[str, Frame]:
    """A representative frame of every screen and state, by a lowercase, dashed name."""
    home = HomeView(prompt=_SHORT, practice=Practice.CLOSENESS, today=3, total=128)
    long_home = HomeView(prompt=_LONG, practice=Practice.PRESENT, today=1, total=42)
    frames: dict[str, object] = {
        "home": home,
        "home-long-page-0": long_home,
        "home-long-page-1": HomeView(**{**long_home.__dict__, "page": 1}),
        "home-offline": HomeView(
            prompt="Send a sweet message in the middle of their day",
            practice=Practice.DELIGHT, today=0, total=128, link=LinkMark.PARTNER_OFFLINE,
        ),
        "home-no-broker": HomeView(
            prompt="Thank them for one small thing they did today",
            practice=Practice.REINFORCE, today=2, total=7, link=LinkMark.BROKER_UNREACHABLE,
        ),
        "home-focus": HomeView(
            prompt="Tell them one thing you admire about them",
            practice=Practice.AFFIRM, today=5, total=1024, focus=True,
        ),
        "home-pending": HomeView(
            prompt="Notice their mood before you share your news",
            practice=Practice.ATTUNE, today=0, total=311, pending=2,
        ),
        "home-calm": HomeView(
            prompt="Take one slow breath before you answer",
            practice=Practice.CALM, today=12, total=9876,
        ),
        "sent": SentView(),
        "sent-queued": SentView(queued=True),
        "seen": SentView(seen=True),
        "received-frame-0": ReceivedView(sender="Sam", frame=0),
        "received-frame-last": ReceivedView(sender="Sam", frame=RECEIVED_FRAMES - 1),
        "received-count-3": ReceivedView(sender="Sam", frame=RECEIVED_FRAMES - 1, count=3),
        "done": DoneView(streak=3),
        "problem-no-broker": ProblemView(reason="No broker"),
        "problem-config-error": ProblemView(
            reason="Config error", detail="display.width: expected a number"
        ),
        "quiet": QuietView(pending=2),
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
