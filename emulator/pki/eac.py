"""The eID chip's TEST EAC PKI: CV certificates of BSI TR-03110-3 for Terminal Authentication.

What ``<out>/eac`` holds (docs/eid.md, "Extended access control and the zones"):

* ``cvca-tw-1``: the TEST CVCA of authentication terminals (``TWCVCA00001``, id-AT, all
  rights, ECDSA brainpoolP256r1 with id-TA-ECDSA-SHA-256, full domain parameters);
* ``cvca-tw-2`` and ``link-tw-2``: the rollover key ``TWCVCA00002`` self-signed, and its
  link certificate signed by ``TWCVCA00001`` (TR-03110-3 §2.5.2);
* ``dv-domestic`` (``TWDVDOM00001``, official domestic DV, all rights) and ``dv-public``
  (``TWDVPUB00001``, foreign / non-official DV with the public-zone rights only), both
  under CVCA 1; ``dv-domestic-2`` under CVCA 2;
* terminals: ``at-private`` (private zone DG3..DG9, household DG13, PIN management),
  ``at-household`` (DG13 only), ``at-public`` (under ``dv-public``, asks for the private
  zone but the DV does not grant it), ``at-expired`` (expired a year before generation),
  ``at-private-2`` (under ``dv-domestic-2``, reached through the link certificate);
* an inspection-system chain (id-IS): ``cvca-is`` (``TWCVCAIS0001``), ``dv-is``, ``is-1``;
* an RSA chain (id-TA-RSA-v1-5-SHA-256, RSA-2048): ``cvca-rsa``, ``dv-rsa``, ``at-rsa``;
* every terminal's and authority's private key as ``<name>.key.pem`` and a ``manifest.json``
  naming each certificate's CAR, CHR, role, dates and the chain a terminal sends.

Dates are whole days relative to the generation date; the chip's initial current date
(profile option ``eac.current_date``) is the CVCA's effective date. Every key is generated
on the machine that runs the generator: TEST ONLY.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..icao import cvc
from ..icao.cvc import ID_AT, ID_IS, AtRight, Chat, CvCertificate, CvPublicKey, Role

EAC_DIR = "eac"
EAC_MANIFEST_FORMAT = 1

# The rights of the zones (TR-03110-3 Table C.4 read bits; the zone layout is docs/eid.md).
PUBLIC_DGS = (1, 2, 11, 12)
PRIVATE_DGS = (3, 4, 5, 6, 7, 8, 9)
HOUSEHOLD_DGS = (13,)
ALL_AT_RIGHTS = (1 << 38) - 1
ALL_IS_RIGHTS = 0b11


def _reads(dgs: tuple[int, ...]) -> list[int]:
    return [cvc.read_dg(n) for n in dgs]


@dataclass(frozen=True)
class Spec:
    """One certificate to issue: issuer name (itself for a self-signed CVCA), role, rights, dates."""

    name: str
    chr: str
    issuer: str
    role_oid: str
    role: Role
    rights: int | list[int]
    effective_days: int  # relative to generation
    expiration_days: int
    rsa: bool = False


SPECS: tuple[Spec, ...] = (
    Spec("cvca-tw-1", "TWCVCA00001", "cvca-tw-1", ID_AT, Role.CVCA, ALL_AT_RIGHTS, -60, 3 * 365),
    Spec("cvca-tw-2", "TWCVCA00002", "cvca-tw-2", ID_AT, Role.CVCA, ALL_AT_RIGHTS, -10, 4 * 365),
    Spec("link-tw-2", "TWCVCA00002", "cvca-tw-1", ID_AT, Role.CVCA, ALL_AT_RIGHTS, -10, 4 * 365),
    Spec("dv-domestic", "TWDVDOM00001", "cvca-tw-1", ID_AT, Role.DV_DOMESTIC, ALL_AT_RIGHTS, -30, 365),
    Spec(
        "dv-public",
        "TWDVPUB00001",
        "cvca-tw-1",
        ID_AT,
        Role.DV_FOREIGN,
        [*_reads(PUBLIC_DGS), AtRight.AGE_VERIFICATION, AtRight.CAN_ALLOWED],
        -30,
        365,
    ),
    Spec("dv-domestic-2", "TWDVDOM00002", "cvca-tw-2", ID_AT, Role.DV_DOMESTIC, ALL_AT_RIGHTS, -5, 365),
    Spec(
        "at-private",
        "TWATPRIV0001",
        "dv-domestic",
        ID_AT,
        Role.TERMINAL,
        [*_reads(PRIVATE_DGS + HOUSEHOLD_DGS + PUBLIC_DGS), AtRight.PIN_MANAGEMENT],
        -20,
        90,
    ),
    Spec("at-household", "TWATHOUS0001", "dv-domestic", ID_AT, Role.TERMINAL, _reads(HOUSEHOLD_DGS), -20, 90),
    Spec(
        "at-public",
        "TWATPUBL0001",
        "dv-public",
        ID_AT,
        Role.TERMINAL,
        _reads(PUBLIC_DGS + PRIVATE_DGS + HOUSEHOLD_DGS),
        -20,
        90,
    ),
    Spec("at-expired", "TWATEXPD0001", "dv-domestic", ID_AT, Role.TERMINAL, _reads(PRIVATE_DGS), -400, -365),
    Spec(
        "at-private-2",
        "TWATPRIV0002",
        "dv-domestic-2",
        ID_AT,
        Role.TERMINAL,
        [*_reads(PRIVATE_DGS + HOUSEHOLD_DGS), AtRight.PIN_MANAGEMENT],
        -2,
        90,
    ),
    Spec("cvca-is", "TWCVCAIS0001", "cvca-is", ID_IS, Role.CVCA, ALL_IS_RIGHTS, -60, 3 * 365),
    Spec("dv-is", "TWDVIS000001", "cvca-is", ID_IS, Role.DV_DOMESTIC, ALL_IS_RIGHTS, -30, 365),
    Spec("is-1", "TWIS00000001", "dv-is", ID_IS, Role.TERMINAL, ALL_IS_RIGHTS, -20, 90),
    Spec("cvca-rsa", "TWCVCARSA001", "cvca-rsa", ID_AT, Role.CVCA, ALL_AT_RIGHTS, -60, 3 * 365, rsa=True),
    Spec("dv-rsa", "TWDVRSA00001", "cvca-rsa", ID_AT, Role.DV_DOMESTIC, ALL_AT_RIGHTS, -30, 365, rsa=True),
    Spec(
        "at-rsa",
        "TWATRSA00001",
        "dv-rsa",
        ID_AT,
        Role.TERMINAL,
        [*_reads(PRIVATE_DGS + HOUSEHOLD_DGS), AtRight.PIN_MANAGEMENT],
        -20,
        90,
        rsa=True,
    ),
)

README = """TEST-ONLY KEYS. Everything under this directory was generated by `eidemu pki generate --eac-only`:
the TEST EAC PKI of the emulated eID chip (BSI TR-03110-3 card-verifiable certificates: CVCAs, a
link certificate, document verifiers and terminals) with every private key (*.key.pem). They belong
to no real authority, they are public, and they must never be trusted outside tests. See docs/eid.md.
"""

KEY_BANNER = b"TEST KEY of the eidemu TEST EAC PKI: public, never trust it outside tests\n"
"""Text before the PEM block (PEM readers skip it, RFC 7468 §2) marking every key TEST."""

Progress = Callable[[str], None]


def _algorithm(spec: Spec) -> str:
    return cvc.ID_TA_RSA_V1_5_SHA_256 if spec.rsa else cvc.ID_TA_ECDSA_SHA_256


def generate_eac(out: Path, today: dt.date | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Write ``<out>/eac`` (replacing it) and return its manifest."""
    today = today or dt.datetime.now(dt.UTC).date()
    target = out / EAC_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "README.txt").write_text(README, "utf-8")
    keys: dict[str, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey] = {}
    certs: dict[str, CvCertificate] = {}
    entries: list[dict[str, Any]] = []
    for spec in SPECS:
        if spec.name == "link-tw-2":
            key = keys["cvca-tw-2"]
        else:
            key = rsa.generate_private_key(65537, 2048) if spec.rsa else ec.generate_private_key(ec.BrainpoolP256R1())
            keys[spec.name] = key
        issuer_spec = next(s for s in SPECS if s.name == spec.issuer)
        issuer_key = keys[spec.issuer] if spec.issuer != spec.name else key
        cert = CvCertificate.issue(
            issuer_key,
            _algorithm(issuer_spec),
            car=issuer_spec.chr,
            chr=spec.chr,
            public_key=CvPublicKey.from_key(
                _algorithm(spec), key.public_key(), domain_parameters=spec.role is Role.CVCA
            ),
            chat=Chat.of(spec.role_oid, spec.role, spec.rights),
            effective=today + dt.timedelta(days=spec.effective_days),
            expiration=today + dt.timedelta(days=spec.expiration_days),
        )
        certs[spec.name] = cert
        (target / f"{spec.name}.cvcert").write_bytes(cert.encode())
        if spec.name != "link-tw-2":
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            (target / f"{spec.name}.key.pem").write_bytes(KEY_BANNER + pem)
        entries.append(
            {
                "name": spec.name,
                "file": f"{spec.name}.cvcert",
                "key": f"{spec.name}.key.pem" if spec.name != "link-tw-2" else None,
                "car": cert.car,
                "chr": cert.chr,
                "role": cert.role.name,
                "terminal_type": "IS" if spec.role_oid == ID_IS else "AT",
                "chat": cert.chat.encode().hex().upper(),
                "effective": cert.effective.isoformat(),
                "expiration": cert.expiration.isoformat(),
                "algorithm": _algorithm(spec),
                "chain": _chain(spec.name),
            }
        )
        if progress:
            progress(f"{spec.name}: {cert.chr} signed by {cert.car}")
    manifest = {"format": EAC_MANIFEST_FORMAT, "generated": today.isoformat(), "certificates": entries}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return manifest


