"""Reading a generated test PKI back from its directory (the layout written by :mod:`.generate`).

Layout (``docs/test-pki.md``)::

    manifest.json                       CAs and identities, paths relative to this directory
    ca/<name>.cert.pem, <name>.key.pem  the test CAs
    crl/<name>.crl                      one DER CRL per CA
    identities/<slug>/identity.json     Identity fields plus ca, status (and revocation if revoked)
    identities/<slug>/{sign,enc}.{cert,key}.pem
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..formats.files import CONTENT_LIMIT, read_bounded
from .generate import MANIFEST_FORMAT, MANIFEST_NAME, RevokedEntry, Status
from .identities import Identity


class PkiLayoutError(ValueError):
    """The directory is not a test PKI written by ``eidemu pki generate``."""


def _read(path: Path, what: str) -> bytes:
    """A file of the PKI, bounded like every file eidemu reads (no devices, FIFOs, or
    files larger than a certificate store could need)."""
    return read_bounded(path, CONTENT_LIMIT, what)


def load_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(_read(path, "certificate"))


def load_rsa_key(path: Path) -> rsa.RSAPrivateKey:
    # The TEST PKI's own keys: the consistency check of RSA-4096 keys costs most of a second each.
    key = serialization.load_pem_private_key(
        _read(path, "private key"), password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiLayoutError(f"{path}: not an RSA private key")
    return key


@dataclass(frozen=True)
class CertificateAuthority:
    """One test CA as listed in the manifest, with its certificate and key loaded."""

    name: str
    issuer: str  # CA name of the issuer; the CA's own name for a self-signed root
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    crl_path: Path
    crl_url: str
    ocsp_url: str

    @property
    def is_root(self) -> bool:
        return self.issuer == self.name


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate a test CA issued, with its revocation state (None while not revoked)."""

    cert: x509.Certificate
    issuer: str
    revocation: RevokedEntry | None = None


@dataclass(frozen=True)
class IdentityRecord:
    """One ``identities/<slug>/`` directory."""

    slug: str
    path: Path
    identity: Identity
    ca: str
    status: str
    chain: tuple[str, ...]
    sign_cert: x509.Certificate
    enc_cert: x509.Certificate

    @property
    def sign_key_path(self) -> Path:
        return self.path / "sign.key.pem"

    @property
    def enc_key_path(self) -> Path:
        return self.path / "enc.key.pem"


