"""WAL checkpoints while the unit is quiet, not inside a press's commit.

SQLite copies its write-ahead log back into the database file inside whichever commit takes
the log past its threshold: one commit in a few hundred, a press's as likely as any, then
pays for page writes and a second fsync before its thank-you can leave (tens of
milliseconds on an SD card). This loop timer does it instead once nothing has been written
for ``QUIET_SECONDS`` and enough has piled up to be worth the writes, so the threshold is
never reached in use (it stays as the backstop: ``store.WAL_BACKSTOP_PAGES``).
"""

from __future__ import annotations

from collections.abc import Callable

from micromance.store import Store

#: Nothing written for this long: a burst of presses and their acknowledgements is over.
QUIET_SECONDS = 2.0
#: Rows written since the last checkpoint before one is worth its writes (a dozen presses
#: with their acknowledgements; the same hot pages are copied once for all of them).
AFTER_CHANGES = 64


class QuietCheckpoints:
    """A loop timer (``loop.Timer``): due ``QUIET_SECONDS`` after the store's last change,
    once it has ``AFTER_CHANGES`` rows not yet checkpointed. Times are ``monotonic()``."""

    def __init__(self, store: Store, monotonic: Callable[[], float]) -> None:
        self._store = store
        self._monotonic = monotonic
        self._changes = store.changes_since_checkpoint()
        self._changed_at = monotonic()

    def seconds_until_due(self) -> float | None:
        # The loop asks before every sleep, so a change is seen within one turn of its step.
        changes = self._store.changes_since_checkpoint()
        now = self._monotonic()
        if changes != self._changes:
            self._changes, self._changed_at = changes, now
        if changes < AFTER_CHANGES:
            return None
        return self._changed_at + QUIET_SECONDS - now

    def run_due(self) -> None:
        seconds = self.seconds_until_due()
        if seconds is None or seconds > 0 or self._store.checkpoint():
            return
        # Refused (a transaction is open) or failed (logged; the count starts again): look
        # again after another quiet spell rather than on every wake-up.
        self._changed_at = self._monotonic()
