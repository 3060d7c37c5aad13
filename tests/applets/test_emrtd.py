"""The eMRTD application of the eID chip (emulator/applets/emrtd.py), in-process.

Every flow is driven by the ICAO codec's terminal roles (tests/applets/emrtd_terminal.py)
against a card built from the shipped profiles fixtures/profiles/eid-*.yaml; data read
under secure messaging is compared byte for byte with the chip files of fixtures/pki/eid.
Status words as ICAO Doc 9303-11 §4.3.4, §4.4.4, §9.8.4 and ISO/IEC 7816-4:2020 §5.6 give them.
"""

from __future__ import annotations

import dataclasses
import os
import random

import pytest
from cryptography.hazmat.primitives import serialization

from eidemu.emulator.applets.emrtd import (
    EMRTD_AID,
    CipherName,
    EmrtdApplication,
    PaceMapping,
    PaceOption,
)
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.fs import TransparentEF
from eidemu.emulator.cardos.security import AccessCondition, AccessOperation
from eidemu.emulator.icao import aa
from eidemu.emulator.icao.ca import CaTerminal
from eidemu.emulator.icao.kdf import PacePassword
from eidemu.emulator.icao.oids import ECDSA_PLAIN_SHA256, ID_CA_ECDH_3DES_CBC_CBC, ID_CA_ECDH_AES_CBC_CMAC_128
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceTerminal
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV, parse_all
from eidemu.emulator.profile import ProfileError, load_profile

from .emrtd_terminal import PROFILES, Terminal, chip_ca_public_key, chip_file, mrz_fields

CHIP = "g2-valid-1"
CAN = "237517"
MRZ_INFORMATION = "TP46375051237517000012363610103"
DG1 = chip_file(CHIP, "DG1.bin")
ECDH_GM_AES128 = "0.4.0.127.0.7.2.2.4.2.2"


def build(chip: str = CHIP) -> Card:
    card = load_profile(PROFILES / f"eid-{chip}.yaml").build()
    card.power_on()
    return card


def app_of(card: Card) -> EmrtdApplication:
    app = card.applications[EMRTD_AID]
    assert isinstance(app, EmrtdApplication)
    return app


def offer(card: Card, *options: PaceOption) -> None:
    """A variant chip offering other PACE parameter sets: the options replaced in place."""
    app = app_of(card)
    app.options = dataclasses.replace(app.options, pace=options)


@pytest.fixture
def card() -> Card:
    return build()


@pytest.fixture
def terminal(card: Card) -> Terminal:
    return Terminal(card.transmit)


def hexsw(response_bytes: bytes) -> str:
    return response_bytes[-2:].hex().upper()


# -- the profiles and the application ----------------------------------------------------------


def test_one_object_answers_in_the_mf_and_in_the_application(card: Card) -> None:
    assert card.default_app is app_of(card)
    assert app_of(card).df.aid == EMRTD_AID


def test_card_access_readable_in_the_mf_without_secure_messaging(terminal: Terminal) -> None:
    expected = chip_file(CHIP, "EF.CardAccess.bin")
    assert terminal.select_ef(0x011C) == 0x9000
    assert terminal.read_file(0x011C) == expected
    # READ BINARY with SFI 1C (P1 b8 = 1), as 9303-10 §3.11 lets the terminal read it
    response = terminal.send(CommandAPDU(0x00, 0xB0, 0x9C, 0x00, b"", 4))
    assert response.data == expected[:4] and response.sw == 0x9000


def test_every_other_file_needs_secure_messaging(terminal: Terminal) -> None:
    assert terminal.select_ef(0x011D) == 0x9000  # EF.CardSecurity
    assert terminal.read_binary(0, 4).sw == 0x6982
    assert terminal.select_application() == 0x9000
    for fid in (0x011E, 0x0101, 0x0102, 0x010B, 0x010C, 0x010E, 0x010F, 0x011D):
        assert terminal.select_ef(fid) == 0x9000
        assert terminal.read_binary(0, 4).sw == 0x6982, f"{fid:04X}"
    assert terminal.send(CommandAPDU(0x00, 0xB0, 0x81, 0x00, b"", 4)).sw == 0x6982  # SFI 01


