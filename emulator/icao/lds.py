"""The Logical Data Structure (LDS 1.7) of an eMRTD chip: EF.COM, the data groups, EF.SOD, EF.CardAccess.

Encodings follow ICAO Doc 9303 (8th edition, 2021):

* EF.COM and the data-group templates: 9303-10 §4.6 (tags 60, 61, 75, 6B, 6C, 6E, 6F, 77);
* DG1's TD1 machine-readable zone and its check digits: 9303-3 §4.9 and 9303-5 §4.2;
* DG2's biometric information template group: 9303-10 §4.7.2 with ISO/IEC 7816-11 and the
  ISO/IEC 19794-5:2005 facial record (``FAC``);
* EF.SOD and EF.CardSecurity: CMS SignedData (RFC 5652) as 9303-10 §4.6.2 and 9303-12 §4 profile it,
  over the LDS security object of :mod:`.asn1`; EF.CardAccess and DG14: SecurityInfos (9303-11 §9.2).

Every object is a frozen dataclass with ``encode()`` (the bytes of the elementary file) and
``parse()`` (the inverse), so the terminal side can decode what the card serves. Codec layer:
imports only the ISO 7816 codec, asn1crypto and cryptography.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, unique

from asn1crypto import cms, core, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..iso7816.tlv import TLV, TLVError, find
from . import asn1

# What asn1crypto raises on malformed DER while it decodes lazily: every one becomes an
# LdsError with the structure named, never an unexpected exception.
_DECODE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError)


class LdsError(ValueError):
    """A data group or security object that does not decode as ICAO 9303-10 says."""


# --- files (9303-10 §4.6, Table 39/40 of the 8th edition) --------------------------------------

EMRTD_AID = bytes.fromhex("A0000002471001")  # 9303-10 §3.6.1: the eMRTD LDS1 application


@unique
class LdsFile(IntEnum):
    """Elementary files of the LDS: value = file identifier; SFI = low byte (9303-10 §4.6)."""

    CARD_ACCESS = 0x011C  # in the MF
    COM = 0x011E
    SOD = 0x011D  # in the eMRTD application; EF.CardSecurity has the same FID in the MF
    DG1 = 0x0101
    DG2 = 0x0102
    DG3 = 0x0103
    DG4 = 0x0104
    DG5 = 0x0105
    DG6 = 0x0106
    DG7 = 0x0107
    DG8 = 0x0108
    DG9 = 0x0109
    DG10 = 0x010A
    DG11 = 0x010B
    DG12 = 0x010C
    DG13 = 0x010D
    DG14 = 0x010E
    DG15 = 0x010F
    DG16 = 0x0110

    @property
    def sfi(self) -> int:
        return self.value & 0xFF


# Template tag of each data group (9303-10 §4.6, the "LDS1 data group tags" table).
DG_TAGS: Mapping[int, int] = {
    1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68,
    9: 0x69, 10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70,
}  # fmt: skip
TAG_COM = 0x60
TAG_SOD = 0x77


CARD_SECURITY_FID = 0x011D  # EF.CardSecurity, SFI 1D, in the MF (BSI TR-03110-3 Appendix A; 9303-11 §9.2)


def dg_file(number: int) -> LdsFile:
    """The file of data group ``number`` (``01 0n``, SFI n)."""
    return LdsFile(0x0100 | number)


def _unwrap(data: bytes, tag: int, what: str) -> bytes:
    try:
        tlv = TLV.parse(data)
    except TLVError as exc:
        raise LdsError(f"{what}: {exc}") from None
    if tlv.tag != tag:
        raise LdsError(f"{what}: template tag {tlv.tag:X}, expected {tag:X}")
    return tlv.value


def _child(value: bytes, tag: int, what: str) -> bytes:
    try:
        found = find(value, tag)
    except TLVError as exc:
        raise LdsError(f"{what}: {exc}") from None
    if found is None:
        raise LdsError(f"{what}: data object {tag:X} missing")
    return found.value


def _tag_list(tags: Sequence[int]) -> bytes:
    return b"".join(t.to_bytes((t.bit_length() + 7) // 8, "big") for t in tags)


def _split_tag_list(data: bytes) -> tuple[int, ...]:
    """The tags of a tag list (5C): concatenated BER tags without lengths."""
    tags, offset = [], 0
    while offset < len(data):
        tag = data[offset]
        offset += 1
        if tag & 0x1F == 0x1F:
            while True:
                if offset >= len(data):
                    raise LdsError(f"tag list {data.hex().upper()} ends inside a tag")
                tag = (tag << 8) | data[offset]
                offset += 1
                if not data[offset - 1] & 0x80:
                    break
        tags.append(tag)
    return tuple(tags)


def _text(value: bytes, encoding: str, what: str) -> str:
    try:
        return value.decode(encoding)
    except UnicodeDecodeError:
        raise LdsError(f"{what} is not {encoding.upper()} text") from None


# --- EF.COM (9303-10 §4.6.1) -------------------------------------------------------------------


@dataclass(frozen=True)
class EfCom:
    """EF.COM: LDS version (5F01, ``"0107"``), Unicode version (5F36, ``"040000"``), tag list (5C)."""

    data_group_tags: tuple[int, ...]
    lds_version: str = "0107"
    unicode_version: str = "040000"

    def encode(self) -> bytes:
        return TLV.build(
            TAG_COM,
            TLV(0x5F01, self.lds_version.encode("ascii")),
            TLV(0x5F36, self.unicode_version.encode("ascii")),
            TLV(0x5C, _tag_list(self.data_group_tags)),
        ).encode()

    @classmethod
    def parse(cls, data: bytes) -> EfCom:
        value = _unwrap(data, TAG_COM, "EF.COM")
        return cls(
            data_group_tags=_split_tag_list(_child(value, 0x5C, "EF.COM")),
            lds_version=_text(_child(value, 0x5F01, "EF.COM"), "ascii", "EF.COM LDS version"),
            unicode_version=_text(_child(value, 0x5F36, "EF.COM"), "ascii", "EF.COM Unicode version"),
        )


# --- DG1: the machine-readable zone (9303-3 §4.9, 9303-5 §4.2) ----------------------------------

MRZ_FILLER = "<"
TD1_LINE = 30
_MRZ_WEIGHTS = (7, 3, 1)


def mrz_check_digit(field_value: str) -> str:
    """Check digit of an MRZ field: weights 7 3 1, digits as themselves, A-Z 10-35, ``<`` 0 (9303-3 §4.9)."""
    total = 0
    for i, char in enumerate(field_value):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == MRZ_FILLER:
            value = 0
        else:
            raise LdsError(f"character {char!r} is not allowed in an MRZ")
        total += value * _MRZ_WEIGHTS[i % 3]
    return str(total % 10)


def _mrz_field(value: str, width: int, what: str) -> str:
    value = value.upper().replace(" ", MRZ_FILLER).replace("-", MRZ_FILLER)
    if len(value) > width:
        raise LdsError(f"{what} {value!r} longer than {width} characters")
    for char in value:
        if not (char.isdigit() or "A" <= char <= "Z" or char == MRZ_FILLER):
            raise LdsError(f"{what}: character {char!r} is not allowed in an MRZ")
    return value.ljust(width, MRZ_FILLER)


def mrz_name(primary: str, secondary: str, width: int = TD1_LINE) -> str:
    """The name field: ``PRIMARY<<SECONDARY`` with spaces and hyphens as ``<``, truncated (9303-3 §4.6)."""
    primary = primary.upper().replace(" ", MRZ_FILLER).replace("-", MRZ_FILLER)
    secondary = secondary.upper().replace(" ", MRZ_FILLER).replace("-", MRZ_FILLER)
    name = primary + MRZ_FILLER * 2 + secondary if secondary else primary
    return _mrz_field(name[:width], width, "name")


@dataclass(frozen=True)
class Td1Mrz:
    """A TD1 (ID-card) MRZ: three lines of 30 characters (9303-5 §4.2).

    Dates are ``YYMMDD``. A document number longer than 9 characters (the card number here) is
    written as 9303-5 §4.2 note j says: its first 9 characters in positions 6-14, ``<`` in the
    check-digit position 15, and the rest followed by the check digit of the whole number and a
    filler at the start of the optional data of line 1. ``optional_data_2`` is line 2's
    positions 19-29 (the national ID number in this project).
    """

    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: str
    sex: str  # "M", "F" or "<"
    date_of_expiry: str
    nationality: str
    primary_identifier: str
    secondary_identifier: str
    optional_data_1: str = ""
    optional_data_2: str = ""

    def _line1_number_and_optional(self) -> tuple[str, str, str]:
        number = self.document_number
        if len(number) <= 9:
            padded = _mrz_field(number, 9, "document number")
            return padded, mrz_check_digit(padded), _mrz_field(self.optional_data_1, 15, "optional data")
        head, rest = number[:9], number[9:]
        optional = rest + mrz_check_digit(number) + MRZ_FILLER + self.optional_data_1
        return _mrz_field(head, 9, "document number"), MRZ_FILLER, _mrz_field(optional, 15, "optional data")

    def lines(self) -> tuple[str, str, str]:
        """The three MRZ lines, check digits included."""
        number, number_check, optional_1 = self._line1_number_and_optional()
        line1 = _mrz_field(self.document_code, 2, "document code") + _mrz_field(self.issuing_state, 3, "issuing state")
        line1 += number + number_check + optional_1
        dob = _mrz_field(self.date_of_birth, 6, "date of birth")
        doe = _mrz_field(self.date_of_expiry, 6, "date of expiry")
        line2 = dob + mrz_check_digit(dob) + _mrz_field(self.sex, 1, "sex") + doe + mrz_check_digit(doe)
        line2 += _mrz_field(self.nationality, 3, "nationality") + _mrz_field(self.optional_data_2, 11, "optional data")
        composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
        line2 += mrz_check_digit(composite)
        line3 = mrz_name(self.primary_identifier, self.secondary_identifier)
        return line1, line2, line3

    def text(self) -> str:
        """The 90 MRZ characters as DG1 stores them (no line separators)."""
        return "".join(self.lines())

    @property
    def mrz_information(self) -> str:
        """Document number + check digit + birth date + check digit + expiry + check digit.

        The input of the BAC key seed and the PACE MRZ password (9303-11 §4.3 BAC, §4.4 PACE); for a
        long document number the whole number and its own check digit are used, as a reader
        reconstructs them from the MRZ.
        """
        number = self.document_number.ljust(9, MRZ_FILLER)
        return (
            number
            + mrz_check_digit(number)
            + self.date_of_birth
            + mrz_check_digit(self.date_of_birth)
            + self.date_of_expiry
            + mrz_check_digit(self.date_of_expiry)
        )

    @classmethod
    def parse(cls, text: str) -> Td1Mrz:
        """Read 90 characters back, checking every check digit (9303-3 §4.9)."""
        if len(text) != 3 * TD1_LINE:
            raise LdsError(f"TD1 MRZ must have 90 characters, found {len(text)}")
        line1, line2, line3 = text[:30], text[30:60], text[60:]
        optional_1 = line1[15:30]
        if line1[14] == MRZ_FILLER and optional_1.strip(MRZ_FILLER):
            rest_with_check = optional_1.split(MRZ_FILLER, 1)[0]
            number = line1[5:14] + rest_with_check[:-1]
            number_check = rest_with_check[-1:]
            optional_1 = optional_1[len(rest_with_check) + 1 :]
        else:
            number, number_check = line1[5:14], line1[14]
        if mrz_check_digit(number) != number_check:
            raise LdsError("MRZ document number check digit is wrong")
        for start, what in ((0, "date of birth"), (8, "date of expiry")):
            if mrz_check_digit(line2[start : start + 6]) != line2[start + 6]:
                raise LdsError(f"MRZ {what} check digit is wrong")
        if mrz_check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]) != line2[29]:
            raise LdsError("MRZ composite check digit is wrong")
        primary, _, secondary = line3.rstrip(MRZ_FILLER).partition(MRZ_FILLER * 2)
        return cls(
            document_code=line1[0:2].rstrip(MRZ_FILLER),
            issuing_state=line1[2:5].rstrip(MRZ_FILLER),
            document_number=number.rstrip(MRZ_FILLER),
            date_of_birth=line2[0:6],
            sex=line2[7],
            date_of_expiry=line2[8:14],
            nationality=line2[15:18].rstrip(MRZ_FILLER),
            primary_identifier=primary.replace(MRZ_FILLER, " "),
            secondary_identifier=secondary.replace(MRZ_FILLER, " "),
            optional_data_1=optional_1.rstrip(MRZ_FILLER),
            optional_data_2=line2[18:29].rstrip(MRZ_FILLER),
        )


@dataclass(frozen=True)
class Dg1:
    """DG1: template 61 holding the MRZ in 5F1F (9303-10 §4.7.1)."""

    mrz: Td1Mrz

    def encode(self) -> bytes:
        return TLV.build(DG_TAGS[1], TLV(0x5F1F, self.mrz.text().encode("ascii"))).encode()

    @classmethod
    def parse(cls, data: bytes) -> Dg1:
        return cls(Td1Mrz.parse(_text(_child(_unwrap(data, DG_TAGS[1], "DG1"), 0x5F1F, "DG1"), "ascii", "DG1 MRZ")))


# --- DG2: face (9303-10 §4.7.2, ISO/IEC 19794-5:2005) -------------------------------------------

FAC_FORMAT_ID = b"FAC\x00"
FAC_VERSION = b"010\x00"
FORMAT_OWNER_JTC1_SC37 = 0x0101
FORMAT_TYPE_FACE = 0x0008
BIOMETRIC_TYPE_FACE = 0x02  # ISO/IEC 7816-11 / CBEFF: facial features


@unique
class ImageDataType(IntEnum):
    """Face image data type of ISO/IEC 19794-5:2005 §5.7.2."""

    JPEG = 0x00
    JPEG2000 = 0x01


@dataclass(frozen=True)
class FaceImage:
    """One ISO/IEC 19794-5:2005 facial record: header, facial information, image information, image.

    Gender 0 unspecified, 1 male, 2 female; expression 1 neutral; face image type 1 full frontal;
    colour space 1 = 24-bit RGB; source type 0 = unspecified (§5.5-§5.7).
    """

    image: bytes
    width: int
    height: int
    gender: int = 0
    expression: int = 1
    image_type: int = 1
    data_type: ImageDataType = ImageDataType.JPEG
    colour_space: int = 1
    source_type: int = 0

    def encode(self) -> bytes:
        information = struct.pack(
            ">IHBBB3sH3s3s", 20 + 12 + len(self.image), 0, self.gender, 0, 0, b"\0\0\0", self.expression, b"\0\0\0",
            b"\0\0\0",
        )  # fmt: skip
        image_info = struct.pack(
            ">BBHHBBHH", self.image_type, self.data_type, self.width, self.height, self.colour_space,
            self.source_type, 0, 0,
        )  # fmt: skip
        body = information + image_info + self.image
        return FAC_FORMAT_ID + FAC_VERSION + struct.pack(">IH", 14 + len(body), 1) + body

    @classmethod
    def parse(cls, data: bytes) -> FaceImage:
        """The first face of a ``FAC`` record; feature points are skipped."""
        if data[:4] != FAC_FORMAT_ID or len(data) < 14 + 20 + 12:
            raise LdsError("biometric data block is not an ISO/IEC 19794-5 facial record")
        record_length, count = struct.unpack(">IH", data[8:14])
        if record_length != len(data) or count < 1:
            raise LdsError(f"facial record length {record_length} does not match its {len(data)} bytes")
        block_length, points, gender, _, _, _, expression, _, _ = struct.unpack(">IHBBB3sH3s3s", data[14:34])
        offset = 34 + 8 * points
        if offset + 12 > len(data) or 14 + block_length > len(data):
            raise LdsError("facial record truncated: feature points or image information missing")
        image_type, data_type, width, height, colour, source, _, _ = struct.unpack(
            ">BBHHBBHH", data[offset : offset + 12]
        )
        if data_type not in iter(ImageDataType):
            raise LdsError(f"facial record image data type {data_type:02X} is neither JPEG nor JPEG 2000")
        image = data[offset + 12 : 14 + block_length]
        return cls(image, width, height, gender, expression, image_type, ImageDataType(data_type), colour, source)


@dataclass(frozen=True)
class Dg2:
    """DG2: 75 { 7F61 { 02 count, 7F60 { A1 header, 5F2E FAC record } } } (9303-10 §4.7.2).

    Header (ISO/IEC 7816-11 biometric header template): 80 ICAO header version 0101, 81 type
    (02, face), 87 format owner (0101, JTC1 SC37), 88 format type (0008, 19794-5 face).
    """

    faces: tuple[FaceImage, ...]

    def encode(self) -> bytes:
        header = TLV.build(
            0xA1,
            TLV(0x80, b"\x01\x01"),
            TLV(0x81, bytes((BIOMETRIC_TYPE_FACE,))),
            TLV(0x87, FORMAT_OWNER_JTC1_SC37.to_bytes(2, "big")),
            TLV(0x88, FORMAT_TYPE_FACE.to_bytes(2, "big")),
        )
        templates = [TLV.build(0x7F60, header, TLV(0x5F2E, face.encode())) for face in self.faces]
        group = TLV.build(0x7F61, TLV(0x02, bytes((len(self.faces),))), *templates)
        return TLV.build(DG_TAGS[2], group).encode()

    @classmethod
    def parse(cls, data: bytes) -> Dg2:
        group = _child(_unwrap(data, DG_TAGS[2], "DG2"), 0x7F61, "DG2")
        try:
            children = TLV(0x7F61, group).children
        except TLVError as exc:
            raise LdsError(f"DG2: {exc}") from None
        faces = []
        for template in children:
            if template.tag != 0x7F60:
                continue
            header = _child(template.value, 0xA1, "DG2 biometric header")
            if _child(header, 0x88, "DG2 biometric header") != FORMAT_TYPE_FACE.to_bytes(2, "big"):
                raise LdsError("DG2: format type is not 19794-5 face (0008)")
            faces.append(FaceImage.parse(_child(template.value, 0x5F2E, "DG2 biometric data block")))
        count = _child(group, 0x02, "DG2")
        if int.from_bytes(count, "big") != len(faces):
            raise LdsError(f"DG2 announces {int.from_bytes(count, 'big')} instances, holds {len(faces)}")
        return cls(tuple(faces))


# --- DG11, DG12: additional personal and document details (9303-10 §4.7.11, §4.7.12) -----------


def _details(template: int, items: Sequence[tuple[int, bytes]]) -> bytes:
    present = [(tag, value) for tag, value in items if value]
    return TLV.build(template, TLV(0x5C, _tag_list([t for t, _ in present])), *(TLV(t, v) for t, v in present)).encode()


def _read_details(data: bytes, template: int, what: str) -> dict[int, bytes]:
    value = _unwrap(data, template, what)
    tags = _split_tag_list(_child(value, 0x5C, what))
    return {tag: _child(value, tag, what) for tag in tags}


@dataclass(frozen=True)
class Dg11:
    """DG11 (6B): 5F0E full name (UTF-8), 5F10 personal number, 5F11 place of birth, 5F2B birth date ``YYYYMMDD``."""

    full_name: str
    personal_number: str = ""
    place_of_birth: str = ""
    full_date_of_birth: str = ""

    def encode(self) -> bytes:
        return _details(
            DG_TAGS[11],
            [
                (0x5F0E, self.full_name.encode("utf-8")),
                (0x5F10, self.personal_number.encode("utf-8")),
                (0x5F11, self.place_of_birth.encode("utf-8")),
                (0x5F2B, self.full_date_of_birth.encode("ascii")),
            ],
        )

    @classmethod
    def parse(cls, data: bytes) -> Dg11:
        items = _read_details(data, DG_TAGS[11], "DG11")
        return cls(
            full_name=_text(items.get(0x5F0E, b""), "utf-8", "DG11 full name"),
            personal_number=_text(items.get(0x5F10, b""), "utf-8", "DG11 personal number"),
            place_of_birth=_text(items.get(0x5F11, b""), "utf-8", "DG11 place of birth"),
            full_date_of_birth=_text(items.get(0x5F2B, b""), "ascii", "DG11 date of birth"),
        )


@dataclass(frozen=True)
class Dg12:
    """DG12 (6C): 5F19 issuing authority (UTF-8), 5F26 date of issue ``YYYYMMDD``."""

    issuing_authority: str
    date_of_issue: str

    def encode(self) -> bytes:
        return _details(
            DG_TAGS[12],
            [(0x5F19, self.issuing_authority.encode("utf-8")), (0x5F26, self.date_of_issue.encode("ascii"))],
        )

    @classmethod
    def parse(cls, data: bytes) -> Dg12:
        items = _read_details(data, DG_TAGS[12], "DG12")
        return cls(
            _text(items.get(0x5F19, b""), "utf-8", "DG12 issuing authority"),
            _text(items.get(0x5F26, b""), "ascii", "DG12 date of issue"),
        )


# --- DG14, DG15, EF.CardAccess: SecurityInfos and the AA key (9303-11 §9.2, 9303-10 §4.7.14-15) --


@dataclass(frozen=True)
class SecurityInfoSet:
    """A SecurityInfos SET with typed members (9303-11 §9.2); ``template`` 6E for DG14, 0 for EF.CardAccess."""

    infos: tuple[asn1.TypedSecurityInfo, ...]
    template: int = 0

    def encode(self) -> bytes:
        der = asn1.encode_security_infos(self.infos)
        return TLV(self.template, der).encode() if self.template else der

    @classmethod
    def parse(cls, data: bytes, template: int = 0) -> SecurityInfoSet:
        der = _unwrap(data, template, f"template {template:X}") if template else data
        try:
            return cls(tuple(asn1.parse_security_infos(der)), template)
        except _DECODE_ERRORS as exc:
            raise LdsError(f"SecurityInfos: {exc}") from None

    def of_type(self, cls: type[core.Sequence]) -> list[core.Sequence]:
        return [info for info in self.infos if type(info) is cls]


def pace_info(mapping: str, cipher: str, parameter_id: int) -> asn1.PACEInfo:
    """A PACEInfo, version 2, for a standardized parameter set (9303-11 §9.2, §9.5)."""
    return asn1.PACEInfo({"protocol": asn1.pace_oid(mapping, cipher), "version": 2, "parameter_id": parameter_id})


def chip_authentication_info(agreement: str, cipher: str, key_id: int | None = None) -> asn1.ChipAuthenticationInfo:
    """ChipAuthenticationInfo version 1 (9303-11 §9.2)."""
    value: dict[str, object] = {"protocol": asn1.ca_oid(agreement, cipher), "version": 1}
    if key_id is not None:
        value["key_id"] = key_id
    return asn1.ChipAuthenticationInfo(value)


def chip_authentication_public_key_info(
    public_key: ec.EllipticCurvePublicKey, key_id: int | None = None
) -> asn1.ChipAuthenticationPublicKeyInfo:
    """ChipAuthenticationPublicKeyInfo id-PK-ECDH with a named-curve SubjectPublicKeyInfo (9303-11 §9.2)."""
    spki = keys.PublicKeyInfo.load(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    value: dict[str, object] = {"protocol": asn1.ID_PK_ECDH, "chip_authentication_public_key": spki}
    if key_id is not None:
        value["key_id"] = key_id
    return asn1.ChipAuthenticationPublicKeyInfo(value)


def active_authentication_info(signature_algorithm: str = asn1.ECDSA_PLAIN_SHA256) -> asn1.ActiveAuthenticationInfo:
    """ActiveAuthenticationInfo version 1 naming the ECDSA AA signature algorithm (9303-11 §9.2)."""
    return asn1.ActiveAuthenticationInfo(
        {"protocol": asn1.ID_AA_PROTOCOL, "version": 1, "signature_algorithm": signature_algorithm}
    )


@dataclass(frozen=True)
class Dg15:
    """DG15 (6F): the Active Authentication public key as a SubjectPublicKeyInfo (9303-10 §4.7.15)."""

    subject_public_key_info: bytes

    @classmethod
    def from_key(cls, public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> Dg15:
        return cls(public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    def encode(self) -> bytes:
        return TLV(DG_TAGS[15], self.subject_public_key_info).encode()

    @classmethod
    def parse(cls, data: bytes) -> Dg15:
        der = _unwrap(data, DG_TAGS[15], "DG15")
        try:
            keys.PublicKeyInfo.load(der, strict=True).native  # noqa: B018  (validate)
        except _DECODE_ERRORS as exc:
            raise LdsError(f"DG15: {exc}") from None
        return cls(der)

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(self.subject_public_key_info)
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise LdsError("DG15: AA key is neither RSA nor EC")
        return key


# --- CMS SignedData: EF.SOD, EF.CardSecurity, master lists (RFC 5652, 9303-12 §4) ----------------

SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def build_signed_data(
    content_type: str,
    content: bytes,
    signer_cert: x509.Certificate,
    signer_key: SignerKey,
    certificates: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
    signing_time: dt.datetime | None = None,
) -> bytes:
    """A DER ContentInfo with SignedData v3 over ``content`` (RFC 5652 §5; 9303-12 §4).

    One SignerInfo (v1, issuerAndSerialNumber) with the signed attributes contentType and
    messageDigest (plus signingTime if given); ``certificates`` are included (the signer first).
    ECDSA keys sign with ecdsa-with-SHA*, RSA keys with PKCS#1 v1.5.
    """
    algorithm = _HASHES[digest]
    attributes = [
        {"type": "content_type", "values": [content_type]},
        {"type": "message_digest", "values": [hashlib.new(digest, content).digest()]},
    ]
    if signing_time is not None:
        attributes.append({"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]})
    signed_attrs = cms.CMSAttributes(attributes)
    to_sign = signed_attrs.dump()
    if isinstance(signer_key, ec.EllipticCurvePrivateKey):
        signature = signer_key.sign(to_sign, ec.ECDSA(algorithm))
        signature_algorithm = f"{digest}_ecdsa"
    else:
        signature = signer_key.sign(to_sign, padding.PKCS1v15(), algorithm)
        signature_algorithm = f"{digest}_rsa"
    signer = asn1_x509.Certificate.load(signer_cert.public_bytes(serialization.Encoding.DER))
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": signer.issuer, "serial_number": signer.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": digest},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": signature_algorithm},
            "signature": signature,
        }
    )
    included = [signer_cert, *(c for c in certificates if c != signer_cert)]
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {"content_type": content_type, "content": content},
            "certificates": [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in included],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


@dataclass(frozen=True)
class SignedDataView:
    """The parts of a CMS SignedData a verifier needs, decoded without judging them (RFC 5652 §5)."""

    content_type: str
    content: bytes
    certificates: tuple[bytes, ...]
    digest_algorithm: str
    signature_algorithm: str
    signed_attributes: bytes  # DER with the SET tag 31, i.e. what the signature covers
    message_digest: bytes
    signature: bytes
    signer_issuer: bytes  # DER of the issuer Name, or b"" when the signer is named by SKI
    signer_serial: int | None
    signer_key_identifier: bytes | None = field(default=None)

    @classmethod
    def parse(cls, der: bytes) -> SignedDataView:
        try:
            info = cms.ContentInfo.load(der, strict=True)
            if info["content_type"].native != "signed_data":
                raise LdsError(f"ContentInfo holds {info['content_type'].dotted}, not SignedData")
            signed = info["content"]
            encap = signed["encap_content_info"]
            if len(signed["signer_infos"]) != 1:
                raise LdsError(f"{len(signed['signer_infos'])} SignerInfos, expected exactly one")
            signer = signed["signer_infos"][0]
            attrs = signer["signed_attrs"]
            digests = [a["values"][0].native for a in attrs if a["type"].native == "message_digest"]
            content_types = [a["values"][0].dotted for a in attrs if a["type"].native == "content_type"]
            if len(digests) != 1 or len(content_types) != 1:
                raise LdsError("signed attributes need one messageDigest and one contentType")
            if content_types[0] != encap["content_type"].dotted:
                raise LdsError("signed contentType attribute differs from eContentType")
            sid = signer["sid"]
            issuer, serial, ski = b"", None, None
            if sid.name == "issuer_and_serial_number":
                issuer, serial = sid.chosen["issuer"].dump(), sid.chosen["serial_number"].native
            else:
                ski = sid.chosen.native
            content = encap["content"]
            return cls(
                content_type=encap["content_type"].dotted,
                content=content.contents if content.native is not None else b"",
                certificates=tuple(c.chosen.dump() for c in signed["certificates"] or ()),
                digest_algorithm=signer["digest_algorithm"]["algorithm"].native,
                signature_algorithm=signer["signature_algorithm"]["algorithm"].native,
                signed_attributes=cms.CMSAttributes(list(attrs)).dump(force=True),
                message_digest=digests[0],
                signature=signer["signature"].native,
                signer_issuer=issuer,
                signer_serial=serial,
                signer_key_identifier=ski,
            )
        except _DECODE_ERRORS as exc:
            if isinstance(exc, LdsError):
                raise
            raise LdsError(f"CMS SignedData: {exc}") from None


@dataclass(frozen=True)
class LdsSecurityObject:
    """The LDSSecurityObject (v0): hash algorithm and the hash of each data group (9303-10 §4.6.2)."""

    hash_algorithm: str
    hashes: Mapping[int, bytes]

    @classmethod
    def over(cls, data_groups: Mapping[int, bytes], hash_algorithm: str = "sha256") -> LdsSecurityObject:
        """Hash every data group's whole file content (template tag included)."""
        return cls(
            hash_algorithm, {n: hashlib.new(hash_algorithm, data_groups[n]).digest() for n in sorted(data_groups)}
        )

    def encode(self) -> bytes:
        return asn1.LDSSecurityObject(
            {
                "version": 0,
                "hash_algorithm": {"algorithm": self.hash_algorithm},
                "data_group_hash_values": [
                    {"data_group_number": n, "data_group_hash_value": h} for n, h in sorted(self.hashes.items())
                ],
            }
        ).dump()

    @classmethod
    def parse(cls, der: bytes) -> LdsSecurityObject:
        try:
            obj = asn1.LDSSecurityObject.load(der, strict=True)
            return cls(
                obj["hash_algorithm"]["algorithm"].native,
                {
                    h["data_group_number"].native: h["data_group_hash_value"].native
                    for h in obj["data_group_hash_values"]
                },
            )
        except _DECODE_ERRORS as exc:
            raise LdsError(f"LDSSecurityObject: {exc}") from None


