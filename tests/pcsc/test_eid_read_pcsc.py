"""The inspection system through the real stack: the eID chip served by ``eidemu serve``
into vpcd, read by ``eidemu eid read --card pcsc:...`` through pcscd and pyscard; and the
Python reader on a chip inserted in process."""

from __future__ import annotations

import signal
import subprocess
import sys

from eidemu.conformance.connection import open_card
from eidemu.conformance.eid import AccessKey, read_chip
from eidemu.conformance.eid.report import failed_names
from eidemu.emulator.profile import load_profile
from eidemu.fixtures import fixture_path

from .conftest import READER0, ROOT, start_cli, wait_for_card

CAN = "237517"  # eid-g2-valid-1


def test_eid_read_through_pcscd_with_the_chip_served_by_eidemu_serve(stack, tmp_path):
    serve = start_cli(stack, "serve", "--profile", "eid-g2-valid-1")
    try:
        assert serve.stdout.readline().startswith(f"slot 0: eid-g2-valid-1 in reader '{READER0}'")
        wait_for_card(READER0)
        face = tmp_path / "face.jpg"
        result = subprocess.run(
            [sys.executable, "-m", "eidemu.cli", "eid", "read", "--card", f"pcsc:{READER0}", "--can", CAN,
             "--face", str(face)],
            cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[:4] == [
            f"card: pcsc:{READER0}",
            "access: PACE ECDH-CAM AES-128 brainpoolP256r1 (ID 13), CAN",
            "holder:",
            "  name:              鍾柏子",
        ]
        assert lines[-1] == "result: PASSED (every verification passed)"
        assert face.read_bytes() == fixture_path("pki", "eid", "chips", "g2-valid-1", "face.jpg").read_bytes()
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            serve.kill()
    wait_for_card(READER0, present=False)


def test_python_reader_over_pcsc_bac_and_a_broken_pace(slots):
    slots.insert(0, load_profile("eid-g2-valid-1").build())
    wait_for_card(READER0)
    connection = open_card(f"pcsc:{READER0}")
    try:
        report = read_chip(connection, AccessKey.parse_mrz("TP46375051237517,000123,361010"), bac=True)
        assert report.access == "BAC, MRZ"
        assert failed_names(report.checks) == []
        connection.reset()
        wrong = read_chip(connection, AccessKey(can="000000"))
        assert failed_names(wrong.checks) == ["access"]
    finally:
        connection.close()
