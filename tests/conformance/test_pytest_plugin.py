"""The pytest plugin, run in a child pytest as a user would (``-p`` stands in for the entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FLOW_TEST = """
import pytest

@pytest.mark.card_tokens("PIN")
def test_select_mf(card_connection):
    assert card_connection.transmit(bytes.fromhex("00A4000C023F00")) == bytes.fromhex("9000")

@pytest.mark.card_tokens("MOICA-GEN1")
def test_needs_a_moica_card(card_connection):
    raise AssertionError("must not run on iso-demo")
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_flow.py").write_text(FLOW_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pytest", "-p", "eidemu.conformance.pytest_plugin", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "-rs", "--rootdir", str(tmp_path), *args, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_catalogue_items_run_next_to_python_flow_tests(tmp_path: Path):
    junit = tmp_path / "junit.xml"
    run = _pytest(tmp_path, "--card", "emulator:iso-demo", f"--junitxml={junit}", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    root = ET.parse(junit).getroot()
    names = {c.get("name") for c in root.iter("testcase")}
    assert {"ISO_SELECT_01", "ISO_PIN_04", "test_select_mf", "test_needs_a_moica_card"} <= names
    assert "SKIPPED [1]" in run.stdout and "NOT APPLICABLE: card lacks MOICA-GEN1" in run.stdout


def test_without_card_the_plugin_collects_nothing(tmp_path: Path):
    run = _pytest(tmp_path, "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout and "no --card given" in run.stdout


def test_markers_and_keyword_selection(tmp_path: Path):
    run = _pytest(tmp_path, "--card", "emulator:iso-demo", "-m", "conformance and not destructive", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    destructive = _pytest(tmp_path, "--card", "emulator:iso-demo", "-m", "destructive", "-q", "--co")
    listed = [line for line in destructive.stdout.splitlines() if "::" in line]
    names = sorted(line.rsplit("::", 1)[1] for line in listed)
    assert names == [
        "EAC_PIN_10",
        "EAC_PIN_4",
        *(f"EID_PKI_PIN_0{i}" for i in range(2, 7)),
        "ISO_PIN_02",
        "ISO_PIN_04",
        "ISO_UPDATE_01",
        "MOICA_PIN_02",
        "MOICA_PIN_03",
        "MOICA_PIN_04",
    ]


def test_failures_show_expected_received_and_the_apdus(tmp_path: Path):
    broken = Path(__file__).resolve().parent / "broken" / "broken-wrong-sw.yaml"
    (tmp_path / "conftest.py").write_text("import tests.conformance.broken.doubles  # noqa: F401\n")
    run = _pytest(tmp_path, "--card", f"emulator:{broken}", "--card-config", "iso-demo", "-k", "ISO_INS", "-q")
    assert run.returncode == 1
    assert "FAILED ISO_INS_01: instruction not supported" in run.stdout
    assert "expected: 6D 00" in run.stdout and "received: 6E 00 (CLA_NOT_SUPPORTED)" in run.stdout
    assert "[1] > 00 FC 00 00 00  INS_FC" in run.stdout
    assert "2 failed" in run.stdout


def test_xdist_gives_each_worker_its_own_card(tmp_path: Path):
    pytest.importorskip("xdist")
    from eidemu.conformance.pytest_plugin import card_uri_for_worker

    assert card_uri_for_worker(["a", "b"], None) == "a"
    assert card_uri_for_worker(["a", "b"], "gw0") == "a"
    assert card_uri_for_worker(["a", "b"], "gw3") == "b"
    run = _pytest(tmp_path, "--card", "emulator:iso-demo", "--card", "emulator:iso-demo", "-n", "2", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_registered_python_tests_are_items_next_to_the_script_items(tmp_path: Path):
    junit = tmp_path / "junit.xml"
    run = _pytest(
        tmp_path,
        "--card",
        "emulator:moica-g2-valid-1",
        "-k",
        "MOICA_CERT or MOICA_FLOW or test_needs_a_moica_card",
        f"--junitxml={junit}",
        "-q",
    )
    assert run.returncode == 1, run.stdout + run.stderr  # test_needs_a_moica_card raises on purpose
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    python_ids = {f"MOICA_CERT_0{i}" for i in range(2, 9)} | {f"MOICA_FLOW_0{i}" for i in range(1, 5)}
    assert python_ids | {"MOICA_CERT_01"} <= set(cases)
    for test_id in python_ids:  # passed: no failure, error or skip child
        assert list(cases[test_id]) == [] or all(c.tag == "properties" for c in cases[test_id]), test_id
    assert "moica_certificates" in cases["MOICA_CERT_06"].get("classname", "")
    assert "1 failed" in run.stdout and "must not run on iso-demo" in run.stdout


def test_served_uri_gets_the_worker_slot_and_strict_and_not_run_show(tmp_path: Path):
    from eidemu.conformance.pytest_plugin import card_uri_for_worker

    assert card_uri_for_worker(["served:iso-demo"], None) == "served:iso-demo"
    assert card_uri_for_worker(["served:iso-demo"], "gw5") == "served:iso-demo?slot=5"
    assert card_uri_for_worker(["served:iso-demo?vpcd=h:1"], "gw2") == "served:iso-demo?vpcd=h:1&slot=2"
    assert card_uri_for_worker(["served:iso-demo?slot=1"], "gw2") == "served:iso-demo?slot=1"  # given: kept
    assert card_uri_for_worker(["served:a", "served:b"], "gw3") == "served:b?slot=3"
    strict = _pytest(tmp_path, "--card", "emulator:iso-demo", "-m", "strict", "-q", "--co")
    names = sorted(line.rsplit("::", 1)[1] for line in strict.stdout.splitlines() if "::" in line)
    assert names == ["ISO_CLA_01", "ISO_LENGTH_04", "ISO_P1P2_04"]
    card = tmp_path / "bare.yaml"
    card.write_text("tokens: [ISO7816, CLA-00, SELECT-AID]\n", encoding="utf-8")
    run = _pytest(tmp_path, "--card", "emulator:iso-demo", "--card-config", str(card), "-k", "ISO_SELECT_03", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "NOT RUN: needs ${AID}: not set by the card's declaration" in run.stdout
