"""Card-verifiable certificates of Extended Access Control (BSI TR-03110-3 Appendix C).

A CV certificate is ``7F21 { 7F4E body, 5F37 signature }``; the body (§C.1, Table C.1) is

- ``5F29`` certificate profile identifier (``00``),
- ``42`` certification authority reference (CAR),
- ``7F49`` public key: ``06`` the TA algorithm OID, then for ECDSA the domain parameters
  ``81`` p ``82`` a ``83`` b ``84`` G ``85`` r ``86`` public point ``87`` cofactor (CVCA
  certificates carry all; DV and terminal certificates only ``86`` and inherit the domain
  parameters from their issuer, §D.3.3), for RSA ``81`` modulus ``82`` exponent (§D.3.2),
- ``5F20`` certificate holder reference (CHR),
- ``7F4C`` certificate holder authorization template (CHAT): ``06`` the role OID (id-IS,
  id-AT, id-ST) and ``53`` the relative authorization, whose two most significant bits are
  the role (CVCA, DV domestic, DV foreign, terminal) and the other bits rights (§C.4),
- ``5F25`` effective date, ``5F24`` expiration date (YYMMDD as six unpacked BCD digits, §D.2.1.3),
- optionally ``65`` certificate extensions.

The signature is over the encoded body, with the algorithm of the *issuer's* key:
id-TA-ECDSA-SHA-* in the plain format r || s (BSI TR-03111 §5.2.1), id-TA-RSA-v1-5-SHA-*
(RFC 8017 §8.2) or id-TA-RSA-PSS-SHA-* (RFC 8017 §8.1, salt of the hash's length).

:func:`verify_chain` is the chip's certificate validation of TR-03110-3 §2.5 on top of
:class:`TrustPoint`: signature, expiry against the chip's current date, role order
(CVCA -> DV -> terminal), the date update by CVCA, DV and domestic certificates, and the
trust-point update by a CVCA link certificate. Effective rights are the intersection of
the CHATs along the chain (§C.4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import IntEnum, unique

from asn1crypto.core import ObjectIdentifier
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from eidemu.emulator.iso7816.tlv import TLV, TLVError, parse_all

from .ec import CURVES, Curve
from .ec import curve as named_curve
from .errors import AuthenticationFailed, ProtocolError
from .oids import BSI_DE, ID_TA

# -- OIDs (BSI TR-03110-3 §A.2.2.2 and §C.4) -------------------------------------------------
ID_TA_RSA = ID_TA + ".1"
ID_TA_RSA_V1_5_SHA_1 = ID_TA_RSA + ".1"
ID_TA_RSA_V1_5_SHA_256 = ID_TA_RSA + ".2"
ID_TA_RSA_PSS_SHA_1 = ID_TA_RSA + ".3"
ID_TA_RSA_PSS_SHA_256 = ID_TA_RSA + ".4"
ID_TA_RSA_V1_5_SHA_512 = ID_TA_RSA + ".5"
ID_TA_RSA_PSS_SHA_512 = ID_TA_RSA + ".6"
ID_TA_ECDSA = ID_TA + ".2"
ID_TA_ECDSA_SHA_1 = ID_TA_ECDSA + ".1"
ID_TA_ECDSA_SHA_224 = ID_TA_ECDSA + ".2"
ID_TA_ECDSA_SHA_256 = ID_TA_ECDSA + ".3"
ID_TA_ECDSA_SHA_384 = ID_TA_ECDSA + ".4"
ID_TA_ECDSA_SHA_512 = ID_TA_ECDSA + ".5"

ID_ROLES = BSI_DE + ".3.1.2"
ID_IS = ID_ROLES + ".1"  # inspection systems
ID_AT = ID_ROLES + ".2"  # authentication terminals
ID_ST = ID_ROLES + ".3"  # signature terminals

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    ID_TA_RSA_V1_5_SHA_1: hashes.SHA1,
    ID_TA_RSA_V1_5_SHA_256: hashes.SHA256,
    ID_TA_RSA_PSS_SHA_1: hashes.SHA1,
    ID_TA_RSA_PSS_SHA_256: hashes.SHA256,
    ID_TA_RSA_V1_5_SHA_512: hashes.SHA512,
    ID_TA_RSA_PSS_SHA_512: hashes.SHA512,
    ID_TA_ECDSA_SHA_1: hashes.SHA1,
    ID_TA_ECDSA_SHA_224: hashes.SHA224,
    ID_TA_ECDSA_SHA_256: hashes.SHA256,
    ID_TA_ECDSA_SHA_384: hashes.SHA384,
    ID_TA_ECDSA_SHA_512: hashes.SHA512,
}
_CHAT_LENGTH = {ID_IS: 1, ID_AT: 5, ID_ST: 1}


@unique
class CvcTag(IntEnum):
    """Tags of CV certificates (BSI TR-03110-3 §D.2, Table D.1)."""

    CERTIFICATE = 0x7F21
    BODY = 0x7F4E
    PROFILE_IDENTIFIER = 0x5F29
    CAR = 0x42
    PUBLIC_KEY = 0x7F49
    CHR = 0x5F20
    CHAT = 0x7F4C
    EFFECTIVE_DATE = 0x5F25
    EXPIRATION_DATE = 0x5F24
    EXTENSIONS = 0x65
    SIGNATURE = 0x5F37
    OID = 0x06
    DISCRETIONARY_DATA = 0x53


@unique
class Role(IntEnum):
    """The two most significant bits of the relative authorization (TR-03110-3 Tables C.2-C.4)."""

    TERMINAL = 0b00
    DV_FOREIGN = 0b01  # id-AT: DV non-official / foreign
    DV_DOMESTIC = 0b10  # id-AT: DV official domestic
    CVCA = 0b11


@unique
class AtRight(IntEnum):
    """Bits of an authentication terminal's relative authorization (TR-03110-3 Table C.4).

    Read DGn is bit ``7 + n`` (DG1 bit 8 ... DG21 bit 28); write DG17..DG21 bits 37..33.
    """

    AGE_VERIFICATION = 0
    COMMUNITY_ID_VERIFICATION = 1
    RESTRICTED_IDENTIFICATION = 2
    PRIVILEGED_TERMINAL = 3
    CAN_ALLOWED = 4
    PIN_MANAGEMENT = 5
    INSTALL_CERTIFICATE = 6
    INSTALL_QUALIFIED_CERTIFICATE = 7


@unique
class IsRight(IntEnum):
    """Bits of an inspection system's relative authorization (TR-03110-3 Table C.2)."""

    READ_DG3 = 0  # fingerprint
    READ_DG4 = 1  # iris


