"""The client side of the control socket (see ``micromance.control``): the CLI and the web
page use it; the daemon serves it (``control.server``)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from micromance.config import Config
from micromance.control import CONTROL_SOCKET
from micromance.errors import MicromanceError

#: A shell has no $RUNTIME_DIRECTORY: where the service would have it.
SERVICE_RUNTIME_DIR = Path("/run/micromance")
TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 1 << 20
#: A Unix socket's address holds at most 107 bytes; a longer path is reached through the
#: directory's file descriptor (``unix_address``).
MAX_ADDRESS_BYTES = 100


class ControlError(MicromanceError):
    """The daemon refused a request, or could not be asked (its ``message`` and ``fix``)."""


def control_path(config: Config) -> Path:
    """Where the daemon of ``config`` listens (the daemon's own view)."""
    runtime_dir = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime_dir or config.state_dir) / CONTROL_SOCKET


@contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits a Unix socket: the path itself, or (when it is too
    long, as in a deep state directory) the same file through ``/proc/self/fd``."""
    if len(os.fsencode(str(path))) <= MAX_ADDRESS_BYTES:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def find_daemon(config: Config) -> ControlClient | None:
    """A client for the running daemon of ``config``, or None when none runs (no socket, or
    nobody listening on it). A socket we may not open is an error that says how to fix it."""
    candidates = [control_path(config), SERVICE_RUNTIME_DIR / CONTROL_SOCKET,
                  config.state_dir / CONTROL_SOCKET]
    seen: set[Path] = set()
    for path in candidates:
        if path in seen or not path.exists():
            continue
        seen.add(path)
        client = ControlClient(path)
        try:
            client.connect()
        except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
            continue  # a socket left by a daemon that is gone
        except PermissionError:
            raise ControlError(
                f"no permission to talk to the running unit ({path})",
                fix="run it as root, or add yourself to the group micromance "
                    "(sudo adduser $USER micromance, then log in again)") from None
        return client
    return None


class ControlClient:
    """One connection to the daemon; requests in turn. Use as a context manager."""

    def __init__(self, path: Path, timeout: float = TIMEOUT_SECONDS) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def connect(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with unix_address(self.path) as address:
                sock.connect(address)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request, return its answer; ``ok: false`` raises ``ControlError``."""
        self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
            answer = json.loads(self._read_line())
        except (OSError, ValueError) as error:
            self.close()
            raise ControlError(f"the running unit did not answer {op!r} ({error})",
                               fix="see `journalctl -u micromance`") from None
        if not isinstance(answer, dict):
            raise ControlError(f"the running unit answered {op!r} with {answer!r}")
        if not answer.get("ok"):
            raise ControlError(str(answer.get("error") or f"{op} refused"),
                               fix=str(answer.get("fix") or ""))
        return answer

    def _read_line(self) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the connection closed")
            self._buffer += chunk
            if len(self._buffer) > MAX_ANSWER_BYTES:
                raise ValueError("answer too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    # --- one method per operation -------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return dict(self.request("status")["status"])

    def press(self, button: str) -> None:
        self.request("press", button=button)

    def pair(self, mode: str = "room", *, room: str = "", code: str = "") -> str:
        """Start pairing; returns the invite code for ``mode="invite"``, else ""."""
        return str(self.request("pair", mode=mode, room=room, code=code).get("invite", ""))

    def pairing(self) -> dict[str, Any]:
        return dict(self.request("pairing")["pairing"])

    def confirm(self) -> None:
        self.request("confirm")

    def cancel(self) -> None:
        self.request("cancel")

    def forget(self) -> None:
        self.request("forget")

    def reload(self) -> list[str]:
        return list(self.request("reload").get("applied", []))

    def show_code(self, code: str, seconds: int) -> None:
        self.request("show_code", code=code, seconds=seconds)

    def hide_code(self) -> None:
        self.request("hide_code")
