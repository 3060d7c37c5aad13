"""The eID chip's TEST country PKI (CSCA Taiwan TEST, Document Signers, CRL, master list) and LDS data.

What is modelled (docs/eid.md, "Test PKI and data"; docs/test-pki.md):

* a country signing CA ``CN=CSCA Taiwan TEST`` (ICAO 9303-12 §5, certificate profile §7.1):
  ECDSA over brainpoolP256r1 with SHA-256, self-signed, basicConstraints CA pathLen 0,
  keyUsage keyCertSign + cRLSign, SKI/AKI, privateKeyUsagePeriod;
* Document Signers issued by it (keyUsage digitalSignature, privateKeyUsagePeriod, CRL
  distribution point, documentTypeList ``ID``): ``ds-valid``, ``ds-expired`` (its validity
  ended a year before generation) and ``ds-revoked`` (on the CSCA CRL);
* a master list signer (extKeyUsage id-icao-cscaMasterListSigningKey) and a CSCA master list
  (9303-12 §9) listing the CSCA;
* per synthetic identity one chip: EF.COM, DG1, DG2, DG11, DG12, DG14, DG15, EF.SOD,
  EF.CardAccess and EF.CardSecurity (:mod:`eidemu.emulator.icao.lds`) with the chip's
  Chip Authentication key (ECDH brainpoolP256r1) and Active Authentication key; the chips of
  G3 identities also carry the EAC zones DG3-DG9 and DG13 (:mod:`.eac_zones`), listed in
  EF.COM and hashed in EF.SOD like the other data groups.

Invented where the Taiwan design is silent: the romanized MRZ names (Wade-Giles, as ROC
passports commonly spell them), the place of birth (the county or city of the national ID's
registration letter), the document dates (issued 30-330 days before generation, valid 10 years),
the issuing authority ``內政部 TEST`` and the face image (drawn here, deterministic per identity).

Every key is generated on the machine that runs the generator: TEST ONLY.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..icao import asn1, lds
from .eac_zones import carries_zones, zone_data_groups
from .identities import Identity
from .names import REGISTRATION_AREAS, ROMANIZATION
from .pem import cert_pem, iso_time, key_pem, key_usage

EID_DIR = "eid"
EID_MANIFEST_FORMAT = 1
CURVE = ec.BrainpoolP256R1
DAY = dt.timedelta(days=1)
YEAR = dt.timedelta(days=365)

ISSUING_STATE = "TWN"  # ICAO 9303-3 code of the ROC passport
DOCUMENT_CODE = "ID"
DOCUMENT_TYPES = ("ID",)  # documentTypeList of the Document Signers
ISSUING_AUTHORITY = "內政部 TEST"
DOCUMENT_VALIDITY_YEARS = 10
CSCA_NAME = "csca-tw"
CSCA_CN = "CSCA Taiwan TEST"
TEST_OU = "TEST ONLY - 測試用"
ORGANIZATION = "Ministry of the Interior TEST"

# PACE parameter sets the chips announce in EF.CardAccess (9303-11 §9.2 OIDs, §9.5 parameter IDs):
# (mapping, cipher, parameterId). 13 = brainpoolP256r1, 12 = NIST P-256, 16 = brainpoolP384r1,
# 0 = 1024-bit MODP group with 160-bit subgroup, 2 = 2048-bit MODP group with 256-bit subgroup.
PACE_PARAMETER_SETS: tuple[tuple[str, str, int], ...] = (
    ("ECDH-GM", "AES-128", 13),
    ("ECDH-GM", "AES-128", 12),
    ("ECDH-GM", "AES-192", 16),
    ("ECDH-GM", "AES-256", 16),
    ("ECDH-GM", "3DES", 13),
    ("DH-GM", "AES-128", 0),
    ("DH-GM", "AES-128", 2),
    ("ECDH-CAM", "AES-128", 13),
)
CHIP_AUTHENTICATION = ("ECDH", "AES-128")

Progress = Callable[[str], None]


def romanize(name_zh: str) -> tuple[str, str]:
    """(primary, secondary) identifier of a Chinese name: surname, then the given-name syllables."""
    missing = [c for c in name_zh if c not in ROMANIZATION]
    if missing:
        raise ValueError(f"no romanization for {''.join(missing)!r} in {name_zh!r}")
    return ROMANIZATION[name_zh[0]], " ".join(ROMANIZATION[c] for c in name_zh[1:])


def place_of_birth(national_id: str) -> str:
    """The invented place of birth: the area of the national ID's registration letter."""
    return REGISTRATION_AREAS[national_id[0]]


