"""The whole catalogue through the real stack: the harness serves the emulator into pcscd's
vpcd reader (``served:``) and sends every APDU through pyscard, pcscd and vpcd.

Destructive tests run too: the harness rebuilds a served card from its profile before each
test. The same reader opened as a plain ``pcsc:`` card is a card the harness does not own,
so there destructive tests are SKIPPED unless allowed.
"""

from __future__ import annotations

import pytest

from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

from .conftest import READER0, wait_for_card


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.mark.parametrize(
    ("profile", "prefix", "minimum"),
    [("iso-demo", "ISO_", 50), ("moica-g2-valid-1", "MOICA_", 29)],
)
def test_catalogue_passes_through_pcscd_and_vpcd(stack, catalogue, profile, prefix, minimum):
    card = CardUnderTest(f"served:{profile}?vpcd=localhost:{stack.port}&slot=0")
    try:
        assert card.emulated and card.description == f"served:{profile} in pcsc:{READER0}"
        results = run_tests(card, select_tests(catalogue))
    finally:
        card.close()
    applicable = [r for r in results if r.test.id.startswith(prefix)]
    assert len(applicable) >= minimum
    assert [(r.test.id, r.message) for r in applicable if r.outcome != Outcome.PASSED] == []
    assert {r.outcome for r in results if r not in applicable} == {Outcome.NOT_APPLICABLE}
    destructive = [r for r in applicable if r.test.destructive]
    assert destructive and all(r.outcome == Outcome.PASSED for r in destructive)  # rebuilt, so allowed
    if prefix == "MOICA_":
        assert {"MOICA_PIN_03", "MOICA_FLOW_03", "MOICA_FLOW_04"} <= {r.test.id for r in applicable}
    wait_for_card(READER0, present=False)


def test_a_card_the_harness_does_not_serve_skips_destructive_tests(demo_card, catalogue):
    card = CardUnderTest(f"pcsc:{READER0}")
    try:
        assert not card.emulated
        results = run_tests(card, select_tests(catalogue, ["ISO_PIN_01", "ISO_PIN_04"]))
    finally:
        card.close()
    assert [(r.test.id, r.outcome) for r in results] == [
        ("ISO_PIN_01", Outcome.PASSED),
        ("ISO_PIN_04", Outcome.SKIPPED),
    ]


def test_a_served_card_is_rebuilt_between_tests(stack, catalogue):
    # ISO_PIN_04 blocks the PIN; ISO_PIN_01 then expects the full counter again.
    selected = select_tests(catalogue, ["ISO_PIN_04"]) + select_tests(catalogue, ["ISO_PIN_01"])
    card = CardUnderTest(f"served:iso-demo?vpcd=localhost:{stack.port}&slot=1")
    try:
        results = run_tests(card, selected)
        assert [r.outcome for r in results] == [Outcome.PASSED, Outcome.PASSED]
        assert card.fresh().transmit(bytes.fromhex("00200001")) == bytes.fromhex("63C3")
    finally:
        card.close()
