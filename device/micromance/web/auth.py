"""Who may use the page: people in the home, once per browser with a code from the unit.

- An access code is 6 random digits, shown on the unit's screen (or printed by
  ``micromance web --pin``); only a salted hash is kept, and it works once, briefly.
- Five wrong codes in a row lock sign-ins for 10 minutes, in web.json, so restarting the
  web process does not reset the count.
- A session is a random token in an HttpOnly, SameSite=Strict cookie; only its SHA-256 is
  kept, for 30 days. "Sign out every browser" forgets them all.
- Every form carries a CSRF token: an HMAC of the browser's own cookie under web.json's key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from micromance.web.web_state import AccessCode, WebState, WebStateFile

CODE_DIGITS = 6
UNIT_CODE_SECONDS = 120
PIN_SECONDS = 600
MAX_FAILURES = 5
LOCKOUT_SECONDS = 600
SESSION_SECONDS = 30 * 24 * 3600
SESSION_COOKIE = "mm_session"
BROWSER_COOKIE = "mm_browser"


class LoginLocked(Exception):
    """Too many wrong codes: no sign-in for ``seconds`` more."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"locked for {seconds:.0f} s")
        self.seconds = seconds


@dataclass(frozen=True)
class SignIn:
    """The outcome of a code typed in: a session token, or how many tries are left."""

    token: str = ""
    tries_left: int = 0


class Auth:
    """Access codes, sessions and CSRF tokens, kept in ``web.json`` (see ``web_state``)."""

    def __init__(self, file: WebStateFile, clock: Callable[[], float] = time.time) -> None:
        self.file = file
        self.clock = clock
        self._signing_key = ""

    # --- access codes ----------------------------------------------------------------------

    def new_code(self, shown_on: str, seconds: int) -> str:
        """A fresh code, valid for ``seconds``; raises ``LoginLocked`` while locked."""
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        with self.file.change() as state:
            self._forget_expired(state)
            self._raise_if_locked(state)
            state.codes.append(AccessCode(salt, _code_digest(salt, code),
                                          self.clock() + seconds, shown_on))
        return code

    def locked_for(self) -> float:
        """Seconds until sign-ins work again (0: they do)."""
        return max(0.0, self.file.read().locked_until - self.clock())

    def sign_in(self, typed: str) -> SignIn:
        """Check a typed code: a match is used up and gives a session token; a miss counts
        towards the lockout. Raises ``LoginLocked`` while locked (nothing is compared)."""
        code = "".join(typed.split())
        with self.file.change() as state:
            self._forget_expired(state)
            self._raise_if_locked(state)
            match = next((c for c in state.codes if hmac.compare_digest(
                c.digest, _code_digest(c.salt, code))), None)
            if match is not None:
                state.codes.remove(match)
                state.failures = 0
                token = secrets.token_urlsafe(32)
                state.sessions[_token_digest(token)] = self.clock() + SESSION_SECONDS
                return SignIn(token=token)
            state.failures += 1
            if state.failures >= MAX_FAILURES:
                state.failures = 0
                state.codes.clear()  # a code seen by someone guessing is spent
                state.locked_until = self.clock() + LOCKOUT_SECONDS
                return SignIn(tries_left=0)
            return SignIn(tries_left=MAX_FAILURES - state.failures)

    # --- sessions --------------------------------------------------------------------------

    def session_valid(self, token: str) -> bool:
        if not token:
            return False
        expires = self.file.read().sessions.get(_token_digest(token))
        return expires is not None and expires > self.clock()

    def sign_out(self, token: str) -> None:
        with self.file.change() as state:
            state.sessions.pop(_token_digest(token), None)

    def sign_out_everywhere(self) -> None:
        with self.file.change() as state:
            state.sessions.clear()

    # --- CSRF ------------------------------------------------------------------------------

    def csrf_token(self, browser: str) -> str:
        """The token this browser's forms carry (tied to its own cookie)."""
        return hmac.new(self._key().encode(), f"csrf:{browser}".encode(),
                        hashlib.sha256).hexdigest()

    def csrf_valid(self, browser: str, token: str) -> bool:
        return bool(browser and token) and hmac.compare_digest(self.csrf_token(browser), token)

    # --- helpers ---------------------------------------------------------------------------

    def _key(self) -> str:
        """web.json's signing key, made and saved on first use (it never changes after)."""
        if not self._signing_key:
            state = self.file.read()
            if not self.file.path.exists():
                with self.file.change() as state:
                    pass
            self._signing_key = state.key
        return self._signing_key

    def _forget_expired(self, state: WebState) -> None:
        now = self.clock()
        state.codes = [c for c in state.codes if c.expires > now]
        state.sessions = {k: v for k, v in state.sessions.items() if v > now}

    def _raise_if_locked(self, state: WebState) -> None:
        left = state.locked_until - self.clock()
        if left > 0:
            raise LoginLocked(left)


def new_browser_id() -> str:
    return secrets.token_urlsafe(24)


def _code_digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
