"""``eidemu pcscd start|stop|status``: a private pcscd with a vpcd reader.

``start`` prints the shell lines clients need on standard output (so ``eval "$(eidemu
pcscd start)"`` works) and everything else on standard error. See
:mod:`eidemu.emulator.transport.pcscd` for how the instance is isolated from a system pcscd.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from . import EXIT_CARD_ERROR, EXIT_OK, EXIT_USAGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pcscd",
        help="start, stop or inspect a private pcscd with a vpcd reader (leaves a system pcscd alone)",
        description="A private pcscd in its own mount namespace, with one vpcd reader of two slots on free "
        "loopback-reachable ports. Needs root (or user namespaces) for 'unshare -m'.",
    )
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--run-dir", help="where the instance keeps its socket, configuration, log and state")
    p.add_argument("--port", type=int, help="vpcd port of slot 0 (default: a free one); slot N is PORT+N")
    p.add_argument(
        "--readers",
        type=int,
        default=1,
        metavar="N",
        help="vpcd readers of two slots each (default 1, at most 8: pcscd serves 16 slots); "
        "slot N is in reader N//2, on PORT+N",
    )
    p.set_defaults(handler=run)


def _exports(environment: dict[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in environment.items())


def run(args: argparse.Namespace) -> int:
    from eidemu.emulator.transport import pcscd

    if args.action == "start":
        try:
            instance = pcscd.start(args.run_dir, port=args.port, readers=args.readers)
        except pcscd.PcscdError as exc:
            print(f"eidemu: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        readers = ", ".join(
            f"'{instance.reader_name(s)}' (port {instance.slot_port(s)})" for s in range(instance.slots)
        )
        print(f"eidemu: private pcscd running, pid {instance.pid}; vpcd readers {readers}", file=sys.stderr)
        print("eidemu: clients need these variables (eval this output, or paste it):", file=sys.stderr)
        print(_exports(instance.environment), flush=True)
        hint = pcscd.pyscard_hint()
        if hint:
            print(f"eidemu: note: {hint}", file=sys.stderr)
        return EXIT_OK
    if args.action == "stop":
        stopped = pcscd.stop(args.run_dir)
        if stopped is None:
            print("eidemu: no private pcscd was running", file=sys.stderr)
            return EXIT_CARD_ERROR
        print(f"eidemu: stopped private pcscd (pid {stopped.pid})", file=sys.stderr)
        return EXIT_OK
    running = pcscd.status(args.run_dir)
    if running is None:
        missing = pcscd.missing_requirements()
        print("private pcscd: not running" + (f" (missing: {'; '.join(missing)})" if missing else ""))
        return EXIT_CARD_ERROR
    print(f"private pcscd: running, pid {running.pid}, run directory {running.run_dir}")
    for slot in range(running.slots):
        print(f"  reader '{running.reader_name(slot)}': cards connect to port {running.slot_port(slot)}")
    print(_exports(running.environment))
    return EXIT_OK
