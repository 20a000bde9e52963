"""The daemon's side of the control socket (see ``micromance.control`` for the protocol).

Served by the unit's one loop like the MQTT links: the listening socket is a loop source, and
so is each accepted connection, so a request is read, acted on and answered on the loop
thread, where the core's state may be read. A request that changes something posts an event
like a button does; the loop takes that event before it serves the sockets again, so the next
request on the connection already sees its effect.

Nothing a client sends can hurt the unit: a line is at most ``MAX_LINE_BYTES``, at most
``MAX_CONNECTIONS`` are open (the longest idle one gives way to a new one), one request is
answered before the next is read, a malformed request gets an error with a fix and changes
nothing, and a client that goes away mid-way is simply forgotten.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from micromance import protocol
from micromance.control.client import unix_address
from micromance.core import events as ev
from micromance.core.events import Gesture
from micromance.core.report import pairing_report, status_report
from micromance.core.state import ACCESS_CODE_SECONDS, Mode, State
from micromance.errors import MicromanceError

log = logging.getLogger("micromance")

MAX_LINE_BYTES = 8 * 1024
#: Requests sent ahead of their answers are read up to this much, then the client is cut off.
MAX_PENDING_BYTES = 8 * MAX_LINE_BYTES
MAX_CONNECTIONS = 16
#: Connections the kernel holds until the loop accepts them (a burst of clients waits there).
LISTEN_BACKLOG = 64
#: At the limit, a connection idle this long gives way to a new one.
IDLE_SECONDS = 10.0
SOCKET_MODE = 0o660
SOCKET_GROUP = "micromance"

PRESSES = {"thanks": Gesture.THANKS_PRESS, "next": Gesture.NEXT_PRESS,
           "done": Gesture.NEXT_HOLD}
PAIR_MODES = ("room", "invite", "join")


class Unit(Protocol):
    """What the server needs of the running unit (the runtime)."""

    @property
    def state(self) -> State | None:
        """The core's state, read on the loop thread."""

    def post(self, factory: Callable[..., ev.Event], **fields: Any) -> None:
        """Queue an event stamped now."""

    def reload(self) -> list[str]:
        """Re-read the config file; what changed, or ``ConfigError``."""

    def control_facts(self) -> dict[str, Any]:
        """What the state does not hold: ``brokers``, ``config_error``, ``pair_id``."""


class RequestError(MicromanceError):
    """A request that cannot be carried out: answered with ``ok: false``."""


@dataclass(frozen=True)
class _Op:
    run: Callable[[ControlServer, State, dict[str, Any]], dict[str, Any]]
    arguments: tuple[str, ...] = ()