@dataclass
class TestPki:
    """A loaded test PKI: CAs, identities and every issued certificate indexed by (CA, serial)."""

    __test__ = False  # not a pytest test class despite the name

    root: Path
    manifest: dict[str, Any]
    cas: dict[str, CertificateAuthority] = field(default_factory=dict)
    identities: dict[str, IdentityRecord] = field(default_factory=dict)
    issued: dict[tuple[str, int], IssuedCertificate] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return str(self.manifest["base_url"])

    @classmethod
    def load(cls, root: Path | str) -> TestPki:
        """Load ``root/manifest.json`` and everything it names."""
        root = Path(root)
        try:
            manifest = json.loads(_read(root / MANIFEST_NAME, "PKI manifest"))
        except FileNotFoundError:
            raise PkiLayoutError(f"{root}: no {MANIFEST_NAME}; run `eidemu pki generate --out {root}`") from None
        except json.JSONDecodeError as exc:
            raise PkiLayoutError(f"{root / MANIFEST_NAME}: {exc}") from None
        if manifest.get("format") != MANIFEST_FORMAT:
            raise PkiLayoutError(f"{root / MANIFEST_NAME}: unsupported format {manifest.get('format')!r}")
        pki = cls(root=root, manifest=manifest)
        for entry in manifest["cas"]:
            ca = CertificateAuthority(
                name=entry["name"],
                issuer=entry["issuer"],
                cert=load_certificate(root / entry["cert"]),
                key=load_rsa_key(root / entry["key"]),
                crl_path=root / entry["crl"],
                crl_url=entry["crl_url"],
                ocsp_url=entry["ocsp_url"],
            )
            pki.cas[ca.name] = ca
            if not ca.is_root:
                pki.issued[(ca.issuer, ca.cert.serial_number)] = IssuedCertificate(ca.cert, ca.issuer)
        for entry in manifest["identities"]:
            path = root / entry["path"]
            data = json.loads(_read(path / "identity.json", "identity"))
            record = IdentityRecord(
                slug=entry["slug"],
                path=path,
                identity=Identity.from_json(data),
                ca=entry["ca"],
                status=entry["status"],
                chain=tuple(entry["chain"]),
                sign_cert=load_certificate(path / "sign.cert.pem"),
                enc_cert=load_certificate(path / "enc.cert.pem"),
            )
            pki.identities[record.slug] = record
            revocation = None
            if record.status == Status.REVOKED:
                revocation = RevokedEntry(
                    serial_number=0,
                    revocation_time=dt.datetime.fromisoformat(data["revocation"]["time"].replace("Z", "+00:00")),
                    reason=x509.ReasonFlags(data["revocation"]["reason"]),
                )
            for cert in (record.sign_cert, record.enc_cert):
                entry_revocation = (
                    RevokedEntry(cert.serial_number, revocation.revocation_time, revocation.reason)
                    if revocation
                    else None
                )
                pki.issued[(record.ca, cert.serial_number)] = IssuedCertificate(cert, record.ca, entry_revocation)
        from .mobile import register_mobile  # the mobile certificates (mobile/), when shipped

        register_mobile(pki)
        return pki

    def revoked_by(self, ca_name: str) -> list[RevokedEntry]:
        """The revoked certificates of one CA, in a stable order, for its CRL."""
        entries = [i.revocation for (ca, _), i in self.issued.items() if ca == ca_name and i.revocation]
        return sorted(entries, key=lambda e: e.serial_number)

    def chain_certificates(self, slug: str) -> list[x509.Certificate]:
        """The CA certificates from the identity's issuer up to its root."""
        return [self.cas[name].cert for name in self.identities[slug].chain]


# --- the eID chip's country PKI and chip data (``eid/``, written by :mod:`.eid`) --------------


@dataclass(frozen=True)
class EidChip:
    """One ``eid/chips/<name>/`` directory: the chip's LDS files, keys and ``chip.json``."""

    name: str
    path: Path
    record: dict[str, Any]

    @property
    def can(self) -> str:
        return str(self.record["can"])

    @property
    def mrz(self) -> tuple[str, ...]:
        return tuple(self.record["mrz"])

    def file(self, name: str) -> bytes:
        """A file of the chip by its name in the directory (``DG1.bin``, ``EF.SOD.bin``, ...)."""
        return _read(self.path / name, "chip file")


@dataclass(frozen=True)
class EidPki:
    """``<pki>/eid``: CSCA Taiwan TEST, its signers (by name), CRL, master list and the chips."""

    root: Path
    manifest: dict[str, Any]
    csca: x509.Certificate
    signers: dict[str, x509.Certificate]
    chips: dict[str, EidChip]

    @property
    def crl(self) -> bytes:
        return _read(self.root / self.manifest["csca"]["crl"], "CRL")

    @property
    def master_list(self) -> bytes:
        return _read(self.root / self.manifest["csca"]["master_list"], "master list")

    @classmethod
    def load(cls, pki_root: Path | str) -> EidPki:
        """Read ``<pki_root>/eid/manifest.json`` and the certificates it names."""
        root = Path(pki_root) / "eid"
        try:
            manifest = json.loads(_read(root / "manifest.json", "eID PKI manifest"))
        except FileNotFoundError:
            hint = f"run `eidemu pki generate --out {pki_root} --eid-only`"
            raise PkiLayoutError(f"{root}: no manifest.json; {hint}") from None
        except json.JSONDecodeError as exc:
            raise PkiLayoutError(f"{root / 'manifest.json'}: {exc}") from None
        signers = {s["name"]: load_certificate(root / s["cert"]) for s in manifest["signers"]}
        chips = {c["name"]: EidChip(c["name"], root / c["path"], c) for c in manifest["chips"]}
        return cls(root, manifest, load_certificate(root / manifest["csca"]["cert"]), signers, chips)
