"""Build the MOICA-shaped test PKI: CAs, user certificates, CRLs and the on-disk layout.

Certificate profile (RFC 5280 §4.1, §4.2), shaped after moica-card.md "Certificates":

* a GRCA-shaped test root and a G3-style test root, each self-signed;
* issuing CAs shaped like MOICA G2 (RSA-2048, under the G2 root) and MOICA G3 (RSA-4096, under the
  G3 root) with the issuer DN ``C=TW, O=行政院, OU=內政部憑證管理中心`` plus ``OU=TEST ONLY - 測試用``
  and a ``CN=TEST MOICA Gn`` so that no one mistakes them for the real ones;
* a look-alike issuing CA and root carrying exactly the same DNs as ``moica-g2`` and ``root-g2`` but
  their own keys: certificates from it name a trusted issuer yet do not chain;
* per identity two RSA-2048 user certificates, signature and encryption, subject
  ``C=TW, CN=<name>, serialNumber=<16 digits>``, with Subject Directory Attributes (§4.2.1.8),
  certificate policies (§4.2.1.4), CRL distribution points (§4.2.1.13) and an authority information
  access extension with OCSP and caIssuers (§4.2.2.1) pointing at the local test services
  (:mod:`eidemu.emulator.pki.services`); all signatures SHA-256 with RSA (PKCS#1 v1.5).

Every key is generated here, on the machine that runs the generator: TEST ONLY.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ..formats.moica_asn1 import OID_SUBJECT_DIRECTORY_ATTRIBUTES, encode_moica_sda
from . import DEFAULT_BASE_URL, DEFAULT_SEED
from .eid import eid_step_count, generate_eid
from .identities import Identity, generate_identities
from .pem import cert_pem, iso_time, key_pem, key_usage

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

# Government PKI certificate policy, assurance level 3 (moica-card.md: "likely 2.16.886.101.0.3.3").
POLICY_GPKI_LEVEL3 = x509.ObjectIdentifier("2.16.886.101.0.3.3")

TEST_MARK = "TEST ONLY - 測試用"
MOICA_OU = "內政部憑證管理中心"
ROC_EXECUTIVE_YUAN = "行政院"

Progress = Callable[[int, int, str], None]
"""``progress(done, total, description)``: called before each slow step and once at the end."""


class Status:
    """Identity set names used in ``identity.json`` and the manifest."""

    VALID = "valid"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    REVOKED = "revoked"
    LOOKALIKE = "lookalike"


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def root_name(suffix: str = "") -> x509.Name:
    """``C=TW, O=行政院, OU=TEST Government Root Certification Authority[suffix]`` (GRCA-shaped)."""
    return _name(
        (NameOID.COUNTRY_NAME, "TW"),
        (NameOID.ORGANIZATION_NAME, ROC_EXECUTIVE_YUAN),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "TEST Government Root Certification Authority" + suffix),
    )


def moica_name(generation: str) -> x509.Name:
    """The MOICA issuer DN shape plus the TEST markers: ``OU=TEST ONLY - 測試用, CN=TEST MOICA <gen>``."""
    return _name(
        (NameOID.COUNTRY_NAME, "TW"),
        (NameOID.ORGANIZATION_NAME, ROC_EXECUTIVE_YUAN),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, MOICA_OU),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_MARK),
        (NameOID.COMMON_NAME, f"TEST MOICA {generation}"),
    )


def user_name(identity: Identity) -> x509.Name:
    """``C=TW, CN=<name in Chinese>, serialNumber=<16 digits>`` (moica-card.md, "Certificates")."""
    return _name(
        (NameOID.COUNTRY_NAME, "TW"),
        (NameOID.COMMON_NAME, identity.name_zh),
        (NameOID.SERIAL_NUMBER, identity.cert_serial_number),
    )


@dataclass(frozen=True)
class CASpec:
    """One test CA: its file name, subject, key size and issuer (``None`` for a self-signed root)."""

    name: str
    subject: x509.Name
    key_size: int
    issuer: str | None
    description: str


CA_SPECS: tuple[CASpec, ...] = (
    CASpec("root-g2", root_name(), 2048, None, "GRCA-shaped test root for the G2 chain"),
    CASpec("moica-g2", moica_name("G2"), 2048, "root-g2", "MOICA G2-shaped issuing CA (RSA-2048)"),
    CASpec("root-g3", root_name(" - G3"), 4096, None, "GRCA G3-shaped test root (RSA-4096)"),
    CASpec("moica-g3", moica_name("G3"), 4096, "root-g3", "MOICA G3-shaped issuing CA (RSA-4096)"),
    CASpec("lookalike-root", root_name(), 2048, None, "same DN as root-g2, different key: not trusted"),
    CASpec("lookalike-moica", moica_name("G2"), 2048, "lookalike-root", "same DN as moica-g2, does not chain"),
)


@dataclass(frozen=True)
class IdentitySpec:
    """One identity of the default set: directory slug, issuing CA and status."""

    slug: str
    ca: str
    status: str


IDENTITY_SPECS: tuple[IdentitySpec, ...] = (
    IdentitySpec("g2-valid-1", "moica-g2", Status.VALID),
    IdentitySpec("g2-valid-2", "moica-g2", Status.VALID),
    IdentitySpec("g3-valid-1", "moica-g3", Status.VALID),
    IdentitySpec("g2-expired", "moica-g2", Status.EXPIRED),
    IdentitySpec("g2-not-yet-valid", "moica-g2", Status.NOT_YET_VALID),
    IdentitySpec("g2-revoked", "moica-g2", Status.REVOKED),
    IdentitySpec("g3-revoked", "moica-g3", Status.REVOKED),
    IdentitySpec("lookalike", "lookalike-moica", Status.LOOKALIKE),
)

REVOCATION_REASON = x509.ReasonFlags.key_compromise  # a lost card is reported as key compromise
DAY = dt.timedelta(days=1)
YEAR = dt.timedelta(days=365)


def validity_window(status: str, reference: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """notBefore/notAfter of a user certificate in the given set, relative to generation time.

    Expired and not-yet-valid windows lie wholly inside the issuing CA's validity, so that the
    validity check of the user certificate is the only thing that fails.
    """
    if status == Status.EXPIRED:
        return reference - 6 * YEAR, reference - YEAR
    if status == Status.NOT_YET_VALID:
        return reference + 10 * YEAR, reference + 15 * YEAR
    return reference - 30 * DAY, reference + 10 * YEAR


def ca_validity(spec: CASpec, reference: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    years = 25 if spec.issuer is None else 20
    return reference - 10 * YEAR, reference + years * YEAR


def normalize_base_url(base_url: str) -> str:
    """Check that ``base_url`` is an absolute http(s) URL and make it end with ``/``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"base URL must look like http://127.0.0.1:8765/: {base_url!r}")
    return base_url if base_url.endswith("/") else base_url + "/"


