"""The MOICA catalogue against every shipped MOICA profile, and the declarations it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import load_der_x509_certificate

from eidemu.conformance.moica import TEST_TRANSPORT_KEY, MoicaCard, pin_block, protect_pin_data
from eidemu.conformance.runner import CARDS_FILE, CardUnderTest, Outcome, declaration_for, run_tests, select_tests
from eidemu.emulator.profile import PROFILE_DIR, load_profile

MOICA_PROFILES = sorted(p.stem for p in PROFILE_DIR.glob("moica-*.yaml"))


VALID_PROFILES = ["moica-g2-valid-1", "moica-g2-valid-2", "moica-g3-valid-1"]


@pytest.mark.parametrize("profile", VALID_PROFILES)
def test_moica_tests_pass_and_iso_tests_do_not_apply(catalogue, profile):
    # The whole catalogue on one profile; the others run MOICA_* and one ISO test (cards are slow to build).
    selection = [] if profile == VALID_PROFILES[0] else ["MOICA_*", "ISO_SELECT_01"]
    results = run_tests(CardUnderTest(f"emulator:{profile}"), select_tests(catalogue, selection))
    moica = [r for r in results if r.test.id.startswith("MOICA_")]
    assert len(moica) >= 29
    assert {r.test.id for r in moica} >= {f"MOICA_CERT_0{i}" for i in range(1, 9)} | {
        f"MOICA_FLOW_0{i}" for i in range(1, 5)
    }
    assert [(r.test.id, r.message) for r in moica if r.outcome != Outcome.PASSED] == []
    others = {r.outcome for r in results if not r.test.id.startswith("MOICA_")}
    assert others == {Outcome.NOT_APPLICABLE}


# The test PKI's unusable cards: the card interface is fine, the certificates are not. Exactly
# the validity and chain tests fail, each saying why.
UNUSABLE = {
    "moica-g2-expired": ({"MOICA_CERT_07", "MOICA_FLOW_03", "MOICA_FLOW_04"}, "ExpiredError"),
    "moica-g2-not-yet-valid": ({"MOICA_CERT_07", "MOICA_FLOW_03", "MOICA_FLOW_04"}, "NotYetValidError"),
    "moica-g2-revoked": (
        {"MOICA_FLOW_03", "MOICA_FLOW_04"},
        "OCSP response indicates the end-entity certificate was revoked",
    ),
    "moica-g3-revoked": ({"MOICA_FLOW_03", "MOICA_FLOW_04"}, "CRL indicates the end-entity certificate was revoked"),
    "moica-lookalike": (
        {"MOICA_FLOW_03", "MOICA_FLOW_04"},
        "signature of intermediate certificate 1 could not be verified",
    ),
}


@pytest.mark.parametrize("profile", sorted(UNUSABLE))
def test_unusable_cards_fail_exactly_validity_and_chain_tests(catalogue, profile):
    assert profile in MOICA_PROFILES
    failing, message = UNUSABLE[profile]
    selection = ["MOICA_CERT_*", "MOICA_FLOW_*", "MOICA_PIN_01"]
    results = run_tests(CardUnderTest(f"emulator:{profile}"), select_tests(catalogue, selection))
    assert {r.test.id for r in results if r.outcome == Outcome.FAILED} == failing
    assert {r.outcome for r in results if r.test.id not in failing} == {Outcome.PASSED}
    assert message in " ".join(r.message for r in results if r.outcome == Outcome.FAILED)
    if "MOICA_CERT_07" in failing:
        (validity,) = [r for r in results if r.test.id == "MOICA_CERT_07"]
        assert validity.message.startswith("signature certificate is not valid now")
        assert validity.received in ("expired", "not yet valid")


def test_moica_tests_do_not_apply_to_the_iso_demo_card(catalogue):
    results = run_tests(CardUnderTest("emulator:iso-demo"), select_tests(catalogue, ["MOICA_*"]))
    assert {r.outcome for r in results} == {Outcome.NOT_APPLICABLE}
    assert results[0].message == "card lacks MOICA-GEN1"


@pytest.mark.parametrize("profile", MOICA_PROFILES)
def test_declared_pin_cryptograms_are_those_of_the_profile_pin(profile):
    """cards.yaml holds IV 00..07 || cryptogram; recompute it from the profile's PIN."""
    entry = yaml.safe_load(CARDS_FILE.read_text())["cards"][profile]
    pin = load_profile(profile).document["pins"][0]["value"]
    iv = bytes(range(8))
    assert bytes.fromhex(entry["variables"]["PIN_VERIFY_OK"]) == protect_pin_data(
        TEST_TRANSPORT_KEY, iv, pin_block(pin)
    )
    wrong = protect_pin_data(TEST_TRANSPORT_KEY, iv, pin_block("000000"))
    assert bytes.fromhex(entry["variables"]["PIN_VERIFY_WRONG"]) == wrong


def test_the_masked_signature_of_moica_key_03_verifies(catalogue):
    """MOICA_KEY_03 masks the signature; check it here against the signature certificate."""
    card = CardUnderTest("emulator:moica-g2-valid-1")
    (result,) = run_tests(card, select_tests(catalogue, ["MOICA_KEY_03"]))
    assert result.outcome == Outcome.PASSED
    signature = next(s.response[:-2] for s in result.steps if s.command == bytes.fromhex("80C1000000"))
    client = MoicaCard(card.fresh())
    der = client.certificate(b"SIGN").dump()
    public_key = load_der_x509_certificate(der).public_key()
    public_key.verify(signature, bytes(range(32)), padding.PKCS1v15(), _prehashed())  # type: ignore[union-attr]


def _prehashed():
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    return Prehashed(hashes.SHA256())


def test_catalogue_files_are_package_data():
    from eidemu.conformance.runner import CATALOGUE_DIR

    assert Path(CATALOGUE_DIR / "moica-gen1.apdu").exists()


@pytest.mark.parametrize(
    ("defect", "failing", "message", "expected", "received"),
    [
        (
            "no-sda",
            "MOICA_CERT_06",
            "signature certificate has no Subject Directory Attributes extension (2.5.29.9)",
            "2.5.29.9 with 2.16.886.1.100.2.51",
            "absent",
        ),
        (
            "extra-key-usage",
            "MOICA_CERT_05",
            "signature certificate keyUsage asserts other bits than a signature key needs",
            "content_commitment, digital_signature",
            "content_commitment, digital_signature, key_encipherment",
        ),
    ],
)
def test_a_wrong_certificate_field_fails_exactly_its_profile_test(
    catalogue, tmp_path, defect, failing, message, expected, received
):
    from .broken.moica_doubles import build_moica_double

    profile = build_moica_double(defect, tmp_path)
    card = CardUnderTest(f"emulator:{profile}", declaration_for("emulator:moica-g2-valid-1", None))
    results = run_tests(card, select_tests(catalogue, ["MOICA_*"]))
    assert len(results) >= 29
    assert [(r.test.id, r.message, r.expected, r.received) for r in results if r.outcome != Outcome.PASSED] == [
        (failing, message, expected, received)
    ]
