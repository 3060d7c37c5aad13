"""MOICA relying-party flows: what an application does with a citizen digital certificate card.

End to end, as a relying party's middleware does it (``docs/moica-card.md``): discovery
through the PKCS#15 directories, the protected VERIFY, a signature verified with the
signature certificate, a decryption with the encryption key, and the validation of the
signature certificate's chain with revocation checking (RFC 5280 §6, CRL per RFC 5280 §5,
OCSP per RFC 6960) by pyhanko-certvalidator against the local services of the test PKI.

The chain tests need token ``MOICA-TEST-PKI``: the card's certificates come from eidemu's
test PKI (``fixtures/pki``), whose roots the relying party trusts and whose CRL/OCSP
services answer at the address the certificates name (``manifest.json`` ``base_url``,
``http://127.0.0.1:8765/``). If nothing listens there, the services are started in this
process (:func:`ensure_pki_services`); ``eidemu pki serve`` running there is used as is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from eidemu.fixtures import fixture_path

from ..moica import MoicaCard
from ..pythontests import CheckFailed, FlowContext
from .common import moica_test, read_certificates

PKI_DIR = fixture_path("pki")
TRUSTED_ROOTS = ("root-g2", "root-g3")  # the relying party's trust list: the test GRCA roots
_services_lock = threading.Lock()
_services: Any = None  # the in-process server, once started
_DER = Encoding.DER


def ensure_pki_services(pki_dir: Path = PKI_DIR) -> str:
    """Make the test PKI's CRL/OCSP services reachable at the manifest's ``base_url``; returns it.

    Something already listening there (``eidemu pki serve``, another test process) is used
    as is; otherwise :class:`eidemu.emulator.pki.services.PkiHttpServer` is started in a daemon
    thread of this process, once.
    """
    global _services
    from eidemu.emulator.pki.services import PkiHttpServer, RevocationAuthority
    from eidemu.emulator.pki.store import TestPki

    with _services_lock:
        pki = TestPki.load(pki_dir)
        address = urlsplit(pki.base_url)
        host, port = address.hostname or "127.0.0.1", address.port or 80
        if _services is not None:
            return pki.base_url
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return pki.base_url
        except OSError:
            pass
        try:
            server = PkiHttpServer(RevocationAuthority(pki), host, port)
        except OSError:  # another process bound it between our probe and now: it serves
            return pki.base_url
        server.start_in_thread()
        _services = server
        return pki.base_url


def _verify_pin(context: FlowContext, client: MoicaCard) -> None:
    """The protected VERIFY with the declared cryptogram of the card's PIN
    (docs/moica-card.md "Protected PIN commands: the byte arithmetic")."""
    data = context.variable("PIN_VERIFY_OK")
    _, sw = client.transmit(b"\x8c\x20\x00\x01" + bytes((len(data),)) + data, "VERIFY")
    context.check(sw == 0x9000, "VERIFY with the card's PIN", "90 00", f"{sw >> 8:02X} {sw & 0xFF:02X}")


@moica_test(
    "MOICA_FLOW_01",
    "Sign and verify: a SHA-256 signature by the signature key verifies with the signature certificate",
    spec='RFC 8017 §8.2 (RSASSA-PKCS1-v1_5); PKCS#15 v1.1 §6.2, §6.5; docs/moica-card.md "RSA private operation"',
    purpose="After the protected VERIFY, the private operation of the key the PrKDF calls SIGN on a "
    "SHA-256 DigestInfo block yields a signature that verifies with the CDF's signature certificate, "
    "and does not verify for another document.",
    tokens=("RSA2048", "PIN"),
)
def sign_and_verify(context: FlowContext) -> None:
    client = MoicaCard(context.connection)
    users, _ = read_certificates(client)
    certificate = next(u.cert for u in users if u.id == b"SIGN")
    _verify_pin(context, client)
    document = "自然人憑證 conformance: sign and verify".encode()
    signature = client.sign_sha256(client.key_reference(b"SIGN"), hashlib.sha256(document).digest())
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey), "the signature certificate key is RSA"
    for signed, should_verify in ((document, True), (document + b"!", False)):
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            verified = True
        except Exception:
            verified = False
        context.check(
            verified == should_verify,
            "the card's signature does not verify with the signature certificate"
            if should_verify
            else "the signature also verifies for a different document",
            "verifies" if should_verify else "does not verify",
            signature[:16].hex(" ").upper() + " ...",
        )


@moica_test(
    "MOICA_FLOW_02",
    "Decrypt: the encryption key recovers what was encrypted to the encryption certificate",
    spec='RFC 8017 §7.2 (RSAES-PKCS1-v1_5); PKCS#15 v1.1 §6.2, §6.5; docs/moica-card.md "RSA private operation"',
    purpose="After the protected VERIFY, a random 32-byte key encrypted with the public key of the CDF's "
    "encryption certificate is decrypted by the card's KEYX key back to the same bytes.",
    tokens=("RSA2048", "PIN"),
)
def decrypt(context: FlowContext) -> None:
    client = MoicaCard(context.connection)
    users, _ = read_certificates(client)
    key = next(u.cert for u in users if u.id == b"KEYX").public_key()
    assert isinstance(key, rsa.RSAPublicKey), "the encryption certificate key is RSA"
    _verify_pin(context, client)
    secret = os.urandom(32)
    try:
        recovered = client.decrypt(client.key_reference(b"KEYX"), key.encrypt(secret, padding.PKCS1v15()))
    except ValueError:
        raise CheckFailed("the card's result is not an RSAES-PKCS1-v1_5 block", "00 02 ... 00 <key>", "") from None
    context.check(recovered == secret, "decrypted key differs", secret.hex().upper(), recovered.hex().upper())


class ChainValidationError(ValueError):
    """The certificate does not validate: no path to a trusted root, or a path that fails
    (expired, revoked, bad signature); the message names the validator's reason."""


