"""The pair secret on disk: ``pair.json`` in the state directory, mode 0600.

It holds the only secret of the system (the per-pair key). It is written atomically and
never logged or printed; ``status`` shows a prefix of the pair id only, which is public anyway
(the broker sees it in every topic).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from micromance.config import BrokerConfig
from micromance.errors import StoreError

PAIR_FILE = "pair.json"


@dataclass(frozen=True)
class Pair:
    pair_id: str          # 128-bit random, hex: names the topics
    key: bytes            # 32 bytes: ChaCha20-Poly1305 key shared by the two units
    device_id: str        # this unit
    partner_id: str       # the other unit
    created: str = ""
    #: The brokers the two units shared when they paired, when that was the shipped public
    #: list (so a later change of that list cannot split the pair); empty otherwise.
    brokers: tuple[BrokerConfig, ...] = ()

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return f"Pair(pair_id={self.pair_id[:8]}…, device={self.device_id}, " \
               f"partner={self.partner_id})"


def load_pair(state_dir: Path) -> Pair | None:
    path = state_dir / PAIR_FILE
    try:
        data = json.loads(path.read_text())
        pair = Pair(pair_id=data["pair_id"], key=base64.b64decode(data["key"], validate=True),
                    device_id=data["device_id"], partner_id=data["partner_id"],
                    created=data.get("created", ""),
                    brokers=tuple(BrokerConfig(host=str(b["host"]), port=int(b["port"]),
                                               tls=bool(b.get("tls", True)))
                                  for b in data.get("brokers", ())))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StoreError(
            f"{path} is unreadable or damaged ({type(error).__name__})",
            fix="pair again (micromance pair --forget, then micromance pair)") from None
    if len(pair.key) != 32:
        raise StoreError(f"{path} holds a key of the wrong size", fix="pair again")
    return pair


def save_pair(state_dir: Path, pair: Pair) -> None:
    """Write atomically with mode 0600 from the first byte (no window where it is readable)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_dir / PAIR_FILE
    temporary = path.with_suffix(".tmp")
    data = {
        "version": 1,
        "pair_id": pair.pair_id,
        "key": base64.b64encode(pair.key).decode(),
        "device_id": pair.device_id,
        "partner_id": pair.partner_id,
        "created": pair.created or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if pair.brokers:
        data["brokers"] = [{"host": b.host, "port": b.port, "tls": b.tls} for b in pair.brokers]
    if temporary.exists():
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_dir(state_dir)


def forget_pair(state_dir: Path) -> bool:
    path = state_dir / PAIR_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _fsync_dir(state_dir)
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pair_locally(dir_a: Path, dir_b: Path) -> tuple[Pair, Pair]:
    """Pair two units whose state directories are both on this machine (tests, simulator).

    Over the broker, units pair with a 6-digit comparison instead; here both secrets are
    written directly, so nothing crosses a network.
    """
    from micromance.protocol import new_key, new_pair_id
    from micromance.store import Store

    ids = []
    for directory in (dir_a, dir_b):
        store = Store.open(directory)
        try:
            ids.append(store.device_id())
        finally:
            store.close()
    if ids[0] == ids[1]:
        raise StoreError(f"{dir_a} and {dir_b} are the same unit",
                         fix="give each its own state directory")
    pair_id, key = new_pair_id(), new_key()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    pair_a = Pair(pair_id, key, ids[0], ids[1], created)
    pair_b = Pair(pair_id, key, ids[1], ids[0], created)
    save_pair(dir_a, pair_a)
    save_pair(dir_b, pair_b)
    return pair_a, pair_b