class ControlServer:
    """The listening socket; ``sources()`` is it plus every open connection."""

    def __init__(self, path: Path, unit: Unit, now: Callable[[], float]) -> None:
        self.path = path
        self._unit = unit
        self._now = now
        self._sock: socket.socket | None = None
        self.connections: list[_Connection] = []
        #: Requests answered, and how many of them were refused (tests, and the log).
        self.answered = 0
        self.refused = 0

    # --- life cycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Listen, replacing a socket file a previous run left behind. A socket that cannot
        be made (a read-only directory) is logged: the unit runs on without it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    os.unlink(self.path)  # stale: its daemon is gone (or is being replaced)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                with unix_address(self.path) as address:
                    sock.bind(address)
                os.chmod(self.path, SOCKET_MODE)
                _give_to_group(self.path)
                sock.listen(LISTEN_BACKLOG)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
        except OSError as error:
            log.warning("no control socket at %s (%s): micromance send, pair and the web "
                        "page cannot reach this unit", self.path, error.strerror or error)
            return
        self._sock = sock
        log.debug("control socket at %s", self.path)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def sources(self) -> list[Any]:
        if self._sock is None:
            return []
        self.connections = [c for c in self.connections if not c.closed]
        return [self, *self.connections]

    # --- the listening socket as a loop source -------------------------------------------

    def socket(self) -> Any:
        return self._sock

    def wants_write(self) -> bool:
        return False

    def handle_io(self, readable: bool) -> None:
        while self._sock is not None:
            try:
                sock, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors: the next turn tries again
                log.warning("control socket: cannot accept a connection (%s)", error)
                return
            self._admit(_Connection(sock, self))

    def deadline(self) -> float | None:
        return None

    def handle_timers(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def _admit(self, connection: _Connection) -> None:
        self.connections = [c for c in self.connections if not c.closed]
        if len(self.connections) >= MAX_CONNECTIONS:  # some may have hung up meanwhile
            self.connections = [c for c in self.connections if not c.hung_up()]
        if len(self.connections) >= MAX_CONNECTIONS:
            idle = min(self.connections, key=lambda c: c.last_active)
            if time.monotonic() - idle.last_active < IDLE_SECONDS:
                connection.refuse("too many connections to the unit",
                                  "close the ones you do not need, then try again")
                return
            idle.close()
            self.connections.remove(idle)
        self.connections.append(connection)

    # --- requests ------------------------------------------------------------------------

    def answer(self, line: bytes) -> dict[str, Any]:
        """The answer to one request line (never raises)."""
        self.answered += 1
        try:
            return {"ok": True, **self._carry_out(line)}
        except MicromanceError as error:
            self.refused += 1
            answer = {"ok": False, "error": error.message, "fix": error.fix}
            key = getattr(error, "key", "")
            return {**answer, "key": key} if key else answer
        except Exception:  # a bug must not take the unit down: logged with its traceback
            self.refused += 1
            log.exception("control request failed: %.200r", line)
            return {"ok": False, "error": "the unit could not carry out the request (a bug)",
                    "fix": "see journalctl -u micromance, and report it"}

    def _carry_out(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            raise RequestError("the request is not JSON",
                               fix='send one JSON object per line, like {"op": "status"}'
                               ) from None
        if not isinstance(request, dict):
            raise RequestError("the request is not a JSON object",
                               fix='send one JSON object per line, like {"op": "status"}')
        name = request.get("op")
        op = OPS.get(name) if isinstance(name, str) else None
        if op is None:
            raise RequestError(f"unknown op {str(name)[:40]!r}",
                               fix=f"use one of {', '.join(OPS)}")
        extra = sorted(set(request) - {"op", *op.arguments})
        if extra:
            raise RequestError(f"{name}: unknown argument {extra[0][:40]!r}",
                               fix=f"{name} takes " + (", ".join(op.arguments) or "none"))
        state = self._unit.state
        if state is None:
            raise RequestError("the unit is still starting", fix="try again in a moment")
        return op.run(self, state, request)

    # --- the operations ------------------------------------------------------------------

    def _status(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        return {"status": {**status_report(state, self._now()),
                           **self._unit.control_facts()}}

    def _press(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        button = request.get("button")
        gesture = PRESSES.get(button) if isinstance(button, str) else None
        if gesture is None:
            raise RequestError(f"press: no button {str(button)[:40]!r}",
                               fix="button is one of " + ", ".join(PRESSES))
        self._unit.post(ev.GestureInput, gesture=gesture)
        return {}

    def _pair(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        mode = request.get("mode", "room")
        room, code = request.get("room", ""), request.get("code", "")
        if mode not in PAIR_MODES or not isinstance(room, str) or not isinstance(code, str):
            raise RequestError(f"pair: mode {str(mode)[:40]!r} with room and code as text",
                               fix="mode is one of " + ", ".join(PAIR_MODES))
        invite, topic = "", ""
        if mode == "invite":
            invite = protocol.make_invite(os.urandom(protocol.INVITE_ENTROPY_BYTES))
            topic = protocol.invite_room(invite)
        elif mode == "join":
            try:
                topic = protocol.invite_room(protocol.parse_invite(code))
            except ValueError as error:
                raise RequestError(f"pair: {error}",
                                   fix="type the number and the four words the other unit's "
                                       "invite shows") from None
        elif room:
            try:
                topic = protocol.room_topic(room)
            except ValueError as error:
                raise RequestError(f"pair: {error}",
                                   fix='leave room empty ("") for the configured room') from None
        self._unit.post(ev.PairingRequested, topic=topic)
        return {"invite": invite}

    def _pairing(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        return {"pairing": pairing_report(state, self._now())}

    def _confirm(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        if pairing_report(state, self._now())["phase"] != "code":
            raise RequestError("there is no pairing code to confirm",
                               fix="start pairing (op pair) and wait for the code")
        self._unit.post(ev.PairingAnswer, confirm=True)
        return {}

    def _cancel(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        pairing_now = state.screen.mode is Mode.PAIRING
        if pairing_now:
            self._unit.post(ev.PairingAnswer, confirm=False)
        return {"cancelled": pairing_now}

    def _forget(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        paired = state.partner.paired
        if paired:
            self._unit.post(ev.ForgetRequested)
        return {"was_paired": paired,
                "told": paired and state.partner.link is ev.LinkState.CONNECTED}

    def _reload(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        return {"applied": self._unit.reload()}

    def _show_code(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        code, seconds = request.get("code"), request.get("seconds")
        if not isinstance(code, str) or len(code) != 6 or not code.isascii() \
                or not code.isdigit():
            raise RequestError("show_code: code must be 6 digits, as text",
                               fix='send it like "code": "048213"')
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) \
                or not 1 <= seconds <= ACCESS_CODE_SECONDS:
            raise RequestError(f"show_code: seconds must be a number from 1 to "
                               f"{ACCESS_CODE_SECONDS:.0f}", fix='send it like "seconds": 60')
        if state.screen.mode is Mode.PAIRING:
            raise RequestError("the unit is pairing: its screen shows the pairing code",
                               fix="try again once pairing has ended")
        self._unit.post(ev.ShowCode, code=code, seconds=float(seconds))
        return {}

    def _hide_code(self, state: State, request: dict[str, Any]) -> dict[str, Any]:
        self._unit.post(ev.HideCode)
        return {}


OPS: dict[str, _Op] = {
    "status": _Op(ControlServer._status),
    "press": _Op(ControlServer._press, ("button",)),
    "pair": _Op(ControlServer._pair, ("mode", "room", "code")),
    "pairing": _Op(ControlServer._pairing),
    "confirm": _Op(ControlServer._confirm),
    "cancel": _Op(ControlServer._cancel),
    "forget": _Op(ControlServer._forget),
    "reload": _Op(ControlServer._reload),
    "show_code": _Op(ControlServer._show_code, ("code", "seconds")),
    "hide_code": _Op(ControlServer._hide_code),
}


class _Connection:
    """One client, served on the loop thread: a line in, its answer out, then the next."""

    def __init__(self, sock: socket.socket, server: ControlServer) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._server = server
        self._in = b""
        self._out = b""
        self._ending = False     # a broken request: answer what is pending, then close
        self._eof = False        # the client sent all it will: answer its requests, close
        self.closed = False
        self.last_active = time.monotonic()

    def refuse(self, error: str, fix: str) -> None:
        """Say why in one line (best effort), and close."""
        with contextlib.suppress(OSError):
            self._sock.send(json.dumps({"ok": False, "error": error, "fix": fix}).encode()
                            + b"\n")
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._sock.close()

    def hung_up(self) -> bool:
        """The client closed its end (closed here too, then); what it sent stays unread."""
        if self._eof:
            return False  # still answering what it sent before
        try:
            gone = self._sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            gone = True
        if gone:
            self.close()
        return gone

    # --- as a loop source ----------------------------------------------------------------

    def socket(self) -> Any:
        return None if self.closed else self._sock

    def wants_write(self) -> bool:
        return bool(self._out)

    def handle_io(self, readable: bool) -> None:
        if self.closed:
            return
        if readable and not (self._ending or self._eof):
            self._read()
        self._answer_one()
        wrote = self._write()
        if self._eof and not self.closed and (not wrote or not (self._out or self._ready())):
            self.close()  # all answered, or it reads nothing: no answer can reach it

    def deadline(self) -> float | None:
        """Now, while a whole request waits and the last answer is out (the loop then calls
        ``handle_timers`` once the events this connection posted were taken)."""
        return time.monotonic() if self._ready() else None

    def handle_timers(self) -> None:
        if self._ready():
            self._answer_one()
            self._write()

    def flush(self) -> None:
        pass

    # --- reading and writing -------------------------------------------------------------

    def _ready(self) -> bool:
        return not self.closed and not self._out and not self._ending and b"\n" in self._in

    def _read(self) -> None:
        try:
            chunk = self._sock.recv(MAX_LINE_BYTES + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not chunk:
            self._eof = True
            return
        self.last_active = time.monotonic()
        self._in += chunk
        line_end = self._in.find(b"\n")
        if len(self._in) > MAX_LINE_BYTES and not 0 <= line_end <= MAX_LINE_BYTES:
            self._give_up(f"request longer than {MAX_LINE_BYTES} bytes",
                          "send one short JSON object per line")
        elif len(self._in) > MAX_PENDING_BYTES:
            self._give_up("too many requests sent ahead of their answers",
                          "read each answer before sending the next request")

    def _give_up(self, error: str, fix: str) -> None:
        """Answer with the error (after what is pending), read nothing more, then close."""
        self._in = b""
        self._ending = True
        self._server.answered += 1
        self._server.refused += 1
        self._out += json.dumps({"ok": False, "error": error, "fix": fix}).encode() + b"\n"

    def _answer_one(self) -> None:
        """One request at a time: the next is read once this answer is out and what it
        posted was acted on (``deadline``)."""
        if self._out or self._ending or b"\n" not in self._in:
            return
        line, _, self._in = self._in.partition(b"\n")
        if line.strip():
            answer = self._server.answer(line)
            self._out += json.dumps(answer).encode() + b"\n"

    def _write(self) -> bool:
        """Send what is pending; False when nothing could be sent."""
        if self.closed or not self._out:
            return True
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:  # the client went away mid-answer
            self.close()
            return True
        self._out = self._out[sent:]
        self.last_active = time.monotonic()
        if self._ending and not self._out:
            self.close()
        return True


def _give_to_group(path: Path) -> None:
    """The socket's group is ``micromance`` when that group exists (its members may use the
    unit); only root may change it, and under systemd the service's group is that already."""
    try:
        gid = grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        return
    with contextlib.suppress(PermissionError):
        os.chown(path, -1, gid)