def _chain(name: str) -> list[str]:
    """The certificates a terminal sends after the trust point, in order (link, DV, terminal)."""
    by_name = {s.name: s for s in SPECS}
    chain = [name]
    spec = by_name[name]
    while spec.issuer != spec.name:
        parent = by_name[spec.issuer]
        if parent.role is Role.CVCA:
            if parent.name == "cvca-tw-2":
                chain.insert(0, "link-tw-2")
            break
        chain.insert(0, parent.name)
        spec = parent
    return chain if by_name[name].role is not Role.CVCA else [name]


# -- reading the fixtures ------------------------------------------------------------------


@dataclass(frozen=True)
class Terminal:
    """A terminal of the TEST EAC PKI as tests and the reader use it: the chain it sends
    (link, DV, terminal certificates), its private key and algorithm."""

    name: str
    chain: tuple[CvCertificate, ...]
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    algorithm: str

    @property
    def certificate(self) -> CvCertificate:
        return self.chain[-1]


def load_manifest(directory: Path) -> dict[str, Any]:
    """The ``manifest.json`` of an EAC directory; ``ValueError`` naming the file if unreadable."""
    path = directory / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return data


def load_certificate(directory: Path, name: str) -> CvCertificate:
    """One certificate of the directory by name."""
    return CvCertificate.parse((directory / f"{name}.cvcert").read_bytes())


def load_terminal(directory: Path, name: str) -> Terminal:
    """A terminal by name (``at-private``, ``is-1`` ...); ``ValueError`` if there is none."""
    manifest = load_manifest(directory)
    entry = next((e for e in manifest["certificates"] if e["name"] == name), None)
    if entry is None or entry["role"] != Role.TERMINAL.name:
        names = ", ".join(e["name"] for e in manifest["certificates"] if e["role"] == Role.TERMINAL.name)
        raise ValueError(f"no terminal {name!r} in {directory} (terminals: {names})")
    chain = tuple(load_certificate(directory, n) for n in entry["chain"])
    key = serialization.load_pem_private_key((directory / entry["key"]).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{entry['key']}: not an EC or RSA key")
    return Terminal(name, chain, key, entry["algorithm"])


__all__ = [
    "EAC_DIR",
    "HOUSEHOLD_DGS",
    "PRIVATE_DGS",
    "PUBLIC_DGS",
    "SPECS",
    "Terminal",
    "generate_eac",
    "load_certificate",
    "load_manifest",
    "load_terminal",
]
