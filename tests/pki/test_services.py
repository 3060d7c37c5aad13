"""The revocation services over real loopback HTTP: CRLs and RFC 6960 OCSP (POST and GET)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from eidemu.emulator.pki.services import PkiHttpServer, RevocationAuthority
from eidemu.emulator.pki.store import TestPki


def _http(
    url: str, body: bytes | None = None, content_type: str = "application/ocsp-request"
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback test server only
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _verify_signed_by(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """The response is signed by the issuing CA itself (RFC 6960 §4.2.2.2) and names it by key hash."""
    key = issuer.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert response.signature_hash_algorithm is not None
    key.verify(response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm)
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert response.responder_key_hash == ski


def _ocsp_post(live_pki: TestPki, slug: str, usage: str = "sign", nonce: bytes | None = None) -> ocsp.OCSPResponse:
    record = live_pki.identities[slug]
    cert = record.sign_cert if usage == "sign" else record.enc_cert
    issuer = live_pki.cas[record.ca]
    status, content_type, body = _http(issuer.ocsp_url, _request(cert, issuer.cert, nonce))
    assert (status, content_type) == (200, "application/ocsp-response")
    response = ocsp.load_der_ocsp_response(body)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    _verify_signed_by(response, issuer.cert)
    assert response.serial_number == cert.serial_number
    return response


@pytest.mark.parametrize("slug", ["g2-valid-1", "g3-valid-1", "g2-expired"])
def test_ocsp_good(live_pki: TestPki, slug: str) -> None:
    response = _ocsp_post(live_pki, slug)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    now = dt.datetime.now(dt.UTC)
    assert response.this_update_utc <= now
    assert response.next_update_utc is not None and response.next_update_utc > now


@pytest.mark.parametrize(("slug", "usage"), [("g2-revoked", "sign"), ("g2-revoked", "enc"), ("g3-revoked", "sign")])
def test_ocsp_revoked_with_time_and_reason(live_pki: TestPki, slug: str, usage: str) -> None:
    response = _ocsp_post(live_pki, slug, usage)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    expected = live_pki.identities[slug]
    revoked_at = dt.datetime.fromisoformat(
        json.loads((expected.path / "identity.json").read_text("utf-8"))["revocation"]["time"]
    )
    assert response.revocation_time_utc == revoked_at


def test_ocsp_nonce_is_echoed(live_pki: TestPki) -> None:
    nonce = os.urandom(16)
    response = _ocsp_post(live_pki, "g2-valid-1", nonce=nonce)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_ocsp_without_nonce_has_none(live_pki: TestPki) -> None:
    response = _ocsp_post(live_pki, "g2-valid-1")
    with pytest.raises(x509.ExtensionNotFound):
        response.extensions.get_extension_for_class(x509.OCSPNonce)


def test_ocsp_unknown_serial(live_pki: TestPki) -> None:
    issuer = live_pki.cas["moica-g2"].cert
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(*_hashes(issuer), serial_number=0x1234567890, algorithm=hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    status, _, body = _http(live_pki.cas["moica-g2"].ocsp_url, request)
    response = ocsp.load_der_ocsp_response(body)
    assert status == 200 and response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    _verify_signed_by(response, issuer)


def _hashes(issuer: x509.Certificate) -> tuple[bytes, bytes]:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(issuer.subject.public_bytes())
    name_hash = digest.finalize()
    digest = hashes.Hash(hashes.SHA1())
    digest.update(issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1))
    return name_hash, digest.finalize()


def test_ocsp_get_form(live_pki: TestPki) -> None:
    record = live_pki.identities["g2-revoked"]
    issuer = live_pki.cas[record.ca]
    encoded = urllib.parse.quote(base64.b64encode(_request(record.sign_cert, issuer.cert)).decode(), safe="")
    status, content_type, body = _http(f"{issuer.ocsp_url}/{encoded}")
    assert (status, content_type) == (200, "application/ocsp-response")
    response = ocsp.load_der_ocsp_response(body)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    _verify_signed_by(response, issuer.cert)


def test_ocsp_sha256_certid(live_pki: TestPki) -> None:
    record = live_pki.identities["g3-valid-1"]
    issuer = live_pki.cas[record.ca]
    request = ocsp.OCSPRequestBuilder().add_certificate(record.sign_cert, issuer.cert, hashes.SHA256()).build()
    _, _, body = _http(issuer.ocsp_url, request.public_bytes(serialization.Encoding.DER))
    response = ocsp.load_der_ocsp_response(body)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert isinstance(response.hash_algorithm, hashes.SHA256)


def test_ocsp_for_a_foreign_issuer_is_unauthorized(live_pki: TestPki, committed_pki: TestPki) -> None:
    # The committed set's CAs have other keys than the live (freshly generated) set.
    record = committed_pki.identities["g2-valid-1"]
    request = _request(record.sign_cert, committed_pki.cas["moica-g2"].cert)
    _, _, body = _http(live_pki.cas["moica-g2"].ocsp_url, request)
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_ocsp_garbage_is_malformed(live_pki: TestPki) -> None:
    _, _, body = _http(live_pki.cas["moica-g2"].ocsp_url, b"\x30\x03\x02\x01\x00")
    assert ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_wrong_content_type(live_pki: TestPki) -> None:
    status, _, _ = _http(live_pki.cas["moica-g2"].ocsp_url, b"x", content_type="text/plain")
    assert status == 415


def test_crl_is_fresh_and_lists_the_revoked(live_pki: TestPki) -> None:
    for name, ca in live_pki.cas.items():
        status, content_type, body = _http(ca.crl_url)
        assert (status, content_type) == (200, "application/pkix-crl")
        crl = x509.load_der_x509_crl(body)
        assert crl.is_signature_valid(ca.cert.public_key())
        now = dt.datetime.now(dt.UTC)
        assert crl.last_update_utc <= now < crl.next_update_utc <= now + dt.timedelta(days=2)
        expected = {
            c.serial_number
            for r in live_pki.identities.values()
            if r.ca == name and r.status == "revoked"
            for c in (r.sign_cert, r.enc_cert)
        }
        assert {r.serial_number for r in crl} == expected
        assert bool(expected) == (name in ("moica-g2", "moica-g3"))


def test_ca_certificates_are_published(live_pki: TestPki) -> None:
    ca = live_pki.cas["moica-g3"]
    status, content_type, body = _http(ca.crl_url.replace("/crl/moica-g3.crl", "/ca/moica-g3.cer"))
    assert (status, content_type) == (200, "application/pkix-cert")
    assert body == ca.cert.public_bytes(serialization.Encoding.DER)


def test_unknown_path_is_404(live_server: PkiHttpServer) -> None:
    assert _http(live_server.base_url + "crl/nope.crl")[0] == 404


def test_a_long_running_server_re_signs_its_crls(live_pki: TestPki) -> None:
    authority = RevocationAuthority(live_pki)
    first = x509.load_der_x509_crl(authority.crl("moica-g2") or b"")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=13)
    refreshed = x509.load_der_x509_crl(authority.crl("moica-g2", now=later) or b"")
    assert refreshed.next_update_utc > later > first.next_update_utc - dt.timedelta(hours=12)
    assert refreshed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > (
        first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )
    assert {r.serial_number for r in refreshed} == {r.serial_number for r in first}
