"""Without pyscard (the optional ``pcsc`` extra) the suite still collects: the PC/SC tests are
skipped with the reason, or fail when ``EIDEMU_REQUIRE_PCSC`` says they must run (CI).

pytest runs in a subprocess with a plugin that makes ``import smartcard`` fail exactly as it
does where pyscard is not installed (``ModuleNotFoundError``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = '''
import sys


class _NoPyscard:
    """A meta path finder that refuses pyscard's package, as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "smartcard" or name.startswith("smartcard."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoPyscard())
'''


def _pytest_without_pyscard(tmp_path: Path, *args: str, require: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "no_pyscard.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("EIDEMU_REQUIRE_PCSC", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    if require:
        env["EIDEMU_REQUIRE_PCSC"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no_pyscard", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_pcsc_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    result = _pytest_without_pyscard(tmp_path, "-q", "-rs", "tests/pcsc", require=False)
    assert result.returncode == 0, result.stdout + result.stderr
    modules = len(list((ROOT / "tests" / "pcsc").glob("test_*.py")))
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 1 and skips[0].startswith(f"SKIPPED [{modules}] tests/pcsc/conftest.py:")
    assert skips[0].endswith(
        ": pyscard is not installed: pip install pyscard (building it needs Debian's libpcsclite-dev and swig: "
        "apt-get install libpcsclite-dev swig)"
    )
    assert result.stdout.splitlines()[-1].startswith(f"{modules} skipped in ")


@pytest.mark.slow
def test_the_whole_suite_collects_without_pyscard(tmp_path: Path) -> None:
    result = _pytest_without_pyscard(tmp_path, "-q", "--collect-only", "tests", require=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error" not in result.stdout.lower().splitlines()[-1]


@pytest.mark.slow
def test_required_pcsc_tests_fail_without_pyscard(tmp_path: Path) -> None:
    result = _pytest_without_pyscard(tmp_path, "-q", "tests/pcsc", require=True)
    modules = len(list((ROOT / "tests" / "pcsc").glob("test_*.py")))
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(f"{modules} failed in ")
    assert (
        "pyscard is not installed: pip install pyscard (building it needs Debian's libpcsclite-dev and swig: "
        "apt-get install libpcsclite-dev swig) (EIDEMU_REQUIRE_PCSC is set: the PC/SC tests must run)"
    ) in result.stdout


def test_a_pcsc_card_without_pyscard_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    (tmp_path / "no_pyscard.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    code = "import sys, no_pyscard; from eidemu.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", code, "conformance", "run", "--card", "pcsc:Reader", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "eidemu: error: card URI scheme pcsc: needs smartcard (pip install 'eidemu[pcsc]' for pyscard)\n"
    )
