"""``eidemu eid read``: an inspection system for eID and passport chips (ICAO 9303).

Runs :class:`eidemu.conformance.eid.InspectionSystem` on the card at ``--card``: PACE with
the CAN or the MRZ (BAC when the chip offers no PACE), every data group, passive, chip
and active authentication. Prints the holder's data and each verdict; exit 0 when every
verification passed, 1 when one failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from . import EXIT_CARD_ERROR, EXIT_OK, UsageError

if TYPE_CHECKING:
    from eidemu.conformance.eid import InspectionReport, TrustStore
    from eidemu.emulator.pki.eac import Terminal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eid",
        help="read and verify an eID or passport chip (ICAO 9303 inspection system)",
        description="The terminal side of the eID chip's ICAO zone.",
    )
    eid_sub = p.add_subparsers(dest="eid_command", metavar="COMMAND", parser_class=type(p))
    r = eid_sub.add_parser(
        "read",
        help="PACE (or BAC), read every data group, verify passive, chip and active authentication",
        description="Open the chip with the CAN or the MRZ (PACE with the best parameter set of EF.CardAccess, "
        "BAC when there is none), read EF.COM, every data group and EF.SOD, verify passive authentication "
        "(SOD signature, data group hashes, Document Signer chain to a CSCA, validity, CRL, key usage), run "
        "Chip Authentication (or check PACE-CAM) and Active Authentication. Prints the holder's data and one "
        "verdict per step. Exit 0 when every verification passed, 1 when one failed, 2 for usage errors. "
        "Default trust: the shipped TEST master list and CSCA CRL (CSCA Taiwan TEST).",
    )
    r.add_argument("--card", required=True, metavar="URI", help="emulator:<profile>, pcsc:<reader>, vpcd:, served:")
    key = r.add_mutually_exclusive_group(required=True)
    key.add_argument("--can", metavar="NNNNNN", help="the card access number (6 digits)")
    key.add_argument(
        "--mrz",
        metavar="MRZ",
        help="DOCNO,YYMMDD,YYMMDD (document number, birth, expiry) or the MRZ information with check digits",
    )
    r.add_argument("--face", metavar="FILE", type=Path, help="write the face image of DG2 to FILE")
    trust = r.add_mutually_exclusive_group()
    trust.add_argument("--master-list", metavar="FILE", type=Path, help="CSCA master list (CMS, ICAO 9303-12 §9)")
    trust.add_argument(
        "--csca", metavar="FILE", type=Path, action="append", help="CSCA certificate (PEM/DER); repeatable"
    )
    r.add_argument("--crl", metavar="FILE", type=Path, action="append", help="CSCA CRL (DER/PEM); repeatable")
    r.add_argument(
        "--terminal",
        metavar="NAME",
        help="after PACE, run Terminal Authentication v2 as this terminal of the TEST EAC PKI "
        "(at-private, at-household, at-public, at-rsa, is-1 ...), Chip Authentication v2, and read the zones",
    )
    r.add_argument(
        "--eac-pki",
        metavar="DIR",
        type=Path,
        help="the EAC PKI directory holding the terminal (default: the shipped fixtures/pki/eac)",
    )
    r.add_argument("--pin", metavar="PIN", help="the holder PIN (6-8 digits) for the private zone; needs --terminal")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(handler=run_read)
    p.set_defaults(handler=lambda args: p.print_help() or 2)


def _trust(args: argparse.Namespace) -> TrustStore:
    from eidemu.conformance.eid import TrustStore
    from eidemu.fixtures import fixture_path

    csca_dir = fixture_path("pki", "eid", "csca")
    crls = args.crl if args.crl is not None else [csca_dir / "csca-tw.crl"]
    for path in [*(args.csca or []), *([args.master_list] if args.master_list else []), *crls]:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    if args.csca:
        return TrustStore.from_certificates(args.csca, crls)
    return TrustStore.from_master_list(args.master_list or csca_dir / "masterlist.der", crls)


def _terminal(args: argparse.Namespace) -> Terminal | None:
    from eidemu.emulator.pki.eac import load_terminal
    from eidemu.fixtures import fixture_path

    if args.pin is not None and (not args.pin.isdigit() or not 6 <= len(args.pin) <= 8):
        raise UsageError("--pin: the holder PIN is 6 to 8 digits")
    if args.terminal is None:
        if args.pin is not None:
            raise UsageError("--pin needs --terminal (the private zone opens after Terminal Authentication)")
        return None
    directory = args.eac_pki or fixture_path("pki", "eac")
    try:
        return load_terminal(directory, args.terminal)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--terminal: {exc}") from None


def run_read(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from eidemu.conformance.connection import open_card
    from eidemu.conformance.eid import AccessKey, InspectionSystem
    from eidemu.conformance.eid.channel import ChipError

    out = out or sys.stdout
    try:
        key = AccessKey(can=args.can) if args.can is not None else AccessKey.parse_mrz(args.mrz)
    except ValueError as exc:
        raise UsageError(f"--{'can' if args.can is not None else 'mrz'}: {exc}") from None
    trust = _trust(args)
    terminal = _terminal(args)
    connection = open_card(args.card)
    try:
        try:
            report = InspectionSystem(connection, trust=trust, terminal=terminal, pin=args.pin).inspect(key)
        except ChipError as exc:
            print(f"eidemu: {args.card}: {exc}", file=sys.stderr)
            return EXIT_CARD_ERROR
    finally:
        connection.close()
    if args.face is not None and report.face is not None:
        args.face.write_bytes(report.face.image)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2), file=out)
    else:
        print_report(report, out, args.face)
    return EXIT_OK if report.passed else EXIT_CARD_ERROR


def print_report(report: InspectionReport, out: IO[str], face_file: Path | None) -> None:
    """The holder's data, then one line per verification step."""
    print(f"card: {report.card}", file=out)
    print(f"access: {report.access}", file=out)
    holder = report.holder
    if holder is not None:
        rows = [
            ("name", holder.full_name),
            ("name (MRZ)", f"{holder.primary_identifier}, {holder.secondary_identifier}".strip(", ")),
            ("national ID", holder.personal_number or holder.optional_data),
            ("date of birth", holder.full_date_of_birth or holder.date_of_birth),
            ("sex", holder.sex),
            ("place of birth", holder.place_of_birth),
            ("nationality", holder.nationality),
            ("document", f"{holder.document_code} {holder.issuing_state} {holder.document_number}"),
            ("date of expiry", holder.date_of_expiry),
            ("issuing authority", holder.issuing_authority),
            ("date of issue", holder.date_of_issue),
        ]
        if report.face is not None:
            face = report.face
            where = f" -> {face_file}" if face_file is not None else ""
            rows.append(("face", f"{face.format.upper()} {face.width}x{face.height}, {len(face.image)} bytes{where}"))
        print("holder:", file=out)
        for label, value in rows:
            if value:
                print(f"  {label + ':':<19}{value}", file=out)
    if report.zones:
        print("zones:", file=out)
        for label, value in report.zones:
            print(f"  {label + ':':<19}{value}", file=out)
    print("verifications:", file=out)
    for check in report.checks:
        print(f"  {check.line()}", file=out)
    failed = report.failed
    if failed:
        print(f"result: FAILED ({', '.join(c.name for c in failed)})", file=out)
    else:
        print("result: PASSED (every verification passed)", file=out)
