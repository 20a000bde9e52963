"""The gesture-prompt library and its rotation: pure values and pure functions.

Prompts come from the shipped ``content/prompts.toml`` plus an optional user file in the same
format (``content.library`` reads the files; this module parses their text). Rotation is a
shuffle bag: every prompt that suits the time of day is shown once before any repeats. The
bag is an immutable value that the runtime persists as JSON, so a restart in the middle of a
cycle neither repeats nor skips anything. Nothing here reads the clock: the caller passes
``now`` and a seed, which keeps every decision reproducible in tests.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from micromance.errors import ConfigError
from micromance.screens.views import Practice

#: Time-of-day tags a prompt may carry in ``when``.
TIME_TAGS = ("morning", "evening", "weekend")
#: Keys a ``[[prompt]]`` entry may have.
PROMPT_KEYS = ("practice", "text", "when")
#: Hard limit for a prompt's text; the shipped library keeps to about 60 (longer text pages).
MAX_TEXT_CHARS = 120
#: Prefix of ids of prompts from the user's extra file, so they never collide with shipped ones.
USER_ID_PREFIX = "user-"

_PRACTICE_NAMES = tuple(practice.value for practice in Practice)


@dataclass(frozen=True)
class Prompt:
    """One gesture prompt. ``id`` stays the same across releases as long as the text does."""

    id: str
    text: str
    practice: Practice
    when: frozenset[str] = frozenset()


# --- loading ---------------------------------------------------------------------------------


def practice_from_setting(name: str | Practice) -> Practice:
    if isinstance(name, Practice):
        return name
    try:
        return Practice(name)
    except ValueError:
        raise ConfigError(
            f"prompts.disabled_practices names unknown practice {name!r}"
            f"{_did_you_mean(str(name), _PRACTICE_NAMES)}",
            fix=f"use one of {', '.join(_PRACTICE_NAMES)}") from None


def parse_prompts(
    text: str, source: str, id_prefix: str, seen: dict[str, str] | None = None
) -> tuple[Prompt, ...]:
    """Validate one prompts file; ``seen`` maps already-loaded texts to where they came from."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _line_of_syntax_error(str(error))
        raise ConfigError(f"{source}, line {line}: not valid TOML ({error})",
                          fix='correct the syntax there (text needs quotes: text = "Say hi")'
                          ) from None
    locator = _Locator(text)
    for key in data:
        if key != "prompt":
            raise _problem(
                source, locator.top_level(key), f"unknown key {key!r}"
                f"{_did_you_mean(key, ('prompt',))}",
                f"every prompt starts with a [[prompt]] line; move or remove {key!r}")
    entries = data.get("prompt", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _problem(source, locator.top_level("prompt"),
                                   "prompt is not a list of [[prompt]] entries",
                                   "write [[prompt]] (double brackets) above each prompt")
    seen = dict(seen or {})
    prompts = []
    for index, entry in enumerate(entries):
        prompt = _parse_entry(entry, index, source, id_prefix, locator)
        key = dedup_key(prompt.text)
        if key in seen:
            raise _problem(
                source, locator.key(index, "text"),
                f"the text {prompt.text!r} repeats a prompt from {seen[key]}",
                "remove this entry or reword it")
        seen[key] = f"line {locator.key(index, 'text')} of this file"
        prompts.append(prompt)
    return tuple(prompts)


def _parse_entry(
    entry: dict[str, Any], index: int, source: str, id_prefix: str, locator: _Locator
) -> Prompt:
    for key in entry:
        if key not in PROMPT_KEYS:
            raise _problem(
                source, locator.key(index, key),
                f"unknown key {key!r}{_did_you_mean(key, PROMPT_KEYS)}",
                f"rename or remove it (a prompt has: {', '.join(PROMPT_KEYS)})")

    practice_name = entry.get("practice")
    if not isinstance(practice_name, str):
        what = "missing" if practice_name is None else "not a quoted string"
        raise _problem(
            source, locator.key(index, "practice"), f"practice is {what}",
            f'add a line like practice = "present" (one of: {", ".join(_PRACTICE_NAMES)})')
    normalised = practice_name.strip().lower()
    if normalised not in _PRACTICE_NAMES:
        raise _problem(
            source, locator.key(index, "practice"),
            f"unknown practice {practice_name!r}{_practice_hint(normalised)}",
            f"use one of: {', '.join(_PRACTICE_NAMES)}")

    raw_text = entry.get("text")
    if not isinstance(raw_text, str) or not raw_text.strip():
        what = ("missing" if raw_text is None else
                "empty" if isinstance(raw_text, str) else "not a quoted string")
        raise _problem(source, locator.key(index, "text"), f"text is {what}",
                                   'add the gesture, e.g. text = "Send a goodnight message"')
    text = " ".join(raw_text.split())
    if len(text) > MAX_TEXT_CHARS:
        raise _problem(
            source, locator.key(index, "text"),
            f"text is {len(text)} characters, more than {MAX_TEXT_CHARS}",
            "shorten it; about 60 characters fit one screen, longer text pages")

    when = entry.get("when", [])
    if not isinstance(when, list) or not all(isinstance(tag, str) for tag in when):
        raise _problem(source, locator.key(index, "when"),
                                   "when is not a list of quoted tags",
                                   'write it like when = ["morning"] or when = []')
    tags = frozenset(tag.strip().lower() for tag in when)
    for tag in sorted(tags):
        if tag not in TIME_TAGS:
            raise _problem(
                source, locator.key(index, "when"),
                f"unknown when tag {tag!r}{_did_you_mean(tag, TIME_TAGS)}",
                f"use any of: {', '.join(TIME_TAGS)} (or leave when out for any time)")

    practice = Practice(normalised)
    return Prompt(id=prompt_id(practice, text, id_prefix), text=text, practice=practice,
                  when=tags)


def prompt_id(practice: Practice, text: str, prefix: str = "") -> str:
    """A short id that stays stable as long as the practice and text do."""
    digest = hashlib.sha256(f"{practice.value}\n{text}".encode()).hexdigest()[:10]
    return prefix + digest


def dedup_key(text: str) -> str:
    """Texts equal after ignoring case, punctuation and spacing count as duplicates."""
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


def _problem(source: str, line: int, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{source}, line {line}: {problem}", fix=fix)


def _did_you_mean(value: str, options: Sequence[str]) -> str:
    import difflib  # only on a mistake

    near = difflib.get_close_matches(value.strip().lower(), options, n=1, cutoff=0.6)
    return f' (did you mean "{near[0]}"?)' if near else ""


def _practice_hint(value: str) -> str:
    for practice in Practice:  # people may write the label shown on screen, e.g. "Be present"
        if value == practice.label.lower():
            return f' (did you mean "{practice.value}"?)'
    return _did_you_mean(value, _PRACTICE_NAMES)


def _line_of_syntax_error(message: str) -> int:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else 1


_HEADER = re.compile(r"^\s*\[")
_PROMPT_HEADER = re.compile(r"^\s*\[\[\s*\"?prompt\"?\s*\]\]")


class _Locator:
    """Finds the line (1-based) of an entry's key in the TOML text, for error messages.

    tomllib keeps no positions, so we scan the text: the n-th ``[[prompt]]`` header starts
    entry n, and a key is the first ``key =`` line before the next header. When the text
    uses a form we do not recognise (e.g. inline tables) we fall back to the entry's header
    or line 1: a nearby line is far more useful than none.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers = [i for i, line in enumerate(self.lines) if _PROMPT_HEADER.match(line)]

    def top_level(self, key: str) -> int:
        pattern = re.compile(rf"^\s*(\[+\s*)?[\"']?{re.escape(key)}[\"']?\s*[=\].]")
        first_header = next((i for i, line in enumerate(self.lines) if _HEADER.match(line)),
                            len(self.lines))
        for number, line in enumerate(self.lines):
            if pattern.match(line) and (number < first_header or line.lstrip().startswith("[")):
                return number + 1
        return 1

    def key(self, index: int, key: str) -> int:
        if index >= len(self.headers):
            return self.top_level("prompt")
        start = self.headers[index]
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start + 1, len(self.lines)):
            line = self.lines[number]
            if _HEADER.match(line):
                break
            if pattern.match(line):
                return number + 1
        return start + 1


# --- time of day -----------------------------------------------------------------------------


def is_eligible(prompt: Prompt, now: datetime) -> bool:
    """Whether ``prompt`` suits ``now`` (local wall-clock time); untagged prompts always do.

    morning = 05:00-11:59, evening = 17:00-23:59, weekend = Saturday or Sunday; several tags
    mean any of them.
    """
    if not prompt.when:
        return True
    return (("morning" in prompt.when and 5 <= now.hour < 12)
            or ("evening" in prompt.when and 17 <= now.hour <= 23)
            or ("weekend" in prompt.when and now.weekday() >= 5))


# --- rotation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShuffleBag:
    """Where the rotation stands: an immutable value, persisted between restarts as JSON.

    ``order`` is the shuffled cycle of prompt ids, ``position`` the index where the search for
    the next prompt starts, ``shown`` the ids of this cycle already shown and ``last_shown``
    the id shown most recently (so a new cycle does not open with it). Prompts that do not suit
    the time of day are skipped but stay in the cycle for later.
    """

    order: tuple[str, ...] = ()
    position: int = 0
    shown: frozenset[str] = field(default_factory=frozenset)
    last_shown: str | None = None

    @classmethod
    def fresh(cls, prompt_ids: Iterable[str], seed: int) -> ShuffleBag:
        """A new cycle over ``prompt_ids`` in an order shuffled by ``seed``."""
        order = list(dict.fromkeys(prompt_ids))
        random.Random(seed).shuffle(order)
        return cls(order=tuple(order))

    def draw(self, library: Sequence[Prompt], now: datetime, seed: int
             ) -> tuple[Prompt, ShuffleBag]:
        """The next prompt to show and the bag after showing it.

        Picks the next prompt of this cycle that was not shown yet and suits ``now``. When the
        cycle is used up, or nothing left in it suits ``now``, a new cycle starts, shuffled by
        ``seed``, that does not open with the prompt shown last (if anything else suits ``now``).
        If no prompt at all suits ``now``, time tags are ignored: something is always shown.
        The library may differ from the one the bag was made for (an update, an edited user
        file, a disabled practice): removed ids are dropped, new ones join the rest of this
        cycle. Raises ``ValueError`` for an empty library.
        """
        if not library:
            raise ValueError("cannot draw from an empty prompt library")
        by_id = {prompt.id: prompt for prompt in library}
        rng = random.Random(seed)
        bag = self._reconciled(by_id, rng)
        eligible = {id_ for id_, prompt in by_id.items() if is_eligible(prompt, now)}
        if not eligible:
            eligible = set(by_id)
        index = bag._next_index(eligible)
        if index is None:
            bag = bag._new_cycle(list(by_id), eligible, rng)
            index = bag._next_index(eligible)
            assert index is not None  # a new cycle holds every eligible id, none shown yet
        chosen = bag.order[index]
        return by_id[chosen], ShuffleBag(order=bag.order, position=index + 1,
                                         shown=bag.shown | {chosen}, last_shown=chosen)

    def _next_index(self, eligible: set[str]) -> int | None:
        """Index of the first unshown eligible id from ``position`` on, wrapping around."""
        count = len(self.order)
        for step in range(count):
            index = (self.position + step) % count
            id_ = self.order[index]
            if id_ in eligible and id_ not in self.shown:
                return index
        return None

    def _reconciled(self, by_id: dict[str, Prompt], rng: random.Random) -> ShuffleBag:
        """This bag adjusted to the current library: gone ids out, new ids into the rest."""
        kept = [id_ for id_ in self.order if id_ in by_id]
        position = sum(1 for id_ in self.order[: self.position] if id_ in by_id)
        known = set(kept)
        for id_ in by_id:
            if id_ not in known:
                kept.insert(rng.randint(position, len(kept)), id_)
                known.add(id_)
        if tuple(kept) == self.order:
            return self
        return ShuffleBag(order=tuple(kept), position=position,
                          shown=self.shown & known, last_shown=self.last_shown)

    def _new_cycle(self, ids: list[str], eligible: set[str], rng: random.Random) -> ShuffleBag:
        order = list(ids)
        rng.shuffle(order)
        first = next(i for i, id_ in enumerate(order) if id_ in eligible)
        if order[first] == self.last_shown:
            later = [i for i in range(first + 1, len(order)) if order[i] in eligible]
            if later:
                swap = rng.choice(later)
                order[first], order[swap] = order[swap], order[first]
        return ShuffleBag(order=tuple(order), position=0, shown=frozenset(),
                          last_shown=self.last_shown)

    def to_json(self) -> str:
        """Compact JSON for the state database; ``from_json`` reads it back to an equal bag."""
        return json.dumps({
            "version": 1,
            "order": list(self.order),
            "position": self.position,
            "shown": [id_ for id_ in self.order if id_ in self.shown],
            "last_shown": self.last_shown,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | None) -> ShuffleBag:
        """The bag stored as ``text``; never raises.

        Unreadable or inconsistent state (a corrupted row, a format from the future) gives an
        empty bag instead of an exception: losing the place in the rotation costs one early
        repeat at worst, while refusing to start would leave the device dark.
        """
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict) or data.get("version") != 1:
                return cls()
            order, position = data["order"], data["position"]
            shown, last_shown = data["shown"], data["last_shown"]
            valid = (isinstance(order, list) and all(isinstance(i, str) for i in order)
                     and len(set(order)) == len(order)
                     and type(position) is int and 0 <= position <= len(order)
                     and isinstance(shown, list) and set(shown) <= set(order)
                     and (last_shown is None or isinstance(last_shown, str)))
            if not valid:
                return cls()
            return cls(order=tuple(order), position=position, shown=frozenset(shown),
                       last_shown=last_shown)
        except (ValueError, TypeError, KeyError, RecursionError):
            return cls()