def can_of(card_number: str) -> str:
    """The default CAN: the last 6 digits of the card number (docs/eid.md, after the published design)."""
    return card_number[-6:]


def _digest(identity: Identity, label: str) -> bytes:
    return hashlib.sha256(f"eidemu-eid|{label}|{identity.national_id}".encode()).digest()


def face_jpeg(identity: Identity, width: int = 240, height: int = 320) -> bytes:
    """A synthetic passport-style portrait drawn with Pillow, deterministic per identity.

    Not a photograph of anyone: an oval face, hair, eyes, brows, nose, mouth and shoulders with
    colours and proportions taken from a hash of the national ID number. Baseline JPEG, no metadata.
    """
    from PIL import Image, ImageDraw

    d = _digest(identity, "face")
    background = (200 + d[0] % 40, 205 + d[1] % 40, 215 + d[2] % 40)
    skin = (195 + d[3] % 50, 150 + d[4] % 50, 115 + d[5] % 45)
    shade = 15 + d[6] % 70
    hair = (shade, shade * 4 // 5, shade * 3 // 5)
    shirt = (d[9], d[10], d[11])
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    cx = width // 2
    face_w, face_h = 60 + d[12] % 16, 80 + d[13] % 16
    top = 70 + d[14] % 10
    draw.ellipse((cx - 110, height - 70, cx + 110, height + 120), fill=shirt)  # shoulders
    draw.rectangle((cx - 22, top + 2 * face_h - 20, cx + 22, height - 50), fill=skin)  # neck
    hair_long = identity.sex == "F"
    hair_box = (cx - face_w - 8, top - 22, cx + face_w + 8, top + (2 * face_h if hair_long else face_h))
    draw.ellipse(hair_box, fill=hair)
    draw.ellipse((cx - face_w, top, cx + face_w, top + 2 * face_h), fill=skin)  # face
    draw.chord((cx - face_w, top - 10, cx + face_w, top + face_h), 180, 360, fill=hair)  # fringe
    eye_y = top + face_h - 5 + d[15] % 8
    eye_dx = 24 + d[16] % 6
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse((ex - 10, eye_y - 5, ex + 10, eye_y + 5), fill=(250, 250, 250))
        draw.ellipse((ex - 4, eye_y - 4, ex + 4, eye_y + 4), fill=(40, 30, 25))
        draw.line((ex - 12, eye_y - 14, ex + 12, eye_y - 16 + d[17] % 4), fill=hair, width=4)  # brow
    draw.line((cx, eye_y + 5, cx - 6, eye_y + 35, cx + 4, eye_y + 37), fill=(130, 80, 60), width=2)  # nose
    mouth_y = eye_y + 58 + d[18] % 8
    draw.arc((cx - 20, mouth_y - 10, cx + 20, mouth_y + 8), 20, 160, fill=(150, 60, 60), width=3)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80, optimize=False, progressive=False)
    return out.getvalue()


# --- certificates (9303-12 §7.1) ---------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def csca_crl_url(base_url: str) -> str:
    """Where the Document Signers' CRL distribution point says the CSCA CRL is published."""
    return f"{base_url}crl/{CSCA_NAME}.crl"


def _private_key_usage_period(not_before: dt.datetime, not_after: dt.datetime) -> x509.UnrecognizedExtension:
    """privateKeyUsagePeriod (RFC 5280 §4.2.1 / X.509; 9303-12 §7.1 certificate profile)."""
    value = asn1_x509.PrivateKeyUsagePeriod({"not_before": not_before, "not_after": not_after}).dump()
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.16"), value)


@dataclass(frozen=True)
class SignerSpec:
    """A certificate the CSCA issues: file name, common name, validity and usage period (relative to generation)."""

    name: str
    common_name: str
    valid_from: dt.timedelta
    valid_to: dt.timedelta
    usage_to: dt.timedelta
    role: str  # "document-signer" or "master-list-signer"
    status: str  # "valid", "expired" or "revoked"
    description: str


