"""ISO/IEC 7816-4:2020 secure messaging (§10) as ICAO Doc 9303-11 §9.8 profiles it (3DES and AES).

Protected commands carry the data encrypted in DO '87' (DO '85' for odd INS), the expected
length in DO '97' and a cryptographic checksum in DO '8E'; protected responses carry DO
'87', the status word in DO '99' and DO '8E' (ISO/IEC 7816-4:2020 §10). A send sequence
counter (SSC) is incremented before each command and each response and enters every MAC.

- 3DES (BAC, 9303-11 §9.8.6.1): 3DES-CBC with a zero IV; ISO/IEC 9797-1:2011 MAC algorithm 3
  (retail MAC) with DES; 8-byte SSC.
- AES (PACE, 9303-11 §9.8.6.2): AES-CBC with IV = E(KS_enc, SSC); AES-CMAC truncated to
  8 bytes; 16-byte SSC.

Both sides live here: :class:`CardSession` (unwrap command, wrap response) plugs into the
card OS's secure-messaging layer, :class:`TerminalSession` (wrap command, unwrap response)
is what a terminal or a test uses. They share the cryptographic core so one cannot drift
from the other.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from .apdu import CommandAPDU, ResponseAPDU
from .crypto import BlockAlgorithm, aes_cmac, cbc_decrypt, cbc_encrypt, encrypt_block, pad_iso9797_m2, retail_mac
from .sw import SW, CardError
from .tlv import TLV, TLVError, parse_all


def unpad_iso9797_m2(data: bytes) -> bytes:
    """Undo ISO/IEC 9797-1:2011 padding method 2; 6988 when the padding is not there."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "bad padding in DO 87")
    return stripped[:-1]


@dataclass(repr=False)
class SessionKeys:
    """Session keys and send sequence counter of one secure-messaging session.

    The keys never appear in a repr (nor, therefore, in a log line or an error).
    """

    algorithm: BlockAlgorithm
    k_enc: bytes = field(repr=False)
    k_mac: bytes = field(repr=False)
    ssc: int

    def __post_init__(self) -> None:
        self.algorithm = BlockAlgorithm(self.algorithm)
        for name, key in (("k_enc", self.k_enc), ("k_mac", self.k_mac)):
            if len(key) not in self.algorithm.key_sizes or (self.algorithm is BlockAlgorithm.TDES and len(key) != 16):
                raise ValueError(f"{name}: wrong length for a {self.algorithm} session key")

    def __repr__(self) -> str:
        return f"SessionKeys(algorithm={self.algorithm.value!r}, keys=<redacted>)"

    @property
    def block(self) -> int:
        return self.algorithm.block_size

    def ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def next_ssc(self) -> None:
        self.ssc = (self.ssc + 1) % (1 << (8 * self.block))

    def mac(self, data: bytes) -> bytes:
        """The 8-byte checksum over SSC || data (data not yet padded): retail MAC for 3DES
        (9303-11 §9.8.6.1), AES-CMAC truncated to 8 bytes for AES (§9.8.6.2)."""
        message = pad_iso9797_m2(self.ssc_bytes() + data, self.block)
        if self.algorithm is BlockAlgorithm.TDES:
            return retail_mac(self.k_mac, message)
        return aes_cmac(self.k_mac, message)[:8]

    def _iv(self) -> bytes:
        """Zero for 3DES (§9.8.6.1); E(KS_enc, SSC) for AES (§9.8.6.2)."""
        if self.algorithm is BlockAlgorithm.TDES:
            return bytes(8)
        return encrypt_block(self.algorithm, self.k_enc, self.ssc_bytes())

    def encrypt(self, data: bytes) -> bytes:
        return cbc_encrypt(self.algorithm, self.k_enc, self._iv(), pad_iso9797_m2(data, self.block))

    def decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % self.block:
            raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "cryptogram length is not a block multiple")
        return unpad_iso9797_m2(cbc_decrypt(self.algorithm, self.k_enc, self._iv(), data))


def _le_bytes(ne: int, extended: bool) -> bytes:
    if extended:
        return (ne & 0xFFFF).to_bytes(2, "big")
    return bytes((ne & 0xFF,))


