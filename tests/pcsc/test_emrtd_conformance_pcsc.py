"""The eMRTD catalogue through the real stack: the harness serves the eID chip into pcscd's
vpcd reader (``served:``) and every APDU, PACE and secure messaging included, goes through
pyscard, pcscd and vpcd."""

from __future__ import annotations

import pytest

from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

from .conftest import READER0, wait_for_card


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.mark.parametrize("profile", ["eid-g2-valid-1", "eid-g2-valid-1-aa-ecdsa"])
def test_emrtd_catalogue_passes_through_pcscd_and_vpcd(stack, catalogue, profile):
    card = CardUnderTest(f"served:{profile}?vpcd=localhost:{stack.port}&slot=0")
    try:
        assert card.emulated and card.description == f"served:{profile} in pcsc:{READER0}"
        results = run_tests(card, select_tests(catalogue, ["EMRTD_*"]))
    finally:
        card.close()
    applicable = [r for r in results if r.outcome != Outcome.NOT_APPLICABLE]
    assert len(applicable) >= 80
    assert [(r.test.id, r.message) for r in applicable if r.outcome != Outcome.PASSED] == []
    ids = {r.test.id for r in applicable}
    assert {"EMRTD_PACE_B_7", "EMRTD_SM_B_4", "EMRTD_PA_B_20", "EMRTD_CA_A_2"} <= ids
    wait_for_card(READER0, present=False)
