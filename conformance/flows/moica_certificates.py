"""MOICA certificate profile: the user certificates on a citizen digital certificate card.

Each test reads the two user certificates (signature ``SIGN``, encryption ``KEYX``) and the
CA certificates the card's CDF lists (PKCS#15 v1.1 §6.5, EF 08F2) and checks one aspect of
their profile, as the MOICA certificate policy shapes it and as a relying party relies on
it: RFC 5280 clauses for the structure, ``docs/test-pki.md`` ("Each identity has two
RSA-2048 certificates") for the MOICA-specific values the emulator's test PKI reproduces.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from eidemu.emulator.formats.moica_asn1 import OID_SUBJECT_DIRECTORY_ATTRIBUTES, decode_moica_sda

from ..moica import MoicaCard
from ..pythontests import CheckFailed, FlowContext
from .common import issuer_of, moica_test, read_certificates

MOICA_ISSUER_PREFIX = (
    (NameOID.COUNTRY_NAME, "TW"),
    (NameOID.ORGANIZATION_NAME, "行政院"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "內政部憑證管理中心"),
)
"""The MOICA issuer DN begins C=TW, O=行政院, OU=內政部憑證管理中心 (docs/test-pki.md)."""

GPKI_LEVEL3_POLICY = "2.16.886.101.0.3.3"
MOICA_KEY_USAGE = {
    b"SIGN": {"digital_signature", "content_commitment"},  # content_commitment = nonRepudiation
    b"KEYX": {"key_encipherment", "data_encipherment"},
}
KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _rdns(name: x509.Name) -> list[tuple[x509.ObjectIdentifier, str]]:
    return [(a.oid, str(a.value)) for rdn in name.rdns for a in rdn]


def _show(name: x509.Name) -> str:
    return ", ".join(f"{oid._name}={value}" for oid, value in _rdns(name))


@moica_test(
    "MOICA_CERT_02",
    "User certificates are X.509 v3, SHA-256 with RSA, signed by the CA certificate on the card",
    spec="RFC 5280 §4.1.1.2, §4.1.2.1, §6.1.3 (a)(1); PKCS#15 v1.1 §6.5 (CDF); docs/test-pki.md",
    purpose="Both user certificates listed by the CDF parse as DER X.509 version 3, are signed "
    "sha256WithRSAEncryption, and their signature verifies with the key of the on-card CA certificate "
    "whose subject is their issuer.",
)
def user_certificates_are_signed_by_the_card_ca(context: FlowContext) -> None:
    users, authorities = read_certificates(MoicaCard(context.connection))
    for user in users:
        context.check(
            user.cert.version == x509.Version.v3, f"{user.name} certificate version", "v3", user.cert.version.name
        )
        algorithm = user.cert.signature_algorithm_oid
        context.check(
            algorithm == SignatureAlgorithmOID.RSA_WITH_SHA256,
            f"{user.name} certificate signature algorithm",
            "sha256WithRSAEncryption",
            getattr(algorithm, "_name", algorithm.dotted_string),
        )
        ca_key = issuer_of(user.cert, authorities).public_key()
        assert isinstance(ca_key, rsa.RSAPublicKey), "the on-card CA key is RSA"
        try:
            ca_key.verify(
                user.cert.signature,
                user.cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                user.cert.signature_hash_algorithm,  # type: ignore[arg-type]
            )
        except Exception:
            raise CheckFailed(
                f"{user.name} certificate signature does not verify with the on-card CA key",
                "valid signature",
                "invalid",
            ) from None


@moica_test(
    "MOICA_CERT_03",
    "Issuer DN has the MOICA shape and names the on-card CA; subject is C, CN, serialNumber",
    spec="RFC 5280 §4.1.2.4 (issuer), §4.1.2.6 (subject), §7.1 (name matching); docs/test-pki.md",
    purpose="The issuer DN of both user certificates begins C=TW, O=行政院, OU=內政部憑證管理中心 and equals "
    "the subject of a CA certificate on the card; the subject DN holds C=TW, a CN and a 16-digit serialNumber.",
)
def issuer_dn_shape(context: FlowContext) -> None:
    users, authorities = read_certificates(MoicaCard(context.connection))
    for user in users:
        issuer = _rdns(user.cert.issuer)
        context.check(
            tuple(issuer[:3]) == MOICA_ISSUER_PREFIX,
            f"{user.name} certificate issuer DN does not begin with the MOICA issuer",
            "C=TW, O=行政院, OU=內政部憑證管理中心, ...",
            _show(user.cert.issuer),
        )
        issuer_of(user.cert, authorities)
        subject = dict(_rdns(user.cert.subject))
        serial = subject.get(NameOID.SERIAL_NUMBER, "")
        context.check(
            subject.get(NameOID.COUNTRY_NAME) == "TW"
            and subject.get(NameOID.COMMON_NAME)
            and len(serial) == 16
            and serial.isdigit(),
            f"{user.name} certificate subject DN",
            "C=TW, CN=<name>, serialNumber=<16 digits>",
            _show(user.cert.subject),
        )


@moica_test(
    "MOICA_CERT_04",
    "Certificate keys are RSA-2048 with e = 65537 and are the card's keys",
    spec="RFC 5280 §4.1.2.7; RFC 8017 §3.1; PKCS#15 v1.1 §6.2 (PrKDF); docs/test-pki.md",
    purpose="Both user certificates carry RSA-2048 public keys with exponent 65537, the modulus length the "
    "PrKDF declares, and the same modulus as the public key the card returns for the key reference.",
    tokens=("RSA2048",),
)
def key_sizes(context: FlowContext) -> None:
    client = MoicaCard(context.connection)
    users, _ = read_certificates(client)
    keys = {k.id: k for k in client.private_keys()}
    for user in users:
        key = user.cert.public_key()
        context.check(isinstance(key, rsa.RSAPublicKey), f"{user.name} certificate key type", "RSA", type(key).__name__)
        assert isinstance(key, rsa.RSAPublicKey)
        numbers = key.public_numbers()
        context.check(key.key_size == 2048, f"{user.name} certificate key size", 2048, key.key_size)
        context.check(numbers.e == 65537, f"{user.name} certificate public exponent", 65537, numbers.e)
        info = keys.get(user.id)
        context.check(info is not None, f"the PrKDF has no key {user.id!r}", user.id, sorted(keys))
        assert info is not None
        context.check(info.modulus_bits == 2048, f"PrKDF modulus length of {user.id!r}", 2048, info.modulus_bits)
        n, _e = client.public_key(info.key_reference)
        context.check(
            n == numbers.n,
            f"the card's public key {info.key_reference:02X} is not the {user.name} certificate's",
            f"{numbers.n:x}"[:32] + "...",
            f"{n:x}"[:32] + "...",
        )


@moica_test(
    "MOICA_CERT_05",
    "Key usage: signature certificate digitalSignature + nonRepudiation, encryption certificate "
    "keyEncipherment + dataEncipherment, critical",
    spec="RFC 5280 §4.2.1.3; docs/test-pki.md",
    purpose="The keyUsage extension is present and critical, and asserts exactly the bits of the key's role; "
    "a relying party must not accept the encryption key for signatures or the reverse.",
)
def key_usage(context: FlowContext) -> None:
    users, _ = read_certificates(MoicaCard(context.connection))
    for user in users:
        try:
            extension = user.cert.extensions.get_extension_for_class(x509.KeyUsage)
        except x509.ExtensionNotFound:
            raise CheckFailed(f"{user.name} certificate has no keyUsage extension", "keyUsage", "absent") from None
        usage = extension.value
        bits = {bit for bit in KEY_USAGE_BITS if getattr(usage, bit)}
        wanted = MOICA_KEY_USAGE[user.id]
        context.check(
            bits == wanted,
            f"{user.name} certificate keyUsage asserts other bits than a {user.name} key needs",
            ", ".join(sorted(wanted)),
            ", ".join(sorted(bits)),
        )
        context.check(extension.critical, f"{user.name} certificate keyUsage criticality", "critical", "non-critical")


@moica_test(
    "MOICA_CERT_06",
    "Subject Directory Attributes carry the last 4 digits of the national ID",
    spec="RFC 5280 §4.2.1.8; OID 2.16.886.1.100.2.51; docs/test-pki.md (SDA encoding)",
    purpose="Both user certificates carry the non-critical Subject Directory Attributes extension (2.5.29.9) "
    "with attribute 2.16.886.1.100.2.51, a PrintableString of exactly 4 digits: relying parties match it "
    "against the national ID the user typed.",
)
def subject_directory_attributes(context: FlowContext) -> None:
    users, _ = read_certificates(MoicaCard(context.connection))
    oid = x509.ObjectIdentifier(OID_SUBJECT_DIRECTORY_ATTRIBUTES)
    for user in users:
        try:
            extension = user.cert.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            raise CheckFailed(
                f"{user.name} certificate has no Subject Directory Attributes extension (2.5.29.9)",
                "2.5.29.9 with 2.16.886.1.100.2.51",
                "absent",
            ) from None
        context.check(not extension.critical, f"{user.name} certificate SDA criticality", "non-critical", "critical")
        value = extension.value
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else value.public_bytes()
        try:
            last4 = decode_moica_sda(raw)
        except ValueError as exc:
            raise CheckFailed(
                f"{user.name} certificate SDA does not parse: {exc}", "SubjectDirectoryAttributes", raw.hex()
            ) from None
        context.check(
            last4 is not None and len(last4) == 4 and last4.isdigit(),
            f"{user.name} certificate SDA attribute 2.16.886.1.100.2.51",
            "4 digits",
            "absent" if last4 is None else repr(last4),
        )


@moica_test(
    "MOICA_CERT_07",
    "Validity: well-formed, inside the issuing CA's, and current",
    spec="RFC 5280 §4.1.2.5, §6.1.3 (a)(2); docs/test-pki.md (validity windows)",
    purpose="Both user certificates have notBefore < notAfter, lie within the validity of the on-card CA "
    "certificate that issued them, and are valid now (an expired or not-yet-valid card FAILS).",
)
def validity(context: FlowContext) -> None:
    users, authorities = read_certificates(MoicaCard(context.connection))
    now = dt.datetime.now(dt.UTC)
    for user in users:
        cert = user.cert
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        context.check(
            start < end, f"{user.name} certificate notBefore < notAfter", "notBefore < notAfter", f"{start} .. {end}"
        )
        ca = issuer_of(cert, authorities)
        context.check(
            ca.not_valid_before_utc <= start and end <= ca.not_valid_after_utc,
            f"{user.name} certificate validity lies outside its CA's",
            f"within {ca.not_valid_before_utc:%Y-%m-%d} .. {ca.not_valid_after_utc:%Y-%m-%d}",
            f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}",
        )
        context.check(
            start <= now <= end,
            f"{user.name} certificate is not valid now ({now:%Y-%m-%d %H:%M} UTC)",
            f"{start:%Y-%m-%d} <= now <= {end:%Y-%m-%d}",
            "expired" if now > end else "not yet valid",
        )


@moica_test(
    "MOICA_CERT_08",
    "Policies and revocation pointers: GPKI level 3 policy, CRL distribution point, OCSP",
    spec="RFC 5280 §4.2.1.4, §4.2.1.13, §4.2.2.1; GPKI policy OID 2.16.886.101.0.3.3; docs/test-pki.md",
    purpose="Both user certificates assert certificate policy 2.16.886.101.0.3.3 (GPKI assurance level 3) "
    "and point to their CA's CRL (cRLDistributionPoints) and OCSP responder (authorityInfoAccess) by http URL.",
)
def policies(context: FlowContext) -> None:
    users, _ = read_certificates(MoicaCard(context.connection))
    for user in users:
        extensions = user.cert.extensions
        try:
            policies = extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound:
            raise CheckFailed(
                f"{user.name} certificate has no certificatePolicies", GPKI_LEVEL3_POLICY, "absent"
            ) from None
        oids = [p.policy_identifier.dotted_string for p in policies]
        context.check(
            GPKI_LEVEL3_POLICY in oids, f"{user.name} certificate policies", GPKI_LEVEL3_POLICY, ", ".join(oids)
        )
        urls = {
            "CRL": [
                name.value
                for point in _extension(extensions, ExtensionOID.CRL_DISTRIBUTION_POINTS)
                for name in point.full_name or ()
                if isinstance(name, x509.UniformResourceIdentifier)
            ],
            "OCSP": [
                d.access_location.value
                for d in _extension(extensions, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
                if d.access_method == x509.AuthorityInformationAccessOID.OCSP
            ],
        }
        for kind, found in urls.items():
            context.check(
                any(u.startswith("http://") for u in found),
                f"{user.name} certificate has no http {kind} URL",
                f"http {kind} URL",
                ", ".join(found) or "none",
            )


def _extension(extensions: x509.Extensions, oid: x509.ObjectIdentifier) -> list:
    try:
        return list(extensions.get_extension_for_oid(oid).value)  # type: ignore[call-overload]
    except x509.ExtensionNotFound:
        return []
