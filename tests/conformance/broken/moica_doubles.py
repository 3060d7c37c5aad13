"""TEST DOUBLES: MOICA cards whose signature certificate has one wrong field.

Built at test time from the committed test PKI (so they never go stale when it is
regenerated): the PKI is copied, identity ``g2-valid-1``'s signature certificate is
re-issued by the genuine ``moica-g2`` CA key with one field changed, and a card profile is
written from the copy by :func:`eidemu.emulator.pki.moica_profiles.write_profile`. Everything
else (keys, PIN, the other certificates, the card interface) is that of ``moica-g2-valid-1``.

Defects:

- ``no-sda``: the Subject Directory Attributes extension (2.5.29.9) is left out;
- ``extra-key-usage``: keyUsage also asserts keyEncipherment (a signing key usable for key transport).

(A wrong issuer DN cannot be built this way: the profile writer refuses a certificate whose
issuer names no CA of the PKI, which is the check MOICA_CERT_03 makes on the card.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID

from eidemu.emulator.formats.moica_asn1 import OID_SUBJECT_DIRECTORY_ATTRIBUTES
from eidemu.emulator.pki.moica_profiles import write_profile
from eidemu.emulator.profile import PROFILE_DIR

PKI = PROFILE_DIR.parent / "pki"
SLUG = "g2-valid-1"
DEFECTS = ("no-sda", "extra-key-usage")


def _reissue(cert: x509.Certificate, defect: str, ca_key_pem: bytes) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        value = extension.value
        if defect == "no-sda" and extension.oid.dotted_string == OID_SUBJECT_DIRECTORY_ATTRIBUTES:
            continue
        if defect == "extra-key-usage" and extension.oid == ExtensionOID.KEY_USAGE:
            assert isinstance(value, x509.KeyUsage)
            value = x509.KeyUsage(
                digital_signature=value.digital_signature,
                content_commitment=value.content_commitment,
                key_encipherment=True,
                data_encipherment=value.data_encipherment,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            )
        builder = builder.add_extension(value, extension.critical)
    key = serialization.load_pem_private_key(ca_key_pem, password=None)
    return builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]


def build_moica_double(defect: str, workdir: Path) -> Path:
    """Write the profile of a ``moica-g2-valid-1`` copy with ``defect``; return its path."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r} (known: {', '.join(DEFECTS)})")
    pki = workdir / "pki"
    shutil.copytree(PKI, pki)
    cert_path = pki / "identities" / SLUG / "sign.cert.pem"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    broken = _reissue(cert, defect, (pki / "ca" / "moica-g2.key.pem").read_bytes())
    cert_path.write_bytes(broken.public_bytes(serialization.Encoding.PEM))
    return write_profile(pki, SLUG, workdir / "profiles")
