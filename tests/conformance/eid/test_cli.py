"""``eidemu eid read`` end to end, as its own process: holder data, the face file, each
verdict, the exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import CAN, CHIPS, MRZ_INFORMATION

ROOT = Path(__file__).resolve().parents[3]
CHIP = CHIPS / "g2-valid-1"


def eidemu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eidemu.cli", *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_read_prints_the_holder_writes_the_face_and_passes(tmp_path):
    face = tmp_path / "face.jpg"
    result = eidemu("eid", "read", "--card", "emulator:eid-g2-valid-1", "--can", CAN, "--face", str(face))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:15] == [
        "card: emulator:eid-g2-valid-1",
        "access: PACE ECDH-CAM AES-128 brainpoolP256r1 (ID 13), CAN",
        "holder:",
        "  name:              鍾柏子",
        "  name (MRZ):        CHUNG, PO TZU",
        "  national ID:       X209679048",
        "  date of birth:     20000123",
        "  sex:               F",
        "  place of birth:    澎湖縣",
        "  nationality:       TWN",
        "  document:          ID TWN TP46375051237517",
        "  date of expiry:    361010",
        "  issuing authority: 內政部 TEST",
        "  date of issue:     20261010",
        f"  face:              JPEG 240x320, {len((CHIP / 'face.jpg').read_bytes())} bytes -> {face}",
    ]
    assert lines[15] == "verifications:"
    assert "  pa.dg-hash:DG11: PASSED (sha256)" in lines
    assert lines[-1] == "result: PASSED (every verification passed)"
    assert face.read_bytes() == (CHIP / "face.jpg").read_bytes()


def test_read_with_the_mrz_and_json():
    result = eidemu(
        "eid", "read", "--card", "emulator:eid-g2-valid-1", "--mrz", "TP46375051237517,000123,361010", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["access"] == "PACE ECDH-CAM AES-128 brainpoolP256r1 (ID 13), MRZ"
    assert report["holder"]["full_name"] == "鍾柏子"
    assert "鍾柏子" in result.stdout  # not escaped
    assert report["passed"] is True
    assert {c["verdict"] for c in report["checks"]} == {"PASSED"}


def test_wrong_can_is_a_clear_card_failure():
    result = eidemu("eid", "read", "--card", "emulator:eid-g2-valid-1", "--can", "000000")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "card: emulator:eid-g2-valid-1",
        "access: PACE ECDH-CAM AES-128 brainpoolP256r1 (ID 13), CAN",
        "verifications:",
        "  access: FAILED (PACE with the CAN: GENERAL AUTHENTICATE step 4: the chip answered 6300 (wrong password?))",
        "result: FAILED (access)",
    ]


def test_an_expired_document_signer_fails_with_exit_1(tmp_path):
    from .conftest import write_variant

    profile = write_variant(tmp_path, "g2-valid-1", {"EF.SOD.bin": CHIP / "EF.SOD.ds-expired.bin"})
    result = eidemu("eid", "read", "--card", f"emulator:{profile}", "--can", CAN)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "result: FAILED (pa.ds-validity)"


def test_trust_from_a_csca_file_and_a_crl():
    csca = CHIPS.parent / "csca"
    result = eidemu(
        "eid", "read", "--card", "emulator:eid-g2-valid-1", "--can", CAN,
        "--csca", str(csca / "csca-tw.cert.pem"), "--crl", str(csca / "csca-tw.crl"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "pa.master-list" not in result.stdout


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    missing_file = tmp_path / "none.der"
    cases = [
        (["--can", "12345"], "--can: the CAN must be 6 digits"),
        (["--mrz", MRZ_INFORMATION[:-1] + "4"], "--mrz: MRZ information: the date of expiry check digit is wrong"),
        (["--mrz", "TP1,0001,361010"], "--mrz: MRZ date of birth must be YYMMDD"),
        (["--can", CAN, "--master-list", str(missing_file)], f"{missing_file}: no such file"),
    ]
    for extra, message in cases:
        result = eidemu("eid", "read", "--card", "emulator:eid-g2-valid-1", *extra)
        assert (result.returncode, result.stderr, result.stdout) == (2, f"eidemu: error: {message}\n", ""), extra
    missing = eidemu("eid", "read", "--card", "emulator:eid-g2-valid-1")
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[-1] == ("eidemu eid read: error: one of the arguments --can --mrz is required")