SIGNER_SPECS: tuple[SignerSpec, ...] = (
    SignerSpec(
        "ds-valid", "Document Signer Taiwan TEST 1", -YEAR, 11 * YEAR, 90 * DAY, "document-signer", "valid",
        "signs every chip's EF.SOD and EF.CardSecurity",
    ),
    SignerSpec(
        "ds-expired", "Document Signer Taiwan TEST expired", -4 * YEAR, -YEAR, -2 * YEAR, "document-signer",
        "expired", "validity ended one year before generation; signs the EF.SOD.ds-expired.bin variants",
    ),
    SignerSpec(
        "ds-revoked", "Document Signer Taiwan TEST revoked", -YEAR, 11 * YEAR, 90 * DAY, "document-signer",
        "revoked", "on the CSCA CRL (keyCompromise); signs the EF.SOD.ds-revoked.bin variants",
    ),
    SignerSpec(
        "ml-signer", "Master List Signer Taiwan TEST", -YEAR, 3 * YEAR, 2 * YEAR, "master-list-signer", "valid",
        "signs the CSCA master list",
    ),
)  # fmt: skip


@dataclass
class IssuedKey:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def build_csca(key: ec.EllipticCurvePrivateKey, reference: dt.datetime) -> x509.Certificate:
    """The self-signed CSCA certificate (9303-12 §7.1): CA pathLen 0, keyCertSign + cRLSign, SKI = AKI."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(CSCA_CN))
        .issuer_name(_name(CSCA_CN))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(reference - 5 * YEAR)
        .not_valid_after(reference + 15 * YEAR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(_private_key_usage_period(reference - 5 * YEAR, reference + 5 * YEAR), critical=False)
        .sign(key, hashes.SHA256())
    )


def build_signer(
    spec: SignerSpec, key: ec.EllipticCurvePrivateKey, csca: IssuedKey, reference: dt.datetime, base_url: str
) -> x509.Certificate:
    """A Document Signer or master list signer certificate under the CSCA (9303-12 §7.1, §9)."""
    not_before, not_after = reference + spec.valid_from, reference + spec.valid_to
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.common_name))
        .issuer_name(csca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(csca.key.public_key()), critical=False)
        .add_extension(_private_key_usage_period(not_before, reference + spec.usage_to), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{base_url}crl/{CSCA_NAME}.crl")], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    )
    if spec.role == "document-signer":
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(asn1.ID_DOCUMENT_TYPE_LIST), asn1.encode_document_type_list(DOCUMENT_TYPES)
            ),
            critical=False,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(asn1.ID_CSCA_MASTER_LIST_SIGNING_KEY)]), critical=True
        )
    return builder.sign(csca.key, hashes.SHA256())


def build_csca_crl(
    csca: IssuedKey, revoked: Sequence[x509.Certificate], this_update: dt.datetime, revocation_time: dt.datetime
) -> x509.CertificateRevocationList:
    """The CSCA CRL (9303-12 §7.1 profile: cRLNumber, AKI), listing ``revoked`` as keyCompromise."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.cert.subject)
        .last_update(this_update)
        .next_update(this_update + YEAR)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(csca.key.public_key()), critical=False)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(revocation_time)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(csca.key, hashes.SHA256())


# --- chips ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChipSpec:
    """One emulated chip: which identity, which Active Authentication key it carries, and
    whether it carries the EAC zones (the private DG3-DG9 and household DG13,
    :mod:`eidemu.emulator.pki.eac_zones`)."""

    name: str
    slug: str
    aa: str  # "rsa-2048", "rsa-1024" or "ecdsa-brainpoolP256r1"
    description: str
    zones: bool = False


def chip_specs(slugs: Sequence[str]) -> list[ChipSpec]:
    """One chip per identity (RSA-2048 AA), plus an ECDSA-AA and an RSA-1024-AA variant of the
    first; the chips of G3 identities carry the EAC zones (:func:`eac_zones.carries_zones`)."""
    specs = [
        ChipSpec(slug, slug, "rsa-2048", "CA ECDH brainpoolP256r1, AA RSA-2048", carries_zones(slug)) for slug in slugs
    ]
    if slugs:
        first = slugs[0]
        zones = carries_zones(first)
        specs.append(
            ChipSpec(f"{first}-aa-ecdsa", first, "ecdsa-brainpoolP256r1", "variant: AA ECDSA brainpoolP256r1", zones)
        )
        specs.append(ChipSpec(f"{first}-aa-rsa1024", first, "rsa-1024", "variant: AA RSA-1024", zones))
    return specs


AaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_aa_key(kind: str) -> AaKey:
    if kind == "rsa-2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "rsa-1024":
        return rsa.generate_private_key(65537, 1024)  # noqa: S505  (the classic passport AA key size, TEST)
    if kind == "ecdsa-brainpoolP256r1":
        return ec.generate_private_key(CURVE())
    raise ValueError(f"unknown AA key kind {kind!r}")


def document_dates(identity: Identity, reference: dt.datetime) -> tuple[dt.date, dt.date]:
    """(date of issue, date of expiry): issued 30-330 days before generation, valid 10 years (invented)."""
    offset = 30 + int.from_bytes(_digest(identity, "issue")[:4], "big") % 301
    issued = reference.date() - dt.timedelta(days=offset)
    try:
        expiry = issued.replace(year=issued.year + DOCUMENT_VALIDITY_YEARS)
    except ValueError:  # 29 February
        expiry = issued.replace(year=issued.year + DOCUMENT_VALIDITY_YEARS, day=28)
    return issued, expiry


def mrz_of(identity: Identity, date_of_expiry: dt.date) -> lds.Td1Mrz:
    """The TD1 MRZ: ``ID``, TWN, document number = card number, national ID in line 2's optional data."""
    primary, secondary = romanize(identity.name_zh)
    return lds.Td1Mrz(
        document_code=DOCUMENT_CODE,
        issuing_state=ISSUING_STATE,
        document_number=identity.card_number,
        date_of_birth=identity.birth_date.strftime("%y%m%d"),
        sex=identity.sex,
        date_of_expiry=date_of_expiry.strftime("%y%m%d"),
        nationality=ISSUING_STATE,
        primary_identifier=primary,
        secondary_identifier=secondary,
        optional_data_2=identity.national_id,
    )


def security_infos_card_access() -> list[Any]:
    """EF.CardAccess: a PACEInfo per parameter set, and ChipAuthenticationInfo for PACE-CAM (9303-11 §9.2)."""
    infos: list[Any] = [lds.pace_info(m, c, p) for m, c, p in PACE_PARAMETER_SETS]
    infos.append(lds.chip_authentication_info(*CHIP_AUTHENTICATION))
    return infos


@dataclass(frozen=True)
class ChipFiles:
    """The files of one chip, by file name in its directory."""

    files: dict[str, bytes]
    mrz: lds.Td1Mrz
    date_of_issue: dt.date
    data_groups: list[int]
    """The numbers of the data groups EF.COM lists and EF.SOD hashes, in order."""


