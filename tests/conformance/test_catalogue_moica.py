"""The MOICA catalogue against every shipped MOICA profile, and the declarations it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import load_der_x509_certificate

from conformance.moica import TEST_TRANSPORT_KEY, MoicaCard, pin_block, protect_pin_data
from conformance.runner import CARDS_FILE, CardUnderTest, Outcome, run_tests, select_tests
from emulator.profile import PROFILE_DIR, load_profile

MOICA_PROFILES = sorted(p.stem for p in PROFILE_DIR.glob("moica-*.yaml"))


@pytest.mark.parametrize("profile", MOICA_PROFILES)
def test_moica_tests_pass_and_iso_tests_do_not_apply(catalogue, profile):
    # The whole catalogue on one profile; the others run MOICA_* and one ISO test (cards are slow to build).
    selection = [] if profile == MOICA_PROFILES[0] else ["MOICA_*", "ISO_SELECT_01"]
    results = run_tests(CardUnderTest(f"emulator:{profile}"), select_tests(catalogue, selection))
    moica = [r for r in results if r.test.id.startswith("MOICA_")]
    assert len(moica) >= 18
    assert [(r.test.id, r.message) for r in moica if r.outcome != Outcome.PASSED] == []
    others = {r.outcome for r in results if not r.test.id.startswith("MOICA_")}
    assert others == {Outcome.NOT_APPLICABLE}


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
    from conformance.runner import CATALOGUE_DIR

    assert Path(CATALOGUE_DIR / "moica-gen1.apdu").exists()
