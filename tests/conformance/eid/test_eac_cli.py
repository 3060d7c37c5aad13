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