def read_dg(n: int) -> int:
    """The id-AT bit granting read access to DGn (TR-03110-3 Table C.4: DG1 is bit 8)."""
    if not 1 <= n <= 21:
        raise ValueError(f"DG{n}: id-AT read rights exist for DG1..DG21")
    return 7 + n


def write_dg(n: int) -> int:
    """The id-AT bit granting write access to DGn (DG17 bit 37 ... DG21 bit 33)."""
    if not 17 <= n <= 21:
        raise ValueError(f"DG{n}: id-AT write rights exist for DG17..DG21")
    return 54 - n


class CvcError(ProtocolError):
    """A CV certificate is malformed or does not validate; ``reason`` names the check."""


def _oid_bytes(dotted: str) -> bytes:
    return ObjectIdentifier(dotted).contents


def _oid_dotted(contents: bytes) -> str:
    try:
        return ObjectIdentifier.load(b"\x06" + bytes((len(contents),)) + contents).dotted
    except (ValueError, TypeError):
        raise CvcError("not an object identifier") from None


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


# -- dates (TR-03110-3 §D.2.1.3) -------------------------------------------------------------


def encode_date(date: dt.date) -> bytes:
    """YYMMDD as six unpacked BCD digits (``2026-12-01`` -> ``02 06 01 02 00 01``)."""
    if not 2000 <= date.year <= 2099:
        raise ValueError("CV certificate dates lie in 2000..2099")
    return bytes(int(c) for c in date.strftime("%y%m%d"))


