"""The relying-party examples run as they are: examples/fido-login.py and examples/ics-onboarding.py
(the latter through a private pcscd + vpcd, so it is a PC/SC test: skipped without the stack,
a failure under EIDEMU_REQUIRE_PCSC)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eidemu.emulator.transport import pcscd

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_fido_login_example_verifies_the_login() -> None:
    run = run_example("fido-login.py", "--poll-interval", "0.2")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "checkDeviceStatus: is_fido=True is_mcert_sign=True"
    assert lines[1] == "requestAthOrSignPush: 0"
    assert lines[-3:-1] == ["getAthOrSignResult: 0 success", "OCSP: GOOD"]
    assert lines[-1].startswith("login verified: 2.5.4.5=0110085435107551,CN=") and "(RSA-4096)" in lines[-1]


def test_fido_login_example_fails_when_the_service_is_unreachable() -> None:
    run = run_example("fido-login.py", "--holder", "g2-valid-1", "--server", "http://127.0.0.1:9/")
    assert run.returncode != 0  # nothing listens on the discard port: the example does not pretend


def _pcsc_ready() -> None:
    from tests.pcsc.conftest import unavailable

    if pcscd.pyscard_hint() is not None:
        unavailable(str(pcscd.pyscard_hint()))
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        unavailable("pcscd is not installed")


@pytest.mark.pcsc
@pytest.mark.parametrize(
    ("holder", "code", "returncode"),
    [("g3-valid-1", "Code 0 (match)", 0), ("g3-revoked", "Code 5 (revoked)", 1), ("g2-expired", "Code 4 (expired)", 1)],
)
def test_ics_onboarding_example_reads_the_card_then_confirms(holder: str, code: str, returncode: int) -> None:
    _pcsc_ready()
    run = run_example("ics-onboarding.py", "--holder", holder)
    assert run.returncode == returncode, run.stderr
    first, second = run.stdout.splitlines()
    assert first.startswith("card in 'Virtual PCD 00 00': certificate 2.5.4.5=")
    assert second.endswith(code)