@dataclass(frozen=True)
class Sod:
    """EF.SOD: template 77 around a ContentInfo SignedData whose eContent is an LDSSecurityObject."""

    signed_data: bytes  # the DER ContentInfo

    @classmethod
    def sign(
        cls,
        data_groups: Mapping[int, bytes],
        signer_cert: x509.Certificate,
        signer_key: SignerKey,
        hash_algorithm: str = "sha256",
    ) -> Sod:
        """Sign the hashes of ``data_groups`` (number -> file bytes) with a Document Signer (9303-12 §4)."""
        content = LdsSecurityObject.over(data_groups, hash_algorithm).encode()
        return cls(build_signed_data(asn1.ID_LDS_SECURITY_OBJECT, content, signer_cert, signer_key, (), hash_algorithm))

    def encode(self) -> bytes:
        return TLV(TAG_SOD, self.signed_data).encode()

    @classmethod
    def parse(cls, data: bytes) -> Sod:
        return cls(_unwrap(data, TAG_SOD, "EF.SOD"))

    def view(self) -> SignedDataView:
        return SignedDataView.parse(self.signed_data)

    def security_object(self) -> LdsSecurityObject:
        view = self.view()
        if view.content_type != asn1.ID_LDS_SECURITY_OBJECT:
            raise LdsError(f"EF.SOD eContentType {view.content_type}, expected {asn1.ID_LDS_SECURITY_OBJECT}")
        return LdsSecurityObject.parse(view.content)


