"""Figure: the web page's process (``micromance web``) beside a running unit.

The page is started as systemd's socket activation starts it: a listening socket bound
first, handed to the process as fd 3 with ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to the
process's own pid (a small launcher sets it and execs, so the pid stays the same). The unit
(``micromance run``, paired, its partner away) runs in its own process against a private
mosquitto, so every page asks a real control socket.

- ``first_page``: from connecting to a page process that is not running yet (it starts at
  the same moment, as systemd starts it on the first connection) to the last byte of the
  sign-in page; target under 1 s.
- ``rss_mib``: VmRSS of the page process after serving each page once, signed in (with the
  service's environment, ``MALLOC_ARENA_MAX=1``); target under 30 MiB.
- ``now_page``: p50/p99 of a signed-in GET of Now over one keep-alive connection (it asks
  the unit for its status each time); target p50 under 20 ms.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.benchmarks.common import (
    LINK_UP_LINE,
    MIB,
    PYTHON,
    ROOT,
    UP_LINE,
    UnitProcess,
    check,
    paired_dirs,
    private_broker,
    status_kib,
    summary_ms,
    unit_env,
    write_config,
)

TARGET_RSS_MIB = 30.0
TARGET_FIRST_PAGE_SECONDS = 1.0
TARGET_NOW_P50_MS = 20.0
PAGES = ("/", "/history", "/settings", "/connection", "/pairing", "/check")

#: Put the inherited socket at fd 3, say it is ours (LISTEN_PID is this very pid, kept by
#: exec), then become `micromance web`.
LAUNCHER = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="web")
os.execv(sys.executable, [sys.executable, "-m", "micromance", "web", *sys.argv[2:]])
"""


@contextlib.contextmanager
def socket_activated(config: Path, env: dict[str, str] | None = None
                     ) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``micromance web --config config`` started on a listening loopback socket as systemd
    hands it over; yields the process and the port. Stopped (SIGTERM) at the end."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    process = subprocess.Popen(
        [PYTHON, "-c", LAUNCHER, str(listener.fileno()), "--config", str(config)],
        pass_fds=(listener.fileno(),), cwd=ROOT, env=env or unit_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listener.close()  # the process has it now, as systemd keeps its own copy
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class PageClient:
    """One keep-alive connection with the cookies a browser would keep."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, fields: dict[str, str] | None = None
                ) -> tuple[int, str]:
        headers = {"Host": "unit.local"}
        body = None
        if fields is not None:
            body = urlencode(fields)
            headers.update({"Content-Type": "application/x-www-form-urlencoded",
                            "Origin": "http://unit.local"})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.connection.request(method, path, body=body, headers=headers)
        answer = self.connection.getresponse()
        text = answer.read().decode()
        for line in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return answer.status, text

    def sign_in(self, code: str) -> None:
        _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert token, "no CSRF token on the sign-in page"
        status, _ = self.request("POST", "/login", {"code": code, "csrf": token.group(1)})
        if status != 303 or "mm_session" not in self.cookies:
            raise RuntimeError(f"sign-in failed ({status})")

    def close(self) -> None:
        self.connection.close()


def first_page_seconds(config: Path) -> float:
    """Connect, and the page process starts at the same moment; until the sign-in page."""
    began = time.monotonic()
    with socket_activated(config) as (_process, port):
        client = PageClient(port)
        status, page = client.request("GET", "/login")
        elapsed = time.monotonic() - began
        client.close()
        if status != 200 or "Sign in" not in page:
            raise RuntimeError(f"the first page was {status}")
    return elapsed


def pin_code(config: Path) -> str:
    out = subprocess.run([PYTHON, "-m", "micromance", "web", "--config", str(config), "--pin"],
                         cwd=ROOT, env=unit_env(), capture_output=True, text=True, timeout=30,
                         check=True).stdout
    found = re.search(r"\b(\d{6})\b", out)
    assert found, out
    return found.group(1)


def measure(quick: bool) -> dict[str, Any]:
    starts = 2 if quick else 7
    requests = 30 if quick else 300
    with tempfile.TemporaryDirectory(prefix="mm-bench-web-") as tmp:
        base = Path(tmp)
        with private_broker(base) as broker, paired_dirs(base) as (dir_a, _):
            config = write_config(dir_a, broker.port, "Sam")
            unit = UnitProcess(config)
            try:
                unit.wait_line(UP_LINE)
                unit.wait_line(LINK_UP_LINE)
                first = [first_page_seconds(config) for _ in range(starts)]
                with socket_activated(config) as (process, port):
                    client = PageClient(port)
                    client.request("GET", "/login")  # the process is up
                    client.sign_in(pin_code(config))
                    rss_after: dict[str, float] = {}
                    for path in PAGES:
                        status, _ = client.request("GET", path)
                        if status != 200:
                            raise RuntimeError(f"{path} answered {status}")
                        rss_after[path] = round(status_kib(process.pid, "VmRSS") / 1024, 2)
                    rss = status_kib(process.pid, "VmRSS") * 1024 / MIB
                    peak = status_kib(process.pid, "VmHWM") * 1024 / MIB
                    timings = []
                    for _ in range(requests):
                        began = time.perf_counter()
                        status, _ = client.request("GET", "/")
                        timings.append(time.perf_counter() - began)
                        if status != 200:
                            raise RuntimeError(f"Now answered {status}")
                    client.close()
            finally:
                unit.stop()
    now = summary_ms(timings)
    return {
        "definition": "micromance web socket-activated beside a running paired unit: "
                      "connect-to-first-page time, VmRSS after each page once, and the "
                      "signed-in Now page's request time on a keep-alive connection",
        "first_page": {"median_seconds": round(statistics.median(first), 3),
                       "max_seconds": round(max(first), 3), "starts": len(first)},
        "rss_mib": round(rss, 2),
        "peak_rss_mib": round(peak, 2),
        "rss_after_page_mib": rss_after,
        "now_page": now,
        "targets": {"rss_mib": TARGET_RSS_MIB, "first_page_seconds": TARGET_FIRST_PAGE_SECONDS,
                    "now_p50_ms": TARGET_NOW_P50_MS},
        "pass": check(rss, TARGET_RSS_MIB)
        and check(max(first), TARGET_FIRST_PAGE_SECONDS)
        and check(now["p50_ms"], TARGET_NOW_P50_MS),
    }