def decode_date(data: bytes) -> dt.date:
    """The inverse of :func:`encode_date`; :class:`CvcError` for anything but six digits."""
    if len(data) != 6 or any(b > 9 for b in data):
        raise CvcError(f"a date is six unpacked BCD digits, got {data.hex().upper()}")
    digits = "".join(str(b) for b in data)
    try:
        return dt.date(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:]))
    except ValueError:
        raise CvcError(f"no such date {digits}") from None


# -- CHAT (TR-03110-3 §C.1.5, §C.4) ----------------------------------------------------------


@dataclass(frozen=True)
class Chat:
    """A certificate holder authorization template: role OID and relative authorization.

    ``authorization`` is the discretionary data as an integer of ``length`` bytes; the
    role is its two top bits, the rights the others.
    """

    role_oid: str
    authorization: int
    length: int = 0

    def __post_init__(self) -> None:
        if not self.length:
            object.__setattr__(self, "length", _CHAT_LENGTH.get(self.role_oid, 1))
        if self.authorization >> (8 * self.length):
            raise ValueError("relative authorization longer than the template")

    @classmethod
    def of(cls, role_oid: str, role: Role, rights: int | list[int] | tuple[int, ...] = 0) -> Chat:
        """A CHAT from a role and a bit mask or list of right bit numbers."""
        length = _CHAT_LENGTH.get(role_oid, 1)
        mask = rights if isinstance(rights, int) else sum(1 << bit for bit in set(rights))
        return cls(role_oid, (int(role) << (8 * length - 2)) | mask, length)

    @property
    def role(self) -> Role:
        return Role(self.authorization >> (8 * self.length - 2))

    @property
    def rights(self) -> int:
        """The rights bits, role bits cleared."""
        return self.authorization & ((1 << (8 * self.length - 2)) - 1)

    def has(self, bit: int) -> bool:
        return bool(self.rights >> bit & 1)

    def restrict(self, other: Chat) -> Chat:
        """The rights both templates grant, with this one's role (the chain rule of §C.4)."""
        if other.role_oid != self.role_oid:
            raise CvcError(f"CHAT role {other.role_oid} does not match {self.role_oid}")
        return Chat(
            self.role_oid, (int(self.role) << (8 * self.length - 2)) | (self.rights & other.rights), self.length
        )

    @classmethod
    def parse(cls, data: bytes) -> Chat:
        """Parse the whole ``7F4C`` object."""
        try:
            outer = TLV.parse(data)
            if outer.tag != CvcTag.CHAT:
                raise CvcError(f"expected CHAT 7F4C, found {outer.tag:X}")
            children = {c.tag: c.value for c in outer.children}
        except TLVError as exc:
            raise CvcError(f"CHAT: {exc}") from None
        if CvcTag.OID not in children or CvcTag.DISCRETIONARY_DATA not in children:
            raise CvcError("CHAT needs 06 and 53")
        value = children[CvcTag.DISCRETIONARY_DATA]
        if not value:
            raise CvcError("CHAT: empty relative authorization")
        return cls(_oid_dotted(children[CvcTag.OID]), int.from_bytes(value, "big"), len(value))

    def encode(self) -> bytes:
        return TLV.build(
            CvcTag.CHAT,
            TLV(CvcTag.OID, _oid_bytes(self.role_oid)),
            TLV(CvcTag.DISCRETIONARY_DATA, self.authorization.to_bytes(self.length, "big")),
        ).encode()


# -- public keys (TR-03110-3 §D.3) -----------------------------------------------------------


_EC_TAGS = (0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87)


