"""The command line through the running unit: ``micromance send``, and ``pair`` / ``pair
--forget`` while the daemon runs.

The daemon holds the pair's identity and its one MQTT connection per broker; a second client
with that identity would knock it off the broker. So whatever changes a running unit is asked
of it through its control socket, and these functions only talk and print.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, TextIO

from micromance.config import Config
from micromance.control.client import ControlClient, ControlError, find_daemon
from micromance.errors import EX_UNAVAILABLE
from micromance.link.pair_cli import duration, printer
from micromance.protocol import pairing

#: How often ``pair`` asks the unit how pairing goes.
POLL_SECONDS = 0.2
#: How long a pairing through the unit waits for the new partner's name (its presence).
NAME_SECONDS = 5.0
#: The phases after which an attempt is over (``idle``: it ended on the unit itself).
FINISHED = ("paired", "failed", "cancelled", "timed_out", "interfered", "idle")
OUTCOMES = {
    "cancelled": "cancelled",
    "timed_out": "timed out",
    "interfered": "another unit interfering",
    "idle": "pairing ended on the unit",
}


class UnitNotRunning(ControlError):
    """Something only the running unit can do, and it does not run."""

    exit_code = EX_UNAVAILABLE


def send_from_shell(config: Config, *, out: TextIO) -> int:
    """Press THANKS through the running unit; say whether the thank-you went out or waits."""
    say = printer(out)
    client = find_daemon(config)
    if client is None:
        raise UnitNotRunning(
            "the unit is not running: only the running unit sends a thank-you (it holds the "
            "pair's identity, and there is never a second connection with it)",
            fix="start the unit: sudo systemctl start micromance")
    with client:
        before = client.status()
        if before["screen"] == "pairing":
            raise ControlError("the unit is pairing: THANKS there confirms the code",
                               fix="finish or cancel pairing first (NEXT on the unit)")
        client.press("thanks")
        after = client.status()  # answered once the press was counted and published
    total = after["sent_total"]
    if total <= before["sent_total"]:
        say(f"Not sent: the unit could not count it ({after.get('storage') or 'see status'}).")
        return 1
    partner = after["partner_name"] or "your partner"
    if not after["paired"]:
        say(f"Thank-you #{total} counted on the unit; it is not paired, so nothing was sent.")
    elif after["link"] == "connected":
        say(f"Thank-you #{total} sent to {partner}.")
    else:
        say(f"Thank-you #{total} queued: no broker is connected; the unit sends it as soon "
            f"as one is ({after['outbox']} waiting).")
    return 0


def pair_through_unit(client: ControlClient, mode: str, *, room: str = "", code: str = "",
                      answers: TextIO, out: TextIO) -> int:
    """One pairing attempt of the running unit, told as ``pair_from_shell`` tells its own:
    0 when paired, 1 otherwise."""
    say = printer(out)
    started = time.monotonic()
    invite = client.pair(mode, room=room, code=code)
    if invite:
        say(f"Invite code: {invite}\nRead it to your partner; on their unit they run:\n"
            f"  micromance pair --join {invite}")
    where = "the invite's room" if mode != "room" else \
        (f"room {room!r}" if room else "the configured room")
    say(f"Pairing through the running unit. Looking for the other unit in {where}: waiting "
        f"up to {duration(pairing.SEARCH_SECONDS)} (start pairing there too: hold both "
        "buttons 5 s, or run micromance pair)…")
    try:
        report = _follow(client, answers, say)
    except KeyboardInterrupt:
        client.cancel()
        raise
    took = duration(time.monotonic() - started)
    if report["phase"] == "paired":
        name = _partner_name(client)
        say(f"Paired with {name}." if name else
            "Paired. The partner's name shows here once its unit is online.")
        return 0
    reason = report["detail"] or OUTCOMES.get(report["phase"], report["phase"])
    say(f"Not paired: {reason} (after {took}).")
    return 1


def _partner_name(client: ControlClient, seconds: float = NAME_SECONDS) -> str:
    """The new partner's name: it comes with its first presence, moments after pairing."""
    until = time.monotonic() + seconds
    while True:
        name = str(client.status().get("partner_name") or "")
        if name or time.monotonic() >= until:
            return name
        time.sleep(POLL_SECONDS)


def _follow(client: ControlClient, answers: TextIO, say: Any) -> dict[str, Any]:
    """Poll the unit's pairing until it is over; ask y/n once the code is shown."""
    inbox: queue.SimpleQueue[bool] = queue.SimpleQueue()
    asked = False
    while True:
        report = client.pairing()
        phase = report["phase"]
        if phase in FINISHED:
            return report
        if phase == "code" and not asked:
            asked = True
            code = report["code"]
            say(f"Code: {code[:3]} {code[3:]}. Does the other unit show the same code? [y/n] ")
            threading.Thread(target=_ask, args=(answers, inbox), daemon=True).start()
        try:
            match = inbox.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if not match:
            client.cancel()
            continue
        try:
            client.confirm()
        except ControlError:
            continue  # it ended meanwhile: the next poll says how
        say("Confirmed here; waiting for the other unit (press THANKS there)…")


def _ask(answers: TextIO, inbox: queue.SimpleQueue[bool]) -> None:
    inbox.put(answers.readline().strip().lower() in ("y", "yes"))


def forget_through_unit(client: ControlClient, *, out: TextIO) -> int:
    """Unpair the running unit; it tells the partner (sealed ``unpair``) if it can."""
    say = printer(out)
    answer = client.request("forget")
    if not answer.get("was_paired"):
        say("This unit is not paired.")
        return 0
    if client.status()["paired"]:  # answered after the unit acted on it
        raise ControlError("the unit did not unpair", fix="see journalctl -u micromance")
    if answer.get("told"):
        say("Unpaired; the partner's unit was told and forgets the pair too.")
    else:
        say("Unpaired here. No broker was connected, so the partner's unit was not told: run "
            "micromance pair --forget on that unit too.")
    return 0
