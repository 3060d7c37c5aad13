"""Certificate profile of the committed default set (fixtures/pki), against moica-card.md "Certificates"."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from eidemu.emulator.formats.moica_asn1 import decode_moica_sda
from eidemu.emulator.pki.identities import is_valid_card_number, is_valid_national_id
from eidemu.emulator.pki.store import TestPki

from .conftest import COMMITTED_PKI

SLUGS = [
    "g2-valid-1",
    "g2-valid-2",
    "g3-valid-1",
    "g2-expired",
    "g2-not-yet-valid",
    "g2-revoked",
    "g3-revoked",
    "lookalike",
]
CA_NAMES = ["root-g2", "moica-g2", "root-g3", "moica-g3", "lookalike-root", "lookalike-moica"]
SDA_OID = x509.ObjectIdentifier("2.5.29.9")
POLICY = x509.ObjectIdentifier("2.16.886.101.0.3.3")


def _attrs(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def _rsa_bits(cert: x509.Certificate) -> int:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key.key_size


def test_layout_contract() -> None:
    for name in CA_NAMES:
        assert (COMMITTED_PKI / "ca" / f"{name}.cert.pem").is_file()
        assert (COMMITTED_PKI / "ca" / f"{name}.key.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert (COMMITTED_PKI / "crl" / f"{name}.crl").read_bytes()[:1] == b"\x30"
    for slug in SLUGS:
        directory = COMMITTED_PKI / "identities" / slug
        for file in ("identity.json", "sign.cert.pem", "sign.key.pem", "enc.cert.pem", "enc.key.pem", "README.txt"):
            assert (directory / file).is_file(), directory / file
    for readme in ("ca/README.txt", "identities/README.txt"):
        assert "TEST-ONLY" in (COMMITTED_PKI / readme).read_text("utf-8")
    assert "TEST-ONLY" in (COMMITTED_PKI / "PROVENANCE.md").read_text("utf-8")
    manifest = json.loads((COMMITTED_PKI / "manifest.json").read_text("utf-8"))
    assert [c["name"] for c in manifest["cas"]] == CA_NAMES
    assert {i["slug"] for i in manifest["identities"]} == set(SLUGS)
    chains = {i["slug"]: i["chain"] for i in manifest["identities"]}
    assert chains["g2-valid-1"] == ["moica-g2", "root-g2"]
    assert chains["g3-valid-1"] == ["moica-g3", "root-g3"]
    assert chains["lookalike"] == ["lookalike-moica", "lookalike-root"]


def test_identity_json_fields(committed_pki: TestPki) -> None:
    statuses = {r.slug: r.status for r in committed_pki.identities.values()}
    assert statuses == {
        "g2-valid-1": "valid", "g2-valid-2": "valid", "g3-valid-1": "valid", "g2-expired": "expired",
        "g2-not-yet-valid": "not-yet-valid", "g2-revoked": "revoked", "g3-revoked": "revoked", "lookalike": "lookalike",
    }  # fmt: skip
    for record in committed_pki.identities.values():
        data = json.loads((record.path / "identity.json").read_text("utf-8"))
        assert set(data) >= {
            "national_id", "card_number", "name_zh", "birth_date", "sex", "cert_serial_number", "initial_pin",
            "ca", "status",
        }  # fmt: skip
        assert is_valid_national_id(data["national_id"]) and is_valid_card_number(data["card_number"])
        assert data["initial_pin"] == record.identity.roc_birth_date


@pytest.mark.parametrize("name", CA_NAMES)
def test_every_ca_name_says_test(committed_pki: TestPki, name: str) -> None:
    cert = committed_pki.cas[name].cert
    assert "TEST" in cert.subject.rfc4514_string()
    assert "TEST" in cert.issuer.rfc4514_string()


@pytest.mark.parametrize("name", ["moica-g2", "moica-g3", "lookalike-moica"])
def test_issuing_ca_dn_in_chinese_exactly(committed_pki: TestPki, name: str) -> None:
    subject = committed_pki.cas[name].cert.subject
    assert _attrs(subject, NameOID.COUNTRY_NAME) == ["TW"]
    assert _attrs(subject, NameOID.ORGANIZATION_NAME) == ["行政院"]
    assert _attrs(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) == ["內政部憑證管理中心", "TEST ONLY - 測試用"]
    # UTF8String, so the Chinese survives byte for byte: 內政部憑證管理中心 in UTF-8.
    assert "內政部憑證管理中心".encode() in subject.public_bytes()


@pytest.mark.parametrize("name", ["root-g2", "root-g3"])
def test_roots_are_grca_shaped(committed_pki: TestPki, name: str) -> None:
    cert = committed_pki.cas[name].cert
    assert cert.subject == cert.issuer
    assert _attrs(cert.subject, NameOID.ORGANIZATION_NAME) == ["行政院"]
    assert _attrs(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)[0].startswith("TEST Government Root Certification")
    cert.verify_directly_issued_by(cert)


@pytest.mark.parametrize(
    ("name", "bits"),
    [("root-g2", 2048), ("moica-g2", 2048), ("root-g3", 4096), ("moica-g3", 4096), ("lookalike-moica", 2048)],
)
def test_ca_key_sizes(committed_pki: TestPki, name: str, bits: int) -> None:
    assert _rsa_bits(committed_pki.cas[name].cert) == bits


def test_ca_extensions(committed_pki: TestPki) -> None:
    for ca in committed_pki.cas.values():
        basic = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and basic.value.ca
        usage = ca.cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    committed_pki.cas["moica-g2"].cert.verify_directly_issued_by(committed_pki.cas["root-g2"].cert)
    committed_pki.cas["moica-g3"].cert.verify_directly_issued_by(committed_pki.cas["root-g3"].cert)


def test_lookalike_has_the_real_dns_but_not_the_keys(committed_pki: TestPki) -> None:
    cas = committed_pki.cas
    assert cas["lookalike-moica"].cert.subject == cas["moica-g2"].cert.subject
    assert cas["lookalike-moica"].cert.issuer == cas["root-g2"].cert.subject
    with pytest.raises(Exception):  # noqa: B017 - any signature failure will do
        cas["lookalike-moica"].cert.verify_directly_issued_by(cas["root-g2"].cert)
    sign = committed_pki.identities["lookalike"].sign_cert
    assert sign.issuer == cas["moica-g2"].cert.subject
    with pytest.raises(Exception):  # noqa: B017
        sign.verify_directly_issued_by(cas["moica-g2"].cert)


@pytest.mark.parametrize("slug", SLUGS)
def test_user_certificate_profile(committed_pki: TestPki, slug: str) -> None:
    record = committed_pki.identities[slug]
    issuer = committed_pki.cas[record.ca]
    base = committed_pki.base_url
    for usage, cert in (("sign", record.sign_cert), ("enc", record.enc_cert)):
        assert _rsa_bits(cert) == 2048
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
        cert.verify_directly_issued_by(issuer.cert)
        assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER]
        assert _attrs(cert.subject, NameOID.COMMON_NAME) == [record.identity.name_zh]
        assert _attrs(cert.subject, NameOID.SERIAL_NUMBER) == [record.identity.cert_serial_number]
        assert record.identity.national_id not in cert.subject.rfc4514_string()

        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert key_usage.critical
        ku = key_usage.value
        if usage == "sign":
            assert (ku.digital_signature, ku.content_commitment, ku.key_encipherment) == (True, True, False)
        else:
            assert (ku.digital_signature, ku.key_encipherment, ku.data_encipherment) == (False, True, True)

        sda = cert.extensions.get_extension_for_oid(SDA_OID)
        assert not sda.critical
        assert isinstance(sda.value, x509.UnrecognizedExtension)
        assert decode_moica_sda(sda.value.value) == record.identity.national_id[-4:]

        policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
        assert [p.policy_identifier for p in policies] == [POLICY]

        crldp = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
        assert [n.value for n in crldp[0].full_name] == [f"{base}crl/{record.ca}.crl"]
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        ocsp_urls = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
        assert ocsp_urls == [f"{base}ocsp/{record.ca}"]


def test_sda_bytes_match_the_layout_public_parsers_expect(committed_pki: TestPki) -> None:
    # SEQUENCE { SEQUENCE { OID 2.16.886.1.100.2.51, SET { PrintableString "dddd" } } }
    record = committed_pki.identities["g2-valid-1"]
    value = record.sign_cert.extensions.get_extension_for_oid(SDA_OID).value.value
    last4 = record.identity.national_id[-4:].encode()
    assert value == bytes.fromhex("30133011060760867601640233310613 04".replace(" ", "")) + last4


def test_validity_windows(committed_pki: TestPki) -> None:
    now = dt.datetime.now(dt.UTC)
    for slug, record in committed_pki.identities.items():
        cert = record.sign_cert
        issuer = committed_pki.cas[record.ca].cert
        assert issuer.not_valid_before_utc <= cert.not_valid_before_utc
        assert cert.not_valid_after_utc <= issuer.not_valid_after_utc
        if record.status == "expired":
            assert cert.not_valid_after_utc < now
        elif record.status == "not-yet-valid":
            assert cert.not_valid_before_utc > now
        else:
            assert cert.not_valid_before_utc < now < cert.not_valid_after_utc, slug


def test_committed_crls_list_exactly_the_revoked(committed_pki: TestPki) -> None:
    for name, ca in committed_pki.cas.items():
        crl = x509.load_der_x509_crl(ca.crl_path.read_bytes())
        assert crl.is_signature_valid(ca.cert.public_key())
        expected = set()
        for record in committed_pki.identities.values():
            if record.ca == name and record.status == "revoked":
                expected |= {record.sign_cert.serial_number, record.enc_cert.serial_number}
        assert {r.serial_number for r in crl} == expected
        for revoked in crl:
            reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            assert reason == x509.ReasonFlags.key_compromise


def test_keys_match_certificates(committed_pki: TestPki) -> None:
    record = committed_pki.identities["g2-valid-1"]
    key = serialization.load_pem_private_key(record.sign_key_path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(b"eidemu", padding.PKCS1v15(), hashes.SHA256())
    public = record.sign_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"eidemu", padding.PKCS1v15(), hashes.SHA256())
