"""The README's pictures of the web pages are what the pages render today.

Each page is pictured as tests/web_pictures.py pictures it (real app, headless Chromium at
390 x 844, fixed data) and compared with device/screenshots/web-<page>-390x844.png. Chromium
draws text the same way on the same machine and fonts; the tolerance absorbs a stray
anti-aliased edge, not a changed word. After a deliberate change to a page, rewrite them with
``.venv/bin/python -m tests.web_pictures`` (or ``MICROMANCE_UPDATE_GOLDEN=1`` here) and look at
them before committing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser import PHONE, phone_browser
from tests.web_pictures import (
    PAGES,
    ROOT,
    SCREENSHOTS,
    differing_share,
    picture_path,
    take_pictures,
)

UPDATE = os.environ.get("MICROMANCE_UPDATE_GOLDEN") == "1"
#: At most this share of the pixels (33 of 390 x 844) may differ by more than the threshold
#: of a channel: a few stray edges pass, one changed digit (about 50 pixels) does not.
TOLERANCE = 0.0001
REGENERATE = ("if the page changed on purpose, rewrite the pictures with "
              ".venv/bin/python -m tests.web_pictures and look at them")


@pytest.fixture(scope="module")
def pictures():
    with phone_browser() as driver:
        yield take_pictures(driver)


@pytest.mark.parametrize("page", PAGES)
def test_the_stored_picture_is_what_the_page_renders(pictures, page, tmp_path):
    path = picture_path(page)
    if UPDATE:
        path.write_bytes(pictures[page])
    assert path.exists(), f"no picture {path.relative_to(ROOT)}: {REGENERATE}"
    share = differing_share(path, pictures[page])
    if share > TOLERANCE:
        actual = tmp_path / path.name
        actual.write_bytes(pictures[page])
        pytest.fail(f"{path.relative_to(ROOT)}: {share:.2%} of the pixels differ (at most "
                    f"{TOLERANCE:.2%} may); the page as rendered now is in {actual}; "
                    f"{REGENERATE}", pytrace=False)


def test_the_pictures_are_phone_sized_and_not_blank(pictures):
    import io

    from PIL import Image

    for page, png in pictures.items():
        with Image.open(io.BytesIO(png)) as image:
            assert image.size == PHONE, page
            colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
            assert colours is None or len(colours) > 20, f"{page} is nearly blank"


def test_the_readme_shows_every_picture_and_only_stored_ones():
    readme = (ROOT / "README.md").read_text()
    embedded = set(re.findall(r'<img src="(device/screenshots/web-[\w-]+\.png)"', readme))
    expected = {str(picture_path(page).relative_to(ROOT)) for page in PAGES}
    assert embedded == expected
    stored = {str(p.relative_to(ROOT)) for p in SCREENSHOTS.glob("web-*.png")}
    assert stored == expected, "a web-*.png that no page makes"
    for path in embedded:
        tag = re.search(rf'<img src="{re.escape(path)}"[^>]*>', readme)
        assert tag and 'alt="' in tag.group(0) and 'width="' in tag.group(0), path
        assert Path(ROOT / path).exists()
