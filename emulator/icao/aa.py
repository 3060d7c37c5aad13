"""Active Authentication (ICAO 9303-11 §6.1), the chip's signature and the terminal's check.

The terminal sends an 8-byte challenge RND.IFD in INTERNAL AUTHENTICATE; the chip signs it
with the private key whose public key is in DG15:

- RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery
  (9303-11 §6.1.2): M = M1 || M2 with M2 = RND.IFD and M1 a chip nonce filling the
  recoverable part; F = 6A || M1 || H(M) || trailer, signature F^d mod n. The trailer is
  ``BC`` for SHA-1 (implicit hash) or ``<hash id> CC`` (ISO/IEC 10118-3 identifiers:
  33 SHA-1, 34 SHA-256, 36 SHA-384, 35 SHA-512, 38 SHA-224).
- ECDSA: the plain signature r || s (BSI TR-03111 §5.2.1) over RND.IFD with the hash of
  the ActiveAuthenticationInfo's signature algorithm (9303-11 §6.1, §9.2.4).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .ec import RandomSource
from .errors import AuthenticationFailed, ProtocolError
from .oids import ECDSA_HASH

#: ISO/IEC 10118-3 hash-function identifiers in the 9796-2 two-byte trailer
HASH_IDENTIFIERS: dict[str, int] = {"sha1": 0x33, "sha256": 0x34, "sha512": 0x35, "sha384": 0x36, "sha224": 0x38}
_HASH_BY_IDENTIFIER = {v: k for k, v in HASH_IDENTIFIERS.items()}
#: first byte of F: '01' header, '1' partial recovery, padding '0', then the nibble 'A' (9796-2 §8.1)
HEADER = 0x6A
IMPLICIT_TRAILER = 0xBC


def _trailer(hash_name: str) -> bytes:
    if hash_name == "sha1":
        return bytes((IMPLICIT_TRAILER,))
    try:
        return bytes((HASH_IDENTIFIERS[hash_name], 0xCC))
    except KeyError:
        raise ValueError(f"no ISO/IEC 9796-2 trailer for hash {hash_name!r}") from None


def _modulus_bytes(n: int) -> int:
    bits = n.bit_length()
    if bits % 8:
        raise ValueError(f"a {bits}-bit modulus is not supported: Active Authentication keys are whole bytes")
    return bits // 8


def recoverable_length(modulus_bits: int, hash_name: str = "sha1") -> int:
    """Bytes of M1: k - L_h - 8t - 8 bits, with k the modulus size and t the trailer length
    in bytes (9303-11 §6.1.2, the worked example: 106 bytes for RSA-1024, SHA-1)."""
    return (modulus_bits - 8 * hashlib.new(hash_name).digest_size - 8 * len(_trailer(hash_name)) - 8) // 8


def message_representative(m1: bytes, challenge: bytes, hash_name: str = "sha1") -> bytes:
    """F = 6A || M1 || H(M1 || RND.IFD) || trailer (ISO/IEC 9796-2 §8.1, scheme 1)."""
    digest = hashlib.new(hash_name, m1 + challenge).digest()
    return bytes((HEADER,)) + m1 + digest + _trailer(hash_name)


def rsa_sign(
    private_key: rsa.RSAPrivateKey,
    challenge: bytes,
    hash_name: str = "sha1",
    *,
    rng: RandomSource = os.urandom,
) -> bytes:
    """The chip's answer to INTERNAL AUTHENTICATE with an RSA key: F^d mod n as k/8 bytes.

    M1 is a fresh nonce from ``rng`` (a test injects the worked example's M1).
    """
    numbers = private_key.private_numbers()
    n = numbers.public_numbers.n
    size = _modulus_bytes(n)
    m1 = rng(recoverable_length(n.bit_length(), hash_name))
    f = int.from_bytes(message_representative(m1, challenge, hash_name), "big")
    # RSA with the Chinese remainder theorem (PKCS #1 v2.2 §5.1.2, RSADP 2.b)
    m_p = pow(f, numbers.dmp1, numbers.p)
    m_q = pow(f, numbers.dmq1, numbers.q)
    h = numbers.iqmp * (m_p - m_q) % numbers.p
    return (m_q + h * numbers.q).to_bytes(size, "big")


@dataclass(frozen=True)
class RecoveredMessage:
    """What the terminal recovers from a 9796-2 signature: M1, the hash and the trailer."""

    m1: bytes
    hash_name: str
    digest: bytes


def rsa_verify(public_key: rsa.RSAPublicKey, challenge: bytes, signature: bytes) -> RecoveredMessage:
    """Recover F = s^e mod n and check header, trailer and H(M1 || RND.IFD) (9303-11 §6.1.2,
    ISO/IEC 9796-2 §8.2); :class:`AuthenticationFailed` naming the first check that fails."""
    numbers = public_key.public_numbers()
    size = _modulus_bytes(numbers.n)
    s = int.from_bytes(signature, "big")
    if len(signature) != size or s >= numbers.n:
        raise AuthenticationFailed(f"signature of {len(signature)} bytes for a {size * 8}-bit key")
    f = pow(s, numbers.e, numbers.n).to_bytes(size, "big")
    if f[0] != HEADER:
        raise AuthenticationFailed(f"recovered message starts {f[0]:02X}, not 6A (partial recovery)")
    if f[-1] == IMPLICIT_TRAILER:
        hash_name, trailer_length = "sha1", 1
    elif f[-1] == 0xCC and f[-2] in _HASH_BY_IDENTIFIER:
        hash_name, trailer_length = _HASH_BY_IDENTIFIER[f[-2]], 2
    else:
        raise AuthenticationFailed(f"unknown ISO/IEC 9796-2 trailer {f[-2:].hex().upper()}")
    digest_size = hashlib.new(hash_name).digest_size
    digest = f[-trailer_length - digest_size : -trailer_length]
    m1 = f[1 : -trailer_length - digest_size]
    if not hmac.compare_digest(hashlib.new(hash_name, m1 + challenge).digest(), digest):
        raise AuthenticationFailed("the recovered hash does not match H(M1 || RND.IFD)")
    return RecoveredMessage(m1, hash_name, digest)


def _hash(signature_algorithm: str) -> hashes.HashAlgorithm:
    try:
        name = ECDSA_HASH[signature_algorithm]
    except KeyError:
        raise ProtocolError(f"{signature_algorithm} is not an ECDSA signature algorithm OID") from None
    return {
        "sha1": hashes.SHA1(),  # noqa: S303 - ecdsa-plain-SHA1 is a listed AA algorithm
        "sha224": hashes.SHA224(),
        "sha256": hashes.SHA256(),
        "sha384": hashes.SHA384(),
        "sha512": hashes.SHA512(),
    }[name]


def _scalar_bytes(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def ecdsa_sign(private_key: ec.EllipticCurvePrivateKey, challenge: bytes, signature_algorithm: str) -> bytes:
    """The chip's ECDSA answer: r || s, each of the order's size (BSI TR-03111 §5.2.1), over
    RND.IFD hashed as ``signature_algorithm`` (an ActiveAuthenticationInfo OID) names."""
    der = private_key.sign(challenge, ec.ECDSA(_hash(signature_algorithm)))
    r, s = decode_dss_signature(der)
    size = _scalar_bytes(private_key.curve)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_verify(
    public_key: ec.EllipticCurvePublicKey, challenge: bytes, signature: bytes, signature_algorithm: str
) -> None:
    """Check a plain ECDSA signature over RND.IFD; :class:`AuthenticationFailed` if it fails."""
    size = _scalar_bytes(public_key.curve)
    if len(signature) != 2 * size:
        raise AuthenticationFailed(f"plain ECDSA signature of {len(signature)} bytes, expected {2 * size}")
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(_hash(signature_algorithm)))
    except InvalidSignature:
        raise AuthenticationFailed("the ECDSA signature over the challenge does not verify") from None
