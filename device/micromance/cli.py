"""Command line (a contract: see docs/contract.md): run, simulate, status, pair, send, web,
doctor, preview, repair, selftest.

Expected failures print one line and exit with a sysexits code (78 config, 69 hardware);
tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from micromance import __version__
from micromance.errors import EX_USAGE, MicromanceError

#: Keeps the examples in an epilog as written (one per line).
RAW = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="micromance",
        description="A kitchen-counter unit for small, consistent gestures of care.")
    parser.add_argument("--version", action="version", version=f"micromance {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    with_config = argparse.ArgumentParser(add_help=False)
    with_config.add_argument("--config", metavar="PATH",
                             help="config file (default: $MICROMANCE_CONFIG, then "
                                  "/etc/micromance/config.toml, else built-in defaults)")

    run = commands.add_parser(
        "run", parents=[with_config], help="run the unit (the daemon)", formatter_class=RAW,
        epilog="examples:\n  micromance run --config /etc/micromance/config.toml\n"
               "  echo tn | micromance run --input stdin   (a desktop: THANKS, then NEXT)\n\n"
               "Stops on Ctrl-C, SIGTERM, the end of --input stdin, or q there.")
    run.add_argument("--input", choices=["stdin"],
                     help="read buttons from standard input: t n T N w p, one per character; "
                          "q stops")
    run.set_defaults(handler=_run)

    simulate = commands.add_parser(
        "simulate", parents=[with_config],
        help="two paired units side by side in this terminal (or a browser: --web), "
             "through a private mosquitto", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  micromance simulate              keys (Sam/Alex): t/y THANKS, "
               "T/Y hold it, n/m NEXT, N/M hold it, q quits\n"
               "  micromance simulate --web        the same in a browser page")
    simulate.add_argument("--state", metavar="DIR", default=".state/simulate",
                          help="where the two units keep their state (default: %(default)s)")
    simulate.add_argument("--web", action="store_true",
                          help="show them in a browser page on this computer instead")
    simulate.add_argument("--port", type=int, metavar="N", default=0,
                          help="with --web: serve the page on this port of 127.0.0.1 "
                               "(default: a free one)")
    simulate.set_defaults(handler=_simulate)

    status = commands.add_parser(
        "status", parents=[with_config], help="pairing, link, counters, recent events",
        formatter_class=RAW,
        epilog="examples:\n  micromance status\n  micromance status --json | jq .link")
    status.add_argument("--json", action="store_true", help="one JSON object")
    status.set_defaults(handler=_status)

    pair = commands.add_parser(
        "pair", parents=[with_config],
        help="pair with the partner's unit (in a room, or by invite), or --forget it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pair with the partner's unit: both look for each other (up to 2 minutes; "
                    "a broker that cannot be reached is named within seconds), then both show "
                    "the same 6-digit code; answer y when it matches the other unit's, n when "
                    "not. Through the running unit when it runs.",
        epilog="examples:\n  micromance pair --invite        prints a code to read to your "
               "partner\n  micromance pair --join 417 maple river candle otter\n"
               "  micromance pair                 meets in the room of [pairing] room")
    how = pair.add_mutually_exclusive_group()
    how.add_argument("--forget", action="store_true", help="unpair this unit")
    how.add_argument("--local", nargs=2, metavar=("DIR_A", "DIR_B"),
                     help="pair two state directories on this machine (tests, simulator)")
    how.add_argument("--invite", action="store_true",
                     help="make an invite code for the other unit and wait for it there")
    how.add_argument("--join", nargs="+", metavar="CODE",
                     help="join the other unit's invite (the number and the four words)")
    how.add_argument("--room", metavar="NAME", help="rendezvous name on the broker")
    pair.set_defaults(handler=_pair)

    send = commands.add_parser(
        "send", parents=[with_config],
        help="send a thank-you from this shell (through the running unit, as THANKS does)",
        formatter_class=RAW, epilog="example:\n  micromance send     says whether it went "
                                    "out or waits for the partner's unit")
    send.set_defaults(handler=_send)

    web = commands.add_parser(
        "web", parents=[with_config],
        help="the unit's web page on the home network (or --pin: a one-time access code)",
        formatter_class=RAW,
        epilog="examples:\n  micromance web --port 8080    then open http://<this computer>:8080/\n"
               "  sudo -u micromance micromance web --pin   a code for the page's sign-in")
    web_how = web.add_mutually_exclusive_group()
    web_how.add_argument("--port", type=int, metavar="N",
                         help="serve on this TCP port (default: the socket systemd hands over, "
                              "else 8080)")
    web_how.add_argument("--pin", action="store_true",
                         help="print a one-time access code for the page and exit")
    web.set_defaults(handler=_web)

    doctor = commands.add_parser(
        "doctor", parents=[with_config],
        help="check config, I2C, display, GPIO, clock, broker and pairing; say how to fix",
        formatter_class=RAW,
        epilog="example:\n  sudo micromance doctor     one line per check; exit 1 if one failed")
    doctor.set_defaults(handler=_doctor)

    preview = commands.add_parser(
        "preview", parents=[with_config], help="render every screen to PNG files",
        formatter_class=RAW,
        epilog="example:\n  micromance preview --out /tmp/screens   then open the PNGs there")
    preview.add_argument("--out", metavar="DIR", default="preview",
                         help="folder for the PNGs (default: ./preview)")
    preview.set_defaults(handler=_preview)

    repair = commands.add_parser(
        "repair", parents=[with_config],
        help="check the state database; if damaged, keep a copy and rebuild what can be",
        formatter_class=RAW,
        epilog="example:\n  sudo systemctl stop micromance && sudo micromance repair")
    repair.set_defaults(handler=_repair)

    selftest = commands.add_parser(
        "selftest", parents=[with_config],
        help="check the wiring part by part: display, THANKS, NEXT, the light (you press the "
             "buttons when asked)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  sudo micromance selftest\n\nAs root it stops the running service "
               "for the test and starts it\nagain afterwards. One line per part, like doctor; "
               "exit 1 if one is broken.")
    selftest.add_argument("--seconds", type=float, default=15.0, metavar="S",
                          help="how long to wait for each press (default: %(default)g)")
    selftest.set_defaults(handler=_selftest)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) if exit_.code != 2 else EX_USAGE
    try:
        return args.handler(args)
    except MicromanceError as error:
        print(f"micromance: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _usage(message: str) -> int:
    """A command line that parses but cannot be used: say why, exit 2 as argparse does."""
    print(f"micromance: {message}", file=sys.stderr)
    return EX_USAGE


def _load(args: argparse.Namespace) -> Any:
    from micromance.config import load_config, resolve_path

    return load_config(resolve_path(args.config))


def _run(args: argparse.Namespace) -> int:
    from micromance.logs import setup_logging
    from micromance.runtime import Runtime
    from micromance.startup import start_unit

    key_stream = sys.stdin if args.input == "stdin" else None

    def run(config: Any, notifier: Any) -> int:
        setup_logging(config.logging.level)
        return Runtime(config, key_stream=key_stream, notifier=notifier).run()

    # Under systemd a unit that cannot start backs off with the problem on its screen.
    return start_unit(args.config, run)


def _simulate(args: argparse.Namespace) -> int:
    import logging

    from micromance.simulator.terminal import run_simulation

    if args.port and not args.web:
        return _usage("--port only goes with --web: micromance simulate --web --port N")
    if not 0 <= args.port <= 65535:
        return _usage(f"--port {args.port} is not a TCP port: give one from 1024 to 65535, "
                      "or leave --port out for a free one")
    config = _load(args)
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    # The terminal belongs to the two screens; the log goes beside the state.
    logging.basicConfig(filename=state / "simulate.log", level=config.logging.level.upper(),
                        format="%(asctime)s %(threadName)s %(name)s: %(message)s")
    if args.web:
        from micromance.simulator.web import run_web_simulation

        return run_web_simulation(config, state, port=args.port)
    return run_simulation(config, state)


def _status(args: argparse.Namespace) -> int:
    from micromance.status import collect_status, format_status

    config = _load(args)
    report = collect_status(config)
    print(json.dumps(report) if args.json else format_status(report))
    return 0


def _pair(args: argparse.Namespace) -> int:
    from micromance.link.pair_cli import forget_from_shell, pair_from_shell
    from micromance.link.pair_file import pair_locally

    if args.local:
        pair_a, _ = pair_locally(Path(args.local[0]), Path(args.local[1]))
        print(f"paired {pair_a.device_id} ({args.local[0]}) with {pair_a.partner_id} "
              f"({args.local[1]}): pair {pair_a.pair_id[:8]}")
        return 0
    from micromance import protocol
    from micromance.control.client import find_daemon

    config = _load(args)
    joined = ""
    if args.join:
        try:
            joined = protocol.parse_invite(" ".join(args.join))
        except ValueError as error:
            return _usage(f"pair --join: {error}")
    if args.room:
        try:
            protocol.room_topic(args.room)
        except ValueError as error:
            return _usage(f"pair --room: {error}")
    unit = find_daemon(config)
    if unit is not None:  # the running unit pairs (or forgets) itself: one identity online
        from micromance.control.cli import forget_through_unit, pair_through_unit

        with unit:
            if args.forget:
                return forget_through_unit(unit, out=sys.stdout)
            mode = "invite" if args.invite else "join" if joined else "room"
            return pair_through_unit(unit, mode, room=args.room or "", code=joined,
                                     answers=sys.stdin, out=sys.stdout)
    if args.forget:
        return forget_from_shell(config, out=sys.stdout)
    invite = joined
    if args.invite:
        invite = protocol.make_invite(os.urandom(protocol.INVITE_ENTROPY_BYTES))
        print(f"Invite code: {invite}\nRead it to your partner; on their unit they run:\n"
              f"  micromance pair --join {invite}")
    room = args.room or config.room
    if not invite:
        try:
            protocol.room_topic(room)
        except ValueError as error:
            return _usage(f"pair --room: {error}")
    return pair_from_shell(config, room, invite=invite, answers=sys.stdin, out=sys.stdout)


def _send(args: argparse.Namespace) -> int:
    from micromance.control.cli import send_from_shell

    return send_from_shell(_load(args), out=sys.stdout)


def _web(args: argparse.Namespace) -> int:
    from micromance.web.cli import web_from_shell

    return web_from_shell(args.config, port=args.port, pin=args.pin, out=sys.stdout)


def _doctor(args: argparse.Namespace) -> int:
    from micromance.doctor import run_doctor

    return run_doctor(args.config)


def _preview(args: argparse.Namespace) -> int:
    from micromance.screens.preview import write_previews

    config = _load(args)
    sizes = {(128, 64), (128, 32), (config.display.width, config.display.height)}
    paths = write_previews(Path(args.out), sizes=tuple(sorted(sizes, reverse=True)))
    print(f"{len(paths)} screens written to {args.out}/")
    return 0


def _selftest(args: argparse.Namespace) -> int:
    from micromance.selftest import Bench, run_selftest

    return run_selftest(args.config, bench=Bench(press_seconds=args.seconds))


def _repair(args: argparse.Namespace) -> int:
    from micromance.repair import repair_from_shell

    return repair_from_shell(_load(args), out=sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