def build_card_security(infos: Sequence[core.Sequence], signer_cert: x509.Certificate, signer_key: SignerKey) -> bytes:
    """EF.CardSecurity: SecurityInfos signed in CMS SignedData, eContentType id-SecurityObject.

    As BSI TR-03110-3 Appendix A defines it and 9303-11 §9.2 requires for PACE-CAM: the chip's static
    key (ChipAuthenticationPublicKeyInfo) is authenticated by the Document Signer.
    """
    return build_signed_data(asn1.ID_SECURITY_OBJECT, asn1.encode_security_infos(infos), signer_cert, signer_key)


def build_master_list(
    csca_certificates: Sequence[x509.Certificate],
    signer_cert: x509.Certificate,
    signer_key: SignerKey,
    certificates: Sequence[x509.Certificate] = (),
) -> bytes:
    """A CSCA master list: CscaMasterList v0 in SignedData, eContentType id-icao-cscaMasterList (9303-12 §9)."""
    content = asn1.CscaMasterList(
        {
            "version": 0,
            "cert_list": [
                asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in csca_certificates
            ],
        }
    ).dump()
    return build_signed_data(asn1.ID_CSCA_MASTER_LIST, content, signer_cert, signer_key, certificates)


def parse_master_list(der: bytes) -> list[bytes]:
    """The DER CSCA certificates of a master list (signature not checked: see the verifier)."""
    view = SignedDataView.parse(der)
    if view.content_type != asn1.ID_CSCA_MASTER_LIST:
        raise LdsError(f"master list eContentType {view.content_type}, expected {asn1.ID_CSCA_MASTER_LIST}")
    try:
        master = asn1.CscaMasterList.load(view.content, strict=True)
        return [c.dump() for c in master["cert_list"]]
    except _DECODE_ERRORS as exc:
        raise LdsError(f"CscaMasterList: {exc}") from None
