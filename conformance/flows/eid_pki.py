"""eID citizen-certificate zone flows: what a relying party does with the zone.

End to end through the zone's interindustry commands
(docs/eid.md, "Citizen-certificate zone"): the certificates located by the PKCS#15
directories (PKCS #15 v1.1 §6.5, §6.7), a signature (RSA PKCS#1 v1.5 and RSA-PSS,
RFC 8017 §8) verified with the signature certificate, a client authentication (INTERNAL
AUTHENTICATE) and a decipherment with the authentication key, and the signature
certificate's chain validated to the TEST root with OCSP at the local services (RFC 5280
§6.1, RFC 6960), as :mod:`eidemu.conformance.flows.moica_relying_party` does for the MOICA
card.

Card variables: ``PIN`` (ASCII digits). The chain test needs token ``EID-PKI-TEST-PKI``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from eidemu.emulator.formats import pkcs15

from ..pythontests import CheckFailed, FlowContext, conformance_test
from .moica_relying_party import TRUSTED_ROOTS, ChainValidationError, validate_signer

PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")
PIN_REF = 0x91
SIGN_KEY, AUTH_KEY = 0x01, 0x02
TOKENS = ("EID-PKI", "CLA-00", "PKCS15", "RSA2048", "PIN")
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


class ZoneClient:
    """The host side of the zone, command by command (ISO/IEC 7816-4:2020 §5.1 short and
    extended APDUs); a status word other than the one expected FAILS the test."""

    def __init__(self, context: FlowContext) -> None:
        self.connection = context.connection

    def send(self, header: str, data: bytes = b"", le: int | None = None, expect: int = 0x9000) -> bytes:
        apdu = bytes.fromhex(header)
        if data:
            apdu += (
                bytes((len(data),))
                if len(data) < 256 and (le is None or le <= 256)
                else b"\x00" + len(data).to_bytes(2, "big")
            )
        apdu += data
        if le is not None:
            extended = len(data) >= 256
            apdu += (le % 65536).to_bytes(2, "big") if extended else bytes((le % 256,))
        response = self.connection.transmit(apdu)
        sw = int.from_bytes(response[-2:], "big")
        if sw != expect:
            raise CheckFailed(f"{header[:8]} answered {sw:04X}", f"{expect:04X}", f"{sw:04X}")
        return response[:-2]

    def select_zone(self) -> None:
        self.send("00A4040C", PKCS15_AID)

    def verify(self, pin: bytes) -> None:
        self.send("00200091", pin)

    def read_file(self, path: bytes) -> bytes:
        """SELECT by path (P1 08) and READ BINARY to the end (ISO/IEC 7816-4:2020 §11.2.3)."""
        self.send("00A4080C", path[2:] if path[:2] == b"\x3f\x00" else path)
        content = b""
        while True:
            response = self.connection.transmit(bytes.fromhex("00B0") + len(content).to_bytes(2, "big") + b"\x00")
            sw = int.from_bytes(response[-2:], "big")
            chunk = response[:-2]
            content += chunk
            if sw != 0x9000 or not chunk or len(chunk) < 256:
                return content

    def sign(self, data: bytes, algorithm: int) -> bytes:
        self.send("002241B6", bytes((0x84, 1, SIGN_KEY, 0x80, 1, algorithm)))
        return self.send("002A9E9A", data, le=256)


@dataclass(frozen=True)
class ZoneCertificate:
    id: bytes
    der: bytes
    cert: x509.Certificate
    authority: bool


def zone_certificates(client: ZoneClient) -> list[ZoneCertificate]:
    """The certificates the CDF lists (found through EF.ODF), read and parsed."""
    odf = client.read_file(bytes.fromhex("3F0050155031"))
    cdf_path = None
    for der in pkcs15.split_directory(odf):
        entry = pkcs15.PKCS15Objects.load(der)
        if entry.name == "certificates":
            cdf_path = entry.chosen["efid_or_path"].native
    FlowContext.check(cdf_path is not None, "EF.ODF lists a CDF", "[4] certificates", "none")
    assert cdf_path is not None
    found = []
    for der in pkcs15.split_directory(client.read_file(cdf_path)):
        obj = pkcs15.X509CertificateObject.load(der)
        content = client.read_file(obj["type_attributes"]["value"]["efid_or_path"].native)
        length = len(asn1_x509.Certificate.load(content, strict=False).dump()) if content else 0
        try:
            cert = x509.load_der_x509_certificate(content[:length])
        except ValueError as exc:
            raise CheckFailed(f"certificate is not DER X.509: {exc}", "X.509 DER", content[:8].hex()) from None
        attrs = obj["class_attributes"]
        found.append(ZoneCertificate(attrs["id"].native, content[:length], cert, bool(attrs["authority"].native)))
    return found


def _public(cert: ZoneCertificate) -> rsa.RSAPublicKey:
    key = cert.cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CheckFailed("the certificate holds no RSA key", "RSA", type(key).__name__)
    return key


def _user(certs: list[ZoneCertificate], key_id: bytes) -> ZoneCertificate:
    for cert in certs:
        if cert.id == key_id:
            return cert
    raise CheckFailed("the CDF lists no certificate with this iD", key_id.hex().upper(), "none")


MESSAGE = b"eidemu TEST: a document the relying party asks the holder to sign"


@conformance_test(
    "EID_PKI_FLOW_01",
    "Signature: PKCS#1 v1.5 and RSA-PSS signatures verify with the signature certificate",
    spec="ISO/IEC 7816-8:2019 §5.4; RFC 8017 §8.1, §8.2; PKCS #15 v1.1 §6.5",
    purpose="The relying party finds the signature certificate through EF.ODF and the CDF, has the zone "
    "sign a SHA-256 DigestInfo (algorithm 02) and a SHA-256 hash (algorithm 05, PSS) after VERIFY, and "
    "verifies both with the certificate's public key.",
    tokens=TOKENS,
)
def sign_and_verify(context: FlowContext) -> None:
    client = ZoneClient(context)
    client.select_zone()
    signer = _user(zone_certificates(client), b"\x45\x01")
    client.verify(context.variable("PIN"))
    digest = hashlib.sha256(MESSAGE).digest()
    public = _public(signer)
    try:
        public.verify(client.sign(_SHA256_PREFIX + digest, 0x02), MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise CheckFailed("the PKCS#1 v1.5 signature does not verify", "valid signature", "invalid") from None
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    try:
        public.verify(client.sign(digest, 0x05), digest, pss, utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        raise CheckFailed("the RSA-PSS signature does not verify", "valid signature", "invalid") from None


@conformance_test(
    "EID_PKI_FLOW_02",
    "Client authentication and decipherment with the authentication key",
    spec="ISO/IEC 7816-4:2020 §11.5.6 (INTERNAL AUTHENTICATE); ISO/IEC 7816-8:2019 §5.9; RFC 8017 §7.2",
    purpose="INTERNAL AUTHENTICATE of a fresh DigestInfo verifies with the authentication certificate; a "
    "session key enciphered to that certificate comes back from PSO DECIPHER (padding indicator 00).",
    tokens=TOKENS,
)
def authenticate_and_decipher(context: FlowContext) -> None:
    client = ZoneClient(context)
    client.select_zone()
    auth = _user(zone_certificates(client), b"\x45\x02")
    client.verify(context.variable("PIN"))
    challenge = os.urandom(32)
    signature = client.send("00880002", _SHA256_PREFIX + hashlib.sha256(challenge).digest(), le=256)
    try:
        _public(auth).verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise CheckFailed("the authentication signature does not verify", "valid signature", "invalid") from None
    secret = os.urandom(16)
    cryptogram = _public(auth).encrypt(secret, padding.PKCS1v15())
    client.send("002281B8", bytes((0x84, 1, AUTH_KEY)))
    plain = client.send("002A8086", b"\x00" + cryptogram, le=65536)
    context.check(plain == secret, "PSO DECIPHER returns the enciphered session key", secret.hex(), plain.hex())


@conformance_test(
    "EID_PKI_FLOW_03",
    "Relying party: sign, then validate the signature certificate to the TEST root with OCSP",
    spec="RFC 5280 §6.1, §4.2.2.1 (authorityInfoAccess); RFC 6960 §2, §4.2; docs/test-pki.md",
    purpose="The zone signs; the signature verifies with the signature certificate, which, with the CA "
    "certificates read from the zone, builds a path to a trusted TEST root; each certificate's status is "
    "asked of the OCSP responder it names (the local services) and is good.",
    tokens=(*TOKENS, "EID-PKI-TEST-PKI"),
)
def relying_party_with_ocsp(context: FlowContext) -> None:
    client = ZoneClient(context)
    client.select_zone()
    certs = zone_certificates(client)
    signer = _user(certs, b"\x45\x01")
    client.verify(context.variable("PIN"))
    signature = client.sign(_SHA256_PREFIX + hashlib.sha256(MESSAGE).digest(), 0x02)
    try:
        _public(signer).verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise CheckFailed("the signature does not verify", "valid signature", "invalid") from None
    try:
        path = validate_signer(signer.der, [c.der for c in certs if c.authority], "OCSP")
    except ChainValidationError as exc:
        raise CheckFailed(
            f"the signature certificate does not validate with OCSP checking: {exc}",
            f"a valid path to {' or '.join(TRUSTED_ROOTS)}, not revoked (OCSP)",
            str(exc).partition(":")[0],
        ) from None
    context.check(len(path) == 3, "certification path length", "3 (root, MOICA G3, user)", len(path))