def build_chip(
    identity: Identity,
    ca_key: ec.EllipticCurvePrivateKey,
    aa_key: AaKey,
    signers: dict[str, IssuedKey],
    reference: dt.datetime,
    zones: bool = False,
) -> ChipFiles:
    """All LDS files of one chip (ICAO 9303-10 §4.6-4.7), EF.SOD signed by ``ds-valid``.

    With ``zones``, the EAC zones' data groups DG3-DG9 and DG13
    (:func:`eac_zones.zone_data_groups`) are files of the chip like the others: EF.COM lists
    them and EF.SOD hashes them, as an EAC document lists and hashes its protected data
    groups (9303-10 §4.6.1, §4.6.2); the chip refuses to read them without EAC (6982).
    """
    issued, expiry = document_dates(identity, reference)
    mrz = mrz_of(identity, expiry)
    jpeg = face_jpeg(identity)
    from PIL import Image

    width, height = Image.open(io.BytesIO(jpeg)).size
    gender = {"M": 1, "F": 2}[identity.sex]
    dg14_infos: list[Any] = [lds.pace_info(m, c, p) for m, c, p in PACE_PARAMETER_SETS]
    dg14_infos += [
        lds.chip_authentication_info(*CHIP_AUTHENTICATION),
        lds.chip_authentication_public_key_info(ca_key.public_key()),
    ]
    if isinstance(aa_key, ec.EllipticCurvePrivateKey):
        dg14_infos.append(lds.active_authentication_info(asn1.ECDSA_PLAIN_SHA256))
    face = lds.FaceImage(jpeg, width, height, gender=gender)
    groups = {
        1: lds.Dg1(mrz).encode(),
        2: lds.Dg2((face,)).encode(),
        11: lds.Dg11(
            full_name=identity.name_zh,
            personal_number=identity.national_id,
            place_of_birth=place_of_birth(identity.national_id),
            full_date_of_birth=identity.birth_date.strftime("%Y%m%d"),
        ).encode(),
        12: lds.Dg12(ISSUING_AUTHORITY, issued.strftime("%Y%m%d")).encode(),
        14: lds.SecurityInfoSet(tuple(dg14_infos), lds.DG_TAGS[14]).encode(),
        15: lds.Dg15.from_key(aa_key.public_key()).encode(),
    }
    if zones:
        groups.update(zone_data_groups(identity.to_json(), face.encode()))
    groups = dict(sorted(groups.items()))
    files = {f"DG{n}.bin": data for n, data in groups.items()}
    files["EF.COM.bin"] = lds.EfCom(tuple(lds.DG_TAGS[n] for n in groups)).encode()
    ds = signers["ds-valid"]
    files["EF.SOD.bin"] = lds.Sod.sign(groups, ds.cert, ds.key).encode()
    for variant in ("ds-expired", "ds-revoked"):
        signer = signers[variant]
        files[f"EF.SOD.{variant}.bin"] = lds.Sod.sign(groups, signer.cert, signer.key).encode()
    card_access = security_infos_card_access()
    files["EF.CardAccess.bin"] = lds.SecurityInfoSet(tuple(card_access)).encode()
    files["EF.CardSecurity.bin"] = lds.build_card_security(
        [*card_access, lds.chip_authentication_public_key_info(ca_key.public_key())], ds.cert, ds.key
    )
    files["face.jpg"] = jpeg
    return ChipFiles(files, mrz, issued, list(groups))


EID_README = """\
TEST-ONLY KEYS AND DATA. Everything under this directory was generated by `eidemu pki generate`
for the eidemu emulated eID chip: the country signing CA "CSCA Taiwan TEST", its Document Signers,
the master list, and per synthetic identity the chip's data groups and its Chip Authentication
and Active Authentication private keys (*.key.pem). They belong to no real authority and no real
person, they are public, and they must never be trusted outside tests. See docs/eid.md.
"""


