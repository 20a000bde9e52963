"""Doctor's checks for the Check page and the Connection page's Test button.

They run in a short-lived child process (``python -m micromance.web.checks``) that prints
its results as JSON: doctor needs the protocol and cryptography (about 10 MiB) that the page
itself never does, and a child returns that memory when it ends, so the page stays small
while it waits for the next visitor. A check that hangs costs its timeout, not the page.

The checks that need the hardware (I2C, display, GPIO, pins) are the running unit's
business: the page has no access to the devices, and the pins are the daemon's. So the Check
page shows whether the unit runs instead, and ``sudo micromance doctor`` does the full check.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

#: Doctor's checks that make sense from the web page, in doctor's order.
WEB_CHECKS = ("config", "clock", "broker", "pairing", "wifi")
#: Doctor waits 5 s per network step; several brokers are checked at once.
TIMEOUT_SECONDS = 60.0


def run_in_child(config_arg: str | None, broker: int | None = None) -> list[dict[str, str]]:
    """The results (``outcome``, ``symbol``, ``name``, ``message``, ``fix``) of
    ``WEB_CHECKS``, or of broker number ``broker`` (1-based, as the page lists them)."""
    command = [sys.executable, "-m", "micromance.web.checks"]
    if config_arg:
        command += ["--config", str(config_arg)]
    if broker is not None:
        command += ["--broker", str(broker)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        results = json.loads(done.stdout)
        if not isinstance(results, list):
            raise ValueError("not a list")
        return results
    except subprocess.TimeoutExpired:
        return [_line("fail", "check", f"the checks did not finish within "
                      f"{TIMEOUT_SECONDS:g} s", "run sudo micromance doctor on the unit")]
    except (OSError, ValueError) as error:
        return [_line("fail", "check", f"the checks could not run ({error})",
                      "run sudo micromance doctor on the unit; journalctl -u micromance-web "
                      "may say more")]


def results(config_arg: str | None, broker: int | None = None) -> list[dict[str, str]]:
    """Run the checks here (the child's side)."""
    from micromance import doctor

    if broker is not None:
        return [_as_line(_broker_result(config_arg, broker))]
    context = doctor.Context(probes=doctor.Probes(), config_arg=config_arg)
    found: list[Any] = []
    try:
        for name, check, needs_config in doctor.CHECKS:
            if name not in WEB_CHECKS:
                continue
            if needs_config and context.config is None:
                found.append(doctor.skipped(name, "skipped: the config must be valid first"))
                continue
            found.extend(_guarded(doctor, name, check, context))
    finally:
        for cleanup in context.cleanups:
            cleanup()
    return [_as_line(result) for result in found]


def _guarded(doctor: Any, name: str, check: Any, context: Any) -> list[Any]:
    """A check that crashes is a failed check with its reason, as in doctor."""
    from micromance.errors import MicromanceError

    try:
        outcome = check(context)
    except MicromanceError as error:
        return [doctor.failed(name, error.message, error.fix or "see the message")]
    except Exception as error:
        return [doctor.failed(name, f"the check itself broke ({type(error).__name__})",
                              "please report this as a bug")]
    return outcome if isinstance(outcome, list) else [outcome]


def _broker_result(config_arg: str | None, number: int) -> Any:
    from micromance import doctor
    from micromance.config import load_config, resolve_path
    from micromance.errors import MicromanceError
    from micromance.link.courier import brokers_for
    from micromance.link.pair_file import load_pair

    try:
        config = load_config(resolve_path(config_arg))
    except MicromanceError as error:
        return doctor.failed("broker", error.message, error.fix or "fix the config first")
    try:
        pair = load_pair(config.state_dir)
    except (MicromanceError, OSError):
        pair = None
    brokers = brokers_for(config, pair)
    if not 1 <= number <= len(brokers):
        return doctor.failed("broker", f"there is no broker number {number}",
                             "reload the Connection page")
    check = doctor._BrokerCheck(doctor.Probes(), brokers[number - 1], pair)
    check.run()
    return check.result


def _as_line(result: Any) -> dict[str, str]:
    return _line(result.outcome.name.lower(), result.name, result.message, result.fix,
                 result.outcome.value)


def _line(outcome: str, name: str, message: str, fix: str, symbol: str = "") -> dict[str, str]:
    symbols = {"pass": "✓", "warn": "!", "fail": "✗", "skip": "-"}
    return {"outcome": outcome, "symbol": symbol or symbols.get(outcome, "?"), "name": name,
            "message": message, "fix": fix}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="doctor's checks for the web page, as JSON")
    parser.add_argument("--config")
    parser.add_argument("--broker", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(results(args.config, args.broker)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
