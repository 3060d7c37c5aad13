"""Secure messaging, reproducing ICAO Doc 9303-11 Appendix D.4 (3DES) byte for byte.

Vectors: ICAO Doc 9303 Part 11, Appendix D.4 worked example (also listed in
the public ICAO Doc 9303 Part 11, 8th edition, 2021).
"""

import pytest

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.commands import IsoApplication
from eidemu.emulator.cardos.fs import DF, TransparentEF
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.crypto import BlockAlgorithm, pad_iso9797_m2, retail_mac
from eidemu.emulator.iso7816.sm import CardSession, SessionKeys, TerminalSession

KS_ENC = bytes.fromhex("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = bytes.fromhex("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = 0x887022120C06C226
EF_COM = bytes.fromhex("60145F0104303130365F36063034303030305C026175")

PROTECTED_SELECT = "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800"
SELECT_RESPONSE = "990290008E08FA855A5D4C50A8ED9000"
PROTECTED_READ4 = "0CB000000D9701048E08ED6705417E96BA5500"
READ4_RESPONSE = "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000"
PROTECTED_READ18 = "0CB000040D9701128E082EA28A70F3C7B53500"


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def keys() -> SessionKeys:
    return SessionKeys(BlockAlgorithm.TDES, KS_ENC, KS_MAC, SSC)


def test_terminal_side_reproduces_the_protected_commands():
    terminal = TerminalSession(keys())
    select = terminal.wrap(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, h("011E")))
    assert select.encode() == h(PROTECTED_SELECT)
    assert terminal.unwrap(ResponseAPDU.parse(h(SELECT_RESPONSE))) == (b"", 0x9000)
    read = terminal.wrap(CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=4))
    assert read.encode() == h(PROTECTED_READ4)
    assert terminal.unwrap(ResponseAPDU.parse(h(READ4_RESPONSE))) == (EF_COM[:4], 0x9000)
    read18 = terminal.wrap(CommandAPDU(0x00, 0xB0, 0x00, 0x04, ne=0x12))
    assert read18.encode() == h(PROTECTED_READ18)


@pytest.fixture
def card_with_ef_com():
    mf = DF(0x3F00)
    app_df = mf.add(DF(0x0001, aid=h("A0000002471001")))
    app_df.add(TransparentEF(0x011E, data=bytearray(EF_COM)))
    card = Card(h("3B8080010101"), mf)
    card.set_default_application(IsoApplication(card, mf))
    card.add_application(IsoApplication(card, app_df, h("A0000002471001")))
    card.power_on()
    assert card.transmit(h("00A4040C07A0000002471001")) == h("9000")
    card.channels[0].start_secure_messaging(CardSession(keys()))
    return card


def test_card_side_answers_the_published_responses(card_with_ef_com):
    card = card_with_ef_com
    assert card.transmit(h(PROTECTED_SELECT)) == h(SELECT_RESPONSE)
    assert card.transmit(h(PROTECTED_READ4)) == h(READ4_RESPONSE)
    # The third command of the example (SSC + 5); its response is checked at SSC + 6.
    terminal = TerminalSession(SessionKeys(BlockAlgorithm.TDES, KS_ENC, KS_MAC, SSC + 5))
    rsp = card.transmit(h(PROTECTED_READ18))
    assert terminal.unwrap(ResponseAPDU.parse(rsp)) == (EF_COM[4:], 0x9000)


def test_wrong_mac_answers_6988_and_ends_the_session(card_with_ef_com):
    card = card_with_ef_com
    tampered = bytearray(h(PROTECTED_SELECT))
    tampered[-2] ^= 0x01
    assert card.transmit(bytes(tampered)) == h("6988")
    assert card.channels[0].sm is None
    assert card.transmit(h(PROTECTED_SELECT)) == h("6882")  # no session any more


def test_missing_checksum_answers_6987(card_with_ef_com):
    assert card_with_ef_com.transmit(h("0CB0000003970104")) == h("6987")


@pytest.mark.parametrize("algorithm,key_len", [("aes", 16), ("aes", 32), ("3des", 16)])
def test_round_trip_both_algorithms_with_errors_protected(card_with_ef_com, algorithm, key_len):
    card = card_with_ef_com
    k_enc, k_mac = bytes(range(key_len)), bytes(range(1, key_len + 1))
    card.channels[0].start_secure_messaging(CardSession(SessionKeys(BlockAlgorithm(algorithm), k_enc, k_mac, 0)))
    terminal = TerminalSession(SessionKeys(BlockAlgorithm(algorithm), k_enc, k_mac, 0))
    for cmd, expected in [
        (CommandAPDU(0, 0xA4, 0x02, 0x0C, h("011E")), (b"", 0x9000)),
        (CommandAPDU(0, 0xB0, 0x00, 0x02, ne=20), (EF_COM[2:], 0x9000)),
        (CommandAPDU(0, 0xA4, 0x02, 0x0C, h("0F0F")), (b"", 0x6A82)),
    ]:
        rsp = ResponseAPDU.parse(card.transmit(terminal.wrap(cmd).encode()))
        assert terminal.unwrap(rsp) == expected


def test_retail_mac_published_value():
    """9303-11 D.3: M_IFD over E_IFD with K_mac (the BAC mutual authentication example)."""
    k_mac = h("7962D9ECE03D1ACD4C76089DCE131543")
    e_ifd = h("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
    assert retail_mac(k_mac, pad_iso9797_m2(e_ifd, 8)) == h("5F1448EEA8AD90A7")


def test_session_objects_redact_their_keys():
    session = CardSession(keys())
    for text in (repr(session), repr(TerminalSession(keys())), repr(session.keys), str(session.keys)):
        assert "redacted" in text
        assert KS_ENC.hex() not in text.lower() and KS_MAC.hex() not in text.lower()
        assert "979E" not in text.upper() and "F1CB" not in text.upper()