def test_select_answers(card: Card) -> None:
    assert card.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert card.transmit(bytes.fromhex("00A4040C07A0000002471002")) == b"\x6a\x82"
    assert card.transmit(bytes.fromhex("00A4020C02010A")) == b"\x6a\x82"  # DG10 absent
    assert card.transmit(bytes.fromhex("00A4020C0201")) == b"\x67\x00"


# -- BAC (9303-11 §4.3) -------------------------------------------------------------------------


def test_bac_then_read_dg1_under_3des_secure_messaging(terminal: Terminal) -> None:
    assert terminal.select_application() == 0x9000
    keys = terminal.bac(MRZ_INFORMATION)
    assert keys.cipher.algorithm == "3des"
    assert terminal.read_file(0x0101) == DG1
    assert terminal.read_file(0x011E) == chip_file(CHIP, "EF.COM.bin")


def test_bac_with_a_wrong_mrz_is_6300(card: Card, terminal: Terminal) -> None:
    from eidemu.emulator.icao.bac import BacKeys, BacTerminal

    assert terminal.select_application() == 0x9000
    challenge = terminal.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8))
    wrong = BacTerminal(BacKeys.from_mrz("TP46375051237518", "000123", "361010"))
    data = wrong.external_authenticate_data(challenge.data)
    assert hexsw(card.transmit(CommandAPDU(0x00, 0x82, 0x00, 0x00, data, 40).encode())) == "6300"
    # the challenge is used once: a second try needs a new GET CHALLENGE
    assert hexsw(card.transmit(CommandAPDU(0x00, 0x82, 0x00, 0x00, data, 40).encode())) == "6985"


def test_bac_external_authenticate_errors(card: Card) -> None:
    assert card.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert hexsw(card.transmit(bytes.fromhex("0082000028" + "00" * 40 + "28"))) == "6985"  # no challenge
    assert card.transmit(bytes.fromhex("0084000008"))[-2:] == b"\x90\x00"
    assert hexsw(card.transmit(bytes.fromhex("0082000027" + "00" * 39 + "28"))) == "6700"
    assert hexsw(card.transmit(bytes.fromhex("0082000128" + "00" * 40 + "28"))) == "6A86"


# -- PACE (9303-11 §4.4) ------------------------------------------------------------------------

SHIPPED = [
    ("ECDH-GM", "AES-128", 13),
    ("ECDH-GM", "AES-128", 12),
    ("ECDH-GM", "AES-192", 16),
    ("ECDH-GM", "AES-256", 16),
    ("ECDH-GM", "3DES", 13),
    ("DH-GM", "AES-128", 0),
    ("DH-GM", "AES-128", 2),
    ("ECDH-CAM", "AES-128", 13),
]
VARIANTS = [
    ("ECDH-GM", "AES-256", 12),
    ("ECDH-GM", "AES-128", 16),
    ("DH-GM", "3DES", 0),
    ("DH-GM", "AES-256", 2),
    ("ECDH-IM", "AES-128", 13),
    ("DH-IM", "AES-128", 0),
    ("ECDH-CAM", "AES-256", 13),
]


def pace_option(mapping: str, cipher: str, parameter_id: int) -> PaceOption:
    return PaceOption(PaceMapping(mapping), CipherName(cipher), str(parameter_id))


@pytest.mark.parametrize("password", ["CAN", "MRZ"])
@pytest.mark.parametrize(("mapping", "cipher", "parameter_id"), SHIPPED + VARIANTS)
def test_pace_round_trip_then_dg1(
    card: Card, terminal: Terminal, mapping: str, cipher: str, parameter_id: int, password: str
) -> None:
    option = pace_option(mapping, cipher, parameter_id)
    if (mapping, cipher, parameter_id) in VARIANTS:
        offer(card, option)
    secret = PacePassword.can(CAN) if password == "CAN" else PacePassword.mrz(*mrz_fields(MRZ_INFORMATION))
    result = terminal.pace(option.protocol_oid, parameter_id, secret)
    assert result.keys.cipher.algorithm == ("3des" if cipher == "3DES" else "aes")
    if mapping == "ECDH-CAM":
        result.verify_chip_authentication(chip_ca_public_key(CHIP))  # raises if CA_IC is wrong
    assert terminal.select_application() == 0x9000
    assert terminal.read_file(0x0101) == DG1


def test_pace_without_domain_reference_takes_the_only_offered_one(terminal: Terminal) -> None:
    result = terminal.pace(pace_option("ECDH-GM", "AES-256", 16).protocol_oid, 16, PacePassword.can(CAN), False)
    assert result.keys.cipher.key_length == 32


