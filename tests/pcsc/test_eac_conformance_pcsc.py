"""The EAC and citizen-certificate-zone catalogue through the real stack: the harness serves
the whole G3 eID chip (``served:eid-g3-valid-1``) into pcscd's vpcd reader and every APDU,
PACE, TA, CA v2, the PIN and secure messaging included, goes through pyscard, pcscd and vpcd.
The EAC tests run with the chip's own declaration (fixtures/conformance/cards.yaml), the
zone's tests with ``eid-g3-valid-1-pki`` (its PIN and tokens); the OCSP flow needs the local
services and stays with tests/pcsc/test_eid_pki_opensc.py."""

from __future__ import annotations

from eidemu.conformance.runner import CardUnderTest, Outcome, TestResult, load_catalogue, run_tests, select_tests

from .conftest import READER0, wait_for_card

PROFILE = "eid-g3-valid-1"
PKI_SELECTION = [
    *(f"EID_PKI_{g}_*" for g in ("SELECT", "FILE", "PIN", "SIGN", "DEC", "AUTH", "KEY")),
    "EID_PKI_FLOW_01",
    "EID_PKI_FLOW_02",
]


def _run(port: int, card_config: str | None, selection: list[str]) -> list[TestResult]:
    card = CardUnderTest(f"served:{PROFILE}?vpcd=localhost:{port}&slot=0", card_config=card_config)
    try:
        assert card.emulated and card.description == f"served:{PROFILE} in pcsc:{READER0}"
        return run_tests(card, select_tests(load_catalogue(), selection))
    finally:
        card.close()
        wait_for_card(READER0, present=False)


def test_eac_and_pki_catalogue_passes_through_pcscd_and_vpcd(stack) -> None:
    eac = _run(stack.port, None, ["EAC_*"])
    pki = _run(stack.port, "eid-g3-valid-1-pki", PKI_SELECTION)
    applicable = [r for r in [*eac, *pki] if r.outcome != Outcome.NOT_APPLICABLE]
    assert [(r.test.id, r.message) for r in applicable if r.outcome != Outcome.PASSED] == []
    assert len([r for r in eac if r.outcome == Outcome.PASSED]) == 45
    assert len(applicable) >= 60
    units = {r.test.id.split("_")[1] for r in eac}
    assert units == {"CVC", "TA", "CA", "PIN", "ZONE"}
    assert {"EAC_PIN_4", "EID_PKI_PIN_03", "EID_PKI_FLOW_01"} <= {r.test.id for r in applicable}
