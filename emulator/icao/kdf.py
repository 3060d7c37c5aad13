"""Key derivation and passwords of ICAO 9303-11: KDF (§9.7.1), BAC key seed (§9.7.2),
PACE passwords (§9.7.3) and the MRZ information they are computed from (9303-3 §4.9).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, unique

from .oids import CipherSuite

#: KDF counters c (9303-11 §9.7.1)
KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3


def adjust_des_parity(key: bytes) -> bytes:
    """Set the least significant bit of each byte so every byte has odd parity (FIPS 46-3 §3)."""
    out = bytearray(key)
    for i, b in enumerate(out):
        high = b & 0xFE
        out[i] = high | (bin(high).count("1") + 1) % 2
    return bytes(out)


def kdf(shared_secret: bytes, counter: int, cipher: CipherSuite) -> bytes:
    """KDF(K, c) of ICAO 9303-11 §9.7.1: a key of ``cipher`` from K and the counter c.

    keydata = H(K || c) with c a 32-bit big-endian integer; H is SHA-1 for 3DES and
    AES-128, SHA-256 for AES-192 and AES-256. 3DES takes the first 16 bytes (K_a || K_b)
    with the DES parity bits adjusted; AES the first 16, 24 or 32 bytes.
    """
    digest = hashlib.sha256 if cipher.key_length > 16 else hashlib.sha1
    keydata = digest(shared_secret + counter.to_bytes(4, "big")).digest()[: cipher.key_length]
    return adjust_des_parity(keydata) if cipher.algorithm == "3des" else keydata


_CHECK_WEIGHTS = (7, 3, 1)


def _mrz_value(char: str) -> int:
    if char.isdigit():
        return int(char)
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise ValueError(f"{char!r} is not an MRZ character (0-9, A-Z, <)")


def check_digit(field_value: str) -> str:
    """The check digit of an MRZ field: weights 7, 3, 1 repeated, sum modulo 10 (9303-3 §4.9)."""
    total = sum(_mrz_value(c) * _CHECK_WEIGHTS[i % 3] for i, c in enumerate(field_value))
    return str(total % 10)


def mrz_information(document_number: str, date_of_birth: str, date_of_expiry: str) -> str:
    """The MRZ information of BAC and PACE (9303-11 §9.7.2, §9.7.3.1).

    Document number (padded with ``<`` to 9 characters; a longer one is used whole, as
    TD1 documents carry it, 9303-5 §4.2.4), date of birth and date of expiry (YYMMDD),
    each followed by its check digit.
    """
    for name, date in (("date of birth", date_of_birth), ("date of expiry", date_of_expiry)):
        if len(date) != 6 or not date.isdigit():
            raise ValueError(f"{name} must be YYMMDD, got {len(date)} characters")
    number = document_number.upper().ljust(9, "<")
    return "".join(f + check_digit(f) for f in (number, date_of_birth, date_of_expiry))


def bac_key_seed(mrz_info: str) -> bytes:
    """K_seed: the first 16 bytes of SHA-1(MRZ information) (9303-11 §9.7.2)."""
    return hashlib.sha1(mrz_info.encode("ascii")).digest()[:16]  # noqa: S324 - mandated by 9303-11


@unique
class PasswordType(IntEnum):
    """PACE password references of MSE:Set AT DO 83 (9303-11 §4.4.4.1)."""

    MRZ = 1
    CAN = 2
    PIN = 3
    PUK = 4


@dataclass(frozen=True)
class PacePassword:
    """A PACE password π as the key-derivation input f(π) (9303-11 §9.7.3).

    MRZ: f(π) = SHA-1(MRZ information); CAN, PIN, PUK: the ISO 8859-1 bytes of the digits.
    The value never appears in a repr.
    """

    kind: PasswordType
    secret: bytes = field(repr=False)

    @classmethod
    def mrz(cls, document_number: str, date_of_birth: str, date_of_expiry: str) -> PacePassword:
        info = mrz_information(document_number, date_of_birth, date_of_expiry)
        return cls(PasswordType.MRZ, hashlib.sha1(info.encode("ascii")).digest())  # noqa: S324 - 9303-11 §9.7.3

    @classmethod
    def can(cls, can: str) -> PacePassword:
        return cls(PasswordType.CAN, _digits(can, "CAN"))

    @classmethod
    def pin(cls, pin: str) -> PacePassword:
        return cls(PasswordType.PIN, _digits(pin, "PIN"))

    @classmethod
    def puk(cls, puk: str) -> PacePassword:
        return cls(PasswordType.PUK, _digits(puk, "PUK"))

    def key(self, cipher: CipherSuite) -> bytes:
        """K_π = KDF(f(π), 3) (9303-11 §9.7.3), the key that encrypts the PACE nonce."""
        return kdf(self.secret, KDF_PI, cipher)


def _digits(value: str, what: str) -> bytes:
    if not value or not value.isdigit():
        raise ValueError(f"the {what} must be decimal digits")
    return value.encode("latin-1")
