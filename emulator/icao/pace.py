"""PACE version 2 (ICAO 9303-11 §4.4; BSI TR-03110-2 §3.2), the chip's and the terminal's side.

The protocol runs in four GENERAL AUTHENTICATE steps (9303-11 §4.4.4.2), each a dynamic
authentication data object 7C from the terminal answered by one from the chip:

1. ``7C 00`` -> ``7C {80 z}``: the chip's nonce s encrypted under K_π = KDF(f(π), 3).
2. ``7C {81 PK_map,IFD}`` -> ``7C {82 PK_map,IC}``: mapping data; the generic mapping
   computes H = SK_map * PK_map and the ephemeral generator G' = s*G + H (DH: g' = g^s * h),
   §4.4.3.3.1. (The integrated mapping sends a nonce t instead, §4.4.3.3.2.)
3. ``7C {83 PK_DH,IFD}`` -> ``7C {84 PK_DH,IC}``: an anonymous Diffie-Hellman on G'; the
   shared secret K gives KS_enc = KDF(K, 1) and KS_mac = KDF(K, 2) (§4.4.3.4, §9.7.1).
4. ``7C {85 T_IFD}`` -> ``7C {86 T_IC [8A A_IC]}``: authentication tokens, the MAC under
   KS_mac of the other side's public key data object 7F49 (§4.4.3.4, §9.4.5); with the
   chip authentication mapping the chip adds its encrypted chip authentication data
   (§4.4.3.5).

:class:`PaceChip` and :class:`PaceTerminal` are the two state machines; both take a
random source so the worked examples of the 9303-11 appendices replay exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum, unique
from typing import Any, Generic, TypeVar

from asn1crypto.core import ObjectIdentifier

from eidemu.emulator.iso7816.sm import pad_iso9797_m2, unpad_iso9797_m2
from eidemu.emulator.iso7816.tlv import TLV, TLVError

from .dh import DHError, DHGroup, unsigned_integer
from .dh import group as dh_group
from .ec import Curve, Point, PointError, RandomSource
from .ec import curve as ec_curve
from .errors import AuthenticationFailed, ProtocolError, SequenceError
from .kdf import KDF_ENC, KDF_MAC, PacePassword, kdf
from .oids import CipherSuite, KeyAgreement, Mapping, PaceProtocol, pace_protocol, standardized_domain_parameters
from .session import SecureMessagingKeys, decrypt_cbc, encrypt_cbc, mac

DYNAMIC_AUTHENTICATION_DATA = 0x7C
PUBLIC_KEY_DATA_OBJECT = 0x7F49


@unique
class DATag(IntEnum):
    """Data objects inside the dynamic authentication data 7C of PACE (9303-11 §4.4.4.2)."""

    ENCRYPTED_NONCE = 0x80  # response, step 1
    MAPPING_DATA_IFD = 0x81  # command, step 2
    MAPPING_DATA_IC = 0x82  # response, step 2
    EPHEMERAL_PUBLIC_KEY_IFD = 0x83  # command, step 3
    EPHEMERAL_PUBLIC_KEY_IC = 0x84  # response, step 3
    AUTHENTICATION_TOKEN_IFD = 0x85  # command, step 4
    AUTHENTICATION_TOKEN_IC = 0x86  # response, step 4
    CAR_1 = 0x87  # response, step 4: most recent CVCA (BSI TR-03110-3 §B.11.1)
    CAR_2 = 0x88  # response, step 4: previous CVCA
    ENCRYPTED_CHIP_AUTHENTICATION_DATA = 0x8A  # response, step 4, PACE-CAM


@dataclass(frozen=True)
class DynamicAuthenticationData:
    """The dynamic authentication data object 7C of GENERAL AUTHENTICATE (ISO 7816-4 §11.5.4,
    9303-11 §4.4.4.2): an ordered list of primitive context-specific data objects.

    The same class serves PACE (tags 80-8A) and Chip Authentication through GENERAL
    AUTHENTICATE (9303-11 §6.2.4.2: tag 80 is the terminal's ephemeral public key there).
    """

    objects: tuple[TLV, ...] = ()

    @classmethod
    def of(cls, *items: tuple[int, bytes]) -> DynamicAuthenticationData:
        return cls(tuple(TLV(tag, value) for tag, value in items))

    @classmethod
    def parse(cls, data: bytes) -> DynamicAuthenticationData:
        """Parse ``7C L {tag L value}*``; :class:`ProtocolError` for anything else
        (another outer tag, trailing bytes, constructed or repeated inner objects)."""
        try:
            outer = TLV.parse(data)
            if outer.tag != DYNAMIC_AUTHENTICATION_DATA:
                raise ProtocolError(f"dynamic authentication data must be tag 7C, got {outer.tag:X}")
            objects = tuple(outer.children)
        except TLVError as exc:
            raise ProtocolError(f"malformed dynamic authentication data: {exc}") from None
        tags = [o.tag for o in objects]
        for o in objects:
            if not 0x80 <= o.tag <= 0x9F:
                raise ProtocolError(f"unexpected data object {o.tag:X} in 7C")
        if len(set(tags)) != len(tags):
            raise ProtocolError("repeated data object in 7C")
        return cls(objects)

    def encode(self) -> bytes:
        return TLV.build(DYNAMIC_AUTHENTICATION_DATA, *self.objects).encode()

    __bytes__ = encode

    def get(self, tag: int) -> bytes | None:
        """The value of the data object with ``tag``, or None."""
        return next((o.value for o in self.objects if o.tag == tag), None)

    def require(self, tag: int, what: str) -> bytes:
        """The value of a mandatory data object; :class:`ProtocolError` naming it if absent."""
        value = self.get(tag)
        if value is None:
            raise ProtocolError(f"{what} (DO {tag:02X}) missing in 7C")
        return value


# -- the two kinds of group behind one interface

E = TypeVar("E")


class KeyAgreementGroup(ABC, Generic[E]):
    """The operations PACE needs from a DH group or an elliptic curve (9303-11 §9.6)."""

    order: int
    generator: E

    @abstractmethod
    def random_private(self, rng: RandomSource) -> int: ...

    @abstractmethod
    def public_key(self, private: int, generator: E) -> E: ...

    @abstractmethod
    def encode(self, element: E) -> bytes:
        """The public key as it travels in 7C (ECDH: uncompressed point; DH: FE2OS of p)."""

    @abstractmethod
    def decode(self, data: bytes) -> E:
        """Parse and validate a public key; :class:`ProtocolError` if it is not one."""

    @abstractmethod
    def agree(self, private: int, peer: E) -> E:
        """The group element SK * PK (DH: PK^SK), refusing the neutral element."""

    @abstractmethod
    def map_generic(self, nonce: int, h: E) -> E:
        """Generic mapping: G' = s*G + H, or g' = g^s * h mod p (9303-11 §4.4.3.3.1)."""

    @abstractmethod
    def map_integrated(self, value: int) -> E:
        """Integrated mapping of R_p(s, t): f_G (ECDH, 9303-11 Appendix B) or
        f_g(x) = x^((p-1)/q) mod p (DH), 9303-11 §4.4.3.3.2."""

    @property
    @abstractmethod
    def field_prime(self) -> int:
        """p of GF(p), the modulus R_p(s, t) reduces into."""

    @abstractmethod
    def shared_secret(self, private: int, peer: E) -> bytes:
        """The shared secret K = KA(SK, PK) as octets: x-coordinate (ECDH), FE2OS (DH), §9.6."""

    @abstractmethod
    def key_data_object(self, element: E) -> TLV:
        """The public key inside 7F49: ``86`` point (ECDH) or ``84`` y (DH), 9303-11 §9.4.5."""

    @abstractmethod
    def compressed(self, element: E) -> bytes:
        """Comp(PK): x-coordinate (ECDH) or SHA-1 of the encoded value (DH) (9303-11 §9.4.5,
        BSI TR-03110-3 §A.2.2.3), the chip's ID_IC in Terminal Authentication."""


class EcGroup(KeyAgreementGroup[Point]):
    """ECDH over a prime curve with the arithmetic of :mod:`eidemu.emulator.icao.ec`."""

    def __init__(self, curve: Curve) -> None:
        self.curve = curve
        self.order = curve.n
        self.generator = curve.generator

    def random_private(self, rng: RandomSource) -> int:
        return self.curve.random_scalar(rng)

    def public_key(self, private: int, generator: Point) -> Point:
        return self.curve.public_key(private, generator)

    def encode(self, element: Point) -> bytes:
        return self.curve.encode_point(element)

    def decode(self, data: bytes) -> Point:
        try:
            return self.curve.decode_point(data)
        except PointError as exc:
            raise ProtocolError(str(exc)) from None

    def agree(self, private: int, peer: Point) -> Point:
        point = self.curve.multiply(private, peer)
        if point is None:
            raise ProtocolError("key agreement gives the point at infinity")
        return point

    def map_generic(self, nonce: int, h: Point) -> Point:
        s_g = self.curve.multiply_generator(nonce) if nonce % self.curve.n else None
        mapped = self.curve.add(s_g, h)
        if mapped is None:
            raise ProtocolError("the mapped generator is the point at infinity")
        return mapped

    def map_integrated(self, value: int) -> Point:
        return encode_to_curve(self.curve, value)

    @property
    def field_prime(self) -> int:
        return self.curve.p

    def shared_secret(self, private: int, peer: Point) -> bytes:
        try:
            return self.curve.shared_x(private, peer)
        except PointError as exc:
            raise ProtocolError(str(exc)) from None

    def key_data_object(self, element: Point) -> TLV:
        return TLV(0x86, self.encode(element))

    def compressed(self, element: Point) -> bytes:
        return self.curve.encode_scalar(element.x)


class DhGroup(KeyAgreementGroup[int]):
    """DH over a MODP group of :mod:`eidemu.emulator.icao.dh`."""

    def __init__(self, group: DHGroup) -> None:
        self.group = group
        self.order = group.q
        self.generator = group.g

    def random_private(self, rng: RandomSource) -> int:
        return self.group.random_exponent(rng)

    def public_key(self, private: int, generator: int) -> int:
        return self.group.public_value(private, generator)

    def encode(self, element: int) -> bytes:
        return self.group.encode(element)

    def decode(self, data: bytes) -> int:
        try:
            return self.group.decode(data)
        except DHError as exc:
            raise ProtocolError(str(exc)) from None

    def agree(self, private: int, peer: int) -> int:
        value = pow(peer, private, self.group.p)
        if value == 1:
            raise ProtocolError("key agreement gives the neutral element")
        return value

    def map_generic(self, nonce: int, h: int) -> int:
        p = self.group.p
        mapped = pow(self.group.g, nonce, p) * h % p
        if mapped == 1:
            raise ProtocolError("the mapped generator is the neutral element")
        return mapped

    def map_integrated(self, value: int) -> int:
        p, q = self.group.p, self.group.q
        mapped = pow(value, (p - 1) // q, p)
        if mapped in (0, 1):
            raise ProtocolError("the mapped generator is the neutral element")
        return mapped

    @property
    def field_prime(self) -> int:
        return self.group.p

    def shared_secret(self, private: int, peer: int) -> bytes:
        return self.group.encode(self.agree(private, peer))

    def key_data_object(self, element: int) -> TLV:
        return TLV(0x84, unsigned_integer(element))

    def compressed(self, element: int) -> bytes:
        return hashlib.sha1(self.encode(element)).digest()  # noqa: S324 - Comp() of TR-03110-3 §A.2.2.3


# c0, c1 of the pseudo-random number mapping (9303-11 §4.4.3.3.2)
_C_128 = (bytes.fromhex("a668892a7c41e3ca739f40b057d85904"), bytes.fromhex("a4e136ac725f738b01c1f60217c188ad"))
_C_256 = (
    bytes.fromhex("d463d65234124ef7897054986dca0a174e28df758cbaa03f240616414d5a1676"),
    bytes.fromhex("54bd7255f0aaf831bec3423fcf39d69b6cbf066677d0faae5aadd99df8e53517"),
)


def nonce_length(cipher: CipherSuite) -> int:
    """Bytes of the nonce s: the smallest multiple of the block size not shorter than the
    key (9303-11 §4.4.3.3; 3DES counts as a 128-bit key), 16 or 32 bytes."""
    block = cipher.block_size
    return -(-cipher.key_length // block) * block


def pseudo_random_mapping(cipher: CipherSuite, s: bytes, t: bytes, p: int) -> int:
    """R_p(s, t) of the integrated mapping (9303-11 §4.4.3.3.2, Figure 2).

    k_0 = E(t, s); then for i = 1..n, with the key k_(i-1) truncated to the key size:
    k_i = E(k_(i-1), c0) and x_i = E(k_(i-1), c1); the result is int(x_1 || ... || x_n)
    mod p, n the smallest number with n*l >= log2(p) + 64. E is CBC with a zero IV.
    """
    c0, c1 = _C_128 if len(s) == 16 else _C_256
    if len(s) != len(c0):
        raise ProtocolError(f"a nonce of {len(s)} bytes cannot be mapped (16 or 32 expected)")
    n = -(-(p.bit_length() + 64) // (8 * len(s)))
    key = encrypt_cbc(cipher, t, s)
    out = []
    for _ in range(n):
        key = key[: cipher.key_length]
        out.append(encrypt_cbc(cipher, key, c1))
        key = encrypt_cbc(cipher, key, c0)
    return int.from_bytes(b"".join(out), "big") % p


def encode_to_curve(curve: Curve, t: int) -> Point:
    """f_G: a field element to a curve point (9303-11 Appendix B.2, affine coordinates;
    the simplified SWU encoding of Brier et al. for p = 3 mod 4)."""
    p, a, b = curve.p, curve.a, curve.b
    if p % 4 != 3:
        raise ValueError(f"the integrated mapping needs p = 3 mod 4, which {curve.name} does not have")
    alpha = -t * t % p
    alpha_sum = (alpha + alpha * alpha) % p
    x2 = -b * (1 + alpha_sum) * pow(a * alpha_sum, p - 2, p) % p
    x3 = alpha * x2 % p
    h2 = (x2 * x2 * x2 + a * x2 + b) % p
    u = pow(t, 3, p) * h2 % p
    root = pow(h2, p - 1 - (p + 1) // 4, p)  # h2^(-1/2) if h2 is a square
    if root * root * h2 % p == 1:
        point = Point(x2, root * h2 % p)
    else:
        point = Point(x3, root * u % p)
    if curve.h != 1:
        mapped = curve.multiply(curve.h, point)
        if mapped is None:
            raise ProtocolError("the mapped generator is the point at infinity")
        point = mapped
    return point


def domain_parameters(parameter_id: int) -> Curve | DHGroup:
    """The curve or MODP group of a standardized domain parameter ID (9303-11 §9.5.1)."""
    row = standardized_domain_parameters(parameter_id)
    return ec_curve(row.name) if row.agreement is KeyAgreement.ECDH else dh_group(row.name)


def key_agreement_group(domain: Curve | DHGroup) -> EcGroup | DhGroup:
    return EcGroup(domain) if isinstance(domain, Curve) else DhGroup(domain)


def public_key_data_object(protocol_oid: str, key: TLV) -> bytes:
    """``7F49 { 06 OID, 86|84 key }``, the token input of 9303-11 §4.4.3.4 / §9.4.5."""
    return TLV.build(PUBLIC_KEY_DATA_OBJECT, ObjectIdentifier(protocol_oid).dump(), key).encode()


def encrypt_nonce(cipher: CipherSuite, k_pi: bytes, nonce: bytes) -> bytes:
    """z = E(K_π, s): CBC with a zero IV (9303-11 §4.4.3.1)."""
    return encrypt_cbc(cipher, k_pi, nonce)


def decrypt_nonce(cipher: CipherSuite, k_pi: bytes, encrypted: bytes) -> bytes:
    """s = D(K_π, z) (9303-11 §4.4.3.1)."""
    try:
        return decrypt_cbc(cipher, k_pi, encrypted)
    except ValueError as exc:
        raise ProtocolError(f"encrypted nonce: {exc}") from None


def _ca_data_iv(cipher: CipherSuite, ks_enc: bytes) -> bytes:
    # IV = E(KS_enc, -1): the all-ones block encrypted (9303-11 §4.4.3.5.1)
    return encrypt_cbc(cipher, ks_enc, b"\xff" * cipher.block_size)


def encrypt_chip_authentication_data(cipher: CipherSuite, ks_enc: bytes, ca_ic: bytes) -> bytes:
    """A_IC = E(KS_enc, CA_IC): AES-CBC with IV = E(KS_enc, -1) and ISO/IEC 9797-1 padding
    method 2 (9303-11 §4.4.3.5.1)."""
    return encrypt_cbc(cipher, ks_enc, pad_iso9797_m2(ca_ic, cipher.block_size), _ca_data_iv(cipher, ks_enc))


def decrypt_chip_authentication_data(cipher: CipherSuite, ks_enc: bytes, a_ic: bytes) -> bytes:
    """CA_IC = D(KS_enc, A_IC) (9303-11 §4.4.3.5.2)."""
    try:
        return unpad_iso9797_m2(decrypt_cbc(cipher, ks_enc, a_ic, _ca_data_iv(cipher, ks_enc)))
    except ValueError as exc:  # CardError of the SM codec is a ValueError too
        raise AuthenticationFailed(f"encrypted chip authentication data: {exc}") from None


def verify_chip_authentication_mapping(
    curve: Curve, chip_public_key: bytes, chip_mapping_public_key: bytes, ca_ic: bytes
) -> None:
    """The terminal's check of PACE-CAM: PK_map,IC = CA_IC * PK_IC (9303-11 §4.4.3.5.2).

    ``chip_public_key`` is the chip's static key from EF.CardSecurity (an uncompressed
    point), ``chip_mapping_public_key`` the chip's mapping data of step 2 (82), ``ca_ic``
    the decrypted chip authentication data. :class:`AuthenticationFailed` if it fails.
    """
    try:
        static = curve.decode_point(chip_public_key)
        mapping = curve.decode_point(chip_mapping_public_key)
    except PointError as exc:
        raise ProtocolError(f"PACE-CAM: {exc}") from None
    scalar = int.from_bytes(ca_ic, "big")
    if not 0 < scalar < curve.n or curve.multiply(scalar, static) != mapping:
        raise AuthenticationFailed("PACE-CAM: the chip authentication data does not match the chip's key")


def _session_keys(cipher: CipherSuite, secret: bytes) -> SecureMessagingKeys:
    return SecureMessagingKeys(cipher, kdf(secret, KDF_ENC, cipher), kdf(secret, KDF_MAC, cipher), 0)


@dataclass(frozen=True)
class PaceResult:
    """What a successful PACE leaves to the protocols after it (9303-11 §4.4.3.4-§4.4.3.5).

    ``keys`` open secure messaging with SSC 0; ``chip_public_key`` and
    ``terminal_public_key`` are the encoded ephemeral keys PK_DH,IC and PK_DH,IFD;
    ``id_ic`` is Comp(PK_DH,IC) for Terminal Authentication; ``ca_ic`` the decrypted chip
    authentication data of PACE-CAM (terminal side) and ``chip_mapping_public_key`` the
    chip's mapping data it is checked against.
    """

    protocol: PaceProtocol
    domain: Curve | DHGroup
    keys: SecureMessagingKeys
    chip_public_key: bytes
    terminal_public_key: bytes
    id_ic: bytes
    chip_mapping_public_key: bytes = b""
    ca_ic: bytes | None = field(default=None, repr=False)
    car1: bytes | None = None
    car2: bytes | None = None

    def verify_chip_authentication(self, chip_static_public_key: bytes) -> None:
        """PACE-CAM: check CA_IC against the chip's static key PK_IC, an uncompressed point
        from the ChipAuthenticationPublicKeyInfo of EF.CardSecurity (9303-11 §4.4.3.5.2);
        :class:`AuthenticationFailed` if it does not match."""
        if self.ca_ic is None or not isinstance(self.domain, Curve):
            raise ProtocolError("no chip authentication data: the protocol is not PACE-CAM")
        verify_chip_authentication_mapping(
            self.domain, chip_static_public_key, self.chip_mapping_public_key, self.ca_ic
        )


class _PaceParty:
    """State shared by both roles: protocol, group, password key, step counter."""

    def __init__(
        self,
        protocol_oid: str,
        domain: int | Curve | DHGroup,
        password: PacePassword,
        rng: RandomSource,
    ) -> None:
        self.protocol = pace_protocol(protocol_oid)
        resolved = domain_parameters(domain) if isinstance(domain, int) else domain
        if (self.protocol.agreement is KeyAgreement.ECDH) != isinstance(resolved, Curve):
            raise ValueError(f"{protocol_oid} needs {self.protocol.agreement.value} domain parameters")
        self.domain = resolved
        self.group: KeyAgreementGroup[Any] = key_agreement_group(resolved)
        self.cipher = self.protocol.cipher
        self._k_pi = password.key(self.cipher)
        self._rng = rng
        self._step = 0
        self._failed = False
        self._result: PaceResult | None = None

    def _expect(self, step: int) -> None:
        if self._failed:
            raise SequenceError("PACE has failed; start again with MSE:Set AT")
        if self._step != step:
            raise SequenceError(f"PACE step {step + 1} out of order (next is step {self._step + 1})")

    @contextmanager
    def _step_guard(self, step: int) -> Iterator[None]:
        """Run step ``step`` (0-based): in order, once; any error ends the whole run."""
        self._expect(step)
        try:
            yield
        except Exception:
            self._failed = True
            raise
        self._step += 1

    def _token(self, keys: SecureMessagingKeys, public_key: Any) -> bytes:
        key_object = self.group.key_data_object(public_key)
        return mac(self.cipher, keys.ks_mac, public_key_data_object(self.protocol.oid, key_object))

    @property
    def result(self) -> PaceResult:
        """The outcome once step 4 succeeded; :class:`ProtocolError` before."""
        if self._result is None:
            raise SequenceError("PACE has not completed")
        return self._result


class PaceChip(_PaceParty):
    """The chip's side of PACE (9303-11 §4.4.3): answer each GENERAL AUTHENTICATE step.

    ``domain`` is a standardized domain parameter ID (9303-11 §9.5.1) or explicit
    parameters; ``chip_authentication_key`` the static private key SK_IC for PACE-CAM
    (the key of the ChipAuthenticationPublicKeyInfo in EF.CardSecurity). Any failure
    ends the run: later steps raise :class:`SequenceError`.
    """

    def __init__(
        self,
        protocol_oid: str,
        domain: int | Curve | DHGroup,
        password: PacePassword,
        *,
        chip_authentication_key: int | None = None,
        rng: RandomSource = os.urandom,
    ) -> None:
        super().__init__(protocol_oid, domain, password, rng)
        if self.protocol.mapping is Mapping.CHIP_AUTHENTICATION and chip_authentication_key is None:
            raise ValueError("PACE-CAM needs the chip authentication private key")
        self._sk_ic = chip_authentication_key

    def respond(self, command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """Answer the next step, whichever it is (the applet's single entry point)."""
        steps = (self.encrypted_nonce, self.map_nonce, self.key_agreement, self.mutual_authentication)
        if self._failed or self._step >= len(steps):
            raise SequenceError("PACE has ended; start again with MSE:Set AT")
        return steps[self._step](command)

    def encrypted_nonce(self, command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """Step 1: ``7C 00`` -> ``7C {80 z}`` with a fresh nonce s (:func:`nonce_length` bytes)."""
        with self._step_guard(0):
            if command.objects:
                raise ProtocolError("step 1 of PACE carries no data objects")
            self._nonce = self._rng(nonce_length(self.cipher))
            z = encrypt_nonce(self.cipher, self._k_pi, self._nonce)
        return DynamicAuthenticationData.of((DATag.ENCRYPTED_NONCE, z))

    def map_nonce(self, command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """Step 2. Generic mapping (and CAM): ``7C {81 PK_map,IFD}`` -> ``7C {82 PK_map,IC}``,
        G' = s*G + SK_map,IC * PK_map,IFD (9303-11 §4.4.3.3.1). Integrated mapping:
        ``7C {81 t}`` -> ``7C {82 (empty)}``, G' = f_G(R_p(s, t)) (§4.4.3.3.2, §4.4.5.2.2)."""
        g = self.group
        with self._step_guard(1):
            terminal_mapping = command.require(DATag.MAPPING_DATA_IFD, "mapping data")
            if self.protocol.mapping is Mapping.INTEGRATED:
                if len(terminal_mapping) != self.cipher.key_length:
                    raise ProtocolError(f"nonce t of {len(terminal_mapping)} bytes, expected {self.cipher.key_length}")
                r = pseudo_random_mapping(self.cipher, self._nonce, terminal_mapping, g.field_prime)
                self._generator = g.map_integrated(r)
                self._mapping_public = b""
                return DynamicAuthenticationData.of((DATag.MAPPING_DATA_IC, b""))
            peer = g.decode(terminal_mapping)
            self._sk_map = g.random_private(self._rng)
            self._mapping_public = g.encode(g.public_key(self._sk_map, g.generator))
            if self._mapping_public == terminal_mapping:
                raise ProtocolError("the terminal's mapping key equals the chip's")
            self._generator = g.map_generic(int.from_bytes(self._nonce, "big"), g.agree(self._sk_map, peer))
        return DynamicAuthenticationData.of((DATag.MAPPING_DATA_IC, self._mapping_public))

    def key_agreement(self, command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """Step 3: ``7C {83 PK_DH,IFD}`` -> ``7C {84 PK_DH,IC}``; K and the session keys
        (9303-11 §4.4.3.4)."""
        g = self.group
        with self._step_guard(2):
            self._peer = command.require(DATag.EPHEMERAL_PUBLIC_KEY_IFD, "ephemeral public key")
            peer = g.decode(self._peer)
            sk = g.random_private(self._rng)
            self._own = g.encode(g.public_key(sk, self._generator))
            if self._own == self._peer:
                raise ProtocolError("the terminal's ephemeral key equals the chip's (9303-11 §4.4.1 d)")
            self._keys = _session_keys(self.cipher, g.shared_secret(sk, peer))
        return DynamicAuthenticationData.of((DATag.EPHEMERAL_PUBLIC_KEY_IC, self._own))

    def mutual_authentication(self, command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """Step 4: check T_IFD = MAC(KS_mac, PK_DH,IC), answer T_IC = MAC(KS_mac, PK_DH,IFD)
        and, for PACE-CAM, A_IC = E(KS_enc, CA_IC) with CA_IC = SK_map,IC * SK_IC^-1 mod n
        (9303-11 §4.4.3.4, §4.4.3.5.1).

        :class:`AuthenticationFailed` if T_IFD does not verify (a wrong password); the
        chip then answers ``6300`` and the run is over.
        """
        g = self.group
        with self._step_guard(3):
            token = command.require(DATag.AUTHENTICATION_TOKEN_IFD, "authentication token")
            if not hmac.compare_digest(self._token(self._keys, g.decode(self._own)), token):
                raise AuthenticationFailed("the terminal's authentication token does not verify")
            items = [(int(DATag.AUTHENTICATION_TOKEN_IC), self._token(self._keys, g.decode(self._peer)))]
            if self._sk_ic is not None and self.protocol.mapping is Mapping.CHIP_AUTHENTICATION:
                n = g.order
                ca_ic = self._sk_map * pow(self._sk_ic, -1, n) % n
                encoded = ca_ic.to_bytes((n.bit_length() + 7) // 8, "big")
                a_ic = encrypt_chip_authentication_data(self.cipher, self._keys.ks_enc, encoded)
                items.append((int(DATag.ENCRYPTED_CHIP_AUTHENTICATION_DATA), a_ic))
            self._result = PaceResult(
                self.protocol,
                self.domain,
                self._keys,
                chip_public_key=self._own,
                terminal_public_key=self._peer,
                id_ic=g.compressed(g.decode(self._own)),
                chip_mapping_public_key=self._mapping_public,
            )
        return DynamicAuthenticationData.of(*items)


class PaceTerminal(_PaceParty):
    """The inspection system's side of PACE (9303-11 §4.4.3): build each command from the
    chip's previous answer, ending with :meth:`finish`."""

    def __init__(
        self,
        protocol_oid: str,
        domain: int | Curve | DHGroup,
        password: PacePassword,
        *,
        rng: RandomSource = os.urandom,
    ) -> None:
        super().__init__(protocol_oid, domain, password, rng)

    def start(self) -> DynamicAuthenticationData:
        """The command data of step 1: an empty 7C."""
        self._expect(0)
        return DynamicAuthenticationData()

    def map_nonce(self, response: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """From ``7C {80 z}``: recover s = D(K_π, z) and send ``7C {81 PK_map,IFD}``
        (generic mapping, CAM) or ``7C {81 t}`` with a fresh nonce t (integrated mapping)."""
        g = self.group
        with self._step_guard(0):
            z = response.require(DATag.ENCRYPTED_NONCE, "encrypted nonce")
            self._nonce = decrypt_nonce(self.cipher, self._k_pi, z)
            if self.protocol.mapping is Mapping.INTEGRATED:
                self._mapping_public = self._rng(self.cipher.key_length)  # the nonce t, sent in clear
                return DynamicAuthenticationData.of((DATag.MAPPING_DATA_IFD, self._mapping_public))
            self._sk_map = g.random_private(self._rng)
            self._mapping_public = g.encode(g.public_key(self._sk_map, g.generator))
        return DynamicAuthenticationData.of((DATag.MAPPING_DATA_IFD, self._mapping_public))

    def key_agreement(self, response: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """From ``7C {82 PK_map,IC}``: G' = s*G + SK_map,IFD * PK_map,IC (integrated mapping:
        an empty 82 and G' = f_G(R_p(s, t))); send ``7C {83 PK_DH,IFD}``."""
        g = self.group
        with self._step_guard(1):
            if self.protocol.mapping is Mapping.INTEGRATED:
                if response.get(DATag.MAPPING_DATA_IC):
                    raise ProtocolError("the integrated mapping's answer must be an empty DO 82")
                self._chip_mapping_public = b""
                r = pseudo_random_mapping(self.cipher, self._nonce, self._mapping_public, g.field_prime)
                self._generator = g.map_integrated(r)
            else:
                chip_mapping = response.require(DATag.MAPPING_DATA_IC, "mapping data")
                peer = g.decode(chip_mapping)
                if chip_mapping == self._mapping_public:
                    raise ProtocolError("the chip's mapping key equals the terminal's")
                self._chip_mapping_public = chip_mapping
                self._generator = g.map_generic(int.from_bytes(self._nonce, "big"), g.agree(self._sk_map, peer))
            self._sk = g.random_private(self._rng)
            self._own = g.encode(g.public_key(self._sk, self._generator))
        return DynamicAuthenticationData.of((DATag.EPHEMERAL_PUBLIC_KEY_IFD, self._own))

    def mutual_authentication(self, response: DynamicAuthenticationData) -> DynamicAuthenticationData:
        """From ``7C {84 PK_DH,IC}``: K, the session keys, and ``7C {85 T_IFD}``."""
        g = self.group
        with self._step_guard(2):
            self._peer = response.require(DATag.EPHEMERAL_PUBLIC_KEY_IC, "ephemeral public key")
            peer = g.decode(self._peer)
            if self._peer == self._own:
                raise ProtocolError("the chip's ephemeral key equals the terminal's (9303-11 §4.4.1 d)")
            self._keys = _session_keys(self.cipher, g.shared_secret(self._sk, peer))
            token = self._token(self._keys, peer)
        return DynamicAuthenticationData.of((DATag.AUTHENTICATION_TOKEN_IFD, token))

    def finish(self, response: DynamicAuthenticationData) -> PaceResult:
        """From ``7C {86 T_IC [8A A_IC]}``: verify T_IC = MAC(KS_mac, PK_DH,IFD) and, for
        PACE-CAM, decrypt A_IC; :class:`AuthenticationFailed` if the token is wrong.

        The PACE-CAM check against the chip's static key needs EF.CardSecurity, read
        under the new secure messaging: :meth:`PaceResult.verify_chip_authentication`.
        """
        g = self.group
        with self._step_guard(3):
            token = response.require(DATag.AUTHENTICATION_TOKEN_IC, "authentication token")
            if not hmac.compare_digest(self._token(self._keys, g.decode(self._own)), token):
                raise AuthenticationFailed("the chip's authentication token does not verify")
            ca_ic = None
            if self.protocol.mapping is Mapping.CHIP_AUTHENTICATION:
                a_ic = response.require(DATag.ENCRYPTED_CHIP_AUTHENTICATION_DATA, "encrypted chip authentication data")
                ca_ic = decrypt_chip_authentication_data(self.cipher, self._keys.ks_enc, a_ic)
            self._result = PaceResult(
                self.protocol,
                self.domain,
                self._keys,
                chip_public_key=self._peer,
                terminal_public_key=self._own,
                id_ic=g.compressed(g.decode(self._peer)),
                chip_mapping_public_key=self._chip_mapping_public,
                ca_ic=ca_ic,
                car1=response.get(DATag.CAR_1),
                car2=response.get(DATag.CAR_2),
            )
        return self._result
