"""Build the eID chip card profiles (``eid-<chip>.yaml``) from the TEST PKI's ``eid/`` directory.

``python3 -m eidemu.emulator.pki.eid_profiles [--pki fixtures/pki] [--out fixtures/profiles]
[CHIP ...]`` writes one profile per chip of ``<pki>/eid/manifest.json`` (one per identity, plus
the ECDSA-AA and RSA-1024-AA variants). The file tree is the one ICAO 9303-10 §4.6 fixes for
the eMRTD application (docs/eid.md, "Test PKI and data"); the content of every file is taken
by reference from the generated chip directory, so the profile stays small and readable.

The application type ``emrtd`` and its options (listed in :data:`EMRTD_OPTIONS`) are what the
eMRTD applet reads; re-run this module whenever the PKI is regenerated.

Chips of a G3 identity also carry the citizen-certificate zone (application type ``eid-pki``,
EF.DIR in the MF and the PKCS#15 DF ``5015``, docs/eid.md "Citizen-certificate zone"), written
as separate blocks of the file list and the application list; the zone alone is also written
as ``eid-pki-<identity>.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eidemu.fixtures import fixture_path

from .eac_zones import carries_zones, has_eac_zones, render_eac

FIXTURES = fixture_path()
APPLICATION_TYPE = "emrtd"
EMRTD_AID = "A0 00 00 02 47 10 01"
EMRTD_DF = "5F00"  # invented: 9303-10 names the application by AID only
SECURE_MESSAGING_REF = "01"  # the auth:<ref> a BAC or PACE session grants (global, survives SELECT)

# Option name -> (YAML type, meaning): the contract with the eMRTD applet.
EMRTD_OPTIONS: Mapping[str, tuple[str, str]] = {
    "can": ("string of 6 digits", "PACE password CAN (default: last 6 digits of the card number)"),
    "mrz": ("list of 3 strings of 30 characters", "the TD1 MRZ as in DG1 (BAC keys, PACE MRZ password)"),
    "mrz_information": ("string", "document number + CD + birth date + CD + expiry + CD (9303-11 §4.3)"),
    "bac": ("boolean", "BAC (3DES secure messaging) allowed"),
    "pace": ("list of {mapping, cipher, parameter_id}", "PACE parameter sets, as in EF.CardAccess"),
    "secure_messaging_ref": ("hex byte", "auth:<ref> granted while a BAC/PACE session is up"),
    "chip_authentication": (
        "{key: path to PEM, agreement: ECDH, cipher: AES-128, curve: brainpoolP256r1}",
        "Chip Authentication v1 and PACE-CAM static key (DG14, EF.CardSecurity)",
    ),
    "active_authentication": (
        "{key: path to PEM, algorithm: rsa-2048|rsa-1024|ecdsa-brainpoolP256r1, signature: ...}",
        "INTERNAL AUTHENTICATE key (DG15); signature iso9796-2-scheme1-sha1 or ecdsa-plain-sha256",
    ),
}

# Files of the eMRTD application, in the order of 9303-10 §4.6 (FID, SFI, name, file in the chip dir).
LDS_FILES: tuple[tuple[str, str, str, str], ...] = (
    ("011E", "1E", "EF.COM (LDS 1.7, tag list)", "EF.COM.bin"),
    ("0101", "01", "EF.DG1 (TD1 MRZ)", "DG1.bin"),
    ("0102", "02", "EF.DG2 (face, ISO/IEC 19794-5 JPEG)", "DG2.bin"),
    ("010B", "0B", "EF.DG11 (name in Chinese, national ID, place and date of birth)", "DG11.bin"),
    ("010C", "0C", "EF.DG12 (issuing authority, date of issue)", "DG12.bin"),
    ("010E", "0E", "EF.DG14 (SecurityInfos for PACE and Chip Authentication)", "DG14.bin"),
    ("010F", "0F", "EF.DG15 (Active Authentication public key)", "DG15.bin"),
    ("011D", "1D", "EF.SOD (LDS security object signed by ds-valid)", "EF.SOD.bin"),
)

HISTORICAL_BYTES = b"TWEID-TEST"

# -- the citizen-certificate zone (docs/eid.md, "Citizen-certificate zone") ----------------
PKI_APPLICATION_TYPE = "eid-pki"
PKI_AID = "A0 00 00 00 63 50 4B 43 53 2D 31 35"  # PKCS #15 v1.1 §5.4.1
PKI_DF = "5015"  # the PKCS#15 application DF usual in OpenSC and PKCS #15 v1.1 §5.4
PKI_PIN_REF, PKI_PUK_REF = 0x91, 0x92
PKI_SIGN_REF, PKI_AUTH_REF = 0x01, 0x02
PKI_PUK = "12345678"  # TEST PUK of every emulated zone
# (FID, name, file in the PKCS#15 image)
PKI_FILES: tuple[tuple[str, str, str], ...] = (
    ("5031", "EF.ODF", "odf"),
    ("5032", "EF.TokenInfo", "token_info"),
    ("4401", "EF.AODF (zone PIN, PUK)", "aodf"),
    ("4402", "EF.PrKDF (signature key 01, authentication key 02)", "prkdf"),
    ("4404", "EF.CDF (signature, authentication, issuing CA, root)", "cdf"),
    ("4331", "signature certificate (DER)", "cert_sign"),
    ("4332", "authentication and encryption certificate (DER)", "cert_auth"),
    ("4333", "issuing CA certificate (DER)", "cert_ca"),
    ("4334", "root CA certificate (DER)", "cert_root"),
)


def atr() -> bytes:
    """An invented contact ATR: T=1 announced (TD1 = 80, TD2 = 01), historical bytes "TWEID-TEST", TCK.

    ISO/IEC 7816-3 §8.2: with a protocol other than T=0 indicated, TCK makes the XOR of T0..TCK zero.
    """
    body = bytes((0x80 | len(HISTORICAL_BYTES), 0x80, 0x01)) + HISTORICAL_BYTES
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes((tck,))


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def signature_scheme(algorithm: str) -> str:
    """The AA signature the chip computes for a key kind (9303-11 §6.1)."""
    return "ecdsa-plain-sha256" if algorithm.startswith("ecdsa") else "iso9796-2-scheme1-sha1"


def pki_image(pki_dir: Path, slug: str) -> dict[str, bytes]:
    """The PKCS#15 files of the citizen-certificate zone for identity ``slug`` (PKCS #15 v1.1
    §6; ISO/IEC 7816-15:2004): EF.DIR content and each file of :data:`PKI_FILES` by name."""
    from ..formats import pkcs15
    from .moica_profiles import load_identity

    identity = load_identity(pki_dir, slug)
    df = bytes.fromhex("3F00" + PKI_DF)

    def path(fid: str) -> bytes:
        return df + bytes.fromhex(fid)

    pin_id, puk_id = b"\x01", b"\x02"
    keys = (
        pkcs15.KeyDescription(
            b"\x45\x01", "Signature key", PKI_SIGN_REF, 2048, True, pin_id, identity.sign_cert.subject
        ),
        pkcs15.KeyDescription(
            b"\x45\x02", "Authentication key", PKI_AUTH_REF, 2048, False, pin_id, identity.enc_cert.subject,
            frozenset({"sign", "decrypt", "unwrap"}),
        ),
    )  # fmt: skip
    prkdf = pkcs15.encode_directory(k.private_key_object(df) for k in keys)
    cdf = pkcs15.encode_directory(
        [
            pkcs15.certificate_object(identity.sign_cert, b"\x45\x01", "Signature", path("4331"), None, False),
            pkcs15.certificate_object(identity.enc_cert, b"\x45\x02", "Authentication", path("4332"), None, False),
            pkcs15.certificate_object(identity.issuing_ca, b"\x45\x10", "Issuing CA", path("4333"), None, True),
            pkcs15.certificate_object(identity.root_ca, b"\x45\x11", "Root CA", path("4334"), None, True),
        ]
    )

    def pin_object(label: str, auth_id: bytes, ref: int, unblocking: bool) -> pkcs15.PinObject:
        flags = {"local", "initialized"} | ({"unblocking_pin"} if unblocking else set())
        common: dict[str, object] = {"label": label, "flags": {"private"}}
        if not unblocking:
            common["auth_id"] = puk_id  # the PUK that unblocks this PIN (§6.1.11)
        return pkcs15.PinObject(
            {
                "common_object_attributes": common,
                "class_attributes": {"auth_id": auth_id},
                "type_attributes": {
                    "pin_flags": flags,
                    "pin_type": "ascii_numeric",
                    "min_length": 6,
                    "stored_length": 8,
                    "max_length": 8,
                    "pin_reference": ref,
                    "path": {"efid_or_path": df},
                },
            }
        )

    aodf = pkcs15.encode_directory(
        [
            pin_object("PIN", pin_id, PKI_PIN_REF, False),
            pin_object("PUK", puk_id, PKI_PUK_REF, True),
        ]
    )
    odf = pkcs15.encode_directory(
        pkcs15.PKCS15Objects(name=name, value={"efid_or_path": path(fid)})
        for name, fid in (("private_keys", "4402"), ("certificates", "4404"), ("auth_objects", "4401"))
    )
    token_info = pkcs15.TokenInfo(
        {
            "version": 0,
            "serial_number": identity.card_number.encode("ascii"),
            "manufacturer_id": "eidemu (TEST ONLY)",
            "label": "TW eID citizen cert TEST",
            "token_flags": {"readonly", "login_required", "prn_generation"},
        }
    ).dump()
    label = b"TW eID citizen certificate TEST"
    aid = bytes.fromhex(PKI_AID)
    template = b"\x4f" + bytes((len(aid),)) + aid + b"\x50" + bytes((len(label),)) + label + b"\x51\x04" + df
    ef_dir = b"\x61" + bytes((len(template),)) + template
    return {
        "ef_dir": ef_dir,
        "odf": odf,
        "token_info": token_info,
        "aodf": aodf,
        "prkdf": prkdf,
        "cdf": cdf,
        "cert_sign": identity.sign_cert.dump(),
        "cert_auth": identity.enc_cert.dump(),
        "cert_ca": identity.issuing_ca.dump(),
        "cert_root": identity.root_ca.dump(),
    }


def _hex_content(data: bytes, indent: int) -> str:
    pad = " " * indent
    lines = [data[i : i + 32].hex(" ").upper() for i in range(0, len(data), 32)]
    return f"{pad}hex: |\n" + "\n".join(f"{pad}  {line}" for line in lines)


def render_pki_zone(pki_dir: Path, slug: str, profile_path: Path, initial_pin: str) -> tuple[str, str]:
    """The citizen-certificate zone as two YAML blocks: the files (EF.DIR in the MF and the
    application DF) and the application entry; kept apart from the eMRTD blocks."""
    image = pki_image(pki_dir, slug)
    identity_dir = pki_dir / "identities" / slug
    children = "".join(
        f"      - fid: {fid}\n        name: {label}\n        content:\n{_hex_content(image[key], 10)}\n"
        for fid, label, key in PKI_FILES
    )
    files = f"""\
  # -- citizen-certificate zone (eid-pki): EF.DIR and the PKCS#15 application DF ------------
  - fid: 2F00
    name: EF.DIR (the PKCS#15 application of the citizen-certificate zone)
    content:
{_hex_content(image["ef_dir"], 6)}
  - fid: {PKI_DF}
    name: citizen-certificate zone (PKCS#15 application DF)
    aid: {PKI_AID}
    children:
{children}"""
    application = f"""\
  # -- citizen-certificate zone (eid-pki) ----------------------------------------------------
  - aid: {PKI_AID}
    type: {PKI_APPLICATION_TYPE}
    df: 3F00/{PKI_DF}
    options:
      pin:   # TEST values: PIN = the identity's initial PIN, PUK = {PKI_PUK}
        ref: {PKI_PIN_REF:02X}
        value: "{initial_pin}"
        puk_ref: {PKI_PUK_REF:02X}
        puk: "{PKI_PUK}"
      keys:
        - ref: {PKI_SIGN_REF:02X}
          usage: sign
          private_key: {_rel(identity_dir / "sign.key.pem", profile_path.parent)}
        - ref: {PKI_AUTH_REF:02X}
          usage: authenticate
          private_key: {_rel(identity_dir / "enc.key.pem", profile_path.parent)}
"""
    return files, application


def has_pki_zone(chip: Mapping[str, Any]) -> bool:
    """Chips of a G3 identity carry the citizen-certificate zone (the G3 chain's keys)."""
    return carries_zones(str(chip["slug"]))


def render_pki_profile(pki_dir: Path, slug: str, profile_path: Path, card_number: str, initial_pin: str) -> str:
    """``eid-pki-<slug>.yaml``: the citizen-certificate zone alone on the eID chip's ATR."""
    files, application = render_pki_zone(pki_dir, slug, profile_path, initial_pin)
    return f"""\
# GENERATED by `python3 -m eidemu.emulator.pki.eid_profiles` from fixtures/pki (identity
# {slug}); do not edit by hand, regenerate instead. TEST DATA ONLY: synthetic identity, TEST keys.
# The eID chip's citizen-certificate zone alone (docs/eid.md, "Citizen-certificate zone").
eidemu_profile: 1
name: eid-pki-{slug}
description: >
  Next-generation eID chip, citizen-certificate zone only (ISO/IEC 7816-8/7816-15 PKI
  application, PKCS#15) for the synthetic identity {slug}, card number {card_number}.
test_only: true
atr: {atr().hex(" ").upper()}   # invented; historical bytes "{HISTORICAL_BYTES.decode()}"
files:
{files}applications:
{application}"""


def render_profile(
    chip: Mapping[str, Any], chip_dir: Path, profile_path: Path, pace: Sequence[Mapping[str, Any]]
) -> str:
    """The YAML text of one eID chip profile (hand-written for comments and layout)."""
    base = profile_path.parent

    def ref(name: str) -> str:
        return _rel(chip_dir / name, base)

    atr_hex = atr().hex(" ").upper()
    lds = "".join(
        f"      - fid: {fid}\n        name: {label}\n        sfi: {sfi}\n"
        f"        access: {{read: auth:{SECURE_MESSAGING_REF}}}\n        content: {{file: {ref(name)}}}\n"
        for fid, sfi, label, name in LDS_FILES
    )
    pace_lines = "".join(
        f"      - {{mapping: {p['mapping']}, cipher: {p['cipher']}, parameter_id: {p['parameter_id']}}}\n" for p in pace
    )
    mrz = "".join(f'      - "{line}"\n' for line in chip["mrz"])
    aa = chip["active_authentication"]
    ca = chip["chip_authentication"]
    pki_files = pki_application = ""
    if has_pki_zone(chip):
        pki_dir = chip_dir.parents[2]
        initial_pin = json.loads((pki_dir / "identities" / chip["slug"] / "identity.json").read_text("utf-8"))
        pki_files, pki_application = render_pki_zone(pki_dir, chip["slug"], profile_path, initial_pin["initial_pin"])
    return f"""\
# GENERATED by `python3 -m eidemu.emulator.pki.eid_profiles` from fixtures/pki/eid (chip
# {chip["name"]}); do not edit by hand, regenerate instead. TEST DATA ONLY: synthetic identity,
# TEST keys (CSCA Taiwan TEST). What is modelled and what is invented: docs/eid.md.
eidemu_profile: 1
name: eid-{chip["name"]}
description: >
  Next-generation eID chip, ICAO travel-document zone (eMRTD application, LDS 1.7) for the
  synthetic identity {chip["slug"]}, card number {chip["card_number"]}; {chip["description"]}.
  CAN {chip["can"]} (last 6 digits of the card number). Contact card, as announced.
test_only: true
atr: {atr_hex}   # invented; historical bytes "{HISTORICAL_BYTES.decode()}"
files:
  - fid: 011C
    name: EF.CardAccess (PACEInfo per parameter set, ChipAuthenticationInfo)
    sfi: 1C
    content: {{file: {ref("EF.CardAccess.bin")}}}
  - fid: 011D
    name: EF.CardSecurity (SecurityInfos with the chip key, signed by ds-valid)
    sfi: 1D
    access: {{read: auth:{SECURE_MESSAGING_REF}}}
    content: {{file: {ref("EF.CardSecurity.bin")}}}
  - fid: {EMRTD_DF}
    name: eMRTD application (LDS1; the FID is invented, 9303-10 selects it by AID)
    aid: {EMRTD_AID}
    children:
{lds}{pki_files}applications:
  - aid: {EMRTD_AID}
    type: {APPLICATION_TYPE}
    df: 3F00/{EMRTD_DF}
    options:
      can: "{chip["can"]}"
      mrz:
{mrz}      mrz_information: "{chip["mrz_information"]}"
      bac: true
      secure_messaging_ref: {SECURE_MESSAGING_REF}
      pace:
{pace_lines}      chip_authentication:
        key: {ref(ca["key"])}
        agreement: {ca["agreement"]}
        cipher: AES-128
        curve: {ca["curve"]}
      active_authentication:
        key: {ref(aa["key"])}
        algorithm: {aa["algorithm"]}
        signature: {signature_scheme(aa["algorithm"])}
{pki_application}"""


def write_profiles(pki_dir: Path, out_dir: Path, chips: Sequence[str] = ()) -> list[Path]:
    """Write ``<out>/eid-<chip>.yaml`` for the named chips (default: all); return the paths."""
    manifest = json.loads((pki_dir / "eid" / "manifest.json").read_text("utf-8"))
    known = {c["name"]: c for c in manifest["chips"]}
    unknown = [c for c in chips if c not in known]
    if unknown:
        raise ValueError(f"no eID chip {', '.join(unknown)} in {pki_dir / 'eid' / 'manifest.json'}")
    paths = []
    for name in chips or list(known):
        chip = known[name]
        path = out_dir / f"eid-{name}.yaml"
        text = render_profile(chip, pki_dir / "eid" / chip["path"], path, manifest["pace"])
        if has_eac_zones(chip):
            # The private and household zones (EAC) on the chips whose LDS has them (those of
            # G3 identities, beside the citizen-certificate zone); the others model the ICAO zone alone.
            text = render_eac(text, chip, pki_dir, path)
        path.write_text(text, "utf-8")
        paths.append(path)
        slug = str(chip["slug"])
        if has_pki_zone(chip) and name == slug:
            info = json.loads((pki_dir / "identities" / slug / "identity.json").read_text("utf-8"))
            pki_path = out_dir / f"eid-pki-{slug}.yaml"
            pki_path.write_text(
                render_pki_profile(pki_dir, slug, pki_path, str(info["card_number"]), str(info["initial_pin"])), "utf-8"
            )
            paths.append(pki_path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m eidemu.emulator.pki.eid_profiles", description=__doc__)
    parser.add_argument("--pki", type=Path, default=FIXTURES / "pki", help="test PKI directory (fixtures/pki)")
    parser.add_argument("--out", type=Path, default=FIXTURES / "profiles", help="profile directory")
    parser.add_argument("chips", nargs="*", help="chips (default: all in <pki>/eid/manifest.json)")
    args = parser.parse_args(argv)
    for path in write_profiles(args.pki, args.out, args.chips):
        print(f"{path}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