def validate_signer(signer_der: bytes, authorities: list[bytes], mode: str = "CRL") -> list[str]:
    """Validate a signature certificate as a relying party does (RFC 5280 §6.1) with CRL
    (RFC 5280 §5) or OCSP (RFC 6960) revocation checking required, for digitalSignature +
    nonRepudiation; trust only :data:`TRUSTED_ROOTS`; ``authorities`` are candidate CA
    certificates (DER, e.g. read from the card). Starts the local services if need be
    (:func:`ensure_pki_services`). Returns the path, root first, as subject DNs; raises
    :class:`ChainValidationError`."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    if mode not in ("CRL", "OCSP"):
        raise ValueError(f"revocation mode is CRL or OCSP, not {mode!r}")
    ensure_pki_services()
    from eidemu.emulator.pki.store import TestPki

    test_pki = TestPki.load(PKI_DIR)
    roots = [asn1_x509.Certificate.load(test_pki.cas[name].cert.public_bytes(_DER)) for name in TRUSTED_ROOTS]
    rule = RevocationCheckingRule.CRL_REQUIRED if mode == "CRL" else RevocationCheckingRule.OCSP_REQUIRED
    validation = ValidationContext(
        trust_roots=roots,  # trust comes from the relying party, never from the card
        other_certs=[asn1_x509.Certificate.load(der) for der in authorities],
        allow_fetching=True,
        fetcher_backend=RequestsFetcherBackend(),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, rule)),
    )
    validator = CertificateValidator(asn1_x509.Certificate.load(signer_der), validation_context=validation)
    try:
        path = asyncio.run(validator.async_validate_usage({"digital_signature", "non_repudiation"}))
    except (PathBuildingError, PathValidationError) as exc:
        raise ChainValidationError(f"{type(exc).__name__}: {exc}") from None
    return [cert.subject.human_friendly for cert in path]


def _validate(context: FlowContext, mode: str) -> None:
    client = MoicaCard(context.connection)
    users, authorities = read_certificates(client)
    signer = next(u for u in users if u.id == b"SIGN")
    try:
        path = validate_signer(signer.der, [a.der for a in authorities], mode)
    except ChainValidationError as exc:
        raise CheckFailed(
            f"the signature certificate does not validate with {mode} checking: {exc}",
            f"a valid path to {' or '.join(TRUSTED_ROOTS)}, not revoked ({mode})",
            str(exc).partition(":")[0],
        ) from None
    context.check(len(path) == 3, "certification path length", "3 (root, MOICA, user)", len(path))


@moica_test(
    "MOICA_FLOW_03",
    "Chain and revocation: the signature certificate validates to a trusted root with CRL checking",
    spec="RFC 5280 §6.1 (path validation), §5 (CRL), §4.2.1.13 (cRLDistributionPoints); docs/test-pki.md",
    purpose="The signature certificate, with the CA certificates read from the card, builds a path to a "
    "trusted test root; every certificate is valid now and is not on its issuer's CRL, fetched from the "
    "URL the certificate names (the local services).",
    tokens=("MOICA-TEST-PKI",),
)
def chain_with_crl(context: FlowContext) -> None:
    _validate(context, "CRL")


@moica_test(
    "MOICA_FLOW_04",
    "Chain and revocation: the signature certificate validates to a trusted root with OCSP checking",
    spec="RFC 5280 §6.1, §4.2.2.1 (authorityInfoAccess); RFC 6960 §2, §4.2; docs/test-pki.md",
    purpose="As MOICA_FLOW_03, with each certificate's status asked of the OCSP responder its "
    "authorityInfoAccess names (the local services) instead of a CRL.",
    tokens=("MOICA-TEST-PKI",),
)
def chain_with_ocsp(context: FlowContext) -> None:
    _validate(context, "OCSP")
