"""``eidemu eid read --terminal --pin`` in process: the zones printed, each verdict, exit codes."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from eidemu.cli import UsageError
from eidemu.cli.eid import register, run_read
from eidemu.emulator.pki.eac_zones import holder_pin
from eidemu.fixtures import fixture_path

from ..broken.emrtd_doubles import build_emrtd_double

CAN = "147502"  # eid-g3-valid-1: the EAC zones are on the chips of G3 identities

NATIONAL_ID = json.loads(fixture_path("pki", "identities", "g3-valid-1", "identity.json").read_text("utf-8"))[
    "national_id"
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["eid", "read", "--card", "emulator:eid-g3-valid-1", "--can", CAN, *argv])


def test_private_terminal_with_pin_reads_every_zone() -> None:
    out = io.StringIO()
    assert run_read(parse("--terminal", "at-private", "--pin", holder_pin(NATIONAL_ID)), out) == 0
    text = out.getvalue()
    assert "  private DG6:       臺中縣\n" in text
    assert "  private DG7:       男\n" in text
    assert "  terminal-authentication: PASSED (TA v2 TWDVDOM00001 -> TWATPRIV0001)\n" in text
    assert "  chip-authentication: PASSED (CA v2 after TA, secure messaging restarted)\n" in text
    assert "  pin: PASSED (holder PIN verified)\n" in text


def test_wrong_pin_fails_and_keeps_the_private_zone_shut() -> None:
    out = io.StringIO()
    wrong = "000000" if holder_pin(NATIONAL_ID) != "000000" else "111111"
    assert run_read(parse("--terminal", "at-private", "--pin", wrong), out) == 1
    text = out.getvalue()
    assert "  pin: FAILED (VERIFY: the chip answered 63C2)\n" in text
    assert "  household-zone: PASSED (DG13)\n" in text
    assert "  private-zone: SKIPPED (access denied: DG3 6982," in text


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="--pin needs --terminal"):
        run_read(parse("--pin", "123456"), io.StringIO())
    with pytest.raises(UsageError, match="--pin: the holder PIN is 6 to 8 digits"):
        run_read(parse("--terminal", "at-private", "--pin", "12"), io.StringIO())
    with pytest.raises(UsageError, match="no terminal 'nobody'"):
        run_read(parse("--terminal", "nobody"), io.StringIO())


def test_the_zones_are_listed_and_hashed_in_ef_sod() -> None:
    """EF.COM lists the zones: without EAC they are protected, not read, not failures; with
    EAC each is read and checked against EF.SOD (zone-hashes)."""
    out = io.StringIO()
    assert run_read(parse(), out) == 0
    text = out.getvalue()
    assert "behind EAC, not read: DG3, DG4, DG5, DG6, DG7, DG8, DG9, DG13)\n" in text
    assert "  pa.dg-hash:DG8: SKIPPED (behind Extended Access Control (6982), not read)\n" in text
    assert "zone-hashes" not in text
    out = io.StringIO()
    assert run_read(parse("--terminal", "at-private", "--pin", holder_pin(NATIONAL_ID), "--json"), out) == 0
    report = json.loads(out.getvalue())
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["zone-hashes"] == {
        "name": "zone-hashes",
        "verdict": "PASSED",
        "reason": "DG3, DG4, DG5, DG6, DG7, DG8, DG9, DG13 match EF.SOD (sha256)",
    }
    zones = {z["label"]: z["value"] for z in report["zones"]}
    assert list(zones) == ["household DG13", *(f"private DG{n}" for n in range(3, 10))]
    assert zones["private DG8"].startswith("face record, JPEG 240x320, ")
    assert {f"DG{n}" for n in (3, 4, 5, 6, 7, 8, 9, 13)} <= set(report["files"])


def test_a_zone_altered_after_signing_fails_zone_hashes(tmp_path) -> None:
    profile = build_emrtd_double("zone-altered", tmp_path)
    args = parse("--terminal", "at-private", "--pin", holder_pin(NATIONAL_ID))
    args.card = f"emulator:{profile}"
    out = io.StringIO()
    assert run_read(args, out) == 1
    text = out.getvalue()
    assert "  zone-hashes: FAILED (DG5: the sha256 of DG5 differs from EF.SOD's)\n" in text
    assert "  private-zone: PASSED (DG3, DG4, DG5, DG6, DG7, DG8, DG9)\n" in text
    assert "result: FAILED (zone-hashes)\n" in text
