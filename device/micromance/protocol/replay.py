"""The replay window: which of one sender's sequence numbers were already accepted.

Pure and immutable; the core keeps the window in its state and the store keeps its JSON, in
the same commit as the effect of the message that moved it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from micromance.protocol.messages import MAX_SEQ, no_constant, valid_seq

WINDOW_SIZE = 64
_WINDOW_MASK = (1 << WINDOW_SIZE) - 1


@dataclass(frozen=True)
class ReplayWindow:
    """Which seqs of one sender were already accepted, like IPsec's sliding window.

    ``highest`` is the largest accepted seq (0: none yet); bit ``i`` of ``bitmap`` says that
    ``highest - i`` was accepted. Seqs at or below ``highest - 64`` are too old to tell apart
    from replays and are refused; that costs nothing in practice, because a sender's outbox
    redelivers in seq order and the partner acks, so reordering spans a few seqs at most.

    ``presence`` is the highest seq of a presence message accepted: presence is retained and
    comes again on every reconnect, so it is ordered on its own, newest wins. Immutable: the
    caller stores the new window in the same transaction as the effect.
    """

    highest: int = 0
    bitmap: int = 0
    presence: int = 0

    def __post_init__(self) -> None:
        if type(self.highest) is not int or not 0 <= self.highest <= MAX_SEQ:
            raise ValueError(f"highest must be an int in 0..{MAX_SEQ}")
        if type(self.bitmap) is not int or not 0 <= self.bitmap <= _WINDOW_MASK:
            raise ValueError("bitmap must be an unsigned 64-bit int")
        if self.highest and not self.bitmap & 1:
            raise ValueError("bitmap must mark highest as accepted")
        if self.bitmap >> self.highest:
            raise ValueError("bitmap marks seqs below 1")
        if type(self.presence) is not int or not 0 <= self.presence <= MAX_SEQ:
            raise ValueError(f"presence must be an int in 0..{MAX_SEQ}")

    def check(self, seq: int) -> bool:
        """True if ``seq`` is valid and was not accepted before (and is not too old to know)."""
        if not valid_seq(seq):
            return False
        if seq > self.highest:
            return True
        offset = self.highest - seq
        return offset < WINDOW_SIZE and not (self.bitmap >> offset) & 1

    def accept(self, seq: int) -> ReplayWindow:
        """The window after accepting ``seq``; ValueError unless ``check(seq)``."""
        if not self.check(seq):
            raise ValueError("seq is a replay, too old, or invalid")
        if seq > self.highest:
            shift = seq - self.highest
            bitmap = ((self.bitmap << shift) | 1) & _WINDOW_MASK if shift < WINDOW_SIZE else 1
            return ReplayWindow(seq, bitmap, self.presence)
        return ReplayWindow(self.highest, self.bitmap | 1 << (self.highest - seq),
                            self.presence)

    def newer_presence(self, seq: int) -> bool:
        """True when a presence message with ``seq`` is newer than every one accepted."""
        return valid_seq(seq) and seq > self.presence

    def accept_presence(self, seq: int) -> ReplayWindow:
        return ReplayWindow(self.highest, self.bitmap, max(self.presence, seq))

    def to_json(self) -> str:
        """Compact JSON for the store (the optional parts only when they hold something)."""
        data: dict[str, object] = {"highest": self.highest, "bitmap": self.bitmap}
        if self.presence:
            data["presence"] = self.presence
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ReplayWindow:
        """Inverse of :meth:`to_json`; ValueError for anything else (the store decides)."""
        try:
            data = json.loads(text, parse_constant=no_constant)
        except (TypeError, ValueError, RecursionError):
            raise ValueError("replay window is not JSON") from None
        if not isinstance(data, dict) or not {"highest", "bitmap"} <= set(data) <= {
                "highest", "bitmap", "presence"}:
            raise ValueError("replay window must be {'highest': n, 'bitmap': n, ...}")
        return cls(highest=data["highest"], bitmap=data["bitmap"],
                   presence=data.get("presence", 0))
