"""APDU codec: the four ISO 7816-3 cases, short and extended, and strict rejection."""

import pytest

from eidemu.emulator.iso7816.apdu import ApduFormatError, CommandAPDU, ResponseAPDU, parse_hex


@pytest.mark.parametrize(
    ("hex_apdu", "case", "data", "ne", "extended"),
    [
        ("00A40000", 1, "", None, False),
        ("00B0000010", 2, "", 16, False),
        ("00B0000000", 2, "", 256, False),
        ("00A4000C023F00", 3, "3F00", None, False),
        ("00A40004023F0000", 4, "3F00", 256, False),
        ("00A4000402 3F00 10", 4, "3F00", 16, False),
        ("00B0000000 0100", 2, "", 256, True),
        ("00B0000000 0000", 2, "", 65536, True),
        ("00D6000000 0002 ABCD", 3, "ABCD", None, True),
        ("00D6000000 0002 ABCD 0200", 4, "ABCD", 512, True),
        ("00D6000000 0002 ABCD 0000", 4, "ABCD", 65536, True),
    ],
)
def test_cases_parse_and_round_trip(hex_apdu, case, data, ne, extended):
    raw = parse_hex(hex_apdu)
    cmd = CommandAPDU.parse(raw)
    assert cmd.case == case
    assert cmd.data == bytes.fromhex(data)
    assert cmd.ne == ne
    assert cmd.extended is extended
    assert cmd.encode() == raw
    assert bytes(cmd) == raw


def test_extended_data_of_300_bytes():
    raw = bytes.fromhex("80DA0000") + b"\x00\x01\x2c" + bytes(range(256)) + bytes(44) + b"\x00\x00"
    cmd = CommandAPDU.parse(raw)
    assert len(cmd.data) == 300 and cmd.ne == 65536 and cmd.case == 4


def test_encoder_chooses_extended_when_needed():
    assert CommandAPDU(0, 0xB0, 0, 0, ne=1000).encode() == bytes.fromhex("00B000000003E8")
    assert CommandAPDU(0, 0xD6, 0, 0, data=bytes(256)).encode()[:7] == bytes.fromhex("00D60000000100")
    assert CommandAPDU(0, 0xB0, 0, 0, ne=256).encode() == bytes.fromhex("00B0000000")


@pytest.mark.parametrize(
    "hex_apdu",
    [
        "",
        "00",
        "00A400",
        "00A4000C03 3F00",  # Lc=3, 2 bytes present
        "00A4000C02 3F0000 00",  # one byte too many for case 4
        "00B000000001",  # truncated extended Le
        "00D6000000 0000 AB",  # extended Lc of zero
        "00D6000000 0003 ABCD",  # extended Lc longer than data
        "00D6000000 0002 ABCD 01",  # extended case 4 with a one-byte Le
    ],
)
def test_malformed_apdus_raise_wrong_length(hex_apdu):
    with pytest.raises(ApduFormatError) as info:
        CommandAPDU.parse(parse_hex(hex_apdu))
    assert info.value.sw == 0x6700


def test_response_apdu():
    rsp = ResponseAPDU.parse(bytes.fromhex("AABB6282"))
    assert rsp.data == b"\xaa\xbb" and rsp.sw == 0x6282 and rsp.sw1 == 0x62 and rsp.sw2 == 0x82
    assert rsp.encode() == bytes.fromhex("AABB6282")
    with pytest.raises(ValueError):
        ResponseAPDU.parse(b"\x90")


def test_parse_hex_accepts_separators_and_rejects_junk():
    assert parse_hex("00 a4:00_0c") == bytes.fromhex("00A4000C")
    with pytest.raises(ValueError, match="not a hex string"):
        parse_hex("00 A4 0")
