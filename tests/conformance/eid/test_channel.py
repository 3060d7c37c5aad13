"""ChipChannel against a test double that answers READ BINARY from a byte string: the exact
APDUs of a chunked read, the odd-INS read beyond offset 32 767, the fallback to short
length after 6700, GET RESPONSE for 61xx."""

from __future__ import annotations

import pytest

from eidemu.conformance.eid.channel import ChipChannel, ChipError
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV


class FileCard:
    """Answers READ BINARY (B0 with SFI or offset, B1 with DO 54) from one file; records APDUs."""

    def __init__(self, content: bytes, *, extended: bool = True, get_response: bool = False) -> None:
        self.content = content
        self.extended = extended
        self.get_response = get_response
        self.sent: list[bytes] = []
        self.pending = b""
        self.description = "double"
        self.atr = b"\x3b\x00"

    def transmit(self, raw: bytes) -> bytes:
        self.sent.append(raw)
        cmd = CommandAPDU.parse(raw)
        if cmd.ins == 0xC0:
            data, self.pending = self.pending[: cmd.ne], self.pending[cmd.ne or 0 :]
            return data + (bytes((0x61, min(len(self.pending), 255))) if self.pending else b"\x90\x00")
        if cmd.extended and not self.extended:
            return b"\x67\x00"
        if cmd.ins == 0xB0:
            offset = cmd.p2 if cmd.p1 & 0x80 else (cmd.p1 << 8) | cmd.p2
            data = self.content[offset : offset + (cmd.ne or 0)]
        else:
            offset = int.from_bytes(TLV.parse(cmd.data).value, "big")
            data = TLV(0x53, self.content[offset : offset + (cmd.ne or 0) - 4]).encode()
        if self.get_response and len(data) > 16:
            self.pending = data[16:]
            return data[:16] + bytes((0x61, min(len(self.pending), 255)))
        end = offset + (cmd.ne or 0) > len(self.content)
        return data + (b"\x62\x82" if end else b"\x90\x00")

    def reset(self) -> bytes:
        return self.atr

    def close(self) -> None:
        pass


def test_a_file_is_read_by_sfi_then_by_offset_in_chunks():
    content = b"\x61\x5d" + bytes(range(0x5D))  # 95 bytes, like DG1
    card = FileCard(content)
    channel = ChipChannel(card, chunk=0x20)
    assert channel.read_file(0x01, "DG1") == content
    assert [a.hex().upper() for a in card.sent] == ["00B0810020", "00B0002020", "00B000401F"]


def test_offsets_beyond_32767_use_odd_ins_with_do_54():
    content = b"\x75\x82\x9c\x3c" + bytes(0x9C3C)  # 40 000 bytes
    card = FileCard(content)
    channel = ChipChannel(card, chunk=0x4000)
    assert channel.read_file(0x02, "DG2") == content
    assert [a.hex().upper() for a in card.sent] == [
        "00B08200004000",  # SFI 02, offset 0, Ne 16 384
        "00B04000004000",  # offset 16 384
        "00B10000000004540280001C44",  # offset 32 768 in DO 54; Ne = the 7 232 left + DO 53 header
    ]


def test_a_chip_without_extended_length_is_read_in_short_chunks():
    content = b"\x61\x82\x01\x00" + bytes(256)  # 260 bytes
    card = FileCard(content, extended=False)
    channel = ChipChannel(card)
    assert channel.read_file(0x01, "DG1") == content
    assert [a.hex().upper() for a in card.sent] == ["00B08100001000", "00B08100DF", "00B000DF25"]


def test_61xx_is_followed_by_get_response():
    content = b"\x61\x1e" + bytes(range(30))
    card = FileCard(content, get_response=True)
    channel = ChipChannel(card, chunk=0x20)
    assert channel.read_file(0x01, "DG1") == content
    assert [a.hex().upper() for a in card.sent] == ["00B0810020", "00C0000010"]
    assert channel.exchanges == 2


def test_an_error_status_names_the_command():
    class Refusing(FileCard):
        def transmit(self, raw: bytes) -> bytes:
            self.sent.append(raw)
            return b"\x69\x82"

    with pytest.raises(ChipError, match=r"^DG3: the chip answered 6982$") as info:
        ChipChannel(Refusing(b"")).read_file(0x03, "DG3")
    assert info.value.sw == 0x6982


def test_a_card_that_refuses_everything_fails_access_with_the_status_word():
    from eidemu.conformance.eid import AccessKey, InspectionSystem
    from eidemu.conformance.eid.report import Verdict

    class Refusing(FileCard):
        def transmit(self, raw: bytes) -> bytes:
            self.sent.append(raw)
            return b"\x6d\x00"

    card = Refusing(b"")
    report = InspectionSystem(card).inspect(AccessKey(can="123456"))
    assert [(c.name, c.verdict, c.reason) for c in report.checks] == [
        ("access", Verdict.FAILED, "EF.CardAccess: the chip answered 6D00")
    ]
    assert card.sent == [bytes.fromhex("00B09C00001000")]
