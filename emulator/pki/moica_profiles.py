"""Build generation-1 MOICA card profiles from the test PKI.

``python3 -m eidemu.emulator.pki.moica_profiles [--pki fixtures/pki] [--out fixtures/profiles]
[SLUG ...]`` writes ``moica-<slug>.yaml`` for each identity under ``<pki>/identities`` and
the one derived binary a profile cannot express inline, the certificate EF 08F2
(``moica-data/<slug>/08F2.bin``). Everything else is in the YAML: the file tree of the
card's public description (docs/moica-card.md, "What is emulated"), the PKCS#15
directories as hex, the public-key records, the PIN, the issuer unblock key, and the private keys by reference
to the PKI's PEM files. Re-run it whenever the PKI is regenerated: a profile whose records
no longer match its keys is refused at load time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from eidemu.fixtures import fixture_path

from ..applets.moica import ATR_GEN1, DEFAULT_TRANSPORT_KEY, public_key_records
from ..formats import pkcs15
from .store import TestPki

FIXTURES = fixture_path()

# Offsets of the four certificates in EF 08F2 (reference, "Files").
CERT_SLOTS = (("root", 0x0000), ("issuing", 0x0700), ("enc", 0x0E00), ("sign", 0x1500))
CERT_EF_SIZE = 0x1C00
CERT_EF_PATH = bytes.fromhex("3F00503008F2")
KEY_DF_PATH = bytes.fromhex("3F005030")
PUBLIC_KEY_EF_PATH = bytes.fromhex("3F0050300810")

# Key references (reference: "Key references seen: 01, 05, 11"). Which of them is the
# signature key is not public; the emulator's choice, changeable per profile.
KEYX_REF, SIGN_REF = 0x01, 0x05
PIN_REF = 0x01
AUTH_ID = b"\x01"
ISSUER_KEY_REF = 0x0A
# TEST issuer key for the unblock exchange: ASCII "MOICA-ISSUER-TST".
DEFAULT_ISSUER_KEY = b"MOICA-ISSUER-TST"
VERSION_STRING = b"CHT V32N EIDEMU-TEST"  # 20 bytes; "CHT V32N" is what clients check
PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")  # PKCS#15 v1.1 §5.4.1


@dataclass(frozen=True)
class Identity:
    """One test identity of the PKI with its certificates, keys and chain."""

    slug: str
    directory: Path
    info: dict[str, object]
    sign_cert: x509.Certificate
    enc_cert: x509.Certificate
    issuing_ca: x509.Certificate
    root_ca: x509.Certificate

    @property
    def card_number(self) -> str:
        return str(self.info["card_number"])


def _asn1(cert: Any) -> x509.Certificate:
    """asn1crypto's view of a certificate of the PKI store (the encoders here need it)."""
    return x509.Certificate.load(cert.public_bytes(Encoding.DER))


def load_identity(pki_dir: Path, slug: str) -> Identity:
    """``<pki>/identities/<slug>`` with its chain, as the PKI store reads them (:class:`TestPki`)."""
    pki = TestPki.load(pki_dir)
    try:
        record = pki.identities[slug]
    except KeyError:
        raise ValueError(f"{slug}: no such identity in {pki_dir}") from None
    chain = pki.chain_certificates(slug)
    info = json.loads((record.path / "identity.json").read_text(encoding="utf-8"))
    return Identity(
        slug, record.path, info, _asn1(record.sign_cert), _asn1(record.enc_cert), _asn1(chain[0]), _asn1(chain[-1])
    )


@dataclass(frozen=True)
class CardImage:
    """The derived content of one card's files."""

    certificates: bytes
    prkdf: bytes
    pukdf: bytes
    cdf: bytes
    dodf: bytes
    aodf: bytes
    odf: bytes
    token_info: bytes
    ef_dir: bytes
    public_records: list[bytes]


