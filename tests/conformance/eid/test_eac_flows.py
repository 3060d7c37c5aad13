"""The EAC conformance flows (conformance/flows/eac.py) against the eID chip in process: all
pass on the emulator; a broken double (DG3 readable without the PIN) fails exactly EAC_ZONE_2."""

from __future__ import annotations

import json

import pytest

from eidemu.conformance.connection import InProcessConnection
from eidemu.conformance.flows import eac as flows
from eidemu.conformance.pythontests import REGISTRY, CheckFailed, FlowContext, RecordingConnection
from eidemu.emulator.applets.eid import EidApplication
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.security import AccessCondition, AccessOperation
from eidemu.emulator.pki.eac_zones import holder_pin, holder_puk
from eidemu.emulator.profile import PROFILE_DIR, load_profile
from eidemu.fixtures import fixture_path

IDENTITY = json.loads(fixture_path("pki", "identities", "g3-valid-1", "identity.json").read_text("utf-8"))
VARIABLES = {
    "CAN": IDENTITY["card_number"][-6:].encode(),
    "EID_PIN": holder_pin(IDENTITY["national_id"]).encode(),
    "EID_PUK": holder_puk(IDENTITY["national_id"]).encode(),
}
EAC_IDS = sorted(test_id for test_id in REGISTRY if test_id.startswith("EAC_"))


def card() -> Card:
    return load_profile(PROFILE_DIR / "eid-g3-valid-1.yaml").build()


def run(test_id: str, target: Card) -> str | None:
    """None when the test passes, else the failure message."""
    connection = RecordingConnection(InProcessConnection(target), lambda *_: None, flows.__file__)
    try:
        REGISTRY[test_id].function(FlowContext(connection, VARIABLES, "eid"))
    except CheckFailed as exc:
        return str(exc)
    return None


def test_catalogue_has_the_units() -> None:
    assert len(EAC_IDS) == 38
    assert {i.split("_")[1] for i in EAC_IDS} == {"CVC", "TA", "CA", "PIN", "ZONE"}


@pytest.mark.parametrize("test_id", EAC_IDS)
def test_every_flow_passes_on_the_emulator(test_id: str) -> None:
    assert run(test_id, card()) is None


def test_a_chip_without_the_pin_check_fails_exactly_zone_2() -> None:
    broken = card()
    app = next(a for a in broken.applications.values() if isinstance(a, EidApplication))
    app.df.children[0x0103].access[AccessOperation.READ] = AccessCondition.parse("auth:01&ta:DG3")
    failed = [test_id for test_id in EAC_IDS if run(test_id, broken) is not None]
    assert failed == ["EAC_ZONE_2"]
