"""The BAC session keys of Appendix D drive the shared secure-messaging core through the
APDUs of ICAO 9303-11 Appendix D.4, in both roles."""

from __future__ import annotations

from eidemu.emulator.icao.bac import session_keys
from eidemu.emulator.icao.session import SecureMessagingKeys
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU

from . import vectors as v


def _keys() -> SecureMessagingKeys:
    return session_keys(v.BAC_K_IFD, v.BAC_K_IC, v.BAC_RND_IC, v.BAC_RND_IFD)


def test_appendix_d4_terminal_side() -> None:
    terminal = _keys().terminal_session()
    select = CommandAPDU.parse(v.SM_SELECT_PLAIN)
    assert terminal.wrap(select).encode() == v.SM_SELECT_PROTECTED
    assert terminal.unwrap(ResponseAPDU.parse(v.SM_SELECT_RESPONSE)).sw == 0x9000

    read4 = CommandAPDU(0x00, 0xB0, 0x00, 0x00, b"", 4)
    assert terminal.wrap(read4).encode() == v.SM_READ4_PROTECTED
    answer = terminal.unwrap(ResponseAPDU.parse(v.SM_READ4_RESPONSE))
    assert (answer.data, answer.sw) == (v.EF_COM[:4], 0x9000)

    read18 = CommandAPDU(0x00, 0xB0, 0x00, 0x04, b"", 18)
    assert terminal.wrap(read18).encode() == v.SM_READ18_PROTECTED


def test_appendix_d4_chip_side() -> None:
    chip = _keys().chip_session()
    select = chip.unwrap(CommandAPDU.parse(v.SM_SELECT_PROTECTED))
    assert select.encode() == v.SM_SELECT_PLAIN
    body, sw = chip.wrap(b"", 0x9000)
    assert body + sw.to_bytes(2, "big") == v.SM_SELECT_RESPONSE

    read4 = chip.unwrap(CommandAPDU.parse(v.SM_READ4_PROTECTED))
    assert (read4.ins, read4.p1, read4.p2, read4.ne) == (0xB0, 0, 0, 4)
    body, sw = chip.wrap(v.EF_COM[:4], 0x9000)
    assert body + sw.to_bytes(2, "big") == v.SM_READ4_RESPONSE

    read18 = chip.unwrap(CommandAPDU.parse(v.SM_READ18_PROTECTED))
    assert (read18.p2, read18.ne) == (4, 18)
