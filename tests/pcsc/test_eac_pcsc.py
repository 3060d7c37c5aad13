"""Extended Access Control through the real stack: the eID chip in vpcd behind a private
pcscd, read with pyscard by the Python reader (PACE, TA v2, CA v2, the holder PIN, the zones)
and by ``eidemu eid read --terminal --pin``."""

from __future__ import annotations

import json
import subprocess
import sys

from eidemu.conformance.connection import open_card
from eidemu.conformance.eid import AccessKey, InspectionSystem
from eidemu.conformance.eid.report import Verdict, failed_names
from eidemu.emulator.pki.eac import load_terminal
from eidemu.emulator.pki.eac_zones import holder_pin
from eidemu.emulator.profile import load_profile
from eidemu.fixtures import fixture_path

from .conftest import READER0, ROOT, wait_for_card

CAN = "147502"  # eid-g3-valid-1
NATIONAL_ID = json.loads(fixture_path("pki", "identities", "g3-valid-1", "identity.json").read_text("utf-8"))[
    "national_id"
]
PIN = holder_pin(NATIONAL_ID)


def test_python_reader_ta_ca_pin_and_zones_over_pcsc(slots):
    slots.insert(0, load_profile("eid-g3-valid-1").build())
    wait_for_card(READER0)
    connection = open_card(f"pcsc:{READER0}")
    try:
        terminal = load_terminal(fixture_path("pki", "eac"), "at-private")
        report = InspectionSystem(connection, terminal=terminal, pin=PIN).inspect(AccessKey(can=CAN))
        assert failed_names(report.checks) == []
        assert report.check("terminal-authentication").reason == "TA v2 TWDVDOM00001 -> TWATPRIV0001"
        assert report.check("private-zone").reason == "DG3, DG4, DG5, DG6, DG7, DG8, DG9"
        assert report.check("household-zone").verdict is Verdict.PASSED
        assert report.check("zone-hashes").reason == "DG3, DG4, DG5, DG6, DG7, DG8, DG9, DG13 match EF.SOD (sha256)"
        connection.reset()
        # the household-only terminal: TA passes, the private zone stays shut (6982)
        household = load_terminal(fixture_path("pki", "eac"), "at-household")
        report = InspectionSystem(connection, terminal=household, pin=PIN).inspect(AccessKey(can=CAN))
        assert report.check("household-zone").verdict is Verdict.PASSED
        assert report.check("private-zone").reason == (
            "access denied: DG3 6982, DG4 6982, DG5 6982, DG6 6982, DG7 6982, DG8 6982, DG9 6982"
        )
        assert report.check("zone-hashes").reason == "DG13 match EF.SOD (sha256)"
    finally:
        connection.close()


def test_cli_with_an_expired_terminal_fails_ta_over_pcsc(slots):
    slots.insert(0, load_profile("eid-g3-valid-1").build())
    wait_for_card(READER0)
    result = subprocess.run(
        [sys.executable, "-m", "eidemu.cli", "eid", "read", "--card", f"pcsc:{READER0}", "--can", CAN,
         "--terminal", "at-expired"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(
        line.startswith("  terminal-authentication: FAILED (TWDVDOM00001 -> TWATEXPD0001: ") and "6300" in line
        for line in result.stdout.splitlines()
    ), result.stdout
