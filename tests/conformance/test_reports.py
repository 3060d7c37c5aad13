"""JUnit XML and the HTML report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from eidemu.conformance.reports import html_report, junit_xml
from eidemu.conformance.runner import CardDeclaration, CardUnderTest, Outcome, run_tests, select_tests


def _mixed_results(catalogue, broken_card):
    """FAILED (wrong SW), NOT APPLICABLE (no GET-CHALLENGE) and PASSED, in file order."""
    card = broken_card("broken-wrong-sw")
    tokens = card.declaration.tokens - {"GET-CHALLENGE"}
    card.declaration = CardDeclaration("broken", tokens, card.declaration.variables)
    return run_tests(card, select_tests(catalogue, ["ISO_CLA_*", "ISO_INS_*", "ISO_DATA_01", "ISO_P1P2_04"]))


def test_junit_is_well_formed_with_the_right_counts(catalogue, broken_card):
    results = _mixed_results(catalogue, broken_card)
    root = ET.fromstring(junit_xml(results))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "2", "0", "2")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"ISO_CLA", "ISO_INS", "ISO_DATA", "ISO_P1P2"}
    assert suites["ISO_INS"].get("failures") == "2"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 7
    failure = cases["ISO_INS_01"].find("failure")
    assert failure is not None
    assert "expected 6D 00, received 6E 00" in failure.get("message", "")
    assert "expected: 6D 00" in (failure.text or "")
    skipped = cases["ISO_DATA_01"].find("skipped")
    assert skipped is not None and skipped.get("message") == "NOT APPLICABLE: card lacks GET-CHALLENGE"
    assert cases["ISO_CLA_01"].find("failure") is None and cases["ISO_CLA_01"].find("skipped") is None
    assert cases["ISO_CLA_01"].get("line") == "7"


def test_html_report_lists_failures_first_and_decodes_steps(catalogue, broken_card):
    results = _mixed_results(catalogue, broken_card)
    page = html_report(results, "emulator:broken-wrong-sw")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    order = [page.index(f'<details id="{t}"') for t in ("ISO_INS_01", "ISO_INS_02", "ISO_CLA_01", "ISO_DATA_01")]
    assert order == sorted(order)
    failing = page[order[0] : order[1]]
    assert '<details id="ISO_INS_01" open>' in failing
    assert "00 FC 00 00 00" in failing and "6E00 CLA_NOT_SUPPORTED" in failing
    assert "status word: expected 6D 00, received 6E 00 (CLA_NOT_SUPPORTED)" in failing


def test_html_report_masks_pins(catalogue):
    results = run_tests(CardUnderTest("emulator:iso-demo"), select_tests(catalogue, ["ISO_PIN_03"]))
    assert results[0].outcome == Outcome.PASSED
    page = html_report(results, "emulator:iso-demo")
    assert "00 20 00 01 08 ** ** ** ** ** ** ** **" in page
    assert "31 32 33 34 35 36" not in page
