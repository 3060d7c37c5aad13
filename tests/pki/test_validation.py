"""Chain validation of the test identities with pyhanko-certvalidator (RFC 5280 §6), revocation
checked over real HTTP against the running ``pki serve``: CRL only, OCSP only, and either.
"""

from __future__ import annotations

import asyncio

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

from eidemu.emulator.pki.services import PkiHttpServer
from eidemu.emulator.pki.store import TestPki

RULES = {
    "crl": RevocationCheckingRule.CRL_REQUIRED,
    "ocsp": RevocationCheckingRule.OCSP_REQUIRED,
    "either": RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
}


def _asn1(cert) -> asn1_x509.Certificate:  # type: ignore[no-untyped-def]
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _validate(pki: TestPki, slug: str, usage: str, mode: str, roots: tuple[str, ...] = ("root-g2", "root-g3")):  # type: ignore[no-untyped-def]
    """Validate the identity's certificate the way a relying party would: trusted test roots, the
    genuine issuing CAs as intermediates, revocation information fetched from the URLs in the
    certificates (so from the live server) and required for every certificate in the path.
    """
    record = pki.identities[slug]
    rule = RULES[mode]
    context = ValidationContext(
        trust_roots=[_asn1(pki.cas[name].cert) for name in roots],
        other_certs=[_asn1(pki.cas[name].cert) for name in ("moica-g2", "moica-g3")],
        allow_fetching=True,
        fetcher_backend=RequestsFetcherBackend(),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, rule)),
    )
    cert = record.sign_cert if usage == "sign" else record.enc_cert
    validator = CertificateValidator(_asn1(cert), validation_context=context)
    key_usage = {"digital_signature", "non_repudiation"} if usage == "sign" else {"key_encipherment"}
    return asyncio.run(validator.async_validate_usage(key_usage))


@pytest.mark.parametrize("mode", ["crl", "ocsp", "either"])
@pytest.mark.parametrize("slug", ["g2-valid-1", "g2-valid-2", "g3-valid-1"])
def test_valid_identity_chains_to_its_test_root(
    live_server: PkiHttpServer, live_pki: TestPki, slug: str, mode: str
) -> None:
    before = dict(live_server.hits)
    path = _validate(live_pki, slug, "sign", mode)
    fetched = {k: live_server.hits[k] - before.get(k, 0) for k in ("GET crl", "POST ocsp")}
    # Revocation information for the user and the issuing CA certificate came over HTTP from the server.
    if mode == "crl":
        assert fetched["GET crl"] >= 2
    if mode == "ocsp":
        assert fetched["POST ocsp"] >= 2
    expected_root = live_pki.identities[slug].chain[-1]
    assert path.first.subject == _asn1(live_pki.cas[expected_root].cert).subject
    assert len(path) == 3


def test_encryption_certificate_validates(live_pki: TestPki) -> None:
    _validate(live_pki, "g3-valid-1", "enc", "either")


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
@pytest.mark.parametrize(("slug", "usage"), [("g2-revoked", "sign"), ("g2-revoked", "enc"), ("g3-revoked", "sign")])
def test_revoked_identity_fails(live_pki: TestPki, slug: str, usage: str, mode: str) -> None:
    with pytest.raises(RevokedError) as caught:
        _validate(live_pki, slug, usage, mode)
    message = str(caught.value)
    assert message.startswith(mode.upper()), message  # "CRL indicates ..." / "OCSP response indicates ..."
    assert "revoked" in message and "compromised key" in message


def test_lookalike_does_not_chain(live_pki: TestPki) -> None:
    with pytest.raises((PathBuildingError, PathValidationError)):
        _validate(live_pki, "lookalike", "sign", "either")


def test_lookalike_does_not_chain_even_to_a_root_with_the_same_name(live_pki: TestPki) -> None:
    # lookalike-root has exactly root-g2's DN; trusting only root-g2 must still reject it.
    with pytest.raises((PathBuildingError, PathValidationError)):
        _validate(live_pki, "lookalike", "sign", "either", roots=("root-g2",))


def test_expired_identity_fails(live_pki: TestPki) -> None:
    with pytest.raises(ExpiredError):
        _validate(live_pki, "g2-expired", "sign", "either")


def test_not_yet_valid_identity_fails(live_pki: TestPki) -> None:
    with pytest.raises(NotYetValidError):
        _validate(live_pki, "g2-not-yet-valid", "sign", "either")


def test_signature_certificate_is_not_for_encryption(live_pki: TestPki) -> None:
    record = live_pki.identities["g2-valid-1"]
    context = ValidationContext(
        trust_roots=[_asn1(live_pki.cas["root-g2"].cert)],
        other_certs=[_asn1(live_pki.cas["moica-g2"].cert)],
        allow_fetching=True,
        fetcher_backend=RequestsFetcherBackend(),
    )
    validator = CertificateValidator(_asn1(record.sign_cert), validation_context=context)
    with pytest.raises(InvalidCertificateError):
        asyncio.run(validator.async_validate_usage({"key_encipherment"}))
