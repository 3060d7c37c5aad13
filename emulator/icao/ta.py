"""Terminal Authentication version 2 (BSI TR-03110-2 §3.3 / TR-03110-3 §B.11.4-§B.11.6), both roles.

After PACE the terminal sends its CV chain (MSE:Set DST + PSO:Verify Certificate), then
MSE:Set AT ``81 A4`` with ``80`` the TA OID, ``83`` the terminal's CHR, ``91`` Comp(~PK_PCD)
of the ephemeral key it will use for Chip Authentication and optionally ``67`` auxiliary
data; GET CHALLENGE gives r_PICC (8 bytes); EXTERNAL AUTHENTICATE carries

    s_PCD = Sign(SK_PCD, ID_PICC || r_PICC || Comp(~PK_PCD) || A_PCD)

with ID_PICC = Comp(PK_PICC) of PACE's ephemeral key (TR-03110-3 §B.11.4), A_PCD the
whole ``67`` object. The chip checks it with the terminal certificate's key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from asn1crypto.core import ObjectIdentifier

from eidemu.emulator.iso7816.tlv import TLV, TLVError, parse_all

from .cvc import PrivateKey, PublicKey, sign, verify
from .ec import RandomSource
from .errors import ProtocolError, SequenceError

CHALLENGE_LENGTH = 8
"""r_PICC of GET CHALLENGE (TR-03110-3 §B.11.5)."""

MSE_SET_DST = 0x81B6
MSE_SET_AT_TA = 0x81A4


def ta_message(id_picc: bytes, challenge: bytes, compressed_key: bytes, auxiliary_data: bytes = b"") -> bytes:
    """ID_PICC || r_PICC || Comp(~PK_PCD) || A_PCD (TR-03110-2 §3.3, Figure "TA")."""
    return id_picc + challenge + compressed_key + auxiliary_data


def terminal_sign(
    key: PrivateKey, oid: str, id_picc: bytes, challenge: bytes, compressed_key: bytes, auxiliary_data: bytes = b""
) -> bytes:
    """The terminal's signature of EXTERNAL AUTHENTICATE."""
    return sign(key, oid, ta_message(id_picc, challenge, compressed_key, auxiliary_data))


def chip_verify(
    key: PublicKey,
    oid: str,
    id_picc: bytes,
    challenge: bytes,
    compressed_key: bytes,
    signature: bytes,
    auxiliary_data: bytes = b"",
) -> None:
    """The chip's check; :class:`~eidemu.emulator.icao.errors.AuthenticationFailed` if it fails."""
    verify(key, oid, ta_message(id_picc, challenge, compressed_key, auxiliary_data), signature)


@dataclass(frozen=True)
class MseSetDst:
    """MSE:Set DST data: ``83`` the CAR naming the key that checks the next certificate."""

    reference: str

    @classmethod
    def parse(cls, data: bytes) -> MseSetDst:
        try:
            objects = parse_all(data)
        except TLVError as exc:
            raise ProtocolError(f"MSE:Set DST data: {exc}") from None
        if len(objects) != 1 or objects[0].tag != 0x83:
            raise ProtocolError("MSE:Set DST needs exactly DO 83")
        try:
            return cls(objects[0].value.decode("ascii"))
        except UnicodeDecodeError:
            raise ProtocolError("MSE:Set DST: the reference is ASCII") from None

    def encode(self) -> bytes:
        return TLV(0x83, self.reference.encode("ascii")).encode()


@dataclass(frozen=True)
class MseSetAtTa:
    """MSE:Set AT data for Terminal Authentication (TR-03110-3 §B.11.1, Table B.13)."""

    protocol_oid: str
    terminal_reference: str
    compressed_key: bytes
    auxiliary_data: bytes = b""  # the whole 67 object, or empty

    @classmethod
    def parse(cls, data: bytes) -> MseSetAtTa:
        try:
            objects = parse_all(data)
        except TLVError as exc:
            raise ProtocolError(f"MSE:Set AT data: {exc}") from None
        values = {o.tag: o for o in objects}
        if len(values) != len(objects) or set(values) - {0x80, 0x83, 0x91, 0x67}:
            raise ProtocolError("MSE:Set AT for TA: unexpected or repeated data object")
        for tag in (0x80, 0x83, 0x91):
            if tag not in values:
                raise ProtocolError(f"MSE:Set AT for TA: DO {tag:02X} missing")
        contents = values[0x80].value
        try:
            oid = ObjectIdentifier.load(b"\x06" + bytes((len(contents),)) + contents).dotted
            reference = values[0x83].value.decode("ascii")
        except (ValueError, TypeError, UnicodeDecodeError):
            raise ProtocolError("MSE:Set AT for TA: bad OID or reference") from None
        aux = values[0x67].encode() if 0x67 in values else b""
        return cls(oid, reference, values[0x91].value, aux)

    def encode(self) -> bytes:
        return (
            TLV(0x80, ObjectIdentifier(self.protocol_oid).contents).encode()
            + TLV(0x83, self.terminal_reference.encode("ascii")).encode()
            + TLV(0x91, self.compressed_key).encode()
            + self.auxiliary_data
        )


class TaChip:
    """The chip's Terminal Authentication run: set by MSE:Set AT, challenged by GET
    CHALLENGE, completed by EXTERNAL AUTHENTICATE."""

    def __init__(self, mse: MseSetAtTa, id_picc: bytes, *, rng: RandomSource = os.urandom) -> None:
        self.mse = mse
        self.id_picc = id_picc
        self._rng = rng
        self.challenge: bytes | None = None

    def get_challenge(self) -> bytes:
        self.challenge = self._rng(CHALLENGE_LENGTH)
        return self.challenge

    def external_authenticate(self, key: PublicKey, oid: str, signature: bytes) -> None:
        if self.challenge is None:
            raise SequenceError("GET CHALLENGE first")
        challenge, self.challenge = self.challenge, None
        chip_verify(key, oid, self.id_picc, challenge, self.mse.compressed_key, signature, self.mse.auxiliary_data)


__all__ = [
    "CHALLENGE_LENGTH",
    "MSE_SET_AT_TA",
    "MSE_SET_DST",
    "MseSetAtTa",
    "MseSetDst",
    "TaChip",
    "chip_verify",
    "ta_message",
    "terminal_sign",
]
