"""``eidemu demo``: the main job, shown end to end in a few readable exchanges."""

from __future__ import annotations

import argparse

from . import EXIT_CARD_ERROR, EXIT_OK
from .show import format_exchange

DEMO_SCRIPT = (
    ("00A4000C023F00", "select the MF"),
    ("00A4040007A0000002471001", "select the demo application by AID, ask for FCI"),
    ("00C0000000", "fetch the FCI (61xx / GET RESPONSE)"),
    ("00B0810020", "read 32 bytes of EF.PUBLIC via its SFI"),
    ("00B0820010", "EF.PRIVATE needs the PIN first"),
    ("00200001", "how many PIN tries are left? (VERIFY without data)"),
    ("0020000108313233343536FFFF", "VERIFY PIN 01 (data masked in output and traces)"),
    ("00B082001A", "now EF.PRIVATE reads"),
    ("0084000008", "GET CHALLENGE"),
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="an emulated card answering a short, readable APDU exchange")
    p.add_argument("--profile", default="iso-demo", help="profile to emulate (default: iso-demo)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from emulator.profile import load_profile

    profile = load_profile(args.profile)
    card = profile.build()
    print(f"eidemu demo: in-process card from profile {profile.name!r}")
    print(f"ATR {card.atr.hex(' ').upper()}\n")
    ok = True
    for hex_apdu, note in DEMO_SCRIPT:
        raw = bytes.fromhex(hex_apdu)
        response = card.transmit(raw)
        print(f"# {note}")
        print(format_exchange(raw, response) + "\n")
        ok = ok and response[-2] in (0x90, 0x61, 0x69, 0x63)
    return EXIT_OK if ok else EXIT_CARD_ERROR
