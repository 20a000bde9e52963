"""The gesture library on disk: the shipped ``prompts.toml`` and the user's extra file.

The core parses and rotates prompts (``core.prompts``); this module only reads the files, so
the core stays free of I/O. The shipped file is read as a plain file: importlib.resources
would bring zipfile and tempfile into a daemon installed as ordinary files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from micromance.core.prompts import (
    USER_ID_PREFIX,
    Prompt,
    dedup_key,
    parse_prompts,
    practice_from_setting,
)
from micromance.errors import ConfigError

SHIPPED = Path(__file__).resolve().parent / "prompts.toml"
_EXAMPLE = '[[prompt]] / practice = "present" / text = "Ask about their day"'


def load_library(
    extra_file: str | Path | None = None, disabled_practices: Iterable[str] = ()
) -> tuple[Prompt, ...]:
    """The shipped prompts plus the user's ``extra_file``, minus ``disabled_practices``.

    Every mistake in the extra file raises ``ConfigError`` naming the file, the line, the
    problem and the fix, because a prompt that silently vanishes is impossible to debug on a
    device without a keyboard. An empty ``extra_file`` string means "no extra file".
    """
    disabled = {practice_from_setting(name) for name in disabled_practices}
    prompts = parse_prompts(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED), id_prefix="")
    seen = {dedup_key(prompt.text): "the shipped library" for prompt in prompts}
    if extra_file:
        path = Path(extra_file).expanduser()
        prompts += parse_prompts(_read_extra(path), str(path), USER_ID_PREFIX, seen)
    return tuple(prompt for prompt in prompts if prompt.practice not in disabled)


def _read_extra(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: prompts file not found (prompts.extra_file)",
            fix=f"create it with entries like {_EXAMPLE}, or set extra_file = \"\" to use only "
            "the shipped prompts") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"{path}: cannot read the prompts file ({reason})",
                          fix="make it a readable UTF-8 text file") from None
