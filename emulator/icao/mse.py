"""Data fields of MANAGE SECURITY ENVIRONMENT for PACE and Chip Authentication.

- MSE:Set AT (P1-P2 ``C1 A4`` for PACE, ``41 A4`` for Chip Authentication):
  ``80`` cryptographic mechanism (the protocol OID's content bytes), ``83`` password
  reference (PACE), ``84`` reference of a private key or of domain parameters, ``7F4C``
  certificate holder authorization template (9303-11 §4.4.4.1, §6.2.4.2; BSI TR-03110-3
  §B.11.1).
- MSE:Set KAT (P1-P2 ``41 A6``): ``91`` ephemeral public key, ``84`` key reference
  (9303-11 §6.2.4.1).

Both roles use these: the terminal encodes, the chip parses; malformed data raises
:class:`~eidemu.emulator.icao.errors.ProtocolError` naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto.core import ObjectIdentifier

from eidemu.emulator.iso7816.tlv import TLV, TLVError, parse_all

from .errors import ProtocolError
from .kdf import PasswordType


def _reference(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _objects(data: bytes, what: str, allowed: set[int]) -> dict[int, bytes]:
    try:
        objects = parse_all(data)
    except TLVError as exc:
        raise ProtocolError(f"{what} data: {exc}") from None
    values = {o.tag: o.value for o in objects}
    if len(values) != len(objects):
        raise ProtocolError(f"{what}: repeated data object")
    unexpected = set(values) - allowed
    if unexpected:
        raise ProtocolError(f"{what}: unexpected data object {min(unexpected):X}")
    return values


@dataclass(frozen=True)
class MseSetAt:
    """MSE:Set AT data (9303-11 §4.4.4.1 for PACE, §6.2.4.2 for Chip Authentication)."""

    protocol_oid: str
    password: PasswordType | None = None
    key_reference: int | None = None
    chat: bytes | None = None  # the whole 7F4C object, for EAC terminals

    @classmethod
    def parse(cls, data: bytes) -> MseSetAt:
        values = _objects(data, "MSE:Set AT", {0x80, 0x83, 0x84, 0x7F4C})
        if 0x80 not in values:
            raise ProtocolError("MSE:Set AT: cryptographic mechanism reference (DO 80) missing")
        try:
            oid = ObjectIdentifier.load(b"\x06" + bytes((len(values[0x80]),)) + values[0x80]).dotted
        except (ValueError, TypeError):
            raise ProtocolError("MSE:Set AT: DO 80 is not an object identifier") from None
        password = None
        if 0x83 in values:
            reference = int.from_bytes(values[0x83], "big")
            try:
                password = PasswordType(reference)
            except ValueError:
                raise ProtocolError(f"MSE:Set AT: unknown password reference {reference}") from None
        key_reference = int.from_bytes(values[0x84], "big") if 0x84 in values else None
        chat = TLV(0x7F4C, values[0x7F4C]).encode() if 0x7F4C in values else None
        return cls(oid, password, key_reference, chat)

    def encode(self) -> bytes:
        data = TLV(0x80, ObjectIdentifier(self.protocol_oid).contents).encode()
        if self.password is not None:
            data += TLV(0x83, bytes((int(self.password),))).encode()
        if self.key_reference is not None:
            data += TLV(0x84, _reference(self.key_reference)).encode()
        if self.chat is not None:
            data += self.chat
        return data


@dataclass(frozen=True)
class MseSetKat:
    """MSE:Set KAT data for Chip Authentication with 3DES (9303-11 §6.2.4.1)."""

    ephemeral_public_key: bytes
    key_reference: int | None = None

    @classmethod
    def parse(cls, data: bytes) -> MseSetKat:
        values = _objects(data, "MSE:Set KAT", {0x91, 0x84})
        if 0x91 not in values:
            raise ProtocolError("MSE:Set KAT: ephemeral public key (DO 91) missing")
        key_reference = int.from_bytes(values[0x84], "big") if 0x84 in values else None
        return cls(values[0x91], key_reference)

    def encode(self) -> bytes:
        data = TLV(0x91, self.ephemeral_public_key).encode()
        if self.key_reference is not None:
            data += TLV(0x84, _reference(self.key_reference)).encode()
        return data
