"""``eidemu record``: capture an application's session with a real card as a JSON-lines trace.

A relay (:mod:`eidemu.conformance.record`) sits in a vpcd slot as a card and forwards every
command to the card in a PC/SC reader; the application uses the virtual reader
(``Virtual PCD 00 0N``) instead of the real one. Stop with Ctrl-C, SIGTERM or ``quit`` on
standard input.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import IO, Any

from . import EXIT_OK, EXIT_USAGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="relay a real card into a vpcd slot and record every APDU exchange (PINs masked)",
        description="Serve the card in reader R as a card in vpcd's slot, forward every command to it and "
        "record the exchanges as JSON lines (the format of 'eidemu apdu --trace'; PIN data masked). Point the "
        "application at the virtual reader. Turn the trace into a script with "
        "'eidemu conformance import --from trace', or replay it with 'eidemu replay'.",
    )
    p.add_argument("--reader", required=True, help="the real reader: exact name, name prefix or index")
    p.add_argument("--out", required=True, metavar="TRACE.jsonl", help="append the trace to this file")
    p.add_argument("--slot", type=int, default=0, help="vpcd slot to serve the relay in (default 0)")
    p.add_argument(
        "--vpcd", metavar="HOST:PORT", help="vpcd's address for slot 0 (default: $EIDEMU_VPCD or localhost:35963)"
    )
    p.add_argument(
        "--exclusive", action="store_true", help="open the real card exclusively (no other application can use it)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, out: IO[str] | None = None, stdin: IO[str] | None = None) -> int:
    from eidemu.conformance.pcsc import PcscConnection
    from eidemu.conformance.record import RelayCard
    from eidemu.emulator.iso7816.trace import JsonLinesTracer
    from eidemu.emulator.transport.pcscd import reader_name
    from eidemu.emulator.transport.vpcd import VPCD_PORT, CardSlots, connect_to_vpcd

    from .serve import NOT_LISTENING_HINT, parse_address

    out = out or sys.stdout
    if args.slot < 0:
        from . import UsageError

        raise UsageError("--slot must be 0 or more")
    default = os.environ.get("EIDEMU_VPCD") or f"localhost:{VPCD_PORT}"
    host, base = parse_address(args.vpcd or default, "--vpcd" if args.vpcd else "EIDEMU_VPCD")
    try:
        sock = connect_to_vpcd(host, base + args.slot)
    except OSError as exc:
        print(
            f"eidemu: error: vpcd is not listening on {host}:{base + args.slot} ({exc.strerror or exc}): "
            f"{NOT_LISTENING_HINT}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        backend = PcscConnection(args.reader, share="exclusive" if args.exclusive else "shared")
    except BaseException:
        sock.close()
        raise
    done = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[sig] = signal.signal(sig, lambda _signum, _frame: done.set())
    with open(args.out, "a", encoding="utf-8") as trace:
        tracer = JsonLinesTracer(trace, source=backend.description)
        tracer.event("record", reader=backend.reader, atr=backend.atr.hex().upper())
        relay = RelayCard(backend, tracer)
        slots = CardSlots(host, base)
        try:
            slots.insert(args.slot, relay, name="relay", connected=sock)
            print(
                f"relaying '{backend.reader}' (ATR {backend.atr.hex(' ').upper()}) into reader "
                f"'{reader_name(args.slot)}' (vpcd {host}:{base + args.slot}); recording to {args.out}",
                file=out,
                flush=True,
            )

            def read_commands() -> None:
                for line in stdin or sys.stdin:  # end of input is not a stop: run under nohup, & ...
                    if line.strip() == "quit":
                        done.set()
                        return

            threading.Thread(target=read_commands, daemon=True).start()
            while not done.wait(0.2):
                pass
        finally:
            slots.close()
            backend.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    failed = f", {relay.failures} reader error(s)" if relay.failures else ""
    print(f"stopped: {relay.exchanges} exchange(s) recorded to {args.out}{failed}", file=out, flush=True)
    return EXIT_OK