def crl_url(base_url: str, ca_name: str) -> str:
    return f"{base_url}crl/{ca_name}.crl"


def ocsp_url(base_url: str, ca_name: str) -> str:
    return f"{base_url}ocsp/{ca_name}"


def ca_issuers_url(base_url: str, ca_name: str) -> str:
    return f"{base_url}ca/{ca_name}.cer"


@dataclass
class IssuedCA:
    spec: CASpec
    key: rsa.RSAPrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class RevokedEntry:
    """A revoked certificate: serial, time and reason (RFC 5280 §5.3.1 reasonCode)."""

    serial_number: int
    revocation_time: dt.datetime
    reason: x509.ReasonFlags = REVOCATION_REASON


def new_rsa_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _revocation_pointers(builder: x509.CertificateBuilder, base_url: str, issuer: str) -> x509.CertificateBuilder:
    """CRL distribution point (RFC 5280 §4.2.1.13) and AIA with OCSP + caIssuers (§4.2.2.1)."""
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url(base_url, issuer))],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url(base_url, issuer))
        ),
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url(base_url, issuer))
        ),
    ]
    return builder.add_extension(x509.CRLDistributionPoints([point]), critical=False).add_extension(
        x509.AuthorityInformationAccess(access), critical=False
    )


def build_ca_certificate(
    spec: CASpec,
    key: rsa.RSAPrivateKey,
    issuer: IssuedCA | None,
    base_url: str,
    reference: dt.datetime,
) -> x509.Certificate:
    """A CA certificate: basicConstraints and keyUsage critical (RFC 5280 §4.2.1.9, §4.2.1.3)."""
    not_before, not_after = ca_validity(spec, reference)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(issuer.cert.subject if issuer else spec.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(
            key_usage(key_cert_sign=True, crl_sign=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(POLICY_GPKI_LEVEL3, None)]), critical=False
        )
        builder = _revocation_pointers(builder, base_url, issuer.spec.name)
    return builder.sign(signer_key, hashes.SHA256())