def test_pace_then_card_security_and_dg2(terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.read_file(0x011D) == chip_file(CHIP, "EF.CardSecurity.bin")
    assert terminal.select_application() == 0x9000
    assert terminal.read_file(0x0102) == chip_file(CHIP, "DG2.bin")
    assert terminal.read_file(0x011D) == chip_file(CHIP, "EF.SOD.bin")


def test_pace_with_a_wrong_can_is_6300_then_6985(card: Card, terminal: Terminal) -> None:
    password = PacePassword.can("000000")
    assert terminal.mse_set_at_pace(ECDH_GM_AES128, password, 13) == 0x9000
    pace = PaceTerminal(ECDH_GM_AES128, 13, password)
    command = pace.start()
    for step in (pace.map_nonce, pace.key_agreement, pace.mutual_authentication):
        response = terminal.general_authenticate(command, last=False)
        assert response.sw == 0x9000
        command = step(DynamicAuthenticationData.parse(response.data))
    step4 = CommandAPDU(0x00, 0x86, 0x00, 0x00, command.encode(), 256)
    assert card.transmit(step4.encode()) == b"\x63\x00"
    assert card.transmit(step4.encode()) == b"\x69\x85"  # the run is over
    assert terminal.select_application() == 0x9000
    assert terminal.select_ef(0x0101) == 0x9000
    assert terminal.read_binary(0, 4).sw == 0x6982


@pytest.mark.parametrize(
    ("data", "sw"),
    [
        ("800A04007F00070202040202830102", "9000"),  # id-PACE-ECDH-GM-AES-128 with the CAN: offered
        ("800A04007F000702020402028301028401FF", "6A80"),  # parameter ID not offered
        ("800A04007F00070202040202830103", "6A80"),  # PIN: not a password of this chip
        ("800A04007F00070202040402830102", "6A80"),  # ECDH-GM AES-256 not offered on id 13
        ("800A04007F00070202040601830102", "6A80"),  # id-PACE-ECDH-CAM-3DES does not exist
        ("800A04007F00070202040202830101", "9000"),  # the MRZ password
        ("83010280", "6A80"),  # truncated TLV
        ("830102", "6A80"),  # no DO 80
        ("", "6A80"),
    ],
)
def test_mse_set_at_pace_answers(card: Card, data: str, sw: str) -> None:
    apdu = bytes.fromhex("0022C1A4") + (bytes((len(data) // 2,)) + bytes.fromhex(data) if data else b"")
    assert hexsw(card.transmit(apdu)) == sw


def test_general_authenticate_errors(card: Card, terminal: Terminal) -> None:
    assert hexsw(card.transmit(bytes.fromhex("10860000027C0000"))) == "6985"  # no MSE:Set AT
    assert terminal.mse_set_at_pace(ECDH_GM_AES128, PacePassword.can(CAN), 13) == 0x9000
    assert hexsw(card.transmit(bytes.fromhex("10860100027C0000"))) == "6A86"
    assert hexsw(card.transmit(bytes.fromhex("10860000027D0000"))) == "6A80"  # not 7C: the run ends
    assert hexsw(card.transmit(bytes.fromhex("10860000027C0000"))) == "6985"
    assert terminal.mse_set_at_pace(ECDH_GM_AES128, PacePassword.can(CAN), 13) == 0x9000
    assert hexsw(card.transmit(bytes.fromhex("10860000037C01"))) == "6700"  # Lc disagrees
    assert hexsw(card.transmit(bytes.fromhex("10860000047C028000"))) == "6A80"  # step 1 takes no DO
    # the run has failed: every later step is out of sequence
    assert hexsw(card.transmit(bytes.fromhex("10860000027C0000"))) == "6985"


def test_pace_step2_with_a_point_off_the_curve_is_6a80(card: Card, terminal: Terminal) -> None:
    assert terminal.mse_set_at_pace(ECDH_GM_AES128, PacePassword.can(CAN), 13) == 0x9000
    assert card.transmit(bytes.fromhex("10860000027C0000"))[-2:] == b"\x90\x00"
    bad_point = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x01"
    data = DynamicAuthenticationData.of((0x81, bad_point)).encode()
    assert hexsw(card.transmit(CommandAPDU(0x10, 0x86, 0, 0, data, 256).encode())) == "6A80"
    assert hexsw(card.transmit(CommandAPDU(0x10, 0x86, 0, 0, data, 256).encode())) == "6985"


def test_pace_steps_must_come_in_order(card: Card, terminal: Terminal) -> None:
    assert terminal.mse_set_at_pace(ECDH_GM_AES128, PacePassword.can(CAN), 13) == 0x9000
    data = DynamicAuthenticationData.of((0x85, bytes(8))).encode()
    assert hexsw(card.transmit(CommandAPDU(0x00, 0x86, 0, 0, data, 256).encode())) == "6A80"


# -- access rules ---------------------------------------------------------------------------------


def test_grant_survives_select_and_ends_with_the_session(card: Card, terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.send(CommandAPDU(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00")).sw == 0x9000
    assert terminal.select_application() == 0x9000
    assert terminal.read_file(0x0101) == DG1
    # a plain command ends the session (ISO/IEC 7816-4 §10, 9303-11 §9.8.4) and the grant with it
    assert card.transmit(bytes.fromhex("00B0000004")) == b"\x69\x82"
    assert card.transmit(bytes.fromhex("0CB000000D970104" + "8E080000000000000000" + "00")) == b"\x68\x82"


def test_read_with_sfi_and_extended_le_under_secure_messaging(terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    response = terminal.send(CommandAPDU(0x00, 0xB0, 0x81, 0x00, b"", 8))  # SFI 01
    assert response.data == DG1[:8] and response.sw == 0x9000
    dg2 = chip_file(CHIP, "DG2.bin")
    response = terminal.send(CommandAPDU(0x00, 0xB0, 0x82, 0x00, b"", 65536, True))  # whole DG2
    assert response.sw == 0x9000 and response.data == dg2


def test_odd_read_binary_beyond_32767(card: Card, terminal: Terminal) -> None:
    """READ BINARY B1 with DO 54 offset, answered in DO 53 (ISO/IEC 7816-4 §11.2; 9303-10 §3.10):
    a 40 000-byte DG10 added to the application for the test."""
    content = bytes(random.Random(3).randrange(256) for _ in range(40000))
    big = TransparentEF(0x010A, "EF.DG10 (test)", {AccessOperation.READ: AccessCondition.parse("auth:01")}, 0x0A)
    big.data = bytearray(content)
    app_of(card).df.add(big)
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    assert terminal.select_ef(0x010A) == 0x9000
    for offset in (0x7FFF, 0x8000, 39990):
        response = terminal.send(
            CommandAPDU(0x00, 0xB1, 0x00, 0x00, TLV(0x54, offset.to_bytes(3, "big")).encode(), 104)
        )
        expected = content[offset : offset + 100]
        assert response.sw == (0x9000 if len(expected) == 100 else 0x6282)
        assert response.data == TLV(0x53, expected).encode()
    assert terminal.read_binary(0x7FFF, 16).data == content[0x7FFF : 0x7FFF + 16]


# -- secure messaging behaviour (9303-11 §9.8) -------------------------------------------------


def protected_read(terminal: Terminal) -> bytes:
    assert terminal.session is not None
    return terminal.session.wrap(CommandAPDU(0x00, 0xB0, 0x00, 0x00, b"", 4)).encode()


def test_response_carries_do87_do99_do8e(card: Card, terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    assert terminal.select_ef(0x0101) == 0x9000
    raw = card.transmit(protected_read(terminal))
    assert raw[-2:] == b"\x90\x00"
    assert [o.tag for o in parse_all(raw[:-2])] == [0x87, 0x99, 0x8E]
    assert parse_all(raw[:-2])[1].value == b"\x90\x00"


def test_wrong_mac_is_6988_and_ends_the_session(card: Card, terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    apdu = bytearray(protected_read(terminal))
    apdu[-2] ^= 0x01  # last MAC byte (before Le)
    assert card.transmit(bytes(apdu)) == b"\x69\x88"
    assert card.transmit(protected_read(terminal)) == b"\x68\x82"  # no session any more
    assert card.transmit(bytes.fromhex("00A4020C02011D00")) == b"\x90\x00"
    assert card.transmit(bytes.fromhex("00B0000004")) == b"\x69\x82"


def test_missing_do8e_is_6987(card: Card, terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert card.transmit(bytes.fromhex("0CB0000003970104" + "00")) == b"\x69\x87"
    assert card.transmit(protected_read(terminal)) == b"\x68\x82"


def test_replayed_command_is_6988(card: Card, terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_ef(0x011C) == 0x9000
    apdu = protected_read(terminal)
    assert card.transmit(apdu)[-2:] == b"\x90\x00"
    assert card.transmit(apdu) == b"\x69\x88"


def test_bac_session_ends_on_a_plain_command(card: Card, terminal: Terminal) -> None:
    assert terminal.select_application() == 0x9000
    terminal.bac(MRZ_INFORMATION)
    assert terminal.select_ef(0x0101) == 0x9000
    assert card.transmit(bytes.fromhex("00B0000004")) == b"\x69\x82"


# -- Chip Authentication (9303-11 §6.2) -----------------------------------------------------------


@pytest.mark.parametrize("access", ["PACE", "BAC"])
def test_chip_authentication_with_mse_set_kat(terminal: Terminal, access: str) -> None:
    assert terminal.select_application() == 0x9000
    if access == "PACE":
        terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    else:
        terminal.bac(MRZ_INFORMATION)
    ca = CaTerminal(ID_CA_ECDH_AES_CBC_CMAC_128, 13, chip_ca_public_key(CHIP))
    response = terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA6, ca.mse_set_kat_data()))
    assert response.sw == 0x9000  # unwrapped with the OLD keys
    new_keys = ca.session_keys()
    assert new_keys.ssc == 0
    terminal.start(new_keys)
    assert terminal.read_file(0x0101) == DG1


def test_chip_authentication_with_mse_set_at_and_general_authenticate(terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    ca = CaTerminal(ID_CA_ECDH_AES_CBC_CMAC_128, 13, chip_ca_public_key(CHIP))
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, ca.mse_set_at_data())).sw == 0x9000
    response = terminal.send(CommandAPDU(0x00, 0x86, 0x00, 0x00, ca.general_authenticate_data().encode(), 256))
    assert (response.data, response.sw) == (b"\x7c\x00", 0x9000)
    terminal.start(ca.session_keys())
    assert terminal.read_file(0x0101) == DG1


def test_chip_authentication_errors(card: Card, terminal: Terminal) -> None:
    ca = CaTerminal(ID_CA_ECDH_AES_CBC_CMAC_128, 13, chip_ca_public_key(CHIP))
    kat = CommandAPDU(0x00, 0x22, 0x41, 0xA6, ca.mse_set_kat_data())
    assert terminal.send(kat).sw == 0x6982  # not without secure messaging
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA6, ca.mse_set_kat_data(key_id=7))).sw == 0x6A88
    other = CaTerminal(ID_CA_ECDH_3DES_CBC_CBC, 13, chip_ca_public_key(CHIP))
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, other.mse_set_at_data())).sw == 0x6A80
    bad = TLV(0x91, b"\x04" + bytes(64)).encode()
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA6, bad)).sw == 0x6A80
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x81, 0xB8, b"")).sw == 0x6A86
    # the session is still the PACE one after these refusals
    assert terminal.select_application() == 0x9000
    assert terminal.read_file(0x0101) == DG1


# -- Active Authentication (9303-11 §6.1) -------------------------------------------------------


def dg15_public_key(terminal: Terminal):  # type: ignore[no-untyped-def]
    dg15 = terminal.read_file(0x010F)
    return serialization.load_der_public_key(TLV.parse(dg15).value)


def test_active_authentication_rsa_iso9796_2(terminal: Terminal) -> None:
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    public_key = dg15_public_key(terminal)
    challenge = os.urandom(8)
    response = terminal.send(CommandAPDU(0x00, 0x88, 0x00, 0x00, challenge, 65536, True))
    assert response.sw == 0x9000 and len(response.data) == 256
    recovered = aa.rsa_verify(public_key, challenge, response.data)  # raises if it does not verify
    assert recovered.hash_name == "sha1"


def test_active_authentication_rsa_1024() -> None:
    terminal = Terminal(build("g2-valid-1-aa-rsa1024").transmit)
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    public_key = dg15_public_key(terminal)
    challenge = bytes.fromhex("F173589974BF40C6")  # RND.IFD of 9303-11 Appendix F
    response = terminal.send(CommandAPDU(0x00, 0x88, 0x00, 0x00, challenge, 256))
    assert response.sw == 0x9000 and len(response.data) == 128
    aa.rsa_verify(public_key, challenge, response.data)


def test_active_authentication_ecdsa() -> None:
    terminal = Terminal(build("g2-valid-1-aa-ecdsa").transmit)
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    public_key = dg15_public_key(terminal)
    challenge = os.urandom(8)
    response = terminal.send(CommandAPDU(0x00, 0x88, 0x00, 0x00, challenge, 256))
    assert response.sw == 0x9000 and len(response.data) == 64
    aa.ecdsa_verify(public_key, challenge, response.data, ECDSA_PLAIN_SHA256)


def test_active_authentication_errors(card: Card, terminal: Terminal) -> None:
    assert hexsw(card.transmit(bytes.fromhex("00880000080102030405060708" + "00"))) == "6982"
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.send(CommandAPDU(0x00, 0x88, 0x00, 0x00, bytes(7), 256)).sw == 0x6700
    assert terminal.send(CommandAPDU(0x00, 0x88, 0x00, 0x01, bytes(8), 256)).sw == 0x6A86


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ins", [0x22, 0x82, 0x84, 0x86, 0x88, 0xA4, 0xB0, 0xB1])
def test_random_input_never_answers_6f00(ins: int) -> None:
    rng = random.Random(ins)
    card = build()
    for _ in range(150):
        if rng.random() < 0.3:  # sometimes inside a PACE run
            card.transmit(bytes.fromhex("0022C1A40F800A04007F00070202040202830102"))
        p1p2 = bytes(rng.choice([(0, 0), (0xC1, 0xA4), (0x41, 0xA6), (0x41, 0xA4), (4, 0x0C), (2, 0x0C)]))
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        if rng.random() < 0.5:
            data = TLV(rng.choice([0x7C, 0x54, 0x80, 0x91]), data[:60]).encode()
        cla = rng.choice([0x00, 0x10])
        apdu = CommandAPDU(cla, ins, p1p2[0], p1p2[1], data, rng.choice([None, 8, 256])).encode()
        response = card.transmit(apdu)
        assert response[-2:] != b"\x6f\x00", apdu.hex()


# -- profile options ------------------------------------------------------------------------------


def _write_variant(tmp_path, replace: tuple[str, str]):  # type: ignore[no-untyped-def]
    text = (PROFILES / f"eid-{CHIP}.yaml").read_text("utf-8").replace("../pki/", str(PROFILES.parent / "pki") + "/")
    assert replace[0] in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(*replace), "utf-8")
    return path


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (('can: "237517"', 'can: "23751"'), "options.can: the CAN is 6 decimal digits"),
        (
            (
                'mrz_information: "TP46375051237517000012363610103"',
                'mrz_information: "TP46375051237517100012363610103"',
            ),
            "options.mrz_information: a check digit is wrong (ICAO 9303-3 §4.9)",
        ),
        (("parameter_id: 12}", "parameter_id: 7}"), "parameter_id: standardized domain parameter ID 7 is reserved"),
        (
            (
                "{mapping: DH-GM, cipher: AES-128, parameter_id: 0}",
                "{mapping: DH-GM, cipher: AES-128, parameter_id: 13}",
            ),
            "no DH group",
        ),
        (
            ("signature: iso9796-2-scheme1-sha1", "signature: ecdsa-plain-sha256"),
            "an RSA key signs with ISO/IEC 9796-2",
        ),
        (
            ("mapping: ECDH-CAM, cipher: AES-128", "mapping: ECDH-CAM, cipher: 3DES"),
            "ECDH-CAM is not defined with 3DES",
        ),
    ],
)
def test_bad_options_are_one_line_profile_errors(tmp_path, replace: tuple[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileError) as info:
        load_profile(_write_variant(tmp_path, replace))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_chip_authentication_over_dh(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """CA v1 with a DH chip key on the RFC 5114 1024-bit group (9303-11 §6.2, §9.5.1 id 0): a
    variant profile whose chip_authentication key is DH (and so without PACE-CAM)."""
    from cryptography.hazmat.primitives.asymmetric import dh

    from eidemu.emulator.icao.ca import CaChip
    from eidemu.emulator.icao.dh import group
    from eidemu.emulator.icao.oids import ID_CA_DH_AES_CBC_CMAC_128

    g = group("modp1024_160")
    key = dh.DHParameterNumbers(g.p, g.g, g.q).parameters().generate_private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "dh.key.pem").write_bytes(pem)
    text = (PROFILES / f"eid-{CHIP}.yaml").read_text("utf-8").replace("../pki/", str(PROFILES.parent / "pki") + "/")
    text = text.replace("      - {mapping: ECDH-CAM, cipher: AES-128, parameter_id: 13}\n", "")
    start = text.index("      chip_authentication:")
    end = text.index("      active_authentication:")
    block = f"      chip_authentication:\n        key: {tmp_path / 'dh.key.pem'}\n        agreement: DH\n"
    text = text[:start] + block + text[end:]
    path = tmp_path / "dh-variant.yaml"
    path.write_text(text, "utf-8")
    card = load_profile(path).build()
    terminal = Terminal(card.transmit)
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    chip_public = CaChip.from_private_key(ID_CA_DH_AES_CBC_CMAC_128, key).public_key()
    ca = CaTerminal(ID_CA_DH_AES_CBC_CMAC_128, 0, chip_public)
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, ca.mse_set_at_data())).sw == 0x9000
    response = terminal.send(CommandAPDU(0x00, 0x86, 0x00, 0x00, ca.general_authenticate_data().encode(), 256))
    assert (response.data, response.sw) == (b"\x7c\x00", 0x9000)
    terminal.start(ca.session_keys())
    assert terminal.select_application() == 0x9000
    assert terminal.read_file(0x0101) == DG1


