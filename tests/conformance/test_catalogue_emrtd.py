"""The eMRTD catalogue (emrtd-*.apdu, conformance/flows/emrtd_*.py) against the shipped eID
chips, and the broken doubles of tests/conformance/broken/emrtd_doubles.py, each failing
exactly the tests its defect should fail."""

from __future__ import annotations

import pytest
import yaml

from eidemu.cli import main
from eidemu.conformance.pythontests import python_test_for
from eidemu.conformance.runner import CARDS_FILE, CardUnderTest, Outcome, declaration_for, run_tests, select_tests
from eidemu.emulator.profile import PROFILE_DIR, load_profile

from .broken.emrtd_doubles import build_emrtd_double


@pytest.mark.parametrize("profile", ["eid-g2-valid-1", "eid-g2-valid-1-aa-ecdsa"])
def test_the_emrtd_catalogue_passes_on_the_eid_chip(catalogue, profile):
    results = run_tests(CardUnderTest(f"emulator:{profile}"), select_tests(catalogue))
    emrtd = [r for r in results if r.test.id.startswith("EMRTD_") and r.outcome != Outcome.NOT_APPLICABLE]
    assert len(emrtd) >= 80
    assert [(r.test.id, r.message) for r in emrtd if r.outcome != Outcome.PASSED] == []
    units = {r.test.id.split("_")[1] for r in emrtd}
    assert units == {"ISO7816", "BAC", "PACE", "SM", "LDS", "PA", "CA", "AA"}
    assert {r.outcome for r in results if r not in emrtd} == {Outcome.NOT_APPLICABLE}
    aa = "EMRTD_AA_A_2" if profile.endswith("ecdsa") else "EMRTD_AA_A_1"
    assert aa in {r.test.id for r in emrtd}
    # every PACE parameter set with both passwords
    assert {f"EMRTD_PACE_{u}_{n}" for u in "BC" for n in range(1, 9)} <= {r.test.id for r in emrtd}


def test_the_emrtd_catalogue_passes_on_the_chip_with_the_eac_zones(catalogue):
    """eid-g3-valid-1: EF.COM lists and EF.SOD hashes DG3-DG9 and DG13, which answer 69 82
    without EAC; every applicable eMRTD test passes (read_lds records them as protected)."""
    results = run_tests(CardUnderTest("emulator:eid-g3-valid-1"), select_tests(catalogue, ["EMRTD_*"]))
    applicable = [r for r in results if r.outcome != Outcome.NOT_APPLICABLE]
    assert len(applicable) >= 80
    assert [(r.test.id, r.message) for r in applicable if r.outcome != Outcome.PASSED] == []
    assert {"EMRTD_LDS_A_2", "EMRTD_LDS_A_3", "EMRTD_PA_B_20", "EMRTD_BAC_B_3", "EMRTD_PACE_A_10"} <= {
        r.test.id for r in applicable
    }
    units = {r.test.id.split("_")[1] for r in applicable}
    assert units == {"ISO7816", "BAC", "PACE", "SM", "LDS", "PA", "CA", "AA"}


def test_eidemu_conformance_run_exits_0_on_the_eid_chip(capsys):
    assert main(["conformance", "run", "--card", "emulator:eid-g2-valid-1", "--quiet"]) == 0
    assert "failed" not in capsys.readouterr().out


def test_emrtd_tests_do_not_apply_to_the_iso_demo_card(catalogue):
    results = run_tests(CardUnderTest("emulator:iso-demo"), select_tests(catalogue, ["EMRTD_*"]))
    assert {r.outcome for r in results} == {Outcome.NOT_APPLICABLE}