@dataclass(frozen=True)
class CvPublicKey:
    """The ``7F49`` public key: algorithm OID and its data objects by tag (§D.3)."""

    oid: str
    objects: tuple[tuple[int, bytes], ...]

    @property
    def is_rsa(self) -> bool:
        return self.oid.startswith(ID_TA_RSA + ".")

    def get(self, tag: int) -> bytes | None:
        return next((v for t, v in self.objects if t == tag), None)

    @property
    def has_domain_parameters(self) -> bool:
        return not self.is_rsa and self.get(0x81) is not None

    def curve(self) -> Curve:
        """The named curve whose prime and generator the key carries (ECDSA keys with ``81``)."""
        p, g = self.get(0x81), self.get(0x84)
        if p is None or g is None:
            raise CvcError("the key carries no domain parameters")
        for candidate in CURVES.values():
            if candidate.p == int.from_bytes(p, "big") and g[1 : 1 + candidate.size] == candidate.gx.to_bytes(
                candidate.size, "big"
            ):
                return candidate
        raise CvcError("domain parameters of no known named curve")

    @classmethod
    def ecdsa(cls, oid: str, curve: Curve, point: bytes, *, domain_parameters: bool) -> CvPublicKey:
        """An ECDSA key; with ``domain_parameters`` (CVCA) all of 81..87, else only 86."""
        if not domain_parameters:
            return cls(oid, ((0x86, point),))
        size = curve.size
        g = b"\x04" + curve.gx.to_bytes(size, "big") + curve.gy.to_bytes(size, "big")
        values = (curve.p.to_bytes(size, "big"), curve.a.to_bytes(size, "big"), curve.b.to_bytes(size, "big"), g)
        order = curve.n.to_bytes((curve.n.bit_length() + 7) // 8, "big")
        return cls(
            oid, (*zip(_EC_TAGS[:4], values, strict=True), (0x85, order), (0x86, point), (0x87, bytes((curve.h,))))
        )

    @classmethod
    def from_key(
        cls, oid: str, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, *, domain_parameters: bool
    ) -> CvPublicKey:
        """The ``7F49`` object of a ``cryptography`` public key."""
        if isinstance(key, rsa.RSAPublicKey):
            numbers = key.public_numbers()
            return cls(oid, ((0x81, _int_bytes(numbers.n)), (0x82, _int_bytes(numbers.e))))
        point = key.public_bytes(_ENCODING_X962, _FORMAT_UNCOMPRESSED)
        return cls.ecdsa(oid, named_curve(key.curve.name), point, domain_parameters=domain_parameters)

    def to_key(self, curve: Curve | None = None) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """The key as a ``cryptography`` object; ECDSA keys without domain parameters need
        the ``curve`` inherited from the issuer."""
        if self.is_rsa:
            n, e = self.get(0x81), self.get(0x82)
            if n is None or e is None:
                raise CvcError("RSA key needs 81 modulus and 82 exponent")
            return rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
        point = self.get(0x86)
        if point is None:
            raise CvcError("ECDSA key needs 86 public point")
        named = self.curve() if self.has_domain_parameters else curve
        if named is None:
            raise CvcError("ECDSA key without domain parameters and no issuer's curve")
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(_CRYPTO_CURVES[named.name](), point)
        except (ValueError, KeyError):
            raise CvcError("the public point is not on the curve") from None

    @classmethod
    def parse(cls, data: bytes) -> CvPublicKey:
        """Parse the whole ``7F49`` object."""
        try:
            outer = TLV.parse(data)
            if outer.tag != CvcTag.PUBLIC_KEY:
                raise CvcError(f"expected public key 7F49, found {outer.tag:X}")
            children = outer.children
        except TLVError as exc:
            raise CvcError(f"public key: {exc}") from None
        if not children or children[0].tag != CvcTag.OID:
            raise CvcError("public key: the OID comes first")
        oid = _oid_dotted(children[0].value)
        if oid not in _HASHES:
            raise CvcError(f"public key: {oid} is no TA algorithm")
        return cls(oid, tuple((c.tag, c.value) for c in children[1:]))

    def encode(self) -> bytes:
        return TLV.build(
            CvcTag.PUBLIC_KEY, TLV(CvcTag.OID, _oid_bytes(self.oid)), *(TLV(t, v) for t, v in self.objects)
        ).encode()


_ENCODING_X962 = Encoding.X962
_FORMAT_UNCOMPRESSED = PublicFormat.UncompressedPoint
_CRYPTO_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
}


# -- signatures --------------------------------------------------------------------------------


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _pss(hash_type: type[hashes.HashAlgorithm]) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=hash_type().digest_size)