def test_chip_authentication_3des_after_bac(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The classic passport flow: BAC, then CA with MSE:Set KAT and id-CA-ECDH-3DES-CBC-CBC
    (9303-11 §6.2.4.1), a variant profile whose chip_authentication cipher is 3DES."""
    card = load_profile(
        _write_variant(tmp_path, ("        cipher: AES-128\n        curve:", "        cipher: 3DES\n        curve:"))
    ).build()
    terminal = Terminal(card.transmit)
    assert terminal.select_application() == 0x9000
    terminal.bac(MRZ_INFORMATION)
    ca = CaTerminal(ID_CA_ECDH_3DES_CBC_CBC, 13, chip_ca_public_key(CHIP))
    assert terminal.send(CommandAPDU(0x00, 0x22, 0x41, 0xA6, ca.mse_set_kat_data())).sw == 0x9000
    keys = ca.session_keys()
    assert (keys.cipher.algorithm, keys.ssc) == ("3des", 0)
    terminal.start(keys)
    assert terminal.read_file(0x0101) == DG1


@pytest.mark.parametrize("chip", [CHIP, "g2-valid-1-aa-ecdsa", "g3-valid-1"])
def test_profile_options_match_what_the_chip_announces(chip: str) -> None:
    """The applet's parameter sets are the PACEInfos of EF.CardAccess (9303-11 §9.2.1), its
    CA protocol the ChipAuthenticationInfo of DG14, its ECDSA AA hash the
    ActiveAuthenticationInfo of DG14 (§9.2.4)."""
    from eidemu.emulator.icao import asn1
    from eidemu.emulator.icao.lds import SecurityInfoSet

    app = app_of(build(chip))
    card_access = SecurityInfoSet.parse(chip_file(chip, "EF.CardAccess.bin"))
    announced = [(i["protocol"].dotted, i["parameter_id"].native) for i in card_access.of_type(asn1.PACEInfo)]
    assert sorted(announced) == sorted((o.protocol_oid, o.domain_id) for o in app.options.pace)  # a DER SET
    dg14 = SecurityInfoSet.parse(chip_file(chip, "DG14.bin"), 0x6E)
    [ca_info] = dg14.of_type(asn1.ChipAuthenticationInfo)
    assert app.options.chip_authentication is not None
    assert ca_info["protocol"].dotted == app.options.chip_authentication.protocol_oid
    aa_infos = dg14.of_type(asn1.ActiveAuthenticationInfo)
    assert app.options.active_authentication is not None
    if app.options.active_authentication.signature.is_rsa:
        assert aa_infos == []
    else:
        assert [i["signature_algorithm"].dotted for i in aa_infos] == [ECDSA_PLAIN_SHA256]
        assert app.options.active_authentication.signature.value == "ecdsa-plain-sha256"
