"""BER-TLV codec (ISO 7816-4 §6.3, ISO 8825-1 §8.1)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eidemu.emulator.iso7816.tlv import TLV, TLVError, encode_length, find, iter_tlv, parse_all


def test_multi_byte_tag_and_long_lengths():
    value = bytes(300)
    tlv = TLV(0x5F1F, value)
    encoded = tlv.encode()
    assert encoded[:5] == bytes.fromhex("5F1F82012C")
    assert TLV.parse(encoded) == tlv
    assert TLV(0x7F4E, b"\x01").encode() == bytes.fromhex("7F4E0101")
    assert TLV(0x9F7F, bytes(0x80)).encode()[:4] == bytes.fromhex("9F7F8180")


def test_three_byte_tag():
    encoded = bytes.fromhex("DF810201AA")
    tlv = TLV.parse(encoded)
    assert tlv.tag == 0xDF8102 and tlv.value == b"\xaa"
    assert tlv.encode() == encoded


def test_length_forms():
    assert encode_length(0x7F) == b"\x7f"
    assert encode_length(0x80) == b"\x81\x80"
    assert encode_length(0x100) == b"\x82\x01\x00"
    assert encode_length(0x10000) == b"\x83\x01\x00\x00"


def test_constructed_children_and_path():
    fcp = bytes.fromhex("620A 8201 38 8302 3F00 8A01 05".replace(" ", ""))
    tlv = TLV.parse(fcp)
    assert tlv.constructed
    assert [c.tag for c in tlv.children] == [0x82, 0x83, 0x8A]
    assert find(fcp, 0x62, 0x83).value == b"\x3f\x00"
    assert find(fcp, 0x62, 0x84) is None
    nested = TLV.build(0x7F49, TLV(0x81, b"\x01\x02"), TLV(0x82, b"\x03"))
    assert nested.find(0x82).value == b"\x03"


@pytest.mark.parametrize(
    "hex_data",
    ["5F", "5F1F", "8102AA", "82 8501".replace(" ", ""), "01 84 FFFFFFFF".replace(" ", ""), "1F8080808001"],
)
def test_malformed(hex_data):
    with pytest.raises(TLVError):
        parse_all(bytes.fromhex(hex_data))


def test_primitive_has_no_children_and_padding_stops_iteration():
    with pytest.raises(TLVError):
        _ = TLV(0x80, b"\x01").children
    assert [t.tag for t in iter_tlv(bytes.fromhex("800100 0000FF".replace(" ", "")), skip_padding=True)] == [0x80]


tags = st.one_of(
    st.integers(0x00, 0x1E).map(lambda n: n | st_class_bits(n)),
    st.integers(0x1F, 0x7F).map(lambda n: 0x5F00 | n),
    st.integers(0x80, 0x3FFF).map(lambda n: 0x7F8000 | ((n >> 7) << 8) | (n & 0x7F)),
)


def st_class_bits(n: int) -> int:
    return 0x80 if n % 2 else 0x40


@given(tag=tags, value=st.binary(max_size=600))
def test_round_trip(tag, value):
    tlv = TLV(tag, value)
    assert TLV.parse(tlv.encode()) == tlv