def generate_eid(
    out: Path,
    identities: Sequence[tuple[str, Identity]],
    base_url: str,
    reference: dt.datetime,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write ``<out>/eid/`` (replacing it) and return its manifest (also ``eid/manifest.json``)."""

    def step(text: str) -> None:
        if progress:
            progress(text)

    step("eID: CSCA Taiwan TEST and signers")
    csca_key = ec.generate_private_key(CURVE())
    csca = IssuedKey(CSCA_NAME, csca_key, build_csca(csca_key, reference))
    signers: dict[str, IssuedKey] = {}
    for spec in SIGNER_SPECS:
        key = ec.generate_private_key(CURVE())
        signers[spec.name] = IssuedKey(spec.name, key, build_signer(spec, key, csca, reference, base_url))
    revoked = [signers[s.name].cert for s in SIGNER_SPECS if s.status == "revoked"]
    crl = build_csca_crl(csca, revoked, reference, reference - 7 * DAY)
    ml_signer = signers["ml-signer"]
    master_list = lds.build_master_list([csca.cert], ml_signer.cert, ml_signer.key, [csca.cert])

    root = out / EID_DIR
    if root.exists():
        shutil.rmtree(root)
    (root / "csca").mkdir(parents=True)
    (root / "README.txt").write_text(EID_README, encoding="utf-8")
    (root / "csca" / f"{CSCA_NAME}.cert.pem").write_bytes(cert_pem(csca.cert))
    (root / "csca" / f"{CSCA_NAME}.key.pem").write_bytes(key_pem(csca.key))
    (root / "csca" / f"{CSCA_NAME}.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    (root / "csca" / "masterlist.der").write_bytes(master_list)
    for name, issued in signers.items():
        (root / "csca" / f"{name}.cert.pem").write_bytes(cert_pem(issued.cert))
        (root / "csca" / f"{name}.key.pem").write_bytes(key_pem(issued.key))

    manifest: dict[str, Any] = {
        "format": EID_MANIFEST_FORMAT,
        "test_only": True,
        "generated": iso_time(reference),
        "csca": {
            "name": CSCA_NAME,
            "cert": f"csca/{CSCA_NAME}.cert.pem",
            "key": f"csca/{CSCA_NAME}.key.pem",
            "crl": f"csca/{CSCA_NAME}.crl",
            "crl_url": csca_crl_url(base_url),
            "subject": csca.cert.subject.rfc4514_string(),
            "master_list": "csca/masterlist.der",
            "algorithm": "ECDSA brainpoolP256r1 SHA-256",
        },
        "signers": [
            {
                "name": spec.name,
                "role": spec.role,
                "status": spec.status,
                "cert": f"csca/{spec.name}.cert.pem",
                "key": f"csca/{spec.name}.key.pem",
                "subject": signers[spec.name].cert.subject.rfc4514_string(),
                "not_before": iso_time(signers[spec.name].cert.not_valid_before_utc),
                "not_after": iso_time(signers[spec.name].cert.not_valid_after_utc),
                "description": spec.description,
            }
            for spec in SIGNER_SPECS
        ],
        "pace": [{"mapping": m, "cipher": c, "parameter_id": p} for m, c, p in PACE_PARAMETER_SETS],
        "chips": [],
    }
    by_slug = dict(identities)
    for chip_spec in chip_specs([slug for slug, _ in identities]):
        step(f"eID chip {chip_spec.name}")
        identity = by_slug[chip_spec.slug]
        ca_key = ec.generate_private_key(CURVE())
        aa_key = new_aa_key(chip_spec.aa)
        chip = build_chip(identity, ca_key, aa_key, signers, reference, chip_spec.zones)
        directory = root / "chips" / chip_spec.name
        directory.mkdir(parents=True)
        for name, data in chip.files.items():
            (directory / name).write_bytes(data)
        (directory / "chip-ca.key.pem").write_bytes(key_pem(ca_key))
        (directory / "aa.key.pem").write_bytes(key_pem(aa_key))
        (directory / "README.txt").write_text(EID_README, encoding="utf-8")
        record = {
            "name": chip_spec.name,
            "slug": chip_spec.slug,
            "path": f"chips/{chip_spec.name}",
            "description": chip_spec.description,
            "card_number": identity.card_number,
            "can": can_of(identity.card_number),
            "mrz": list(chip.mrz.lines()),
            "mrz_information": chip.mrz.mrz_information,
            "date_of_issue": chip.date_of_issue.isoformat(),
            "data_groups": chip.data_groups,
            "chip_authentication": {"key": "chip-ca.key.pem", "agreement": "ECDH", "curve": "brainpoolP256r1"},
            "active_authentication": {"key": "aa.key.pem", "algorithm": chip_spec.aa},
        }
        (directory / "chip.json").write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", "utf-8")
        manifest["chips"].append(record)
    (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return manifest


def eid_step_count(identity_count: int) -> int:
    """Progress steps :func:`generate_eid` reports for ``identity_count`` identities."""
    return 1 + len(chip_specs(["x"] * identity_count)) if identity_count else 1


def regenerate_eid(out: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild only ``<out>/eid`` from an existing test PKI, leaving its other files untouched.

    Identities, base URL and the reference time come from ``<out>/manifest.json``, so the
    document dates stay those of the PKI's generation.
    """
    manifest_path = out / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{out}: no manifest.json; run `eidemu pki generate --out {out}` first") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{manifest_path}: {exc}") from None
    reference = dt.datetime.fromisoformat(manifest["generated"].replace("Z", "+00:00"))
    identities = []
    for entry in manifest["identities"]:
        data = json.loads((out / entry["path"] / "identity.json").read_text("utf-8"))
        identities.append((entry["slug"], Identity.from_json(data)))
    return generate_eid(out, identities, manifest["base_url"], reference, progress)
