"""The TEST PKI's mobile citizen certificates (行動自然人憑證): one RSA-4096 certificate per
synthetic identity, issued by the TEST "MOICA G3" CA, for the mobile certificate service double
(``eidemu fido serve``, ``docs/moica-services.md``).

The real service keeps the holder's key in a phone app behind FIDO; here the key is a file
next to the certificate. Layout, written once by :func:`generate_mobile` and shipped::

    mobile/manifest.json                 issuer, and per holder: slug, certificate, key
    mobile/<slug>.cert.pem, <slug>.key.pem

The certificates carry the same CRL distribution point and AIA (OCSP, caIssuers) as the card
certificates of their CA (RFC 5280 §4.2.1.13, §4.2.2.1), and :func:`register_mobile` adds them
to a loaded :class:`~eidemu.emulator.pki.store.TestPki`, so ``eidemu pki serve`` answers
``good`` for them. They are never revoked (a revoked card does not revoke the phone's certificate
in this model), so the CRLs the existing tests pin do not change.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .generate import CASpec, IssuedCA, build_user_certificate, new_rsa_key
from .pem import cert_pem, key_pem, key_usage
from .store import IssuedCertificate, TestPki, load_certificate, load_rsa_key

MOBILE_DIR = "mobile"
MOBILE_ISSUER = "moica-g3"
MOBILE_KEY_SIZE = 4096  # MOICA G3 user certificates are RSA-4096 (docs/moica-services.md)
MOBILE_VALIDITY = dt.timedelta(days=5 * 365)
MOBILE_FORMAT = 1


@dataclass(frozen=True)
class MobileHolder:
    """One holder's mobile certificate and key (``mobile/<slug>.*``)."""

    slug: str
    cert_path: Path
    key_path: Path

    @property
    def cert(self) -> x509.Certificate:
        return load_certificate(self.cert_path)


def mobile_holders(pki: TestPki) -> dict[str, MobileHolder]:
    """The holders listed in ``<pki>/mobile/manifest.json`` (empty when there is none)."""
    root = pki.root / MOBILE_DIR
    try:
        manifest = json.loads((root / "manifest.json").read_text("utf-8"))
    except FileNotFoundError:
        return {}
    return {
        entry["slug"]: MobileHolder(entry["slug"], root / entry["cert"], root / entry["key"])
        for entry in manifest["holders"]
    }


def register_mobile(pki: TestPki) -> None:
    """Add the mobile certificates to ``pki.issued`` so the CRL/OCSP services know them."""
    for holder in mobile_holders(pki).values():
        cert = holder.cert
        pki.issued[(MOBILE_ISSUER, cert.serial_number)] = IssuedCertificate(cert, MOBILE_ISSUER)


def has_mobile_certificate(ca_name: str) -> bool:
    """Identities of a MOICA CA (not the look-alike) get a mobile certificate."""
    return ca_name.startswith("moica-")


