"""The README's main job, `eidemu demo`, through a real private pcscd + vpcd + pyscard."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.pcsc


def test_demo_runs_through_the_virtual_reader():
    proc = subprocess.run(
        [sys.executable, "-m", "eidemu.cli", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[1] starting a private pcscd with the vpcd virtual reader driver" in out
    assert "ATR 3B B8 13 00 81 31 FA 52 43 48 54 4D 4F 49 43 41 A5" in out
    assert "falling back" not in out
    assert "signature valid (RSASSA-PKCS1-v1_5, SHA-256)" in out
    assert "valid, not revoked (OCSP):" in out
    assert out.rstrip().endswith("APDUs exchanged with pcsc:Virtual PCD 00 00")
    # the PIN never shows: the identity's initial PIN is 0890123 (ASCII 30 38 39 30 31 32 33)
    assert "0890123" not in out and "30 38 39 30 31 32 33" not in out
