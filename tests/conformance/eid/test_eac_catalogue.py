"""The EAC and citizen-certificate-zone catalogue in process, through the runner as
``eidemu conformance run`` uses it, on the whole G3 eID chip (``emulator:eid-g3-valid-1``):
the EAC tests with the chip's own declaration, the zone's with ``eid-g3-valid-1-pki``.
tests/pcsc/test_eac_conformance_pcsc.py runs the same selection through pcscd + vpcd."""

from __future__ import annotations

import yaml

from eidemu.cli import main
from eidemu.conformance.runner import (
    CARDS_FILE,
    CardUnderTest,
    Outcome,
    TestResult,
    load_catalogue,
    run_tests,
    select_tests,
)
from eidemu.emulator.profile import PROFILE_DIR, load_profile

PROFILE = "emulator:eid-g3-valid-1"
PKI_SELECTION = [
    *(f"EID_PKI_{g}_*" for g in ("SELECT", "FILE", "PIN", "SIGN", "DEC", "AUTH", "KEY")),
    "EID_PKI_FLOW_01",
    "EID_PKI_FLOW_02",
]


def _run(card_config: str | None, selection: list[str]) -> list[TestResult]:
    card = CardUnderTest(PROFILE, card_config=card_config)
    try:
        return run_tests(card, select_tests(load_catalogue(), selection))
    finally:
        card.close()


def test_eac_and_pki_catalogue_passes_in_process() -> None:
    eac = _run(None, ["EAC_*"])
    pki = _run("eid-g3-valid-1-pki", PKI_SELECTION)
    results = [*eac, *pki]
    assert [(r.test.id, r.message) for r in results if r.outcome != Outcome.PASSED] == []
    assert len(eac) == 45 and len(pki) == 27
    assert len(results) >= 60
    assert {r.test.id.split("_")[1] for r in eac} == {"CVC", "TA", "CA", "PIN", "ZONE"}
    assert {r.test.id for r in eac if r.test.destructive} == {"EAC_PIN_4", "EAC_PIN_10"}


def test_every_eac_case_is_described() -> None:
    tests = select_tests(load_catalogue(), ["EAC_*"])
    assert len(tests) == 45
    for _, test in tests:
        assert test.purpose and test.spec and test.tokens == ("EID-EAC",), test.id


def test_eac_tests_do_not_apply_to_the_iso_demo_card() -> None:
    results = run_tests(CardUnderTest("emulator:iso-demo"), select_tests(load_catalogue(), ["EAC_*"]))
    assert {r.outcome for r in results} == {Outcome.NOT_APPLICABLE}


def test_eidemu_conformance_run_passes_the_eac_tests(capsys) -> None:
    assert main(["conformance", "run", "--card", PROFILE, "--select", "EAC_*", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == f"{PROFILE}: 45 tests: 45 passed"


def test_declared_eac_variables_are_those_of_the_profiles() -> None:
    """cards.yaml's EID_PIN and EID_PUK: the holder PIN 03 and PUK 04 of each chip's profile."""
    cards = yaml.safe_load(CARDS_FILE.read_text(encoding="utf-8"))["cards"]
    eac = {name: entry for name, entry in cards.items() if "EID-EAC" in entry["tokens"]}
    with_zones = [p.stem for p in PROFILE_DIR.glob("eid-*.yaml") if "type: eid\n" in p.read_text("utf-8")]
    assert sorted(eac) == sorted(with_zones) == ["eid-g3-revoked", "eid-g3-valid-1"]
    for name, entry in eac.items():
        pins = {int(str(p["ref"]), 16): p["value"] for p in load_profile(name).document["pins"]}
        assert bytes.fromhex(entry["variables"]["EID_PIN"]).decode("ascii") == str(pins[3]), name
        assert bytes.fromhex(entry["variables"]["EID_PUK"]).decode("ascii") == str(pins[4]), name
