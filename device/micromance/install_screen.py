"""Draw one install screen on the unit's display and leave it there (the first-boot installer).

    python -m micromance.install_screen [--config PATH] progress --title T --step N --total M
                                        [--detail WORDS]
    python -m micromance.install_screen [--config PATH] problem --reason R [--detail WORDS]

The first-boot installer (firmware_config/firstboot/firstboot.sh) runs this between its steps,
while the unit's own service is not running yet: nobody is at a keyboard, and the panel is
the only place to say how far it got or, in plain words, what went wrong. The frame stays on
the panel after exit (luma's ``persist``). The display comes from the config's ``[display]``
table as far as it is readable (a config with a mistake elsewhere still shows the screen).
Exit 0 when shown; 69 when the display cannot be opened (the installer carries on either way).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from micromance.config import DisplayConfig, resolve_path
from micromance.errors import MicromanceError
from micromance.screens.views import Frame, ProblemView, ProgressView, View


def view_from(args: argparse.Namespace) -> View:
    """The view the command line asks for."""
    if args.what == "progress":
        return ProgressView(title=args.title, step=args.step, total=args.total,
                            detail=args.detail)
    return ProblemView(reason=args.reason, detail=args.detail)


def show(view: View, display_config: DisplayConfig, save: Path | None = None) -> None:
    """Open the configured display, draw ``view`` and close it with the frame kept on."""
    from micromance.hardware.display import open_display
    from micromance.screens.render import render
    from micromance.startup import close_display

    display = open_display(display_config)
    try:
        image = render(Frame(view), *display.size)
        display.show(image)
        if save is not None:
            image.save(save)
    finally:
        close_display(display, keep_frame=True)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m micromance.install_screen",
                                  description="Show an install screen on the unit's display.")
    top.add_argument("--config", help="the config file (default: as micromance run)")
    top.add_argument("--save", type=Path, help="also save the frame as a PNG (tests, desktops)")
    screens = top.add_subparsers(dest="what", required=True)
    progress = screens.add_parser("progress", help="step N of M, and what it does")
    progress.add_argument("--title", default="Installing")
    progress.add_argument("--step", type=int, required=True)
    progress.add_argument("--total", type=int, required=True)
    progress.add_argument("--detail", default="")
    problem = screens.add_parser("problem", help="a failure, in plain words")
    problem.add_argument("--reason", required=True)
    problem.add_argument("--detail", default="")
    return top


def main(argv: list[str] | None = None) -> int:
    from micromance.startup import readable_display

    args = parser().parse_args(argv)
    display_config = readable_display(resolve_path(args.config))
    try:
        show(view_from(args), display_config, args.save)
    except MicromanceError as error:
        print(f"micromance: {error}", file=sys.stderr)
        return error.exit_code
    except (OSError, ValueError) as error:  # a bus that is not there yet, a wrong driver
        print(f"micromance: the display could not be opened: {error}", file=sys.stderr)
        return 69
    return 0


if __name__ == "__main__":
    sys.exit(main())