def build_user_certificate(
    identity: Identity,
    usage: str,
    key: rsa.RSAPrivateKey,
    issuer: IssuedCA,
    base_url: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A MOICA-shaped user certificate; ``usage`` is ``"sign"`` or ``"enc"`` (RFC 5280 §4.2.1.3 keyUsage)."""
    signing = usage == "sign"
    usage_bits = key_usage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=not signing,
        data_encipherment=not signing,
    )
    sda = x509.UnrecognizedExtension(
        x509.ObjectIdentifier(OID_SUBJECT_DIRECTORY_ATTRIBUTES), encode_moica_sda(identity.national_id_last4)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(user_name(identity))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(usage_bits, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(POLICY_GPKI_LEVEL3, None)]), critical=False)
        .add_extension(sda, critical=False)
    )
    builder = _revocation_pointers(builder, base_url, issuer.spec.name)
    return builder.sign(issuer.key, hashes.SHA256())


def build_crl(
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    revoked: Iterable[RevokedEntry],
    this_update: dt.datetime,
    next_update: dt.datetime,
    crl_number: int = 1,
) -> x509.CertificateRevocationList:
    """A complete CRL (RFC 5280 §5) with cRLNumber, authorityKeyIdentifier and per-entry reasonCode."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial_number)
            .revocation_date(entry.revocation_time)
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


KEY_README = """\
TEST-ONLY KEYS. The private keys in this directory (*.key.pem) were generated by
`eidemu pki generate` for the eidemu test PKI. They belong to no real certification
authority and no real person, they are public, and they must never be trusted outside tests.
See PROVENANCE.md at the top of the PKI directory.
"""

CRL_README = """\
Test CRLs (DER) of the eidemu test PKI, one per CA, named after the CA. `eidemu pki serve`
re-signs them with a current thisUpdate/nextUpdate when it starts. TEST ONLY.
"""


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory if inside it, so no machine-specific path is recorded."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return path.name or "."


def _provenance(base_url: str, seed: int, reference: dt.datetime, out_name: str) -> str:
    cas = "\n".join(
        f"| `{s.name}` | {s.key_size} | {s.issuer or '(self-signed)'} | {s.description} |" for s in CA_SPECS
    )
    idents = "\n".join(f"| `{s.slug}` | `{s.ca}` | {s.status} |" for s in IDENTITY_SPECS)
    return f"""# Provenance of this test PKI

**Every private key in this directory tree is TEST-ONLY.** The keys were generated at random by
`eidemu pki generate` with pyca/cryptography {cryptography.__version__}; none comes from, or is
related to, any real certification authority (GRCA, MOICA or other) or any real person. They are
published on purpose and must never be trusted outside tests. Every CA name contains the word
`TEST`.

- Command: `eidemu pki generate --out {out_name} --seed {seed} --base-url {base_url}`
- Generated: {iso_time(reference)} (validity periods are relative to this time)
- Identities: synthetic, drawn deterministically from seed {seed} (`emulator/pki/identities.py`);
  national ID numbers pass the checksum but were not taken from any register.
- Keys and certificate serial numbers are random; regenerating gives different keys.
- Revocation services: certificates point at `{base_url}` (CRLs under `crl/`, OCSP under
  `ocsp/<ca>`, issuer certificates under `ca/<ca>.cer`). Run `eidemu pki serve --pki {out_name}`
  on that address for revocation checks to work.
- eID chip: `eid/` holds the TEST country PKI (CSCA Taiwan TEST, Document Signers, CRL, master
  list) and the chips' data groups and keys, also TEST-ONLY (`docs/eid.md`); rebuild it alone
  with `eidemu pki generate --out {out_name} --eid-only`.

## Certification authorities

| name | RSA bits | issuer | role |
|---|---|---|---|
{cas}

## Identities

| slug | issuing CA | status |
|---|---|---|
{idents}

Facts followed: the public descriptions of MOICA's certificate profile and of the identity
rules, restated in `docs/test-pki.md` with the file layout.
"""


def generate_pki(
    out: Path,
    base_url: str = DEFAULT_BASE_URL,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    reference: dt.datetime | None = None,
) -> dict[str, Any]:
    """Generate the whole test PKI into ``out`` and return the manifest (also written as manifest.json).

    An existing ``out`` must be empty or a previous output (it has a ``manifest.json``); in the
    latter case its ``ca/``, ``crl/``, ``identities/`` and ``eid/`` subdirectories are replaced.
    The eID chip's country PKI and LDS data are written under ``eid/`` (:mod:`.eid`).
    """
    base_url = normalize_base_url(base_url)
    reference = reference or dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise ValueError(f"{out} is not empty and holds no {MANIFEST_NAME}: refusing to write into it")

    total = len(CA_SPECS) + 2 * len(IDENTITY_SPECS) + 1 + eid_step_count(len(IDENTITY_SPECS))
    counter = itertools.count()

    def step(description: str) -> None:
        if progress:
            progress(next(counter), total, description)

    cas: dict[str, IssuedCA] = {}
    for spec in CA_SPECS:
        step(f"CA {spec.name}: RSA-{spec.key_size} key")
        key = new_rsa_key(spec.key_size)
        issuer = cas[spec.issuer] if spec.issuer else None
        cas[spec.name] = IssuedCA(spec, key, build_ca_certificate(spec, key, issuer, base_url, reference))

    identities = generate_identities(seed)
    issued: list[tuple[IdentitySpec, Identity, dict[str, tuple[rsa.RSAPrivateKey, x509.Certificate]]]] = []
    revoked: dict[str, list[RevokedEntry]] = {spec.name: [] for spec in CA_SPECS}
    revocation_time = reference - 7 * DAY
    for ident_spec in IDENTITY_SPECS:
        identity = next(identities)
        not_before, not_after = validity_window(ident_spec.status, reference)
        pair = {}
        for usage in ("sign", "enc"):
            step(f"identity {ident_spec.slug}: {usage} key")
            key = new_rsa_key(2048)
            cert = build_user_certificate(identity, usage, key, cas[ident_spec.ca], base_url, not_before, not_after)
            pair[usage] = (key, cert)
            if ident_spec.status == Status.REVOKED:
                revoked[ident_spec.ca].append(RevokedEntry(cert.serial_number, revocation_time))
        issued.append((ident_spec, identity, pair))

    step("writing files")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("ca", "crl", "identities"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        (out / sub).mkdir()
    (out / "ca" / "README.txt").write_text(KEY_README, encoding="utf-8")
    (out / "identities" / "README.txt").write_text(KEY_README, encoding="utf-8")
    (out / "crl" / "README.txt").write_text(CRL_README, encoding="utf-8")

    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "test_only": True,
        "base_url": base_url,
        "seed": seed,
        "generated": iso_time(reference),
        "cas": [],
        "identities": [],
    }
    for name, ca in cas.items():
        (out / "ca" / f"{name}.cert.pem").write_bytes(cert_pem(ca.cert))
        (out / "ca" / f"{name}.key.pem").write_bytes(key_pem(ca.key))
        crl = build_crl(ca.cert, ca.key, revoked[name], reference, reference + YEAR)
        (out / "crl" / f"{name}.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
        manifest["cas"].append(
            {
                "name": name,
                "cert": f"ca/{name}.cert.pem",
                "key": f"ca/{name}.key.pem",
                "subject": ca.cert.subject.rfc4514_string(),
                "issuer": ca.spec.issuer or name,
                "issuer_dn": ca.cert.issuer.rfc4514_string(),
                "key_size": ca.spec.key_size,
                "crl": f"crl/{name}.crl",
                "crl_url": crl_url(base_url, name),
                "ocsp_url": ocsp_url(base_url, name),
                "ca_issuers_url": ca_issuers_url(base_url, name),
                "description": ca.spec.description,
            }
        )

    for ident_spec, identity, pair in issued:
        directory = out / "identities" / ident_spec.slug
        directory.mkdir()
        (directory / "README.txt").write_text(KEY_README, encoding="utf-8")
        record: dict[str, Any] = {**identity.to_json(), "ca": ident_spec.ca, "status": ident_spec.status}
        record["certificates"] = {}
        for usage, (key, cert) in pair.items():
            (directory / f"{usage}.cert.pem").write_bytes(cert_pem(cert))
            (directory / f"{usage}.key.pem").write_bytes(key_pem(key))
            record["certificates"][usage] = {
                "serial_number": format(cert.serial_number, "x"),
                "not_before": iso_time(cert.not_valid_before_utc),
                "not_after": iso_time(cert.not_valid_after_utc),
            }
        if ident_spec.status == Status.REVOKED:
            record["revocation"] = {"time": iso_time(revocation_time), "reason": REVOCATION_REASON.value}
        (directory / "identity.json").write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
        chain = [ident_spec.ca]
        while (parent := cas[chain[-1]].spec.issuer) is not None:
            chain.append(parent)
        manifest["identities"].append(
            {
                "slug": ident_spec.slug,
                "path": f"identities/{ident_spec.slug}",
                "ca": ident_spec.ca,
                "status": ident_spec.status,
                "chain": chain,
            }
        )

    generate_eid(out, [(spec.slug, identity) for spec, identity, _ in issued], base_url, reference, step)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    (out / "PROVENANCE.md").write_text(_provenance(base_url, seed, reference, _display_path(out)), "utf-8")
    if progress:
        progress(total, total, "done")
    return manifest
