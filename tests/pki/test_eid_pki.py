"""The eID chip's TEST country PKI and LDS data (fixtures/pki/eid), checked with independent decoders.

openssl (cms -verify, asn1parse, verify, crl) and Pillow judge the committed files; the check
digits and the TLV walk here are written again in this file rather than taken from
eidemu.emulator.icao, so that an encoder bug cannot hide behind its own decoder.
"""

from __future__ import annotations

import datetime as dt
import filecmp
import hashlib
import io
import json
import re
import shutil
import string
import struct
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from PIL import Image

from eidemu.cli import main
from eidemu.emulator.pki import eid
from eidemu.emulator.pki.identities import Identity
from eidemu.emulator.pki.store import EidPki, PkiLayoutError, TestPki
from eidemu.emulator.profile import load_profile, parse_document

from .conftest import COMMITTED_PKI

EID = COMMITTED_PKI / "eid"
PROFILES = COMMITTED_PKI.parent / "profiles"
MANIFEST = json.loads((EID / "manifest.json").read_text("utf-8"))
CHIPS = [c["name"] for c in MANIFEST["chips"]]
CSCA = EID / "csca" / "csca-tw.cert.pem"
DER, SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
ID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
ID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
ID_SECURITY_OBJECT = "0.4.0.127.0.7.3.2.1"


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def strip_template(data: bytes, tag: int) -> bytes:
    """The value of a one-byte-tag BER-TLV (independent of eidemu's TLV codec)."""
    assert data[0] == tag, f"tag {data[0]:02X}, expected {tag:02X}"
    first = data[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        length, start = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    assert start + length == len(data), "length does not fill the file"
    return data[start:]


def check_digit(value: str) -> str:
    """ICAO 9303-3 §4.9, written independently: weights 7 3 1 repeating, ``<`` = 0, A = 10 ... Z = 35."""
    alphabet = string.digits + string.ascii_uppercase
    weights = [7, 3, 1] * 20
    return str(sum((0 if c == "<" else alphabet.index(c)) * w for c, w in zip(value, weights)) % 10)


def chip_dir(name: str) -> Path:
    return EID / "chips" / name


def identity_of(chip: str) -> Identity:
    slug = json.loads((chip_dir(chip) / "chip.json").read_text("utf-8"))["slug"]
    return Identity.from_json(json.loads((COMMITTED_PKI / "identities" / slug / "identity.json").read_text("utf-8")))


def cms_verify(der: bytes, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """``openssl cms -verify`` against the CSCA; (result, the verified eContent)."""
    (tmp_path / "in.der").write_bytes(der)
    out = tmp_path / "content.der"
    result = openssl(
        "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "in.der"), "-CAfile", str(CSCA),
        "-purpose", "any", "-out", str(out), *extra,
    )  # fmt: skip
    return result, out.read_bytes() if result.returncode == 0 else b""


def econtent_type(der: bytes, tmp_path: Path) -> str:
    (tmp_path / "ci.der").write_bytes(der)
    lines = openssl("asn1parse", "-inform", "DER", "-in", str(tmp_path / "ci.der")).stdout.splitlines()
    objects = [line.split(":")[-1].strip() for line in lines if "prim: OBJECT" in line]
    assert objects[0] == "pkcs7-signedData"
    return objects[2]  # after pkcs7-signedData and the digest algorithm


def load_key(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


# The EAC zones (private DG3-DG9, household DG13) on the chips of G3 identities (docs/eid.md).
ZONE_DGS = [3, 4, 5, 6, 7, 8, 9, 13]


def expected_data_groups(chip: str) -> list[int]:
    return sorted([1, 2, 11, 12, 14, 15] + (ZONE_DGS if chip.startswith("g3-") else []))


def sod_hashes(sod: bytes) -> dict[int, bytes]:
    """DataGroupHash values of an LDSSecurityObject, decoded with asn1crypto's generic types."""
    security_object = core.Sequence.load(sod)
    hashes = {}
    for entry in core.SequenceOf.load(security_object[2].dump(), spec=core.Sequence):
        hashes[core.Integer.load(entry[0].dump()).native] = core.OctetString.load(entry[1].dump()).native
    return hashes


@pytest.mark.parametrize("chip", CHIPS)
def test_sod_verifies_with_openssl_and_hashes_match(chip: str, tmp_path: Path) -> None:
    sod = strip_template((chip_dir(chip) / "EF.SOD.bin").read_bytes(), 0x77)
    assert econtent_type(sod, tmp_path) == ID_LDS_SECURITY_OBJECT
    result, content = cms_verify(sod, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr
    security_object = core.Sequence.load(content)
    assert security_object[0].native == 0  # version v0
    algorithm = core.Sequence.load(security_object[1].dump())
    assert core.ObjectIdentifier.load(algorithm[0].dump()).dotted == "2.16.840.1.101.3.4.2.1"  # SHA-256
    hashes = sod_hashes(content)
    assert sorted(hashes) == expected_data_groups(chip)
    for number, digest in hashes.items():
        assert hashlib.sha256((chip_dir(chip) / f"DG{number}.bin").read_bytes()).digest() == digest, number
    record = json.loads((chip_dir(chip) / "chip.json").read_text("utf-8"))
    assert record["data_groups"] == expected_data_groups(chip)


@pytest.mark.parametrize("chip", CHIPS)
def test_ef_com_lists_every_data_group_the_sod_hashes(chip: str) -> None:
    """EF.COM's tag list 5C (9303-10 §4.6.1), walked here byte by byte: the EAC-protected
    zones are listed like the others (DG3 63, DG4 76, DG5 65 ... DG13 6D)."""
    value = strip_template((chip_dir(chip) / "EF.COM.bin").read_bytes(), 0x60)
    at = value.index(b"\x5c")
    tags = value[at + 2 : at + 2 + value[at + 1]]
    number_of = {0x61: 1, 0x75: 2, 0x63: 3, 0x76: 4, 0x65: 5, 0x66: 6, 0x67: 7, 0x68: 8, 0x69: 9,
                 0x6B: 11, 0x6C: 12, 0x6D: 13, 0x6E: 14, 0x6F: 15}  # fmt: skip
    assert [number_of[t] for t in tags] == expected_data_groups(chip)


@pytest.mark.parametrize("chip", [c for c in CHIPS if c.startswith("g3-")])
@pytest.mark.parametrize("variant", ["EF.SOD.ds-expired.bin", "EF.SOD.ds-revoked.bin"])
def test_sod_variants_hash_the_zones_too(chip: str, variant: str, tmp_path: Path) -> None:
    sod = strip_template((chip_dir(chip) / variant).read_bytes(), 0x77)
    result, content = cms_verify(sod, tmp_path, "-noverify")
    assert result.returncode == 0, result.stderr
    hashes = sod_hashes(content)
    assert sorted(hashes) == expected_data_groups(chip)
    for number in ZONE_DGS:
        assert hashlib.sha256((chip_dir(chip) / f"DG{number}.bin").read_bytes()).digest() == hashes[number]


@pytest.mark.parametrize("chip", [c for c in CHIPS if c.startswith("g3-")])
def test_zone_data_groups_start_with_their_own_tags(chip: str) -> None:
    """Each zone DG is one TLV with its ICAO tag (9303-10 §4.6); DG8 is ``68 { 80 <the facial
    record of DG2> }`` (the invented layout of docs/eid.md), not a copy of DG2 (75)."""
    tags = {3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68, 9: 0x69, 13: 0x6D}
    for number, tag in tags.items():
        data = (chip_dir(chip) / f"DG{number}.bin").read_bytes()
        value = strip_template(data, tag)
        assert value[:1] == b"\x80", number
    dg8 = strip_template((chip_dir(chip) / "DG8.bin").read_bytes(), 0x68)
    assert dg8[:2] == b"\x80\x82"
    record = dg8[4 : 4 + int.from_bytes(dg8[2:4], "big")]
    assert len(dg8) == 4 + len(record)
    dg2 = (chip_dir(chip) / "DG2.bin").read_bytes()
    assert record[:8] == b"FAC\x00010\x00" and dg2.endswith(record)
    dg7 = strip_template((chip_dir(chip) / "DG7.bin").read_bytes(), 0x67)
    assert dg7[2:].decode("utf-8") == {"M": "男", "F": "女"}[identity_of(chip).sex]


def test_sod_of_the_expired_document_signer_fails_as_expired(tmp_path: Path) -> None:
    sod = strip_template((chip_dir(CHIPS[0]) / "EF.SOD.ds-expired.bin").read_bytes(), 0x77)
    result, _ = cms_verify(sod, tmp_path)
    assert result.returncode != 0
    assert "certificate has expired" in result.stderr
    ds = x509.load_pem_x509_certificate((EID / "csca" / "ds-expired.cert.pem").read_bytes())
    assert ds.not_valid_after_utc < dt.datetime.now(dt.UTC)
    inside = int((ds.not_valid_before_utc + dt.timedelta(days=30)).timestamp())
    assert cms_verify(sod, tmp_path, "-attime", str(inside))[0].returncode == 0


def test_revoked_document_signer_is_on_the_crl(tmp_path: Path) -> None:
    crl_pem = tmp_path / "crl.pem"
    converted = openssl("crl", "-inform", "DER", "-in", str(EID / "csca" / "csca-tw.crl"), "-out", str(crl_pem))
    assert converted.returncode == 0, converted.stderr
    verify = openssl("crl", "-in", str(crl_pem), "-CAfile", str(CSCA), "-noout")
    assert "verify OK" in verify.stderr + verify.stdout
    for name, expected in (("ds-revoked", "certificate revoked"), ("ds-valid", ": OK")):
        cert = EID / "csca" / f"{name}.cert.pem"
        result = openssl("verify", "-crl_check", "-CRLfile", str(crl_pem), "-CAfile", str(CSCA), str(cert))
        assert expected in result.stdout + result.stderr, (name, result.stdout, result.stderr)
    # The variant SOD is signed by that revoked signer and is otherwise sound.
    sod = strip_template((chip_dir(CHIPS[0]) / "EF.SOD.ds-revoked.bin").read_bytes(), 0x77)
    signer = x509.load_pem_x509_certificate((EID / "csca" / "ds-revoked.cert.pem").read_bytes())
    assert signer.public_bytes(serialization.Encoding.DER) in sod
    assert cms_verify(sod, tmp_path)[0].returncode == 0


def test_master_list_verifies_and_lists_the_csca(tmp_path: Path) -> None:
    master_list = (EID / "csca" / "masterlist.der").read_bytes()
    assert econtent_type(master_list, tmp_path) == ID_CSCA_MASTER_LIST
    result, content = cms_verify(master_list, tmp_path)
    assert result.returncode == 0, result.stderr
    csca_der = x509.load_pem_x509_certificate(CSCA.read_bytes()).public_bytes(serialization.Encoding.DER)
    parsed = core.Sequence.load(content)
    assert parsed[0].native == 0
    assert [c.dump() for c in core.SetOf.load(parsed[1].dump(), spec=core.Any)] == [csca_der]


@pytest.mark.parametrize("chip", CHIPS)
def test_card_security_verifies_and_carries_the_chip_key(chip: str, tmp_path: Path) -> None:
    card_security = (chip_dir(chip) / "EF.CardSecurity.bin").read_bytes()
    assert econtent_type(card_security, tmp_path) == ID_SECURITY_OBJECT
    result, content = cms_verify(card_security, tmp_path)
    assert result.returncode == 0, result.stderr
    key = load_key(chip_dir(chip) / "chip-ca.key.pem")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_bytes(DER, SPKI) in content


# Expected openssl asn1parse lines (depth, kind, class tag) per file: the ICAO tags (9303-10 §4.6).
ASN1PARSE_TAGS = {
    "EF.COM.bin": [(0, "cons", "appl [ 0 ]"), (1, "prim", "appl [ 1 ]"), (1, "prim", "appl [ 54 ]"),
                   (1, "prim", "appl [ 28 ]")],
    "DG1.bin": [(0, "cons", "appl [ 1 ]"), (1, "prim", "appl [ 31 ]")],
    "DG2.bin": [(0, "cons", "appl [ 21 ]"), (1, "cons", "appl [ 97 ]"), (2, "prim", "INTEGER"),
                (2, "cons", "appl [ 96 ]"), (3, "cons", "cont [ 1 ]"), (3, "prim", "appl [ 46 ]")],
    "DG11.bin": [(0, "cons", "appl [ 11 ]"), (1, "prim", "appl [ 28 ]"), (1, "prim", "appl [ 14 ]"),
                 (1, "prim", "appl [ 16 ]"), (1, "prim", "appl [ 17 ]"), (1, "prim", "appl [ 43 ]")],
    "DG12.bin": [(0, "cons", "appl [ 12 ]"), (1, "prim", "appl [ 28 ]"), (1, "prim", "appl [ 25 ]"),
                 (1, "prim", "appl [ 38 ]")],
    "DG14.bin": [(0, "cons", "appl [ 14 ]"), (1, "cons", "SET")],
    "DG15.bin": [(0, "cons", "appl [ 15 ]"), (1, "cons", "SEQUENCE")],
    "EF.SOD.bin": [(0, "cons", "appl [ 23 ]"), (1, "cons", "SEQUENCE"), (2, "prim", "OBJECT")],
    "EF.CardAccess.bin": [(0, "cons", "SET"), (1, "cons", "SEQUENCE"), (2, "prim", "OBJECT")],
}  # fmt: skip


ASN1PARSE_LINE = re.compile(r"\s*\d+:d=(\d+)\s+hl=\d+\s+l=\s*\d+\s+(prim|cons):\s+([^:]*?)\s*(?::.*)?$")


def asn1parse(path: Path) -> list[tuple[int, str, str]]:
    """(depth, prim/cons, tag as openssl names it) for every line of ``openssl asn1parse``."""
    result = openssl("asn1parse", "-inform", "DER", "-in", str(path))
    assert result.returncode == 0, result.stderr
    rows = []
    for line in result.stdout.splitlines():
        match = ASN1PARSE_LINE.match(line)
        assert match, line
        rows.append((int(match[1]), match[2], match[3]))
    return rows


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("name", sorted(ASN1PARSE_TAGS))
def test_openssl_asn1parse_shows_the_icao_tags(chip: str, name: str) -> None:
    rows = asn1parse(chip_dir(chip) / name)
    for expected in ASN1PARSE_TAGS[name]:
        assert expected in rows, (expected, rows[:12])
    assert rows[0] == ASN1PARSE_TAGS[name][0]


@pytest.mark.parametrize("chip", CHIPS)
def test_dg1_mrz_check_digits_and_fields(chip: str) -> None:
    identity = identity_of(chip)
    value = strip_template((chip_dir(chip) / "DG1.bin").read_bytes(), 0x61)
    assert value[:3] == b"\x5f\x1f\x5a"
    mrz = value[3:].decode("ascii")
    line1, line2, line3 = mrz[:30], mrz[30:60], mrz[60:]
    assert line1[:5] == "IDTWN"
    # The 16-character card number: 9 characters, "<", then the rest, its check digit (9303-5 §4.2).
    number = identity.card_number
    assert line1[5:14] == number[:9] and line1[14] == "<"
    assert line1[15:30].startswith(number[9:] + check_digit(number) + "<")
    assert line2[0:6] == identity.birth_date.strftime("%y%m%d") and line2[6] == check_digit(line2[0:6])
    assert line2[7] == identity.sex
    assert line2[14] == check_digit(line2[8:14])
    assert line2[15:18] == "TWN"
    assert line2[18:29] == identity.national_id + "<"
    assert line2[29] == check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    surname, given = eid.romanize(identity.name_zh)
    assert line3.startswith(f"{surname}<<{given.replace(' ', '<')}<")
    assert len(line3) == 30


@pytest.mark.parametrize("chip", CHIPS)
def test_dg11_dg12_chinese_text_intact(chip: str) -> None:
    identity = identity_of(chip)
    dg11 = (chip_dir(chip) / "DG11.bin").read_bytes()
    name = identity.name_zh.encode("utf-8")
    assert b"\x5f\x0e" + bytes((len(name),)) + name in dg11
    assert b"\x5f\x10\x0a" + identity.national_id.encode() in dg11
    assert b"\x5f\x2b\x08" + identity.birth_date.strftime("%Y%m%d").encode() in dg11
    place = eid.REGISTRATION_AREAS[identity.national_id[0]].encode("utf-8")
    assert b"\x5f\x11" + bytes((len(place),)) + place in dg11
    dg12 = (chip_dir(chip) / "DG12.bin").read_bytes()
    assert "內政部 TEST".encode() in dg12


@pytest.mark.parametrize("chip", CHIPS)
def test_dg2_face_decodes_with_pillow(chip: str) -> None:
    dg2 = (chip_dir(chip) / "DG2.bin").read_bytes()
    start = dg2.index(b"FAC\x00")
    assert dg2[start - 5 : start - 2] == b"\x5f\x2e\x82"  # biometric data block, two length bytes
    record = dg2[start:]
    assert record[4:8] == b"010\x00"
    record_length, faces = struct.unpack(">IH", record[8:14])
    assert record_length == len(record) and faces == 1
    image_info = record[34:46]
    image_type, data_type, width, height = struct.unpack(">BBHH", image_info[:6])
    assert (image_type, data_type) == (1, 0)  # full frontal, JPEG
    jpeg = record[46:]
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (width, height) == (240, 320)
    assert record[20] == {"M": 1, "F": 2}[identity_of(chip).sex]
    assert jpeg == (chip_dir(chip) / "face.jpg").read_bytes()


def test_certificate_profile() -> None:
    csca = x509.load_pem_x509_certificate(CSCA.read_bytes())
    assert csca.subject == csca.issuer
    assert csca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CSCA Taiwan TEST"
    assert csca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "TW"
    assert isinstance(csca.public_key(), ec.EllipticCurvePublicKey)
    assert csca.public_key().curve.name == "brainpoolP256r1"  # type: ignore[union-attr]
    basic = csca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = csca.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert csca.extensions.get_extension_for_oid(x509.ObjectIdentifier("2.5.29.16"))
    for signer in MANIFEST["signers"]:
        cert = x509.load_pem_x509_certificate((EID / signer["cert"]).read_bytes())
        assert "TEST" in cert.subject.rfc4514_string()
        assert cert.issuer == csca.subject
        cert.verify_directly_issued_by(csca)
        usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        if signer["role"] == "document-signer":
            doc_types = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("2.23.136.1.1.6.2")).value
            # DocumentTypeListSyntax { version 0, docTypeList { "ID" } } (9303-12 §7.1)
            assert doc_types.value == bytes.fromhex("30 09 020100 3104 1302 4944")
        else:
            eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
            assert list(eku.value) == [x509.ObjectIdentifier("2.23.136.1.1.3")]
            assert ExtendedKeyUsageOID.SERVER_AUTH not in eku.value


def test_openssl_verify_chain(tmp_path: Path) -> None:
    for name, expected in (("ds-valid", "OK"), ("ds-expired", "certificate has expired"), ("ml-signer", "OK")):
        result = openssl("verify", "-CAfile", str(CSCA), "-purpose", "any", str(EID / "csca" / f"{name}.cert.pem"))
        assert expected in result.stdout + result.stderr, (name, result.stdout, result.stderr)


@pytest.mark.parametrize("chip", CHIPS)
def test_chip_keys_match_published_public_keys(chip: str) -> None:
    record = json.loads((chip_dir(chip) / "chip.json").read_text("utf-8"))
    aa = load_key(chip_dir(chip) / "aa.key.pem")
    dg15 = strip_template((chip_dir(chip) / "DG15.bin").read_bytes(), 0x6F)
    assert aa.public_key().public_bytes(DER, SPKI) == dg15
    expected = {"rsa-2048": (rsa.RSAPrivateKey, 2048), "rsa-1024": (rsa.RSAPrivateKey, 1024)}
    if record["active_authentication"]["algorithm"] in expected:
        cls, bits = expected[record["active_authentication"]["algorithm"]]
        assert isinstance(aa, cls) and aa.key_size == bits
    else:
        assert isinstance(aa, ec.EllipticCurvePrivateKey)
        # ActiveAuthenticationInfo with ecdsa-plain-SHA256 in DG14 (9303-11 §9.2)
        assert bytes.fromhex("0606678108010105") in (chip_dir(chip) / "DG14.bin").read_bytes()
        assert bytes.fromhex("060a04007f00070101040103") in (chip_dir(chip) / "DG14.bin").read_bytes()
    ca = load_key(chip_dir(chip) / "chip-ca.key.pem")
    point = ca.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert point in (chip_dir(chip) / "DG14.bin").read_bytes()
    assert record["can"] == record["card_number"][-6:]


def test_card_access_announces_pace_and_ca() -> None:
    card_access = (chip_dir(CHIPS[0]) / "EF.CardAccess.bin").read_bytes()
    # PACEInfo id-PACE-ECDH-GM-AES-CBC-CMAC-128, version 2, parameterId 13 (9303-11 §9.2, §9.5)
    assert bytes.fromhex("3012060a04007f0007020204020202010202010d") in card_access
    # PACE-CAM AES-128 on brainpoolP256r1
    assert bytes.fromhex("3012060a04007f0007020204060202010202010d") in card_access
    # ChipAuthenticationInfo id-CA-ECDH-AES-CBC-CMAC-128 version 1
    assert bytes.fromhex("300f060a04007f00070202030202020101") in card_access


def test_every_identity_has_a_chip_and_the_variants_exist() -> None:
    slugs = [i["slug"] for i in json.loads((COMMITTED_PKI / "manifest.json").read_text("utf-8"))["identities"]]
    assert CHIPS == [*slugs, f"{slugs[0]}-aa-ecdsa", f"{slugs[0]}-aa-rsa1024"]
    for chip in CHIPS:
        assert "TEST-ONLY" in (chip_dir(chip) / "README.txt").read_text("utf-8")
    assert "TEST-ONLY" in (EID / "README.txt").read_text("utf-8")


def test_every_name_character_has_a_romanization() -> None:
    from eidemu.emulator.pki.identities import GIVEN_CHARS, SURNAMES

    assert set(SURNAMES + GIVEN_CHARS) <= set(eid.ROMANIZATION)
    assert eid.romanize("陳志明") == ("CHEN", "CHIH MING")
    with pytest.raises(ValueError, match="no romanization"):
        eid.romanize("陳龍")


def test_regenerating_only_eid_keeps_moica_bytes_and_data_deterministic(tmp_path: Path) -> None:
    copy = tmp_path / "pki"
    shutil.copytree(COMMITTED_PKI, copy)
    eid.regenerate_eid(copy)
    for path in COMMITTED_PKI.rglob("*"):
        relative = path.relative_to(COMMITTED_PKI)
        if path.is_file() and relative.parts[0] != "eid":
            assert filecmp.cmp(path, copy / relative, shallow=False), relative
    for chip in CHIPS:
        for name in ("EF.COM.bin", "DG1.bin", "DG2.bin", "DG11.bin", "DG12.bin", "EF.CardAccess.bin", "face.jpg"):
            assert (chip_dir(chip) / name).read_bytes() == (copy / "eid" / "chips" / chip / name).read_bytes(), name
        assert (chip_dir(chip) / "DG14.bin").read_bytes() != (copy / "eid" / "chips" / chip / "DG14.bin").read_bytes()


def test_cli_eid_only_without_a_pki_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "generate", "--out", str(tmp_path), "--eid-only"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"eidemu: error: {tmp_path}: no manifest.json; --eid-only needs an existing test PKI"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("chip", CHIPS)
def test_profile_names_the_chip_files(chip: str) -> None:
    path = PROFILES / f"eid-{chip}.yaml"
    document = parse_document(path.read_text("utf-8"), str(path))
    assert document["test_only"] is True
    application = document["applications"][0]
    with_zones = chip.startswith("g3-")  # EAC zones on the chips of G3 identities (emulator/pki/eac_zones.py)
    assert application["type"] == ("eid" if with_zones else "emrtd")
    options = application["options"]
    assert set(options) == {
        "can", "mrz", "mrz_information", "bac", "secure_messaging_ref", "pace", "chip_authentication",
        "active_authentication", *(["eac"] if with_zones else []),
    }  # fmt: skip
    record = json.loads((chip_dir(chip) / "chip.json").read_text("utf-8"))
    assert options["can"] == record["can"] and options["mrz"] == record["mrz"]
    for key in (options["chip_authentication"]["key"], options["active_authentication"]["key"]):
        assert (path.parent / key).resolve().is_file()
    emrtd = document["files"][2]
    assert [(f["fid"], f["sfi"]) for f in emrtd["children"]] == [
        ("011E", "1E"), ("0101", "01"), ("0102", "02"), ("010B", "0B"), ("010C", "0C"), ("010E", "0E"),
        ("010F", "0F"), ("011D", "1D"),
        # the EAC zones: DG3-DG9 private, DG13 household
        *([("0103", "03"), ("0104", "04"), ("0105", "05"), ("0106", "06"), ("0107", "07"), ("0108", "08"),
           ("0109", "09"), ("010D", "0D")] if with_zones else []),
    ]  # fmt: skip
    for entry in [*document["files"][:2], *emrtd["children"]]:
        content = entry["content"]
        assert isinstance(content, str) or (path.parent / content["file"]).resolve().is_file()


@pytest.mark.parametrize("chip", CHIPS)
def test_profile_loads_and_builds_the_emrtd_applet(chip: str) -> None:
    card = load_profile(PROFILES / f"eid-{chip}.yaml").build()
    app = card.applications[bytes.fromhex("A0000002471001")]
    assert app.type_name == ("eid" if chip.startswith("g3-") else "emrtd") and card.default_app is app


def test_store_loads_the_eid_pki(tmp_path: Path) -> None:
    loaded = EidPki.load(COMMITTED_PKI)
    assert list(loaded.chips) == CHIPS
    assert loaded.csca == x509.load_pem_x509_certificate(CSCA.read_bytes())
    assert set(loaded.signers) == {"ds-valid", "ds-expired", "ds-revoked", "ml-signer"}
    chip = loaded.chips[CHIPS[0]]
    assert chip.can == chip.record["card_number"][-6:] and len(chip.mrz) == 3
    assert chip.file("DG1.bin")[:1] == b"\x61"
    assert loaded.master_list[:1] == b"\x30" and loaded.crl[:1] == b"\x30"
    with pytest.raises(PkiLayoutError, match=r"no manifest\.json"):
        EidPki.load(tmp_path)


def test_a_fresh_generation_verifies_too(live_pki: TestPki, tmp_path: Path) -> None:
    """The session's freshly generated PKI (seed 7, other keys): its SODs verify against its own CSCA only."""
    fresh = EidPki.load(live_pki.root)
    chip = fresh.chips["g2-valid-1"]
    sod = strip_template(chip.file("EF.SOD.bin"), 0x77)
    (tmp_path / "sod.der").write_bytes(sod)
    own_csca = fresh.root / fresh.manifest["csca"]["cert"]
    for cafile, ok in ((own_csca, True), (CSCA, False)):
        result = openssl(
            "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sod.der"), "-CAfile", str(cafile),
            "-purpose", "any", "-out", str(tmp_path / "lso.der"),
        )  # fmt: skip
        assert (result.returncode == 0) is ok, result.stderr
    assert chip.record["mrz"] != json.loads((chip_dir("g2-valid-1") / "chip.json").read_text("utf-8"))["mrz"]
