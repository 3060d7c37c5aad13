"""The eID chip's citizen-certificate zone (eid-pki) at the APDU level: exact bytes and SWs.

Behaviour: emulator/applets/eid_pki.py and docs/eid.md ("Citizen-certificate zone").
Cards are built from the committed generated profile eid-g3-valid-1.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, utils

from eidemu.emulator.applets.eid_pki import PKCS15_AID, EidPkiApplication
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.formats import pkcs15
from eidemu.emulator.profile import ProfileError, load_profile

from .conftest import identity_dir, private_key

SLUG = "g3-valid-1"
PIN = json.loads((identity_dir(SLUG) / "identity.json").read_text(encoding="utf-8"))["initial_pin"]
PUK = "12345678"
SELECT_AID = "00A4040C0C" + PKCS15_AID.hex().upper()
SHA256_PREFIX = "3031300D060960864801650304020105000420"
MESSAGE = b"eidemu TEST message"
DIGEST_INFO = SHA256_PREFIX + hashlib.sha256(MESSAGE).hexdigest().upper()


def apdu_hex(cla_ins_p1_p2: str, data: str = "", le: str = "") -> str:
    body = bytes.fromhex(data)
    lc = f"{len(body):02X}" if body else ""
    return cla_ins_p1_p2 + lc + data + le


def pin_hex(pin: str) -> str:
    return pin.encode().hex().upper()


@pytest.fixture(scope="module")
def profile():  # type: ignore[no-untyped-def]
    return load_profile(f"eid-{SLUG}")


@pytest.fixture
def card(profile) -> Card:  # type: ignore[no-untyped-def]
    return profile.build()


@pytest.fixture
def send(card: Card):  # type: ignore[no-untyped-def]
    """Send hex, get hex back (data + SW), upper case."""

    def transmit(apdu: str) -> str:
        return card.transmit(bytes.fromhex(apdu.replace(" ", ""))).hex().upper()

    return transmit


@pytest.fixture
def zone(send):  # type: ignore[no-untyped-def]
    assert send(SELECT_AID) == "9000"
    return send


@pytest.fixture
def logged_in(zone):  # type: ignore[no-untyped-def]
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "9000"
    return zone


def mse(template: str, key: int, alg: str = "", p1: str = "41") -> str:
    data = f"8401{key:02X}" + (f"8001{alg}" if alg else "")
    return apdu_hex(f"0022{p1}{template}", data)


def sign_public(ref: int):  # type: ignore[no-untyped-def]
    return private_key(SLUG, "sign" if ref == 1 else "enc").public_key()


# -- the application and its files ----------------------------------------------------------


def test_profile_carries_the_zone(card: Card) -> None:
    app = card.application_for(PKCS15_AID, partial=False)
    assert isinstance(app, EidPkiApplication)
    assert app.df.path == "3F00/5015"
    assert sorted(app.keys) == [0x01, 0x02]


def test_ef_dir_names_the_pkcs15_application(send) -> None:
    assert send("00A4020C022F00") == "9000"
    response = send("00B0000000")
    assert response.endswith("9000")
    ef_dir = bytes.fromhex(response[:-4])
    assert ef_dir[:2] == bytes((0x61, len(ef_dir) - 2))
    assert ef_dir[2:16] == b"\x4f\x0c" + PKCS15_AID
    assert ef_dir.endswith(b"\x51\x04\x3f\x00\x50\x15")


def test_odf_and_directories_parse(zone) -> None:
    assert zone("00A4020C025031") == "9000"
    odf = bytes.fromhex(zone("00B0000000")[:-4])
    entries = [pkcs15.PKCS15Objects.load(der) for der in pkcs15.split_directory(odf)]
    assert [(e.name, e.chosen.native["efid_or_path"].hex().upper()) for e in entries] == [
        ("private_keys", "3F0050154402"),
        ("certificates", "3F0050154404"),
        ("auth_objects", "3F0050154401"),
    ]
    assert zone("00A4020C024402") == "9000"
    prkdf = bytes.fromhex(zone("00B0000000")[:-4])
    keys = [pkcs15.PrivateRsaKeyObject.load(der) for der in pkcs15.split_directory(prkdf)]
    assert [k["class_attributes"]["key_reference"].native for k in keys] == [1, 2]
    assert keys[0]["class_attributes"]["usage"].native == {"sign", "non_repudiation"}
    assert keys[1]["class_attributes"]["usage"].native == {"sign", "decrypt", "unwrap"}


def test_certificate_ef_holds_the_signature_certificate(zone) -> None:
    from asn1crypto import pem

    assert zone("00A4020C024331") == "9000"
    der = b""
    while True:
        response = zone(f"00B0{len(der):04X}00")
        der += bytes.fromhex(response[:-4])
        if response[-4:] != "9000" or len(bytes.fromhex(response[:-4])) < 256:
            break
    _, _, expected = pem.unarmor((identity_dir(SLUG) / "sign.cert.pem").read_bytes())
    assert der[: len(expected)] == expected


# -- PIN ------------------------------------------------------------------------------------


def test_verify_status_counter_and_block(zone, card: Card) -> None:
    assert zone("00200091") == "63C3"  # no data: the status (ISO/IEC 7816-4:2020 §11.5.6)
    assert zone(apdu_hex("00200091", pin_hex("000000"))) == "63C2"
    assert zone(apdu_hex("00200091", pin_hex("000000"))) == "63C1"
    assert zone(apdu_hex("00200091", pin_hex("000000"))) == "6983"
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "6983"  # blocked: even the right PIN
    assert card.pins[0x91].remaining == 0


def test_verify_right_pin_resets_the_counter(zone, card: Card) -> None:
    assert zone(apdu_hex("00200091", pin_hex("999999"))) == "63C2"
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "9000"
    assert card.pins[0x91].remaining == 3
    assert zone("00200091") == "9000"
    assert zone("0020FF91") == "9000"  # P1 FF: the verification status is reset
    assert zone("00200091") == "63C3"


def test_counter_is_persisted_before_the_comparison(card: Card, zone) -> None:
    seen: list[int] = []
    card.persist = lambda: seen.append(card.pins[0x91].remaining)  # type: ignore[method-assign]
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "9000"
    assert seen == [2, 3]  # decremented and persisted first, restored after


def test_other_pin_references_are_not_the_zone_s(zone) -> None:
    assert zone(apdu_hex("00200001", pin_hex(PIN))) == "6A88"
    assert zone(apdu_hex("00200003", pin_hex(PIN))) == "6A88"


def test_unblock_with_the_puk_and_a_new_pin(zone, card: Card) -> None:
    for _ in range(3):
        zone(apdu_hex("00200091", pin_hex("000000")))
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "6983"
    assert zone(apdu_hex("002C0191", pin_hex("87654321"))) == "63C9"  # wrong PUK costs a PUK try
    assert zone(apdu_hex("002C0091", pin_hex(PUK) + pin_hex("24681357"))) == "9000"
    assert card.pins[0x91].remaining == 3
    assert zone(apdu_hex("00200091", pin_hex("24681357"))) == "9000"


def test_unblock_with_the_puk_only_keeps_the_pin(zone) -> None:
    for _ in range(3):
        zone(apdu_hex("00200091", pin_hex("000000")))
    assert zone(apdu_hex("002C0191", pin_hex(PUK))) == "9000"
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "9000"


def test_change_reference_data(zone) -> None:
    assert zone(apdu_hex("00240091", pin_hex(PIN) + pin_hex("13572468"))) == "9000"
    assert zone(apdu_hex("00200091", pin_hex(PIN))) == "63C2"
    assert zone(apdu_hex("00200091", pin_hex("13572468"))) == "9000"
    assert zone(apdu_hex("00240191", pin_hex("12345"))) == "6A80"  # 5 digits: too short
    assert zone(apdu_hex("00240191", pin_hex("123456"))) == "9000"


# -- MSE / PSO ------------------------------------------------------------------------------


def test_sign_pkcs1_over_a_digest_info(logged_in) -> None:
    assert logged_in(mse("B6", 0x01, "02")) == "9000"
    response = logged_in(apdu_hex("002A9E9A", DIGEST_INFO, "00"))
    assert response[-4:] == "9000" and len(response) == 2 * 256 + 4
    sign_public(1).verify(bytes.fromhex(response[:-4]), MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_sign_rsa_pss_over_a_hash(logged_in) -> None:
    assert logged_in(mse("B6", 0x01, "05")) == "9000"
    digest = hashlib.sha256(MESSAGE).digest()
    response = logged_in(apdu_hex("002A9E9A", digest.hex(), "00"))
    assert response[-4:] == "9000"
    sign_public(1).verify(
        bytes.fromhex(response[:-4]),
        digest,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        utils.Prehashed(hashes.SHA256()),
    )
    assert logged_in(apdu_hex("002A9E9A", "00" * 31, "00")) == "6700"


def test_sign_needs_the_pin(zone) -> None:
    assert zone(mse("B6", 0x01)) == "9000"
    assert zone(apdu_hex("002A9E9A", DIGEST_INFO, "00")) == "6982"


def test_pso_without_environment(logged_in) -> None:
    assert logged_in(apdu_hex("002A9E9A", DIGEST_INFO, "00")) == "6985"


def test_sign_key_refuses_decipher(logged_in) -> None:
    assert logged_in(mse("B8", 0x01)) == "6A80"
    assert logged_in(mse("A4", 0x01)) == "6A80"


def test_pso_must_match_the_environment(logged_in) -> None:
    assert logged_in(mse("B6", 0x01)) == "9000"
    assert logged_in("002A8086000101" + "00" + "11" * 256 + "0000") == "6985"


def test_mse_errors(logged_in) -> None:
    assert logged_in(mse("B6", 0x07)) == "6A88"  # no such key
    assert logged_in(mse("B6", 0x01, "7F")) == "6A80"  # unknown algorithm
    assert logged_in(mse("B8", 0x02, "05")) == "6A80"  # PSS is for signatures only
    assert logged_in(mse("AA", 0x01)) == "6A86"
    assert logged_in(mse("B6", 0x01, p1="81")) == "6A86"
    assert logged_in(apdu_hex("002241B6", "800102")) == "6A80"  # no key reference
    assert logged_in(apdu_hex("002241B6", "8401")) == "6A80"  # broken TLV


def test_decipher_pkcs1(logged_in) -> None:
    cryptogram = sign_public(2).encrypt(b"session key TEST", padding.PKCS1v15())
    assert logged_in(mse("B8", 0x02, p1="81")) == "9000"
    data = "00" + cryptogram.hex()
    # 257 bytes: an extended APDU (ISO/IEC 7816-4:2020 §5.1)
    extended = "002A8086" + "00" + f"{len(data) // 2:04X}" + data + "0000"
    assert logged_in(extended) == b"session key TEST".hex().upper() + "9000"
    bad = "002A8086" + "00" + f"{len(data) // 2:04X}" + "01" + data[2:] + "0000"
    assert logged_in(bad) == "6A80"


def test_internal_authenticate_for_client_authentication(logged_in) -> None:
    challenge = DIGEST_INFO
    assert logged_in(mse("A4", 0x02)) == "9000"
    response = logged_in(apdu_hex("00880000", challenge, "00"))
    assert response[-4:] == "9000"
    sign_public(2).verify(bytes.fromhex(response[:-4]), MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    by_ref = logged_in(apdu_hex("00880002", challenge, "00"))
    assert by_ref == response  # PKCS#1 v1.5 is deterministic
    assert logged_in(apdu_hex("00880001", challenge, "00")) == "6985"  # the signature key is not for it


def test_internal_authenticate_needs_the_pin(zone) -> None:
    assert zone(apdu_hex("00880002", DIGEST_INFO, "00")) == "6982"


def test_selecting_the_df_by_path_enters_the_zone(send) -> None:
    assert send("00A4080C025015") == "9000"
    assert send(apdu_hex("00200091", pin_hex(PIN))) == "9000"
    assert send(mse("B6", 0x01)) == "9000"


def test_profile_refuses_a_short_pin(tmp_path) -> None:
    text = (load_profile(f"eid-pki-{SLUG}").path).read_text(encoding="utf-8")
    bad = tmp_path / "eid-pki-bad.yaml"
    base = load_profile(f"eid-pki-{SLUG}").path.parent
    bad.write_text(text.replace('value: "' + PIN + '"', 'value: "12345"').replace("../pki/", f"{base}/../pki/"))
    with pytest.raises(ProfileError, match="must be 6 to 8 digits"):
        load_profile(bad)


def test_repr_hides_secrets(card: Card) -> None:
    app = card.application_for(PKCS15_AID, partial=False)
    assert isinstance(app, EidPkiApplication)
    assert PIN not in repr(app.options) and PUK not in repr(app.options)
    assert "redacted" in repr(app.keys[1])


# -- the conformance catalogue in process --------------------------------------------------


def test_catalogue_passes_in_process() -> None:
    from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

    catalogue = load_catalogue()
    results = run_tests(CardUnderTest("emulator:eid-pki-g3-valid-1"), select_tests(catalogue, ["EID_PKI_*"]))
    assert len(results) >= 28
    assert [(r.test.id, r.message) for r in results if r.outcome != Outcome.PASSED] == []
    assert {"EID_PKI_FLOW_01", "EID_PKI_FLOW_02", "EID_PKI_FLOW_03", "EID_PKI_PIN_05"} <= {r.test.id for r in results}


def test_catalogue_passes_on_the_whole_chip() -> None:
    from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

    card = CardUnderTest("emulator:eid-g3-valid-1", card_config="eid-g3-valid-1-pki")
    results = run_tests(card, select_tests(load_catalogue(), ["EID_PKI_*"]))
    assert [(r.test.id, r.message) for r in results if r.outcome != Outcome.PASSED] == []


def test_revoked_signer_fails_exactly_the_ocsp_flow() -> None:
    # A broken double: the same zone with the revoked G3 identity. Only the chain test fails.
    from eidemu.conformance.runner import (
        CardDeclaration,
        CardUnderTest,
        Outcome,
        load_catalogue,
        run_tests,
        select_tests,
    )

    pin = json.loads((identity_dir("g3-revoked") / "identity.json").read_text(encoding="utf-8"))["initial_pin"]
    declaration = CardDeclaration(
        "eid-pki-g3-revoked",
        frozenset({"EID-PKI", "CLA-00", "PKCS15", "RSA2048", "PIN", "EID-PKI-TEST-PKI"}),
        {"PIN": pin.encode()},
    )
    card = CardUnderTest("emulator:eid-pki-g3-revoked", declaration=declaration)
    results = run_tests(card, select_tests(load_catalogue(), ["EID_PKI_FLOW_*"]))
    outcomes = {r.test.id: r.outcome for r in results}
    assert outcomes == {
        "EID_PKI_FLOW_01": Outcome.PASSED,
        "EID_PKI_FLOW_02": Outcome.PASSED,
        "EID_PKI_FLOW_03": Outcome.FAILED,
    }
    failed = next(r for r in results if r.test.id == "EID_PKI_FLOW_03")
    assert "does not validate with OCSP checking" in failed.message and "revoked" in failed.message.lower()
