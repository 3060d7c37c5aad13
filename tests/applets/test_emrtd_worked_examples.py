"""The worked examples of ICAO Doc 9303-11 (8th ed., 2021) replayed through the eMRTD APPLET,
APDU by APDU, byte for byte: the values are those of tests/icao/vectors.py (which names the
appendix of each), the chip's random numbers injected through ``Card.random``.

- Appendix D.3/D.4: BAC (GET CHALLENGE, EXTERNAL AUTHENTICATE) then the protected SELECT and
  READ BINARY of EF.COM with their exact protected responses.
- Appendix G: PACE generic mapping over ECDH brainpoolP256r1 and over DH (RFC 5114 1024-bit),
  AES-128, MRZ password: MSE:Set AT and every GENERAL AUTHENTICATE command and response.

The chip is a variant of eid-g2-valid-1 whose MRZ information is the example's.
"""

from __future__ import annotations

from pathlib import Path

from eidemu.emulator.applets.emrtd import EMRTD_AID
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.fs import TransparentEF
from eidemu.emulator.icao.kdf import mrz_information
from eidemu.emulator.icao.oids import AES_128, TDES
from eidemu.emulator.icao.session import SecureMessagingKeys
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.profile import load_profile
from tests.icao import vectors as v
from tests.icao.vectors import replay

from .emrtd_terminal import PROFILES

CHIP = "g2-valid-1"
PROFILE_MRZ_INFORMATION = "TP46375051237517000012363610103"


def variant(tmp_path: Path, info: str) -> Card:
    """eid-g2-valid-1 with another MRZ information (the profile's paths made absolute)."""
    text = (PROFILES / f"eid-{CHIP}.yaml").read_text("utf-8").replace("../pki/", str(PROFILES.parent / "pki") + "/")
    assert PROFILE_MRZ_INFORMATION in text
    path = tmp_path / "example.yaml"
    path.write_text(text.replace(PROFILE_MRZ_INFORMATION, info), "utf-8")
    card = load_profile(path).build()
    card.power_on()
    return card


def send(card: Card, apdu: bytes) -> bytes:
    return card.transmit(apdu)


def test_bac_and_secure_messaging_of_appendix_d(tmp_path: Path) -> None:
    card = variant(tmp_path, v.BAC_MRZ_INFORMATION)
    ef_com = card.applications[EMRTD_AID].df.children[0x011E]
    assert isinstance(ef_com, TransparentEF)
    ef_com.data = bytearray(v.EF_COM)  # the example's EF.COM
    card.random = replay(v.BAC_RND_IC, v.BAC_K_IC)
    assert send(card, bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"
    assert send(card, bytes.fromhex("0084000008")) == v.BAC_RND_IC + b"\x90\x00"
    command = bytes.fromhex("0082000028") + v.BAC_E_IFD + v.BAC_M_IFD + b"\x28"
    assert send(card, command) == v.BAC_E_IC + v.BAC_M_IC + b"\x90\x00"
    assert send(card, v.SM_SELECT_PROTECTED) == v.SM_SELECT_RESPONSE
    assert send(card, v.SM_READ4_PROTECTED) == v.SM_READ4_RESPONSE
    # the example's third command reads the remaining 18 bytes: its answer verifies under the
    # example's keys and SSC and carries the rest of EF.COM
    # (SSC: the session's start, then +1 per command and per response; unwrap adds the last one)
    ssc = int.from_bytes(v.BAC_SSC, "big") + 5
    session = SecureMessagingKeys(TDES, v.BAC_KS_ENC, v.BAC_KS_MAC, ssc).terminal_session()
    answer = session.unwrap(ResponseAPDU.parse(send(card, v.SM_READ18_PROTECTED)))
    assert answer == ResponseAPDU(v.EF_COM[4:], 0x9000)


PACE_MRZ_INFORMATION = mrz_information(v.PACE_DOCUMENT_NUMBER, v.PACE_BIRTH, v.PACE_EXPIRY)
MSE_SET_AT_MRZ = "0022C1A40F800A04007F0007020204{mapping}02830101"  # id-PACE-*-GM-AES-128, MRZ


def ga(cla: int, data: bytes) -> bytes:
    return CommandAPDU(cla, 0x86, 0x00, 0x00, data, 256).encode()


def test_pace_ecdh_generic_mapping_of_appendix_g(tmp_path: Path) -> None:
    card = variant(tmp_path, PACE_MRZ_INFORMATION)
    card.random = replay(v.ECDH_S, v.ECDH_CHIP_MAP_KEY, v.ECDH_CHIP_EPH_KEY)
    assert send(card, bytes.fromhex(MSE_SET_AT_MRZ.format(mapping="02"))) == b"\x90\x00"
    exchanges = [
        (0x10, bytes.fromhex("7C00"), bytes.fromhex("7C128010") + v.ECDH_Z),
        (
            0x10,
            bytes.fromhex("7C438141") + v.ECDH_TERMINAL_MAP_PUBLIC,
            bytes.fromhex("7C438241") + v.ECDH_CHIP_MAP_PUBLIC,
        ),
        (
            0x10,
            bytes.fromhex("7C438341") + v.ECDH_TERMINAL_EPH_PUBLIC,
            bytes.fromhex("7C438441") + v.ECDH_CHIP_EPH_PUBLIC,
        ),
        (0x00, bytes.fromhex("7C0A8508") + v.ECDH_T_IFD, bytes.fromhex("7C0A8608") + v.ECDH_T_IC),
    ]
    for cla, command, response in exchanges:
        assert send(card, ga(cla, command)) == response + b"\x90\x00"
    # secure messaging now runs with the example's KS_enc, KS_mac and SSC 0
    session = SecureMessagingKeys(AES_128, v.ECDH_KS_ENC, v.ECDH_KS_MAC, 0).terminal_session()
    select = session.wrap(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, EMRTD_AID))
    assert session.unwrap(ResponseAPDU.parse(send(card, select.encode()))) == ResponseAPDU(b"", 0x9000)


def test_pace_dh_generic_mapping_of_appendix_g(tmp_path: Path) -> None:
    card = variant(tmp_path, PACE_MRZ_INFORMATION)
    card.random = replay(v.DH_S, v.DH_CHIP_MAP_KEY, v.DH_CHIP_EPH_KEY)
    assert send(card, bytes.fromhex(MSE_SET_AT_MRZ.format(mapping="01"))) == b"\x90\x00"
    exchanges = [
        (0x10, bytes.fromhex("7C00"), bytes.fromhex("7C128010") + v.DH_Z),
        (
            0x10,
            bytes.fromhex("7C8183818180") + v.DH_TERMINAL_MAP_PUBLIC,
            bytes.fromhex("7C8183828180") + v.DH_CHIP_MAP_PUBLIC,
        ),
        (
            0x10,
            bytes.fromhex("7C8183838180") + v.DH_TERMINAL_EPH_PUBLIC,
            bytes.fromhex("7C8183848180") + v.DH_CHIP_EPH_PUBLIC,
        ),
        (0x00, bytes.fromhex("7C0A8508") + v.DH_T_IFD, bytes.fromhex("7C0A8608") + v.DH_T_IC),
    ]
    for cla, command, response in exchanges:
        assert send(card, ga(cla, command)) == response + b"\x90\x00"
    session = SecureMessagingKeys(AES_128, v.DH_KS_ENC, v.DH_KS_MAC, 0).terminal_session()
    select = session.wrap(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, EMRTD_AID))
    assert session.unwrap(ResponseAPDU.parse(send(card, select.encode()))) == ResponseAPDU(b"", 0x9000)
