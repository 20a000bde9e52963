"""README's two commands are the ones CI and newcomers run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(b for b in sh_blocks() if "pytest" in b)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command.strip() in ci_lines


def test_the_main_command_names_files_that_exist():
    main_command = sh_blocks()[0]
    assert main_command.startswith("./install.sh --dev")
    for path in re.findall(r"(?:firmware_config|\.venv/bin)/[\w./-]+", main_command):
        if not path.startswith(".venv"):
            assert (ROOT / path).exists(), path


def test_readme_pictures_are_what_the_screens_render_today():
    from PIL import Image, ImageChops

    from micromance.screens.preview import sample_frames
    from micromance.screens.render import render

    samples = sample_frames()
    pictures = re.findall(r"\]\((device/screenshots/[\w-]+\.png)\)", README)
    assert len(pictures) >= 4
    for picture in pictures:
        name, size = Path(picture).stem.rsplit("-", 1)
        width, height = map(int, size.split("x"))
        expected = render(samples[name], width, height)
        with Image.open(ROOT / picture) as shown:
            small = shown.convert("1").resize((width, height), Image.Resampling.NEAREST)
        assert ImageChops.difference(small, expected).getbbox() is None, picture
