"""``micromance web [--port N] | --pin``: serve the page, or print a one-time access code.

Where it serves: the socket systemd passed (then it exits after 10 idle minutes), else
``--port N`` on every IPv4 address, else port 8080. ``--pin`` is for a unit whose screen
cannot show a code (or a person at a shell on it): the code works once, for 10 minutes.
"""

from __future__ import annotations

import logging
from typing import TextIO

from micromance.config import Config, load_config, resolve_path
from micromance.errors import EX_USAGE, MicromanceError
from micromance.web.auth import PIN_SECONDS, Auth, LoginLocked
from micromance.web.web_state import WebStateFile

log = logging.getLogger("micromance.web")


def web_from_shell(config_path: str | None, *, port: int | None = None, pin: bool = False,
                   out: TextIO) -> int:
    """The ``web`` command; the exit status (errors raise ``MicromanceError``)."""
    config = load_config(resolve_path(config_path))
    auth = Auth(WebStateFile(config.state_dir))
    if pin:
        return _print_pin(auth, out)
    if port is not None and not 1 <= port <= 65535:
        print(f"micromance: --port {port} is not a TCP port (1-65535)", file=out)
        return EX_USAGE
    return serve(config, config_path, auth, port=port, out=out)


def _print_pin(auth: Auth, out: TextIO) -> int:
    try:
        code = auth.new_code("shell", PIN_SECONDS)
    except LoginLocked as locked:
        raise MicromanceError(
            f"sign-ins to the web page are locked for {locked.seconds / 60:.0f} more "
            "minutes after five wrong codes",
            fix="wait, then run micromance web --pin again") from None
    print(f"Access code for the web page: {code}\n"
          f"Type it on the sign-in page within {PIN_SECONDS // 60} minutes; it works once.",
          file=out)
    return 0


def serve(config: Config, config_path: str | None, auth: Auth, *, port: int | None,
          out: TextIO) -> int:
    from micromance.logs import setup_logging
    from micromance.web.app import make_app
    from micromance.web.server import DEFAULT_PORT, IDLE_EXIT_SECONDS, WebServer, systemd_socket
    from micromance.web.site import Site

    setup_logging(config.logging.level)
    app = make_app(Site(config_path, auth))
    handed = systemd_socket() if port is None else None
    if handed is not None:
        server = WebServer(app, sock=handed, idle_exit=IDLE_EXIT_SECONDS)
    else:
        try:
            server = WebServer(app, port=port or DEFAULT_PORT)
        except OSError as error:
            raise MicromanceError(
                f"cannot serve the web page on port {port or DEFAULT_PORT} "
                f"({error.strerror or error})",
                fix="choose another --port (ports below 1024 need root; the systemd socket "
                    "micromance-web.socket serves port 80)") from None
        host, bound = server.address
        print(f"micromance web: serving on http://{host}:{bound}/ (Ctrl-C stops it)",
              file=out, flush=True)
    log.info("serving%s", " on the socket systemd passed" if handed else "")
    why = server.serve()
    log.info("stopped (%s)", why)
    return 0
