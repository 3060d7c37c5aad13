"""The EAC zones of the eID chip: their data groups, the holder PIN, and the profile blocks.

The zones' content is made at PKI generation time: :func:`zone_data_groups` gives the
private zone DG3..DG9 (spouse's, father's and mother's names, place of birth, sex, photo,
remarks, as the published design lists the private data) and the household zone DG13 of an
identity, which :func:`eidemu.emulator.pki.eid.build_chip` writes as ``DGn.bin`` beside the
other data groups of the chips that carry the zones (:func:`carries_zones`), lists in
EF.COM and hashes in EF.SOD.

:func:`render_eac` adds to a profile text of :mod:`eidemu.emulator.pki.eid_profiles`, in
blocks of their own (docs/eid.md, "Extended access control and the zones"):

- ``pins``: the holder PIN (reference 03, 6 digits) and its PUK (04, 8 digits), after the
  PIN and PUK password references of BSI TR-03110-3 §B.11.1; both values are derived from
  the identity (TEST data, written in the profile). An authenticated terminal with the
  PIN-management right (``ta:05``, TR-03110-3 Table C.4) may set a new PIN without the old
  one and reset the counter without the PUK (``change`` and ``unblock`` ``auth:01&ta:05``);
- the zone files, by reference to the chip's ``DGn.bin``: the private zone readable with
  ``auth:01&ta:DGn&pin:03`` (PACE, TA with the read right, the holder PIN), the household
  zone EF.DG13 with ``auth:01&ta:DG13``;
- ``options.eac``: the trust points (TEST CVCAs of fixtures/pki/eac) and the chip's date;
  the application type becomes ``eid`` (:class:`eidemu.emulator.applets.eid.EidApplication`).

The data groups' layout is invented (the design published no format): ``<DG tag> { 80 UTF-8
text }``, DG13 ``6D { 80 head of household, 81 relationship, 82 household number }``, DG8
``68 { 80 <the ISO/IEC 19794-5 face record of DG2> }``; the names are drawn
deterministically from the identity's national ID. TEST DATA ONLY.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..iso7816.tlv import TLV
from .names import REGISTRATION_AREAS, ROMANIZATION

PIN_REF = "03"
PUK_REF = "04"
SESSION = "auth:01"
PIN_MANAGEMENT = f"{SESSION}&ta:05"  # PACE and TA with the PIN-management right (TR-03110-3 Table C.4, bit 5)

_SURNAMES = tuple(ROMANIZATION)[:50]
_GIVEN = tuple(ROMANIZATION)[50:]
_RELATIONS = ("戶長", "長子", "長女", "次子", "次女", "配偶")

# (FID, SFI, DG number, tag, label) of the zones (ICAO 9303-10 §4.6 numbering and tags).
ZONE_FILES: tuple[tuple[str, str, int, int, str], ...] = (
    ("0103", "03", 3, 0x63, "spouse's name"),
    ("0104", "04", 4, 0x76, "father's name"),
    ("0105", "05", 5, 0x65, "mother's name"),
    ("0106", "06", 6, 0x66, "place of birth"),
    ("0107", "07", 7, 0x67, "sex"),
    ("0108", "08", 8, 0x68, "photo (the face record of DG2 again)"),
    ("0109", "09", 9, 0x69, "remarks"),
    ("010D", "0D", 13, 0x6D, "household data"),
)


def carries_zones(slug: str) -> bool:
    """The chips of a G3 identity carry the EAC zones (and the citizen-certificate zone,
    :func:`eidemu.emulator.pki.eid_profiles.has_pki_zone`)."""
    return slug.startswith("g3-")


def has_eac_zones(chip: Mapping[str, Any]) -> bool:
    """A chip record of ``eid/manifest.json`` whose data groups include the zones."""
    return {dg for _, _, dg, _, _ in ZONE_FILES} <= set(chip.get("data_groups", ()))


def _digest(national_id: str, label: str) -> bytes:
    return hashlib.sha256(f"eidemu-eac|{label}|{national_id}".encode()).digest()


def _name(national_id: str, label: str, surname: str | None = None) -> str:
    d = _digest(national_id, label)
    first = surname or _SURNAMES[d[0] % len(_SURNAMES)]
    return first + _GIVEN[d[1] % len(_GIVEN)] + _GIVEN[d[2] % len(_GIVEN)]


def holder_pin(national_id: str) -> str:
    """The holder PIN of an identity: 6 digits derived from the national ID (TEST)."""
    return f"{int.from_bytes(_digest(national_id, 'pin')[:4], 'big') % 10**6:06d}"


def holder_puk(national_id: str) -> str:
    """The PUK: 8 digits derived from the national ID (TEST)."""
    return f"{int.from_bytes(_digest(national_id, 'puk')[:4], 'big') % 10**8:08d}"


def zone_texts(identity: Mapping[str, Any]) -> dict[int, tuple[str, ...]]:
    """The UTF-8 values of the private and household data groups of an identity."""
    nid, name = identity["national_id"], identity["name_zh"]
    household = _digest(nid, "household")
    return {
        3: (_name(nid, "spouse"),),
        4: (_name(nid, "father", name[0]),),
        5: (_name(nid, "mother"),),
        6: (REGISTRATION_AREAS[nid[0]],),
        7: ("男" if identity["sex"] == "M" else "女",),
        9: ("TEST 資料 無備註",),
        13: (
            _name(nid, "father", name[0]),
            _RELATIONS[1 + household[0] % (len(_RELATIONS) - 1)],
            f"H{int.from_bytes(household[1:5], 'big') % 10**8:08d}",
        ),
    }


def encode_zone(dg: int, tag: int, values: tuple[str, ...]) -> bytes:
    """``<tag> { 80 value [81 value ...] }`` (invented layout, see the module docstring)."""
    return TLV.build(tag, *(TLV(0x80 + i, v.encode("utf-8")) for i, v in enumerate(values))).encode()


def encode_photo(face_record: bytes) -> bytes:
    """DG8 ``68 { 80 <ISO/IEC 19794-5 face record> }`` (invented layout, see the module docstring)."""
    return TLV.build(0x68, TLV(0x80, face_record)).encode()


def zone_data_groups(identity: Mapping[str, Any], face_record: bytes) -> dict[int, bytes]:
    """The zones' data groups of an identity (``identity.json`` fields), by number: DG3..DG9
    and DG13, DG8 holding ``face_record`` (the facial record of the chip's DG2)."""
    texts = zone_texts(identity)
    groups: dict[int, bytes] = {}
    for _, _, dg, tag, _ in ZONE_FILES:
        groups[dg] = encode_photo(face_record) if dg == 8 else encode_zone(dg, tag, texts[dg])
    return groups


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def render_eac(text: str, chip: Mapping[str, Any], pki_dir: Path, profile_path: Path) -> str:
    """The profile text with the EAC blocks added (see the module docstring)."""
    identity = json.loads((pki_dir / "identities" / chip["slug"] / "identity.json").read_text("utf-8"))
    eac_manifest = json.loads((pki_dir / "eac" / "manifest.json").read_text("utf-8"))
    # cvca-tw-2 is not trusted at first: the chip learns it from the link certificate.
    cvcas = [e for e in eac_manifest["certificates"] if e["role"] == "CVCA" and e["car"] == e["chr"]]
    cvcas = [e for e in cvcas if e["name"] != "cvca-tw-2"]
    first = next(e for e in cvcas if e["name"] == "cvca-tw-1")
    base = profile_path.parent
    nid = identity["national_id"]
    texts = zone_texts(identity)
    chip_dir = pki_dir / "eid" / chip["path"]
    files = ""
    for fid, sfi, dg, _, label in ZONE_FILES:
        rule = f"{SESSION}&ta:DG{dg}" + ("" if dg == 13 else f"&pin:{PIN_REF}")
        if dg != 8:
            label = f"{label}: {' / '.join(texts[dg])}"
        files += (
            f'      - fid: {fid}\n        name: "EF.DG{dg} ({label}; EAC zone, invented layout)"\n        sfi: {sfi}\n'
            f'        access: {{read: "{rule}"}}\n        content: {{file: {_rel(chip_dir / f"DG{dg}.bin", base)}}}\n'
        )
    pins = (
        "# EAC zones (BSI TR-03110 modelled, see docs/eid.md): holder PIN 03 and PUK 04, TEST values.\n"
        "pins:\n"
        f'  - ref: {PIN_REF}\n    name: holder PIN of the private zone (TEST)\n    value: "{holder_pin(nid)}"\n'
        f"    tries: 3\n    min_length: 6\n    max_length: 8\n    puk: {PUK_REF}\n"
        "    # a terminal with the PIN-management right: a new PIN without the old one, reset without the PUK\n"
        f'    change: "{PIN_MANAGEMENT}"\n    unblock: "{PIN_MANAGEMENT}"\n'
        f'  - ref: {PUK_REF}\n    name: PUK of the holder PIN (TEST)\n    value: "{holder_puk(nid)}"\n'
        "    tries: 10\n    min_length: 8\n    max_length: 8\n"
    )
    trust = "".join(f"        - {_rel(pki_dir / 'eac' / e['file'], base)}\n" for e in cvcas)
    eac = (
        f'      eac:\n        current_date: "{first["effective"]}"\n'
        f"        pin_ref: {PIN_REF}\n        trust_points:\n{trust}"
    )
    # The zone files are children of the eMRTD DF, the last entry of the file list, unless
    # the citizen-certificate zone's files follow it (chips of G3 identities).
    pki_files = "\n  # -- citizen-certificate zone (eid-pki)"
    anchor = pki_files if pki_files in text else "\napplications:\n"
    text = text.replace(anchor, f"\n{files}{anchor[1:]}", 1)
    text = text.replace("\nfiles:\n", f"\n{pins}files:\n", 1)
    text = text.replace("    type: emrtd\n", "    type: eid\n", 1)
    marker = "      secure_messaging_ref: 01\n"
    return text.replace(marker, marker + eac, 1)


__all__ = [
    "PIN_MANAGEMENT",
    "PIN_REF",
    "PUK_REF",
    "ZONE_FILES",
    "carries_zones",
    "encode_photo",
    "encode_zone",
    "has_eac_zones",
    "holder_pin",
    "holder_puk",
    "render_eac",
    "zone_data_groups",
    "zone_texts",
]
