"""The EAC conformance flows (conformance/flows/eac.py) against the eID chip in process: all
pass on the emulator; broken doubles fail exactly the expected ones: DG3 readable without the
PIN (EAC_ZONE_2), a zone altered after signing (EAC_ZONE_9), the PIN-management right ignored
(EAC_PIN_9, 11, 13) or never granted (EAC_PIN_10, 12, 14)."""

from __future__ import annotations

import json

import pytest

from eidemu.conformance.connection import InProcessConnection
from eidemu.conformance.flows import eac as flows
from eidemu.conformance.pythontests import REGISTRY, CheckFailed, FlowContext, RecordingConnection
from eidemu.emulator.applets.eid import EidApplication
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.fs import TransparentEF
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
    """None when the test passes, else the failure message and what was received."""
    connection = RecordingConnection(InProcessConnection(target), lambda *_: None, flows.__file__)
    try:
        REGISTRY[test_id].function(FlowContext(connection, VARIABLES, "eid"))
    except CheckFailed as exc:
        return f"{exc} (received {exc.received})"
    return None


def test_catalogue_has_the_units() -> None:
    assert len(EAC_IDS) == 45
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


def test_a_zone_altered_after_signing_fails_exactly_zone_9() -> None:
    broken = card()
    app = next(a for a in broken.applications.values() if isinstance(a, EidApplication))
    dg5 = app.df.children[0x0105]
    assert isinstance(dg5, TransparentEF) and dg5.data[:1] == b"\x65"
    dg5.data[-1] = 0x80 + (dg5.data[-1] - 0x80 + 1) % 0x40  # another UTF-8 continuation byte: another name
    failed = {test_id: message for test_id in EAC_IDS if (message := run(test_id, broken)) is not None}
    assert list(failed) == ["EAC_ZONE_9"]
    assert "DG5: the sha256 of DG5 differs from EF.SOD's" in failed["EAC_ZONE_9"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # any PACE session may manage the PIN: the cases of a terminal without the right fail
        ("auth:01", ["EAC_PIN_11", "EAC_PIN_13", "EAC_PIN_9"]),
        # nobody may: the cases of a terminal with the right fail
        ("never", ["EAC_PIN_10", "EAC_PIN_12", "EAC_PIN_14"]),
    ],
)
def test_a_chip_that_misjudges_the_pin_management_right_fails_exactly(condition: str, expected: list[str]) -> None:
    broken = card()
    pin = broken.pins[0x03]
    assert str(pin.change) == str(pin.unblock) == "auth:01&ta:05"
    pin.change = pin.unblock = AccessCondition.parse(condition)
    failed = [test_id for test_id in EAC_IDS if run(test_id, broken) is not None]
    assert failed == expected