def generate_mobile(pki_root: Path | str, progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Write ``<pki_root>/mobile``: an RSA-4096 certificate for every identity whose CA is a
    MOICA CA (not the look-alike), issued by TEST MOICA G3 as of the PKI's generation date."""
    pki = TestPki.load(pki_root)
    issuer_ca = pki.cas[MOBILE_ISSUER]
    issuer = IssuedCA(CASpec(MOBILE_ISSUER, issuer_ca.cert.subject, MOBILE_KEY_SIZE, issuer_ca.issuer, ""),
                      issuer_ca.key, issuer_ca.cert)  # fmt: skip
    reference = dt.datetime.fromisoformat(str(pki.manifest["generated"]).replace("Z", "+00:00"))
    root = pki.root / MOBILE_DIR
    if root.exists():
        shutil.rmtree(root)  # replaced whole, like the other parts
    root.mkdir(parents=True)
    holders = []
    for slug, record in sorted(pki.identities.items()):
        if not has_mobile_certificate(record.ca):
            continue
        if progress:
            progress(f"mobile certificate for {slug} (RSA-{MOBILE_KEY_SIZE})")
        key = new_rsa_key(MOBILE_KEY_SIZE)
        not_before = reference - dt.timedelta(days=30)
        cert = build_user_certificate(
            record.identity, "sign", key, issuer, pki.base_url, not_before, not_before + MOBILE_VALIDITY
        )
        (root / f"{slug}.cert.pem").write_bytes(cert_pem(cert))
        (root / f"{slug}.key.pem").write_bytes(key_pem(key))
        holders.append({"slug": slug, "cert": f"{slug}.cert.pem", "key": f"{slug}.key.pem"})
    manifest: dict[str, object] = {
        "format": MOBILE_FORMAT,
        "test_only": True,
        "issuer": MOBILE_ISSUER,
        "key_size": MOBILE_KEY_SIZE,
        "holders": holders,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (root / "README.txt").write_text(
        "TEST ONLY: mobile citizen certificates of the synthetic identities, RSA-4096, issued by\n"
        "TEST MOICA G3. Keys are published on purpose; never trust these anywhere.\n"
        "Rebuild: python -m eidemu.emulator.pki.mobile fixtures/pki\n",
        "utf-8",
    )
    return manifest


def load_holder_key(holder: MobileHolder) -> rsa.RSAPrivateKey:
    """The holder's private key (the phone's FIDO-protected key in the real service)."""
    return load_rsa_key(holder.key_path)


ICS_DIR = "ics"
ICS_VALIDITY = dt.timedelta(days=20 * 365)


def _ics_certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    not_before: dt.datetime,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate of the ICS double's TEST hierarchy (RFC 5280 §4.2.1: basicConstraints,
    keyUsage, extKeyUsage, subjectAltName, key identifiers)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + ICS_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            key_usage(digital_signature=not ca, key_encipherment=not ca and bool(hosts), key_cert_sign=ca, crl_sign=ca),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts if not h[0].isdigit()]
        names += [x509.IPAddress(ipaddress.ip_address(h)) for h in hosts if h[0].isdigit()]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def generate_ics(pki_root: Path | str) -> None:
    """Write ``<pki_root>/mobile/ics``: a TEST CA, the ICS double's TLS server certificate
    (localhost, 127.0.0.1, ::1) and one registered TEST bank's signing certificate and key."""
    pki = TestPki.load(pki_root)
    reference = dt.datetime.fromisoformat(str(pki.manifest["generated"]).replace("Z", "+00:00"))
    not_before = reference - dt.timedelta(days=30)
    root = pki.root / MOBILE_DIR / ICS_DIR
    root.mkdir(parents=True, exist_ok=True)

    def name(common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "eidemu TEST ONLY"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    ca_key = new_rsa_key(2048)
    ca = _ics_certificate(name("TEST ICS Root"), ca_key, None, ca_key, not_before, ca=True, usage=None)
    server_key = new_rsa_key(2048)
    hosts = ("localhost", "127.0.0.1", "::1")
    server = _ics_certificate(name("localhost"), server_key, ca, ca_key, not_before, ca=False,
                              usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=hosts)  # fmt: skip
    bank_key = new_rsa_key(2048)
    bank = _ics_certificate(name("TEST Bank ICS client"), bank_key, ca, ca_key, not_before, ca=False,
                            usage=ExtendedKeyUsageOID.CLIENT_AUTH)  # fmt: skip
    for file_name, data in (
        ("ca.cert.pem", cert_pem(ca)),
        ("server.cert.pem", cert_pem(server)),
        ("server.key.pem", key_pem(server_key)),
        ("bank.cert.pem", cert_pem(bank)),
        ("bank.key.pem", key_pem(bank_key)),
    ):
        (root / file_name).write_bytes(data)
    (root / "README.txt").write_text(
        "TEST ONLY: the ICS double's TLS server certificate (localhost, 127.0.0.1, ::1) under\n"
        "TEST ICS Root, and one registered TEST bank's signing certificate and key.\n"
        "Rebuild: python -m eidemu.emulator.pki.mobile fixtures/pki --ics-only\n",
        "utf-8",
    )


if __name__ == "__main__":  # python -m eidemu.emulator.pki.mobile DIR [--ics-only]
    import sys

    if "--ics-only" not in sys.argv:
        generate_mobile(sys.argv[1], progress=lambda text: print(text, flush=True))
    generate_ics(sys.argv[1])