def sign(key: PrivateKey, oid: str, message: bytes) -> bytes:
    """A TA signature (TR-03110-3 §A.2.2.2): plain ECDSA r || s, PKCS#1 v1.5 or PSS."""
    hash_type = _HASHES[oid]
    if isinstance(key, rsa.RSAPrivateKey):
        pad = _pss(hash_type) if "PSS" in _rsa_name(oid) else padding.PKCS1v15()
        return key.sign(message, pad, hash_type())
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hash_type())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify(key: PublicKey, oid: str, message: bytes, signature: bytes) -> None:
    """Check a TA signature; :class:`AuthenticationFailed` if it does not verify."""
    hash_type = _HASHES.get(oid)
    if hash_type is None:
        raise CvcError(f"{oid} is no TA signature algorithm")
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if oid.startswith(ID_TA_ECDSA):
                raise AuthenticationFailed("an RSA key cannot check an ECDSA signature")
            pad = _pss(hash_type) if "PSS" in _rsa_name(oid) else padding.PKCS1v15()
            key.verify(signature, message, pad, hash_type())
            return
        if oid.startswith(ID_TA_RSA):
            raise AuthenticationFailed("an EC key cannot check an RSA signature")
        size = (key.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            raise AuthenticationFailed(f"plain ECDSA signature of {len(signature)} bytes, expected {2 * size}")
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hash_type()))
    except InvalidSignature:
        raise AuthenticationFailed("the signature does not verify") from None


def _rsa_name(oid: str) -> str:
    return {ID_TA_RSA_PSS_SHA_1: "PSS", ID_TA_RSA_PSS_SHA_256: "PSS", ID_TA_RSA_PSS_SHA_512: "PSS"}.get(oid, "v1.5")


# -- the certificate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CvCertificate:
    """One CV certificate (TR-03110-3 §C.1); ``body`` keeps the signed bytes as received."""

    car: str
    public_key: CvPublicKey
    chr: str
    chat: Chat
    effective: dt.date
    expiration: dt.date
    signature: bytes = field(repr=False)
    extensions: bytes | None = None
    profile_identifier: int = 0

    @property
    def body(self) -> bytes:
        """The encoded ``7F4E`` body, the bytes the signature covers."""
        objects = [
            TLV(CvcTag.PROFILE_IDENTIFIER, bytes((self.profile_identifier,))).encode(),
            TLV(CvcTag.CAR, self.car.encode("ascii")).encode(),
            self.public_key.encode(),
            TLV(CvcTag.CHR, self.chr.encode("ascii")).encode(),
            self.chat.encode(),
            TLV(CvcTag.EFFECTIVE_DATE, encode_date(self.effective)).encode(),
            TLV(CvcTag.EXPIRATION_DATE, encode_date(self.expiration)).encode(),
        ]
        if self.extensions is not None:
            objects.append(TLV(CvcTag.EXTENSIONS, self.extensions).encode())
        return TLV(CvcTag.BODY, b"".join(objects)).encode()

    def encode(self) -> bytes:
        return TLV(CvcTag.CERTIFICATE, self.body + TLV(CvcTag.SIGNATURE, self.signature).encode()).encode()

    __bytes__ = encode

    @property
    def role(self) -> Role:
        return self.chat.role

    @property
    def is_link(self) -> bool:
        """A CVCA certificate signed by another CVCA key (a link certificate, §2.5.2)."""
        return self.role is Role.CVCA and self.car != self.chr

    @classmethod
    def parse(cls, data: bytes) -> CvCertificate:
        """Parse ``7F21 {7F4E, 5F37}``; :class:`CvcError` naming the first problem."""
        try:
            outer = TLV.parse(data)
        except TLVError as exc:
            raise CvcError(f"CV certificate: {exc}") from None
        if outer.tag != CvcTag.CERTIFICATE:
            raise CvcError(f"expected CV certificate 7F21, found {outer.tag:X}")
        try:
            children = outer.children
        except TLVError as exc:
            raise CvcError(f"CV certificate: {exc}") from None
        if len(children) != 2 or children[0].tag != CvcTag.BODY or children[1].tag != CvcTag.SIGNATURE:
            raise CvcError("a CV certificate is 7F4E body then 5F37 signature")
        return cls.from_body(children[0].encode(), children[1].value)

    @classmethod
    def from_body(cls, body: bytes, signature: bytes) -> CvCertificate:
        """Parse an encoded ``7F4E`` body with its signature (as PSO:Verify Certificate sends them)."""
        try:
            outer = TLV.parse(body)
            if outer.tag != CvcTag.BODY:
                raise CvcError(f"expected certificate body 7F4E, found {outer.tag:X}")
            objects = parse_all(outer.value)
        except TLVError as exc:
            raise CvcError(f"certificate body: {exc}") from None
        order = [CvcTag.PROFILE_IDENTIFIER, CvcTag.CAR, CvcTag.PUBLIC_KEY, CvcTag.CHR, CvcTag.CHAT]
        order += [CvcTag.EFFECTIVE_DATE, CvcTag.EXPIRATION_DATE]
        tags = [o.tag for o in objects]
        if tags not in (order, [*order, CvcTag.EXTENSIONS]):
            raise CvcError("certificate body: data objects missing or out of order (TR-03110-3 Table C.1)")
        profile, car, key, chr_, chat, effective, expiration = objects[:7]
        if profile.value != b"\x00":
            raise CvcError("certificate profile identifier must be 00")
        try:
            car_text, chr_text = car.value.decode("ascii"), chr_.value.decode("ascii")
        except UnicodeDecodeError:
            raise CvcError("CAR and CHR are ASCII") from None
        cert = cls(
            car_text,
            CvPublicKey.parse(key.encode()),
            chr_text,
            Chat.parse(chat.encode()),
            decode_date(effective.value),
            decode_date(expiration.value),
            signature,
            objects[7].value if len(objects) == 8 else None,
        )
        if cert.body != body:
            raise CvcError("certificate body is not in the canonical encoding")
        return cert

    @classmethod
    def issue(
        cls,
        issuer_key: PrivateKey,
        issuer_oid: str,
        *,
        car: str,
        chr: str,
        public_key: CvPublicKey,
        chat: Chat,
        effective: dt.date,
        expiration: dt.date,
        extensions: bytes | None = None,
    ) -> CvCertificate:
        """Build and sign a certificate with the issuer's key and TA algorithm."""
        unsigned = cls(car, public_key, chr, chat, effective, expiration, b"", extensions)
        return replace(unsigned, signature=sign(issuer_key, issuer_oid, unsigned.body))