class CardSession:
    """The card side: unwrap protected commands, wrap responses (ISO/IEC 7816-4:2020 §10).

    Install one on a channel with :meth:`eidemu.emulator.cardos.card.Channel.start_secure_messaging`.
    """

    def __init__(self, keys: SessionKeys) -> None:
        self.keys = keys

    def __repr__(self) -> str:
        return f"CardSession({self.keys!r})"

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU:
        keys = self.keys
        keys.next_ssc()
        try:
            objects = parse_all(cmd.data)
        except TLVError:
            raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "malformed SM data objects") from None
        if not objects or objects[-1].tag != 0x8E:
            raise CardError(SW.EXPECTED_SM_DATA_OBJECTS_MISSING, "DO 8E missing")
        header = pad_iso9797_m2(bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2)), keys.block)
        covered = b"".join(o.encode() for o in objects[:-1])
        if not hmac.compare_digest(keys.mac(header + covered), objects[-1].value):
            raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "wrong cryptographic checksum")
        data, ne, extended = b"", None, cmd.extended
        for obj in objects[:-1]:
            if obj.tag == 0x87:
                if not obj.value or obj.value[0] != 0x01:
                    raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "DO 87 without padding indicator 01")
                data = keys.decrypt(obj.value[1:])
            elif obj.tag == 0x85:
                data = keys.decrypt(obj.value)
            elif obj.tag == 0x97:
                if len(obj.value) not in (1, 2):
                    raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, "DO 97 must be 1 or 2 bytes")
                le = int.from_bytes(obj.value, "big")
                ne = le or (256 if len(obj.value) == 1 else 65536)
                extended = extended or len(obj.value) == 2
            else:
                raise CardError(SW.INCORRECT_SM_DATA_OBJECTS, f"unexpected DO {obj.tag:02X}")
        return CommandAPDU(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, ne, extended)

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        keys = self.keys
        keys.next_ssc()
        body = TLV(0x87, b"\x01" + keys.encrypt(data)).encode() if data else b""
        body += TLV(0x99, sw.to_bytes(2, "big")).encode()
        body += TLV(0x8E, keys.mac(body)).encode()
        return body, sw  # the outer status word repeats the inner one (9303-11 §9.8.5)


class TerminalSession:
    """The terminal side: wrap commands, unwrap and check responses."""

    def __init__(self, keys: SessionKeys) -> None:
        self.keys = keys

    def __repr__(self) -> str:
        return f"TerminalSession({self.keys!r})"

    def wrap(self, cmd: CommandAPDU) -> CommandAPDU:
        keys = self.keys
        keys.next_ssc()
        cla = cmd.cla | 0x0C
        body = b""
        if cmd.data:
            if cmd.ins & 1:
                body += TLV(0x85, keys.encrypt(cmd.data)).encode()
            else:
                body += TLV(0x87, b"\x01" + keys.encrypt(cmd.data)).encode()
        extended = cmd.extended or (cmd.ne is not None and cmd.ne > 256)
        if cmd.ne is not None:
            body += TLV(0x97, _le_bytes(cmd.ne, extended)).encode()
        header = pad_iso9797_m2(bytes((cla, cmd.ins, cmd.p1, cmd.p2)), keys.block)
        body += TLV(0x8E, keys.mac(header + body)).encode()
        return CommandAPDU(cla, cmd.ins, cmd.p1, cmd.p2, body, 65536 if extended else 256, extended)

    def unwrap(self, rsp: ResponseAPDU) -> ResponseAPDU:
        keys = self.keys
        keys.next_ssc()
        try:
            objects = parse_all(rsp.data)
        except TLVError:
            raise ValueError("malformed secure-messaging response") from None
        if not objects or objects[-1].tag != 0x8E:
            raise ValueError(f"response without DO 8E (SW {rsp.sw:04X})")
        covered = b"".join(o.encode() for o in objects[:-1])
        if not hmac.compare_digest(keys.mac(covered), objects[-1].value):
            raise ValueError("response MAC does not verify")
        data, sw = b"", rsp.sw
        for obj in objects[:-1]:
            if obj.tag == 0x87:
                data = keys.decrypt(obj.value[1:])
            elif obj.tag == 0x99:
                sw = int.from_bytes(obj.value, "big")
        return ResponseAPDU(data, sw)
