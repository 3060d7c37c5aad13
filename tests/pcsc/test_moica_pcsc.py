"""The MOICA generation-1 card through the real stack: pcscd + vpcd + pyscard.

The same relying-party flows as tests/applets/test_moica_flows.py, now over PC/SC, plus
Debian's ``pcsc_scan`` naming the card from its ATR (pcsc-tools smartcard_list.txt).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from eidemu.cards import insert_card
from eidemu.conformance.moica import InvalidPinError, MoicaCard, PinBlockedError, PinStatus
from eidemu.conformance.pcsc import PcscConnection
from eidemu.emulator.pki.store import TestPki
from eidemu.emulator.profile import load_profile
from eidemu.fixtures import fixture_path
from tests.openssl_cms import openssl_cms_verify

from .conftest import READER0, pcsc_tools_env, wait_for_card

ROOT = Path(__file__).resolve().parents[2]
SLUG = "g2-valid-1"
IDENTITY = TestPki.load(fixture_path("pki")).identities[SLUG].identity
ATR_TEXT = "3B B8 13 00 81 31 FA 52 43 48 54 4D 4F 49 43 41 A5"


@pytest.fixture
def moica_card(slots, tmp_path):
    """A fresh g2-valid-1 card with a state file, present in slot 0."""
    card = load_profile(f"moica-{SLUG}").build(tmp_path / "state.json")
    insert_card(slots, 0, card)
    return card


def test_pcsc_scan_names_the_card_from_its_atr(moica_card):
    result = subprocess.run(["pcsc_scan", "-t", "2"], env=pcsc_tools_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"ATR: {ATR_TEXT}" in result.stdout
    assert "citizen digital certificate (PKI)" in result.stdout


def test_select_and_class_rule_over_pcsc(moica_card):
    with PcscConnection(READER0) as conn:
        assert conn.atr.hex(" ").upper() == ATR_TEXT
        assert conn.transmit(bytes.fromhex("80A40000023F00")) == b"\x90\x00"
        assert conn.transmit(bytes.fromhex("00A40000023F00")) == b"\x6e\x00"
        assert conn.transmit(bytes.fromhex("80A40000025015")) == b"\x6a\x82"


def test_relying_party_flow_over_pcsc(moica_card):
    with PcscConnection(READER0) as conn:
        client = MoicaCard(conn)
        assert client.card_number() == IDENTITY.card_number
        assert client.is_moica()
        assert {k.id for k in client.private_keys()} == {b"SIGN", b"KEYX"}
        sign_cert = x509.load_der_x509_certificate(client.certificate(b"SIGN").dump())
        enc_cert = x509.load_der_x509_certificate(client.certificate(b"KEYX").dump())
        n, _ = client.public_key(client.key_reference(b"SIGN"))
        assert n == sign_cert.public_key().public_numbers().n  # type: ignore[union-attr]
        client.verify_pin(IDENTITY.initial_pin)
        signature = client.sign_sha256(client.key_reference(b"SIGN"), hashlib.sha256(b"over pcsc").digest())
        sign_cert.public_key().verify(signature, b"over pcsc", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg, arg-type]
        ciphertext = enc_cert.public_key().encrypt(b"key", padding.PKCS1v15())  # type: ignore[union-attr, call-arg]
        assert client.decrypt(client.key_reference(b"KEYX"), ciphertext) == b"key"


def test_cms_signature_made_over_pcsc_verifies_with_openssl(moica_card, tmp_path):
    document = "報稅文件 — signed through pcscd + vpcd\n".encode()
    with PcscConnection(READER0) as conn:
        client = MoicaCard(conn)
        client.verify_pin(IDENTITY.initial_pin)
        signer = client.certificate(b"SIGN")
        signature = client.cms_sign_detached(
            document, signer, [client.certificate(b"CA")], client.key_reference(b"SIGN")
        )
    cas = [ROOT / "fixtures/pki/ca/root-g2.cert.pem", ROOT / "fixtures/pki/ca/moica-g2.cert.pem"]
    ok, stderr = openssl_cms_verify(signature, document, cas, tmp_path)
    assert ok, stderr
    assert not openssl_cms_verify(signature, document.replace(b"pcscd", b"PCSCD"), cas, tmp_path)[0]


def test_wrong_pins_block_and_survive_reset_and_restart(moica_card, slots, tmp_path):
    with PcscConnection(READER0) as conn:
        client = MoicaCard(conn)
        with pytest.raises(InvalidPinError) as first:
            client.verify_pin("000000")
        assert first.value.attempts_remaining == 2
        conn.reset()
        assert client.pin_status() == PinStatus(verified=False, tries_left=2)  # a warm reset does not give the try back
        with pytest.raises(InvalidPinError):
            client.verify_pin("000001")
        with pytest.raises(PinBlockedError):
            client.verify_pin("000002")
    # "restart": a new card object built from the profile and the same state file
    slots.remove(0)
    wait_for_card(READER0, present=False)
    restarted = load_profile(f"moica-{SLUG}").build(tmp_path / "state.json")
    slots.insert(0, restarted)
    wait_for_card(READER0)
    with PcscConnection(READER0) as conn:
        client = MoicaCard(conn)
        assert client.pin_status() == PinStatus(verified=False, tries_left=0)
        with pytest.raises(PinBlockedError):
            client.verify_pin(IDENTITY.initial_pin)