def _padded(data: bytes) -> bytes:
    """Directory content padded with 00 to a whole number of 256 bytes, at least one pad byte."""
    size = (len(data) // 256 + 1) * 256
    return data.ljust(size, b"\x00")


def build_image(identity: Identity) -> CardImage:
    """Everything on the card derived from the identity (reference, "Files" and "Public keys")."""
    certs = {"root": identity.root_ca, "issuing": identity.issuing_ca, "enc": identity.enc_cert}
    certs["sign"] = identity.sign_cert
    image = bytearray(CERT_EF_SIZE)
    for name, offset in CERT_SLOTS:
        der = certs[name].dump()
        if len(der) > 0x700:
            raise ValueError(f"{identity.slug}: {name} certificate of {len(der)} bytes does not fit its 0x700 slot")
        image[offset : offset + len(der)] = der

    sign_key = pkcs15.KeyDescription(
        b"SIGN", "Signature key", SIGN_REF, 2048, True, AUTH_ID, identity.sign_cert.subject
    )
    enc_key = pkcs15.KeyDescription(
        b"KEYX", "Encryption key", KEYX_REF, 2048, False, AUTH_ID, identity.enc_cert.subject
    )
    keys = (enc_key, sign_key)
    prkdf = pkcs15.encode_directory(k.private_key_object(KEY_DF_PATH) for k in keys)
    pukdf = pkcs15.encode_directory(k.public_key_object(PUBLIC_KEY_EF_PATH) for k in keys)
    offsets = dict(CERT_SLOTS)
    cdf = pkcs15.encode_directory(
        [
            pkcs15.certificate_object(identity.root_ca, b"ROOT", "Root CA", CERT_EF_PATH, offsets["root"], True),
            pkcs15.certificate_object(identity.issuing_ca, b"CA", "Issuing CA", CERT_EF_PATH, offsets["issuing"], True),
            pkcs15.certificate_object(identity.enc_cert, b"KEYX", "Encryption", CERT_EF_PATH, offsets["enc"], False),
            pkcs15.certificate_object(identity.sign_cert, b"SIGN", "Signature", CERT_EF_PATH, offsets["sign"], False),
        ]
    )
    dodf = pkcs15.encode_directory(
        [
            pkcs15.OpaqueDataObject(
                {
                    "common_object_attributes": {"label": label},
                    "class_attributes": {"application_name": "MOICA"},
                    "type_attributes": {"efid_or_path": path},
                }
            )
            for label, path in (
                ("Card number", bytes.fromhex("3F0009000903")),
                ("Card version", bytes.fromhex("3F0009000905")),
            )
        ]
    )
    aodf = pkcs15.encode_directory(
        [
            pkcs15.PinObject(
                {
                    "common_object_attributes": {"label": "User PIN", "flags": {"private"}},
                    "class_attributes": {"auth_id": AUTH_ID},
                    "type_attributes": {
                        "pin_flags": {
                            "case_sensitive",
                            "local",
                            "initialized",
                            "needs_padding",
                            "integrity_protected",
                            "confidentiality_protected",
                        },
                        "pin_type": "ascii_numeric",
                        "min_length": 6,
                        "stored_length": 10,
                        "max_length": 8,
                        "pin_reference": PIN_REF,
                        "pad_char": b"\xff",
                        "path": {"efid_or_path": KEY_DF_PATH},
                    },
                }
            )
        ]
    )
    odf = pkcs15.encode_directory(
        pkcs15.PKCS15Objects(name=name, value={"efid_or_path": bytes.fromhex("3F005030" + fid)})
        for name, fid in (
            ("private_keys", "4100"),
            ("public_keys", "4101"),
            ("certificates", "4104"),
            ("data_objects", "4107"),
            ("auth_objects", "4108"),
        )
    )
    token_info = pkcs15.TokenInfo(
        {
            "version": 0,
            "serial_number": identity.card_number.encode("ascii"),
            "manufacturer_id": "eidemu (emulated HiCOS card, TEST ONLY)",
            "label": "MOICA TEST",
            "token_flags": {"readonly", "login_required", "prn_generation"},
        }
    ).dump()
    app_template = (
        b"\x4f" + bytes((len(PKCS15_AID),)) + PKCS15_AID + b"\x50\x0a" + b"MOICA TEST" + b"\x51\x04\x3f\x00\x08\x00"
    )
    ef_dir = b"\x61" + bytes((len(app_template),)) + app_template

    records: dict[int, bytes] = {}
    for ref, cert in ((KEYX_REF, identity.enc_cert), (SIGN_REF, identity.sign_cert)):
        rsa_key = pkcs15.rsa_public_key(cert)
        records.update(public_key_records(ref, rsa_key["public_exponent"].native, rsa_key["modulus"].native))
    public_records = [records.get(i, bytes(128)) for i in range(1, max(records) + 1)]
    return CardImage(bytes(image), prkdf, pukdf, cdf, dodf, aodf, odf, token_info, ef_dir, public_records)


def _check_key(cert: x509.Certificate, key_path: Path) -> None:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: not an RSA key")
    if key.public_key().public_numbers().n != pkcs15.rsa_public_key(cert)["modulus"].native:
        raise ValueError(f"{key_path}: does not belong to its certificate")


def _hex_block(data: bytes, indent: int, width: int = 32) -> str:
    pad = " " * indent
    lines = [data[i : i + width].hex(" ").upper() for i in range(0, len(data), width)] or [""]
    return "\n".join(pad + line for line in lines)


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def render_profile(identity: Identity, profile_path: Path, data_dir: Path, image: CardImage) -> str:
    """The YAML text of the profile (written by hand for comments and a readable layout)."""
    base = profile_path.parent
    info = identity.info
    name = f"moica-{identity.slug}"

    def hex_content(data: bytes, pad_to: int | None = None, indent: int = 10) -> str:
        body = f"{' ' * indent}hex: |\n{_hex_block(data, indent + 2)}"
        if pad_to is not None:
            body += f"\n{' ' * indent}pad_to: {pad_to}\n{' ' * indent}pad_byte: 00"
        return body

    def directory(fid: str, label: str, der: bytes) -> str:
        return (
            f"      - fid: {fid}\n        name: {label}\n        content:\n"
            f"{hex_content(der, pad_to=len(_padded(der)))}\n"
        )

    records = "\n".join(f"          - |\n{_hex_block(r, 12)}" for r in image.public_records)
    return f"""\
# GENERATED by `python3 -m eidemu.emulator.pki.moica_profiles` from fixtures/pki (identity
# {identity.slug}); do not edit by hand, regenerate instead. TEST DATA ONLY: synthetic
# identity, test keys, and the documented TEST transport and issuer keys.
# Card: citizen digital certificate card, generation 1 (docs/moica-card.md);
# behaviour and choices: docs/moica-card.md.
eidemu_profile: 1
name: {name}
description: >
  MOICA generation-1 card (HiCOS interface) for the synthetic identity {identity.slug}
  ({info.get("status", "?")}, issued by {info.get("ca", "?")}), card number {identity.card_number}.
  Protected VERIFY with the TEST transport key, PIN = initial PIN (ROC birth date).
test_only: true
atr: {ATR_GEN1.hex(" ").upper()}   # historical bytes "CHTMOICA"
channels: 1
pins:
  - ref: {PIN_REF:02X}
    name: user PIN (protected VERIFY; initial value = ROC birth date yyyMMdd)
    value: "{info["initial_pin"]}"
    tries: 3
    min_length: 6
    max_length: 8
    pad_to: 10
    pad_byte: FF
    unblock: auth:{ISSUER_KEY_REF:02X}
keys:
  - ref: {ISSUER_KEY_REF:02X}
    name: issuer unblock key (TEST ONLY, ASCII "MOICA-ISSUER-TST")
    algorithm: 3des
    value: {DEFAULT_ISSUER_KEY.hex().upper()}
files:
  - fid: 2F00
    name: EF.DIR (PKCS#15 application template, path 3F00/0800 as reported)
    content:
{hex_content(image.ef_dir, indent=6)}
  - fid: 0800
    name: DF named by EF.DIR (content not public; empty)
    type: df
  - fid: 0900
    name: DF card data
    children:
      - fid: 0903
        name: card number
        content: {{text: "{identity.card_number}"}}
      - fid: 0905
        name: card version
        content: {{text: "{VERSION_STRING.decode()}"}}
  - fid: 5030
    name: DF PKCS#15-like
    children:
      - fid: 5031
        name: ODF (not in the reference; lets generic PKCS#15 readers find the directories)
        content:
{hex_content(image.odf, pad_to=len(_padded(image.odf)))}
      - fid: 5032
        name: TokenInfo
        content:
{hex_content(image.token_info, pad_to=len(_padded(image.token_info)))}
{directory("4100", "PrKDF", image.prkdf)}{directory("4101", "PuKDF", image.pukdf)}\
{directory("4104", "CDF", image.cdf)}{directory("4107", "DODF", image.dodf)}\
{directory("4108", "AODF", image.aodf)}\
      - fid: 08F2
        name: certificates (root 0000, issuing CA 0700, encryption 0E00, signature 1500)
        content: {{file: {_rel(data_dir / "08F2.bin", base)}}}
      - fid: 0810
        name: public keys (key ref 01 KEYX records 1-4, key ref 05 SIGN records 5-8)
        type: record
        records:
{records}
      - fid: 0811
        name: public keys (second EF; content not public; empty)
        type: record
      - fid: 0870
        name: data objects (content not public; zeros)
        size: 256
        fill: 00
default_application:
  type: moica-gen1
  options:
    transport_key: {DEFAULT_TRANSPORT_KEY.hex().upper()}   # TEST key, ASCII "MOICA-TEST-ONLY!"
    pin: {PIN_REF:02X}
    public_key_ef: 3F00/5030/0810
    keys:
      - ref: {KEYX_REF:02X}
        id: KEYX
        usage: decrypt
        private_key: {_rel(identity.directory / "enc.key.pem", base)}
      - ref: {SIGN_REF:02X}
        id: SIGN
        usage: sign
        private_key: {_rel(identity.directory / "sign.key.pem", base)}
"""


def write_profile(pki_dir: Path, slug: str, out_dir: Path) -> Path:
    """Write ``<out>/moica-<slug>.yaml`` and ``<out>/moica-data/<slug>/08F2.bin``; return the profile path."""
    identity = load_identity(pki_dir, slug)
    _check_key(identity.sign_cert, identity.directory / "sign.key.pem")
    _check_key(identity.enc_cert, identity.directory / "enc.key.pem")
    image = build_image(identity)
    profile_path = out_dir / f"moica-{slug}.yaml"
    data_dir = out_dir / "moica-data" / slug
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "08F2.bin").write_bytes(image.certificates)
    profile_path.write_text(render_profile(identity, profile_path, data_dir, image), encoding="utf-8")
    return profile_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m eidemu.emulator.pki.moica_profiles", description=__doc__)
    parser.add_argument("--pki", type=Path, default=FIXTURES / "pki", help="test PKI directory (fixtures/pki)")
    parser.add_argument("--out", type=Path, default=FIXTURES / "profiles", help="profile directory")
    parser.add_argument("slugs", nargs="*", help="identities (default: all under <pki>/identities)")
    args = parser.parse_args(argv)
    slugs = args.slugs or sorted(p.name for p in (args.pki / "identities").iterdir() if (p / "identity.json").exists())
    from ..profile import load_profile

    for slug in slugs:
        path = write_profile(args.pki, slug, args.out)
        load_profile(path)  # validates, including the record/key consistency check
        print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
