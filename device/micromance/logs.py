"""Logging for journald or a terminal: one line per meaningful event.

Under systemd (``INVOCATION_ID`` set) journald stamps each line itself, so ours carry none.
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "info") -> None:
    under_systemd = bool(os.environ.get("INVOCATION_ID"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_systemd else \
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries speak only when something is wrong.
    for noisy in ("PIL", "paho", "gpiozero", "luma", "schedule"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