# -- the chip's trust point and chain validation (TR-03110-3 §2.5) ----------------------------


@dataclass(frozen=True)
class TrustPoint:
    """A CVCA public key the chip trusts: its CHR, key, curve and CHAT (§2.5.1)."""

    chr: str
    public_key: CvPublicKey
    chat: Chat
    expiration: dt.date
    curve: Curve | None = None

    @classmethod
    def of(cls, cvca: CvCertificate) -> TrustPoint:
        key = cvca.public_key
        return cls(cvca.chr, key, cvca.chat, cvca.expiration, key.curve() if key.has_domain_parameters else None)


@unique
class ChainFailure(IntEnum):
    """Why PSO:Verify Certificate refused a certificate (the card maps each to a status word)."""

    UNKNOWN_CAR = 1  # no public key with that CHR: 6A88
    BAD_SIGNATURE = 2  # 6300
    EXPIRED = 3  # 6300
    WRONG_ROLE = 4  # a certificate out of the chain order or role mismatch: 6300
    MALFORMED = 5  # 6A80


class ChainError(CvcError):
    """A certificate did not validate; ``failure`` says why."""

    def __init__(self, failure: ChainFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class VerifiedKey:
    """A public key the chip imported by PSO:Verify Certificate (temporary, §2.5)."""

    chr: str
    public_key: CvPublicKey
    chat: Chat
    curve: Curve | None
    expiration: dt.date


def verify_certificate(
    cert: CvCertificate, issuer: TrustPoint | VerifiedKey, current_date: dt.date
) -> tuple[VerifiedKey, dt.date]:
    """One step of the chip's validation (TR-03110-3 §2.5.1): the certificate's CAR names
    ``issuer``, the signature verifies with its key, the role follows the issuer's
    (CVCA -> CVCA link / DV -> terminal), and it has not expired at ``current_date``.

    Returns the imported key, with its CHAT already restricted by the issuer's (§C.4), and
    the new current date: the effective date of a CVCA, DV or domestic terminal
    certificate if that is later (§2.5.1, "accurate" certificates).
    """
    if cert.car != issuer.chr:
        raise ChainError(ChainFailure.UNKNOWN_CAR, f"CAR {cert.car} is not {issuer.chr}")
    expected = {
        Role.CVCA: (Role.CVCA, Role.DV_DOMESTIC, Role.DV_FOREIGN),
        Role.DV_DOMESTIC: (Role.TERMINAL,),
        Role.DV_FOREIGN: (Role.TERMINAL,),
        Role.TERMINAL: (),
    }[issuer.chat.role]
    if cert.role not in expected:
        raise ChainError(
            ChainFailure.WRONG_ROLE, f"a {cert.role.name} certificate cannot follow a {issuer.chat.role.name} key"
        )
    try:
        key = issuer.public_key.to_key(issuer.curve)
        verify(key, issuer.public_key.oid, cert.body, cert.signature)
    except AuthenticationFailed as exc:
        raise ChainError(ChainFailure.BAD_SIGNATURE, str(exc)) from None
    except CvcError as exc:
        raise ChainError(ChainFailure.MALFORMED, str(exc)) from None
    if cert.expiration < current_date:
        raise ChainError(ChainFailure.EXPIRED, f"{cert.chr} expired on {cert.expiration.isoformat()}")
    if cert.chat.role_oid != issuer.chat.role_oid:
        raise ChainError(ChainFailure.WRONG_ROLE, "the CHAT's terminal type differs from the CVCA's")
    curve = cert.public_key.curve() if cert.public_key.has_domain_parameters else issuer.curve
    if cert.public_key.is_rsa != issuer.public_key.is_rsa:
        raise ChainError(ChainFailure.MALFORMED, "a chain uses one algorithm family")
    accurate = cert.role in (Role.CVCA, Role.DV_DOMESTIC) or (
        cert.role is Role.TERMINAL and issuer.chat.role is Role.DV_DOMESTIC
    )
    new_date = max(current_date, cert.effective) if accurate else current_date
    chat = cert.chat if cert.role is Role.CVCA else cert.chat.restrict(issuer.chat)
    return VerifiedKey(cert.chr, cert.public_key, chat, curve, cert.expiration), new_date


def verify_chain(
    chain: list[CvCertificate], trust_points: list[TrustPoint], current_date: dt.date
) -> tuple[VerifiedKey, dt.date, list[TrustPoint]]:
    """Validate link, DV and terminal certificates in order from a trust point, as the chip
    does with successive PSO:Verify Certificate commands; returns the terminal's key (with
    the effective CHAT), the updated date and the updated trust points."""
    if not chain:
        raise ChainError(ChainFailure.MALFORMED, "an empty chain")
    points = list(trust_points)
    issuer: TrustPoint | VerifiedKey | None = None
    date = current_date
    for cert in chain:
        if issuer is None or cert.car != issuer.chr:
            issuer = next((p for p in points if p.chr == cert.car), None)
            if issuer is None:
                raise ChainError(ChainFailure.UNKNOWN_CAR, f"no trust point {cert.car}")
        verified, date = verify_certificate(cert, issuer, date)
        if cert.role is Role.CVCA:
            point = TrustPoint(verified.chr, verified.public_key, verified.chat, verified.expiration, verified.curve)
            points.append(point)
            issuer = point
        else:
            issuer = verified
    if not isinstance(issuer, VerifiedKey) or issuer.chat.role is not Role.TERMINAL:
        raise ChainError(ChainFailure.WRONG_ROLE, "the chain does not end with a terminal certificate")
    return issuer, date, points


__all__ = [
    "ID_AT",
    "ID_IS",
    "ID_ST",
    "ID_TA_ECDSA_SHA_256",
    "ID_TA_RSA_PSS_SHA_256",
    "ID_TA_RSA_V1_5_SHA_256",
    "AtRight",
    "ChainError",
    "ChainFailure",
    "Chat",
    "CvCertificate",
    "CvPublicKey",
    "CvcError",
    "CvcTag",
    "IsRight",
    "Role",
    "TrustPoint",
    "VerifiedKey",
    "decode_date",
    "encode_date",
    "read_dg",
    "sign",
    "verify",
    "verify_certificate",
    "verify_chain",
    "write_dg",
]
