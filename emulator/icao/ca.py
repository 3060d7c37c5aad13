"""Chip Authentication version 1 (ICAO 9303-11 §6.2; BSI TR-03110-1 §3.2), both roles.

The chip holds a static key pair whose public key and domain parameters are in DG14
(ChipAuthenticationPublicKeyInfo, §9.2.6). The terminal sends an ephemeral public key on
the same domain parameters, either in MSE:Set KAT (DO 91, 3DES only, §6.2.4.1) or with
MSE:Set AT (OID) and GENERAL AUTHENTICATE ``7C {80 PK_IFD}`` (§6.2.4.2). Both compute
K = KA(SK, PK) and derive new session keys KS_enc = KDF(K, 1), KS_mac = KDF(K, 2); the
chip answers under the old keys, then secure messaging restarts with the new keys and
SSC = 0 (§6.2.3).

ECDH runs through :mod:`eidemu.emulator.icao.ec` (OpenSSL for the curves it knows, the
x-coordinate as shared secret, BSI TR-03111 §4.3.1); DH on :mod:`eidemu.emulator.icao.dh`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import dh as crypto_dh
from cryptography.hazmat.primitives.asymmetric import ec as crypto_ec

from eidemu.emulator.iso7816.tlv import TLV

from .dh import GROUPS, DHError, DHGroup
from .ec import Curve, PointError, RandomSource
from .ec import curve as ec_curve
from .errors import AuthenticationFailed, ProtocolError
from .kdf import KDF_ENC, KDF_MAC, kdf
from .mse import MseSetAt, MseSetKat
from .oids import ChipAuthenticationProtocol, KeyAgreement, ca_protocol
from .pace import DynamicAuthenticationData, domain_parameters, public_key_data_object
from .session import SecureMessagingKeys, mac


def ecdh_shared_secret(curve: Curve, private: int, peer_public_key: bytes) -> bytes:
    """K = x-coordinate of SK * PK as FE2OS (BSI TR-03111 §4.3.1), PK checked on the curve."""
    try:
        peer = curve.decode_point(peer_public_key)
    except PointError as exc:
        raise ProtocolError(str(exc)) from None
    try:
        return curve.shared_x(private, peer)
    except PointError as exc:
        raise ProtocolError(str(exc)) from None


def dh_shared_secret(group: DHGroup, private: int, peer_public_key: bytes) -> bytes:
    """K = PK^SK mod p as FE2OS of the modulus size (9303-11 §9.6), PK validated."""
    try:
        peer = group.decode(peer_public_key)
    except DHError as exc:
        raise ProtocolError(str(exc)) from None
    return group.encode(pow(peer, private, group.p))


def _shared_secret(domain: Curve | DHGroup, private: int, peer_public_key: bytes) -> bytes:
    if isinstance(domain, Curve):
        return ecdh_shared_secret(domain, private, peer_public_key)
    return dh_shared_secret(domain, private, peer_public_key)


def _public_key(domain: Curve | DHGroup, private: int) -> bytes:
    if isinstance(domain, Curve):
        return domain.encode_point(domain.public_key(private))
    return domain.encode(domain.public_value(private))


def _resolve(protocol_oid: str, domain: int | Curve | DHGroup) -> tuple[ChipAuthenticationProtocol, Curve | DHGroup]:
    protocol = ca_protocol(protocol_oid)
    resolved = domain_parameters(domain) if isinstance(domain, int) else domain
    if (protocol.agreement is KeyAgreement.ECDH) != isinstance(resolved, Curve):
        raise ValueError(f"{protocol_oid} needs {protocol.agreement.value} domain parameters")
    return protocol, resolved


def session_keys(protocol: ChipAuthenticationProtocol, shared_secret: bytes) -> SecureMessagingKeys:
    """KS_enc = KDF(K, 1), KS_mac = KDF(K, 2), SSC = 0 (9303-11 §6.2.3)."""
    cipher = protocol.cipher
    return SecureMessagingKeys(cipher, kdf(shared_secret, KDF_ENC, cipher), kdf(shared_secret, KDF_MAC, cipher), 0)


@dataclass(frozen=True)
class CaChip:
    """The chip's side: its static key (DG14) and the key agreement with the terminal.

    ``domain`` is a standardized domain parameter ID or explicit parameters;
    ``private_key`` the static SK_IC (never in a repr).
    """

    protocol_oid: str
    domain: int | Curve | DHGroup
    private_key: int = field(repr=False)

    @classmethod
    def from_private_key(
        cls, protocol_oid: str, key: crypto_ec.EllipticCurvePrivateKey | crypto_dh.DHPrivateKey
    ) -> CaChip:
        """A chip key from a ``cryptography`` key object (as a profile's PEM file loads):
        the curve is found by name, the DH group by its modulus."""
        if isinstance(key, crypto_ec.EllipticCurvePrivateKey):
            return cls(protocol_oid, ec_curve(key.curve.name), key.private_numbers().private_value)
        numbers = key.private_numbers()
        p = numbers.public_numbers.parameter_numbers.p
        for candidate in GROUPS.values():
            if candidate.p == p:
                return cls(protocol_oid, candidate, numbers.x)
        raise ValueError("the DH key is not on a standardized group of ICAO 9303-11 §9.5.1")

    @property
    def protocol(self) -> ChipAuthenticationProtocol:
        return _resolve(self.protocol_oid, self.domain)[0]

    def public_key(self) -> bytes:
        """PK_IC as DG14 and the terminal use it (uncompressed point or FE2OS of y)."""
        return _public_key(_resolve(self.protocol_oid, self.domain)[1], self.private_key)

    def authenticate(self, terminal_public_key: bytes) -> SecureMessagingKeys:
        """The new session keys from the terminal's ephemeral key (9303-11 §6.2.3);
        :class:`ProtocolError` if that key is not a valid public key of the domain."""
        protocol, domain = _resolve(self.protocol_oid, self.domain)
        return session_keys(protocol, _shared_secret(domain, self.private_key, terminal_public_key))


class CaTerminal:
    """The terminal's side: an ephemeral key pair on the chip's domain parameters, the
    command data carrying its public key, and the new session keys (9303-11 §6.2)."""

    def __init__(
        self,
        protocol_oid: str,
        domain: int | Curve | DHGroup,
        chip_public_key: bytes,
        *,
        rng: RandomSource = os.urandom,
    ) -> None:
        self.protocol, self._domain = _resolve(protocol_oid, domain)
        d = self._domain
        self._private = d.random_scalar(rng) if isinstance(d, Curve) else d.random_exponent(rng)
        self.ephemeral_public_key = _public_key(d, self._private)
        self._chip_public_key = chip_public_key

    def compressed_ephemeral_public_key(self) -> bytes:
        """Comp(PK_IFD): x-coordinate (ECDH) or SHA-1 of the value (DH), as Terminal
        Authentication signs it (BSI TR-03110-3 §A.2.2.3)."""
        d = self._domain
        if isinstance(d, Curve):
            return self.ephemeral_public_key[1 : 1 + d.size]
        return hashlib.sha1(self.ephemeral_public_key).digest()  # noqa: S324 - TR-03110-3 §A.2.2.3

    def mse_set_kat_data(self, key_id: int | None = None) -> bytes:
        """Data of MSE:Set KAT (P1-P2 41 A6): ``91 PK_IFD [84 key id]`` (9303-11 §6.2.4.1)."""
        return MseSetKat(self.ephemeral_public_key, key_id).encode()

    def mse_set_at_data(self, key_id: int | None = None) -> bytes:
        """Data of MSE:Set AT (P1-P2 41 A4): ``80 OID [84 key id]`` (9303-11 §6.2.4.2)."""
        return MseSetAt(self.protocol.oid, key_reference=key_id).encode()

    def general_authenticate_data(self) -> DynamicAuthenticationData:
        """Data of GENERAL AUTHENTICATE: ``7C {80 PK_IFD}`` (9303-11 §6.2.4.2)."""
        return DynamicAuthenticationData.of((0x80, self.ephemeral_public_key))

    def session_keys(self) -> SecureMessagingKeys:
        """The keys secure messaging restarts with once the chip has answered 9000."""
        return session_keys(self.protocol, _shared_secret(self._domain, self._private, self._chip_public_key))


# -- Chip Authentication version 2 (BSI TR-03110-2 §3.4, TR-03110-3 §B.11.8) ---------------------

CA2_NONCE_LENGTH = 8


def _ca2_keys(protocol: ChipAuthenticationProtocol, shared_secret: bytes, nonce: bytes) -> SecureMessagingKeys:
    """KS_enc = KDF(K, r, 1), KS_mac = KDF(K, r, 2): keydata = H(K || r || c) (TR-03110-3 §A.2.3.2)."""
    cipher = protocol.cipher
    seed = shared_secret + nonce
    return SecureMessagingKeys(cipher, kdf(seed, KDF_ENC, cipher), kdf(seed, KDF_MAC, cipher), 0)


def ca2_token(protocol: ChipAuthenticationProtocol, keys: SecureMessagingKeys, terminal_public_key: bytes) -> bytes:
    """T_PICC = MAC(KS_mac, PK_PCD) over the public key data object ``7F49 {06 OID, 86 PK}``
    as PACE's tokens (TR-03110-2 §3.4.1, TR-03110-3 §A.2.4)."""
    tag = 0x86 if protocol.agreement is KeyAgreement.ECDH else 0x84
    return mac(protocol.cipher, keys.ks_mac, public_key_data_object(protocol.oid, TLV(tag, terminal_public_key)))


def ca2_chip(
    chip: CaChip, terminal_public_key: bytes, *, rng: RandomSource = os.urandom
) -> tuple[SecureMessagingKeys, bytes, bytes]:
    """The chip's CA v2 step: new keys, the nonce r_PICC and the token T_PICC; the answer
    of GENERAL AUTHENTICATE is ``7C {81 r_PICC, 82 T_PICC}``."""
    protocol, domain = _resolve(chip.protocol_oid, chip.domain)
    secret = _shared_secret(domain, chip.private_key, terminal_public_key)
    nonce = rng(CA2_NONCE_LENGTH)
    keys = _ca2_keys(protocol, secret, nonce)
    return keys, nonce, ca2_token(protocol, keys, terminal_public_key)


def ca2_terminal(terminal: CaTerminal, nonce: bytes, token: bytes) -> SecureMessagingKeys:
    """The terminal's CA v2 step: the keys from r_PICC, after checking T_PICC."""
    secret = _shared_secret(terminal._domain, terminal._private, terminal._chip_public_key)
    keys = _ca2_keys(terminal.protocol, secret, nonce)
    expected = ca2_token(terminal.protocol, keys, terminal.ephemeral_public_key)
    if not hmac.compare_digest(expected, token):
        raise AuthenticationFailed("the chip's authentication token T_PICC does not verify")
    return keys
