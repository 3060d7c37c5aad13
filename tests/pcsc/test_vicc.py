"""A card eidemu did not write: vsmartcard's ``vicc`` (Debian's vsmartcard-vpicc, ``vicc -t
iso7816``) behind the private pcscd + vpcd. The probe describes it from harmless commands,
the catalogue runs with that declaration, and every verdict is the one recorded in
``tests/conformance/data/vicc-expected.yaml``: its deviations from ISO/IEC 7816-4 are FAILED
with the clause the test cites, never ERROR.

Without vicc (or its Python package) these tests are skipped, or fail under
``EIDEMU_REQUIRE_PCSC``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from eidemu.conformance.connection import CardConnectionError
from eidemu.conformance.probe import ALLOWED_INS, probe
from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

from .conftest import READER0, unavailable, wait_for_card

HEADER = """\
# Verdicts of the shipped catalogue on vsmartcard's vicc (-t iso7816, Debian's vsmartcard-vpicc
# 0.8), declared by 'eidemu conformance probe'. Asserted by tests/pcsc/test_vicc.py; recorded
# with EIDEMU_RECORD_VICC=1 and reviewed: each FAILED is a deviation from the clause cited.
"""
EXPECTED = Path(__file__).resolve().parents[1] / "conformance" / "data" / "vicc-expected.yaml"


def vicc_command(port: int) -> tuple[list[str], dict[str, str]] | None:
    """vicc as shipped, with this interpreter (it has pycryptodome; Debian's python3 may not)."""
    vicc = shutil.which("vicc")
    packages = glob.glob("/usr/lib/python3*/site-packages/virtualsmartcard") + glob.glob(
        "/usr/lib/python3/dist-packages/virtualsmartcard"
    )
    if vicc is None or not packages:
        return None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([packages[0], str(Path(packages[0]).parent)]))
    return [sys.executable, vicc, "-t", "iso7816", "-P", str(port)], env


class Vicc:
    """vicc in slot 0, restartable: it exits on a SELECT asking for an FCI of the MF (a bug
    of vsmartcard 0.8 under Python 3: ``bertlv_pack`` gets an int), which the probe sends last."""

    def __init__(self, port: int) -> None:
        command = vicc_command(port)
        if command is None:
            unavailable("vsmartcard's vicc is not installed (apt-get install vsmartcard-vpicc)")
        self.argv, self.env = command  # type: ignore[misc]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3, timeout: float = 15.0) -> None:
        """Start vicc and wait for its card. vicc exits when it cannot connect to vpcd (the
        driver may still hold the previous connection for a moment), so a vicc that exited
        before its card appeared is started again, at most ``attempts`` times."""
        deadline = time.monotonic() + timeout
        for attempt in range(1, attempts + 1):
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            while self.process.poll() is None:
                try:
                    wait_for_card(READER0, present=True, timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
                    return
                except CardConnectionError:
                    if time.monotonic() > deadline:
                        raise
            if attempt == attempts:
                raise CardConnectionError(f"vicc exited {attempts} times before its card appeared in {READER0!r}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        wait_for_card(READER0, present=False, timeout=5)


@pytest.fixture
def vicc(stack):
    card = Vicc(stack.port)
    card.start()
    yield card
    card.stop()


def test_vicc_probe_then_catalogue_gives_the_recorded_verdicts(vicc, tmp_path):
    expected = yaml.safe_load(EXPECTED.read_text(encoding="utf-8"))
    card = CardUnderTest(f"pcsc:{READER0}", declaration=None)
    try:
        assert card.declaration.tokens == frozenset()  # unknown: nothing declares it
        result = probe(card.fresh())
        assert all(e.command[1] in ALLOWED_INS for e in result.exchanges)
        if not os.environ.get("EIDEMU_RECORD_VICC"):
            assert sorted(result.tokens) == expected["tokens"]
        declaration_file = tmp_path / "vicc.yaml"
        declaration_file.write_text(result.yaml(), encoding="utf-8")
        card.declaration = result.declaration()
    finally:
        card.close()
    vicc.stop()  # the probe's last SELECT (FCI of the MF) made vicc exit; a fresh one
    vicc.start()
    card = CardUnderTest(f"pcsc:{READER0}", declaration=result.declaration())
    try:
        results = run_tests(card, select_tests(load_catalogue()))
    finally:
        card.close()
    verdicts = {r.test.id: str(r.outcome) for r in results}
    failures = {
        r.test.id: {"spec": r.test.spec, "mismatch": r.message.split("): ", 1)[1]}
        for r in results
        if r.outcome == Outcome.FAILED
    }
    if os.environ.get("EIDEMU_RECORD_VICC"):  # re-record after a deliberate change, then review the diff
        applicable = {k: v for k, v in verdicts.items() if v != "NOT APPLICABLE"}
        record = {"tokens": sorted(result.tokens), "verdicts": applicable, "failures": failures}
        EXPECTED.write_text(
            HEADER + yaml.safe_dump(record, sort_keys=False, width=200, allow_unicode=True), encoding="utf-8"
        )
    assert {k: v for k, v in verdicts.items() if v != "NOT APPLICABLE"} == expected["verdicts"]
    assert not [r for r in results if r.outcome == Outcome.ERROR]
    assert failures == expected["failures"]  # each deviation, with the clause the test cites
