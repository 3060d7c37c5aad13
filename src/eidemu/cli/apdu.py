"""``eidemu apdu``: send APDUs to a card and print the decoded exchange."""

from __future__ import annotations

import argparse

from eidemu.emulator.iso7816.apdu import CommandAPDU, parse_hex
from eidemu.emulator.iso7816.sw import CardError, is_success
from eidemu.emulator.iso7816.trace import redacted_spaced

from . import EXIT_CARD_ERROR, EXIT_OK, UsageError
from .show import format_exchange


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "apdu",
        help="send APDUs to a card and print the decoded responses",
        description="Send command APDUs (hex, one argument each) to a card. Exit 1 if any "
        "response is an error status (not 9000, 61xx or 62xx) unless --allow-errors.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--profile", help="emulate this profile in-process (file or shipped name)")
    src.add_argument("--card", help="card URI: emulator:<profile>, pcsc:<reader>, vpcd:<host:port>")
    p.add_argument("--state", help="state file for the emulated card (PIN counters, written files)")
    p.add_argument("--trace", help="append a JSON-lines APDU trace to this file")
    p.add_argument("--allow-errors", action="store_true", help="exit 0 even if the card answers errors")
    p.add_argument("apdus", nargs="+", metavar="APDU", help="command APDU in hex, e.g. 00A4000C023F00")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    commands = []
    for number, text in enumerate(args.apdus, 1):
        # Errors show the command masked (redacted_hex), never as typed: it may hold a PIN.
        try:
            raw = parse_hex(text)
        except ValueError as exc:
            raise UsageError(f"APDU {number}: {exc}") from None
        try:
            CommandAPDU.parse(raw)
        except CardError as exc:
            raise UsageError(f"APDU {number} ({redacted_spaced(raw)}): {exc}") from None
        commands.append(raw)
    from eidemu.conformance.connection import open_card, quote_target_part

    if args.profile:
        # Quoted: a '?' or '&' in a file name is part of the name, never an option.
        uri = f"emulator:{quote_target_part(args.profile)}"
        if args.state:
            uri += f"?state={quote_target_part(args.state)}"
    else:
        uri = args.card
        if args.state:
            raise UsageError("--state applies to --profile (emulated cards) only")
    connection = open_card(uri)
    trace_file = open(args.trace, "a", encoding="utf-8") if args.trace else None
    try:
        tracer = None
        if trace_file is not None:
            from eidemu.emulator.iso7816.trace import JsonLinesTracer

            tracer = JsonLinesTracer(trace_file, source=connection.description)
        failed = False
        print(f"card: {connection.description}  ATR {connection.atr.hex(' ').upper()}")
        for raw in commands:
            import time

            start = time.time()
            response = connection.transmit(raw)
            if tracer is not None:
                tracer(raw, response, start)
            print(format_exchange(raw, response))
            sw = (response[-2] << 8) | response[-1]
            if not (is_success(sw) or sw >> 8 == 0x62):
                failed = True
        return EXIT_CARD_ERROR if failed and not args.allow_errors else EXIT_OK
    finally:
        connection.close()
        if trace_file is not None:
            trace_file.close()