# Tests that still pass when the chip's secure-messaging responses cannot be verified: they
# never need a verified protected answer (a refused password, a command the chip must refuse
# before it answers anything protected, EF.CardAccess in plain).
NO_VERIFIED_RESPONSE = {
    "EMRTD_BAC_B_2",
    "EMRTD_PACE_E_1",
    "EMRTD_PACE_E_2",
    "EMRTD_PACE_E_3",
    "EMRTD_SM_B_6",
    "EMRTD_LDS_I_1",
}
# With a chip that skips an SSC value after each response, a session's first protected
# exchange still verifies: these tests need no more than that.
ONE_PROTECTED_EXCHANGE = NO_VERIFIED_RESPONSE | {
    "EMRTD_BAC_B_1",
    "EMRTD_PACE_E_4",
    "EMRTD_LDS_I_2",
    "EMRTD_SM_A_6",
    "EMRTD_SM_B_1",
    "EMRTD_SM_B_2",
    "EMRTD_SM_B_3",
    "EMRTD_SM_B_7",
}


@pytest.mark.parametrize(
    ("defect", "failing", "message"),
    [
        ("dg-hash", {"EMRTD_PA_B_12", "EMRTD_PA_B_20"}, "the sha256 of DG12 differs from EF.SOD's"),
        ("ds-expired", {"EMRTD_PA_C_2"}, "the Document Signer is valid "),
        ("ds-revoked", {"EMRTD_PA_C_3"}, "the Document Signer is revoked (keyCompromise)"),
        ("bad-mac", NO_VERIFIED_RESPONSE, "response MAC does not verify"),
        ("ssc-step", ONE_PROTECTED_EXCHANGE, "69 88"),
        # behind EAC: the eMRTD tests cannot read DG5, the EAC case that reads the zones fails
        ("zone-altered", {"EAC_ZONE_9"}, "DG5: the sha256 of DG5 differs from EF.SOD's"),
    ],
)
def test_broken_emrtd_doubles_fail_exactly_the_expected_tests(catalogue, tmp_path, defect, failing, message):
    zones = defect == "zone-altered"
    declaration = declaration_for(f"emulator:eid-g{3 if zones else 2}-valid-1", None)
    profile = build_emrtd_double(defect, tmp_path)
    selection = ["EMRTD_*", "EAC_*"] if zones else ["EMRTD_*"]
    results = run_tests(CardUnderTest(f"emulator:{profile}", declaration), select_tests(catalogue, selection))
    applicable = [r for r in results if r.outcome != Outcome.NOT_APPLICABLE]
    failed = {r.test.id for r in results if r.outcome == Outcome.FAILED}
    if defect in ("bad-mac", "ssc-step"):
        # the secure-messaging defects: every Python test that needs more than `failing` allows
        python = {r.test.id for r in applicable if python_test_for(r.test) is not None}
        assert failing <= python
        failing = python - failing
    assert failed == failing
    assert {r.outcome for r in applicable if r.test.id not in failing} == {Outcome.PASSED}
    text = " ".join(f"{r.message} {r.received}" for r in results if r.outcome == Outcome.FAILED)
    assert message in text


# The eID chips with their ICAO zone (eid-pki-* profiles are the citizen-certificate zone alone).
EID_PROFILES = sorted(p.stem for p in PROFILE_DIR.glob("eid-*.yaml") if not p.stem.startswith("eid-pki-"))


@pytest.mark.parametrize("profile", EID_PROFILES)
def test_declared_passwords_and_tokens_are_those_of_the_profile(profile):
    """cards.yaml's CAN, MRZ information and PACE tokens, recomputed from the profile's options."""
    entry = yaml.safe_load(CARDS_FILE.read_text(encoding="utf-8"))["cards"][profile]
    options = load_profile(profile).document["applications"][0]["options"]
    assert bytes.fromhex(entry["variables"]["CAN"]).decode("ascii") == options["can"]
    assert bytes.fromhex(entry["variables"]["MRZ_INFORMATION"]).decode("ascii") == options["mrz_information"]
    cipher = {"3DES": "3DES", "AES-128": "AES128", "AES-192": "AES192", "AES-256": "AES256"}
    offered = {
        f"PACE-{p['mapping'].replace('ECDH-CAM', 'CAM')}-{cipher[p['cipher']]}-{p['parameter_id']}"
        for p in options["pace"]
    }
    assert {t for t in entry["tokens"] if t.startswith("PACE-") and t.count("-") >= 3} == offered
    aa = options["active_authentication"]["algorithm"]
    assert ("AA-RSA" if aa.startswith("rsa") else "AA-ECDSA") in entry["tokens"]
