"""eMRTD logical data structure: EF.COM, every data group, EF.SOD, EF.CardAccess, EF.CardSecurity (unit LDS).

The files are read under BAC or PACE secure messaging and decoded by the terminal's own
LDS codec (:mod:`eidemu.emulator.icao.lds`, :mod:`eidemu.emulator.icao.asn1`), as
ICAO Doc 9303-10 §4.6-§4.7 and 9303-11 §9.2 define them.
"""

from __future__ import annotations

from asn1crypto import cms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eidemu.emulator.icao import asn1 as icao_asn1
from eidemu.emulator.icao import lds
from eidemu.emulator.icao.oids import standardized_domain_parameters
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV, parse_all

from ..eid.passive import ID_LDS_SECURITY_OBJECT
from ..eid.reader import ID_SECURITY_OBJECT, pace_choices
from ..pythontests import CheckFailed, FlowContext
from .emrtd_common import emrtd_test, hexs, open_pace, open_session, read_lds

_DG_BY_TAG = {tag: number for number, tag in lds.DG_TAGS.items()}


def _tlv(data: bytes, tag: int, what: str) -> TLV:
    try:
        found = TLV.parse(data)
    except ValueError as exc:
        raise CheckFailed(f"{what} is not one BER-TLV: {exc}", f"{tag:X}", hexs(data[:4])) from None
    FlowContext.check(found.tag == tag, f"{what} template tag", f"{tag:X}", f"{found.tag:X}")
    FlowContext.check(len(found.encode()) == len(data), f"{what} is exactly one TLV", len(data), len(found.encode()))
    return found


@emrtd_test(
    "EMRTD_LDS_A_1",
    "EF.COM: template 60, LDS and Unicode versions, tag list",
    spec="ICAO Doc 9303-10 §4.6.1 (EF.COM: 5F01 LDS version, 5F36 Unicode version, 5C tag list)",
    purpose="EF.COM is one TLV 60 holding 5F01 (4 digits, LDS 1.7 '0107' or 1.8 '0108'), 5F36 (6 digits) and 5C.",
)
def lds_com(context: FlowContext) -> None:
    files = read_lds(open_session(context))
    _tlv(files.com, 0x60, "EF.COM")
    com = lds.EfCom.parse(files.com)
    FlowContext.check(com.lds_version in ("0107", "0108"), "LDS version (5F01)", "0107 or 0108", com.lds_version)
    FlowContext.check(
        len(com.unicode_version) == 6 and com.unicode_version.isdigit(),
        "Unicode version",
        "6 digits",
        com.unicode_version,
    )
    FlowContext.check(com.data_group_tags, "the tag list names data groups", "DG tags", "empty")
    unknown = [f"{t:02X}" for t in com.data_group_tags if t not in _DG_BY_TAG]
    FlowContext.check(not unknown, "every tag of 5C is a data group tag", "61..77", ", ".join(unknown))


@emrtd_test(
    "EMRTD_LDS_A_2",
    "EF.COM lists exactly the data groups present",
    spec="ICAO Doc 9303-10 §4.6.1 (the tag list names every data group present), §4.7",
    purpose="For DG1 to DG16, READ BINARY by SFI under the session answers the data group (90 00; 69 82 for a "
    "data group behind Extended Access Control such as DG3) exactly when EF.COM's tag list names it, and 6A 82 "
    "otherwise.",
)
def lds_com_lists_present(context: FlowContext) -> None:
    session = open_session(context)
    listed = {_DG_BY_TAG[t] for t in lds.EfCom.parse(session.read(lds.LdsFile.COM.sfi, "EF.COM")).data_group_tags}
    present = set()
    for number in range(1, 17):
        answer = session.channel.send(
            CommandAPDU(0x00, 0xB0, 0x80 | number, 0, b"", 1),
            f"READ BINARY DG{number}",
            accept=(0x9000, 0x6A82, 0x6982),
        )
        if answer.sw != 0x6A82:
            present.add(number)
    FlowContext.check(listed == present, "data groups listed in EF.COM vs present", sorted(listed), sorted(present))


@emrtd_test(
    "EMRTD_LDS_A_3",
    "EF.SOD hashes exactly the data groups of EF.COM",
    spec="ICAO Doc 9303-10 §4.6.2 (LDSSecurityObject: a hash for each data group present)",
    purpose="The data group numbers of the LDSSecurityObject are those EF.COM lists, the data groups behind "
    "Extended Access Control (69 82 under the session) included.",
)
def lds_sod_lists(context: FlowContext) -> None:
    files = read_lds(open_session(context))
    lso = _lso(files.sod)
    hashed = sorted(h["data_group_number"].native for h in lso["data_group_hash_values"])
    FlowContext.check(hashed == files.listed, "DGs in EF.SOD vs EF.COM", files.listed, hashed)


def _signed_data(sod: bytes) -> cms.SignedData:
    body = _tlv(sod, 0x77, "EF.SOD").value
    try:
        info = cms.ContentInfo.load(body, strict=True)
        FlowContext.check(
            info["content_type"].native == "signed_data", "ContentInfo type", "signedData", info["content_type"].dotted
        )
        return info["content"]
    except ValueError as exc:
        raise CheckFailed(f"EF.SOD is not a CMS ContentInfo: {exc}", "ContentInfo", hexs(body[:8])) from None


def _lso(sod: bytes) -> icao_asn1.LDSSecurityObject:
    signed = _signed_data(sod)
    try:
        return icao_asn1.LDSSecurityObject.load(signed["encap_content_info"]["content"].contents, strict=True)
    except ValueError as exc:
        raise CheckFailed(f"the LDSSecurityObject does not decode: {exc}", "LDSSecurityObject", "") from None


@emrtd_test(
    "EMRTD_LDS_B_1",
    "DG1: template 61 with the MRZ in 5F1F",
    spec="ICAO Doc 9303-10 §4.7.1 (DG1: 61 { 5F1F MRZ }); ICAO Doc 9303-5 §4.2 (TD1: 3 lines of 30)",
    purpose="DG1 is one TLV 61 holding 5F1F with 90 characters (TD1), 72 (TD2) or 88 (TD3) of the MRZ character set.",
)
def lds_dg1(context: FlowContext) -> None:
    dg1 = read_lds(open_session(context)).dg(1)
    inner = TLV.parse(_tlv(dg1, 0x61, "DG1").value)
    FlowContext.check(inner.tag == 0x5F1F, "DG1 holds 5F1F", "5F1F", f"{inner.tag:X}")
    text = inner.value.decode("latin-1")
    FlowContext.check(len(text) in (90, 72, 88), "MRZ length", "90, 72 or 88", len(text))
    bad = sorted({c for c in text if not (c.isdigit() or "A" <= c <= "Z" or c == "<")})
    FlowContext.check(not bad, "MRZ characters are 0-9, A-Z and <", "", "".join(bad))


@emrtd_test(
    "EMRTD_LDS_B_2",
    "DG1: the TD1 MRZ check digits",
    spec="ICAO Doc 9303-5 §4.2.2 (TD1 check digits), ICAO Doc 9303-3 §4.9 (7-3-1 weighting)",
    purpose="The TD1 MRZ of DG1 decodes with correct check digits: document number (with the extended number "
    "in the optional data), date of birth, date of expiry and the composite check digit.",
    tokens=("TD1",),
)
def lds_dg1_check_digits(context: FlowContext) -> None:
    dg1 = lds.Dg1.parse(read_lds(open_session(context)).dg(1))
    FlowContext.check(
        dg1.mrz.document_code[:1] in ("I", "A", "C"), "TD1 document code", "I, A or C", dg1.mrz.document_code
    )


@emrtd_test(
    "EMRTD_LDS_B_3",
    "DG1 matches the MRZ that opened the chip",
    spec="ICAO Doc 9303-11 §9.7.2 (the MRZ information: document number, birth and expiry dates); §4.3",
    purpose="The document number, date of birth and date of expiry of DG1 are those of the declared MRZ information.",
    tokens=("TD1",),
)
def lds_dg1_matches_mrz(context: FlowContext) -> None:
    mrz = lds.Dg1.parse(read_lds(open_session(context)).dg(1)).mrz
    declared = context.variable("MRZ_INFORMATION").decode("latin-1")
    got = (mrz.document_number, mrz.date_of_birth, mrz.date_of_expiry)
    want = (declared[:-15].rstrip("<"), declared[-14:-8], declared[-7:-1])
    FlowContext.check(got == want, "DG1 document number and dates", want, got)


@emrtd_test(
    "EMRTD_LDS_C_1",
    "DG2: biometric information template with an ISO/IEC 19794-5 header",
    spec="ICAO Doc 9303-10 §4.7.2 (DG2: 75 { 7F61 { 02 count, 7F60 { A1 header, 5F2E data } } }); ISO/IEC 7816-11",
    purpose="DG2 is 75 { 7F61 } with the instance count 02 matching the 7F60 templates, each with a biometric "
    "header A1 (80 version, 81 type 02 face, 87 format owner, 88 format type) and 5F2E or 7F2E data.",
)
def lds_dg2_templates(context: FlowContext) -> None:
    dg2 = read_lds(open_session(context)).dg(2)
    group = TLV.parse(_tlv(dg2, 0x75, "DG2").value)
    FlowContext.check(group.tag == 0x7F61, "DG2 holds 7F61", "7F61", f"{group.tag:X}")
    parsed = lds.Dg2.parse(dg2)
    FlowContext.check(parsed.faces, "DG2 holds at least one face", ">= 1", 0)


@emrtd_test(
    "EMRTD_LDS_C_2",
    "DG2: the face image record (ISO/IEC 19794-5)",
    spec="ISO/IEC 19794-5:2005 §5.4 (facial record header 'FAC' 00, version '010' 00), §5.7 (image data); "
    "ICAO Doc 9303-10 §4.7.2",
    purpose="The first biometric data block starts 'FAC' 00 '010' 00, its record length matches, and the image "
    "is a JPEG (FF D8) or JPEG 2000 with a width and height.",
)
def lds_dg2_record(context: FlowContext) -> None:
    dg2 = read_lds(open_session(context)).dg(2)
    block = _first(_first(_first(_first(dg2, 0x75), 0x7F61), 0x7F60), 0x5F2E)
    FlowContext.check(block[:8] == b"FAC\x00010\x00", "facial record header", "FAC 00 010 00", hexs(block[:8]))
    face = lds.Dg2.parse(dg2).faces[0]
    magic = face.image[:4]
    FlowContext.check(
        magic[:2] == b"\xff\xd8" or magic == b"\x00\x00\x00\x0c" or magic[:2] == b"\xff\x4f",
        "image is JPEG or JPEG 2000",
        "FF D8 / 00 00 00 0C / FF 4F",
        hexs(magic),
    )
    FlowContext.check(face.width > 0 and face.height > 0, "image width and height", "> 0", (face.width, face.height))


def _first(data: bytes, tag: int) -> bytes:
    """The value of the first data object ``tag`` among the BER-TLVs of ``data``."""
    objects = parse_all(data)
    found = next((o for o in objects if o.tag == tag), None)
    if found is None:
        raise CheckFailed(f"no data object {tag:X}", f"{tag:X}", " ".join(f"{o.tag:X}" for o in objects))
    return found.value


def _tag_list_matches(data: bytes, template: int, what: str) -> dict[int, bytes]:
    outer = _tlv(data, template, what)
    objects = parse_all(outer.value)
    FlowContext.check(objects and objects[0].tag == 0x5C, f"{what} starts with the tag list 5C", "5C", "")
    listed, i = [], 0
    value = objects[0].value
    while i < len(value):
        tag_len = 2 if value[i] & 0x1F == 0x1F else 1
        listed.append(int.from_bytes(value[i : i + tag_len], "big"))
        i += tag_len
    present = [o.tag for o in objects[1:]]
    FlowContext.check(listed == present, f"{what}: the tag list names the fields present", listed, present)
    return {o.tag: o.value for o in objects[1:]}


@emrtd_test(
    "EMRTD_LDS_D_1",
    "DG11: template 6B and its tag list",
    spec="ICAO Doc 9303-10 §4.7.11 (DG11: 6B { 5C tag list, 5F0E, 5F10, 5F11, 5F2B, ... })",
    purpose="DG11 is 6B with a tag list 5C naming exactly the fields that follow, in order.",
    tokens=("LDS-DG11",),
)
def lds_dg11(context: FlowContext) -> None:
    _tag_list_matches(read_lds(open_session(context)).dg(11), 0x6B, "DG11")


@emrtd_test(
    "EMRTD_LDS_D_2",
    "DG11: the fields decode",
    spec="ICAO Doc 9303-10 §4.7.11 (5F0E full name UTF-8, 5F2B full date of birth YYYYMMDD)",
    purpose="The full name is non-empty UTF-8, and the full date of birth, if present, is 8 digits.",
    tokens=("LDS-DG11",),
)
def lds_dg11_fields(context: FlowContext) -> None:
    dg11 = lds.Dg11.parse(read_lds(open_session(context)).dg(11))
    FlowContext.check(dg11.full_name, "full name (5F0E)", "non-empty", "empty")
    birth = dg11.full_date_of_birth
    FlowContext.check(
        not birth or (len(birth) == 8 and birth.isdigit()), "full date of birth (5F2B)", "YYYYMMDD", birth
    )


@emrtd_test(
    "EMRTD_LDS_E_1",
    "DG12: template 6C, tag list and date of issue",
    spec="ICAO Doc 9303-10 §4.7.12 (DG12: 6C { 5C, 5F19 issuing authority, 5F26 date of issue YYYYMMDD })",
    purpose="DG12 is 6C with a tag list naming exactly the fields present; the date of issue is 8 digits.",
    tokens=("LDS-DG12",),
)
def lds_dg12(context: FlowContext) -> None:
    fields = _tag_list_matches(read_lds(open_session(context)).dg(12), 0x6C, "DG12")
    issue = fields.get(0x5F26, b"").decode("latin-1")
    FlowContext.check(not issue or (len(issue) == 8 and issue.isdigit()), "date of issue (5F26)", "YYYYMMDD", issue)


@emrtd_test(
    "EMRTD_LDS_F_1",
    "DG14: SecurityInfos with the Chip Authentication key",
    spec="ICAO Doc 9303-10 §4.7.14; ICAO Doc 9303-11 §9.2 (SecurityInfos), §9.2.5-§9.2.6 (ChipAuthenticationInfo, "
    "ChipAuthenticationPublicKeyInfo)",
    purpose="DG14 is 6E { SET OF SecurityInfo } (DER) with a ChipAuthenticationInfo version 1 and a "
    "ChipAuthenticationPublicKeyInfo whose key decodes.",
    tokens=("CA",),
)
def lds_dg14(context: FlowContext) -> None:
    dg14 = read_lds(open_session(context)).dg(14)
    _tlv(dg14, 0x6E, "DG14")
    infos = lds.SecurityInfoSet.parse(dg14, lds.DG_TAGS[14])
    ca = infos.of_type(icao_asn1.ChipAuthenticationInfo)
    keys = infos.of_type(icao_asn1.ChipAuthenticationPublicKeyInfo)
    FlowContext.check(ca and ca[0]["version"].native == 1, "ChipAuthenticationInfo version 1", "1", len(ca))
    FlowContext.check(keys, "ChipAuthenticationPublicKeyInfo", "present", "absent")


@emrtd_test(
    "EMRTD_LDS_F_2",
    "DG14 repeats the PACEInfos of EF.CardAccess",
    spec="ICAO Doc 9303-11 §9.2.1 (PACE SecurityInfos in EF.CardAccess and, signed, in DG14 / EF.CardSecurity)",
    purpose="Every PACEInfo of EF.CardAccess is also in DG14, so passive authentication covers the parameters.",
    tokens=("CA", "PACE"),
)
def lds_dg14_pace(context: FlowContext) -> None:
    session = open_pace(context, "CAN" if "CAN" in context.variables else "MRZ")
    assert session.card_access is not None
    dg14 = read_lds(session).dg(14)
    access = {i.dump() for i in lds.SecurityInfoSet.parse(session.card_access).of_type(icao_asn1.PACEInfo)}
    signed = {i.dump() for i in lds.SecurityInfoSet.parse(dg14, lds.DG_TAGS[14]).of_type(icao_asn1.PACEInfo)}
    FlowContext.check(access <= signed, "PACEInfos of EF.CardAccess in DG14", len(access), len(access & signed))


@emrtd_test(
    "EMRTD_LDS_G_1",
    "DG15: the Active Authentication public key",
    spec="ICAO Doc 9303-10 §4.7.15 (DG15: 6F { SubjectPublicKeyInfo }); ICAO Doc 9303-11 §6.1",
    purpose="DG15 is 6F holding one DER SubjectPublicKeyInfo: RSA of at least 1024 bits, or EC on a named curve.",
    tokens=("AA",),
)
def lds_dg15(context: FlowContext) -> None:
    dg15 = read_lds(open_session(context)).dg(15)
    spki = _tlv(dg15, 0x6F, "DG15").value
    try:
        key = serialization.load_der_public_key(spki)
    except ValueError as exc:
        raise CheckFailed(f"DG15 holds no SubjectPublicKeyInfo: {exc}", "SPKI", hexs(spki[:8])) from None
    if isinstance(key, rsa.RSAPublicKey):
        FlowContext.check(key.key_size >= 1024, "RSA modulus", ">= 1024 bits", key.key_size)
    else:
        FlowContext.check(isinstance(key, ec.EllipticCurvePublicKey), "DG15 key type", "RSA or EC", type(key).__name__)


@emrtd_test(
    "EMRTD_LDS_G_2",
    "DG14 names the ECDSA Active Authentication algorithm",
    spec="ICAO Doc 9303-11 §9.2.10 (ActiveAuthenticationInfo, required for ECDSA), §6.1",
    purpose="With an EC key in DG15, DG14 holds an ActiveAuthenticationInfo whose signatureAlgorithm is an "
    "ecdsa-plain-SHA* OID (0.4.0.127.0.7.1.1.4.1.x).",
    tokens=("AA-ECDSA",),
)
def lds_aa_info(context: FlowContext) -> None:
    dg14 = read_lds(open_session(context)).dg(14)
    infos = lds.SecurityInfoSet.parse(dg14, lds.DG_TAGS[14]).of_type(icao_asn1.ActiveAuthenticationInfo)
    FlowContext.check(infos, "ActiveAuthenticationInfo in DG14", "present", "absent")
    oid = infos[0]["signature_algorithm"].dotted
    FlowContext.check(oid.startswith("0.4.0.127.0.7.1.1.4.1."), "signatureAlgorithm", "ecdsa-plain-*", oid)


@emrtd_test(
    "EMRTD_LDS_H_1",
    "EF.SOD: template 77, CMS SignedData with the Document Signer certificate",
    spec="ICAO Doc 9303-10 §4.6.2 (EF.SOD: 77 { ContentInfo }); RFC 5652 §5.1; ICAO Doc 9303-12 §7",
    purpose="EF.SOD is 77 holding a ContentInfo signedData, version 3, eContentType id-icao-mrtd-security-"
    "ldsSecurityObject (2.23.136.1.1.1), one SignerInfo and the Document Signer certificate included.",
)
def lds_sod(context: FlowContext) -> None:
    signed = _signed_data(read_lds(open_session(context)).sod)
    FlowContext.check(signed["version"].native == "v3", "SignedData version", "v3", signed["version"].native)
    content_type = signed["encap_content_info"]["content_type"].dotted
    FlowContext.check(content_type == ID_LDS_SECURITY_OBJECT, "eContentType", ID_LDS_SECURITY_OBJECT, content_type)
    FlowContext.check(len(signed["signer_infos"]) == 1, "SignerInfos", 1, len(signed["signer_infos"]))
    FlowContext.check(len(signed["certificates"] or ()) >= 1, "certificates included", ">= 1", 0)


@emrtd_test(
    "EMRTD_LDS_H_2",
    "EF.SOD: the LDSSecurityObject",
    spec="ICAO Doc 9303-10 §4.6.2.2 (LDSSecurityObject v0 or v1, hash algorithm, DataGroupHash per DG)",
    purpose="The LDSSecurityObject is version 0 (or 1 with ldsVersionInfo), its hash algorithm SHA-1/224/256/384/"
    "512, and every hash value has that algorithm's length.",
)
def lds_lso(context: FlowContext) -> None:
    lso = _lso(read_lds(open_session(context)).sod)
    version = lso["version"].native
    FlowContext.check(version in ("v0", "v1", 0, 1), "LDSSecurityObject version", "v0 or v1", version)
    sizes = {"sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}
    algorithm = lso["hash_algorithm"]["algorithm"].native
    FlowContext.check(algorithm in sizes, "hash algorithm", "SHA-1/224/256/384/512", algorithm)
    wrong = [
        h["data_group_number"].native
        for h in lso["data_group_hash_values"]
        if len(h["data_group_hash_value"].native) != sizes[algorithm]
    ]
    FlowContext.check(not wrong, f"every hash has {sizes[algorithm]} bytes", "all", wrong)


@emrtd_test(
    "EMRTD_LDS_I_1",
    "EF.CardAccess: PACEInfos version 2 with standardized parameters",
    spec="ICAO Doc 9303-11 §9.2.1 (PACEInfo: protocol, version 2, parameterId), §9.5.1; ICAO Doc 9303-10 §3.11.1",
    purpose="EF.CardAccess is a DER SET OF SecurityInfo; every PACEInfo has version 2 and a standardized "
    "parameter ID that suits its key agreement, and at least one is usable.",
    tokens=("PACE",),
)
def lds_card_access(context: FlowContext) -> None:
    from .emrtd_common import card_access, system_for

    data = card_access(system_for(context))
    FlowContext.check(data[:1] == b"\x31", "EF.CardAccess is a SET", "31", hexs(data[:1]))
    infos = lds.SecurityInfoSet.parse(data).of_type(icao_asn1.PACEInfo)
    FlowContext.check(infos, "PACEInfos", ">= 1", 0)
    for info in infos:
        FlowContext.check(info["version"].native == 2, "PACEInfo version", 2, info["version"].native)
        standardized_domain_parameters(info["parameter_id"].native)
    FlowContext.check(pace_choices(data), "a usable PACEInfo", ">= 1", 0)


@emrtd_test(
    "EMRTD_LDS_I_2",
    "EF.CardSecurity: signed SecurityInfos with the chip key",
    spec="ICAO Doc 9303-11 §9.2 (EF.CardSecurity, required for PACE-CAM); BSI TR-03110-3 Appendix A.1.2 "
    "(id-SecurityObject 0.4.0.127.0.7.3.2.1)",
    purpose="After PACE-CAM, EF.CardSecurity is a CMS SignedData with eContentType id-SecurityObject whose "
    "SecurityInfos hold a ChipAuthenticationPublicKeyInfo and the PACEInfos of EF.CardAccess.",
    tokens=("PACE-CAM", "PACE-CAN", "PACE-CAM-AES128-13"),
)
def lds_card_security(context: FlowContext) -> None:
    from eidemu.emulator.icao.oids import ID_PACE

    from .emrtd_common import pace_choice

    session = open_pace(context, "CAN", pace_choice(f"{ID_PACE}.6.2", 13), select=False)
    data = session.read(0x1D, "EF.CardSecurity")
    info = cms.ContentInfo.load(data)
    content_type = info["content"]["encap_content_info"]["content_type"].dotted
    FlowContext.check(content_type == ID_SECURITY_OBJECT, "eContentType", ID_SECURITY_OBJECT, content_type)
    infos = lds.SecurityInfoSet.parse(info["content"]["encap_content_info"]["content"].contents)
    FlowContext.check(
        infos.of_type(icao_asn1.ChipAuthenticationPublicKeyInfo), "ChipAuthenticationPublicKeyInfo", "present", "absent"
    )
    assert session.card_access is not None
    access = {i.dump() for i in lds.SecurityInfoSet.parse(session.card_access).of_type(icao_asn1.PACEInfo)}
    signed = {i.dump() for i in infos.of_type(icao_asn1.PACEInfo)}
    FlowContext.check(access <= signed, "PACEInfos of EF.CardAccess signed", len(access), len(access & signed))


@emrtd_test(
    "EMRTD_LDS_J_1",
    "a data group read by file identifier equals the one read by SFI",
    spec="ICAO Doc 9303-10 §4.6-§4.7 (FID 01 01 and SFI 01 name DG1); ISO/IEC 7816-4:2020 §11.1.1, §11.2.3",
    purpose="SELECT DG1 (01 01) and READ BINARY return the same bytes as READ BINARY with SFI 01.",
)
def lds_fid_sfi(context: FlowContext) -> None:
    session = open_session(context)
    by_sfi = session.read(1, "DG1")
    session.send(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, b"\x01\x01"), "SELECT DG1")
    by_fid = session.send(CommandAPDU(0x00, 0xB0, 0x00, 0x00, b"", len(by_sfi)), "READ BINARY DG1")
    FlowContext.check(by_fid == by_sfi, "DG1 by FID vs by SFI", hexs(by_sfi), hexs(by_fid))


@emrtd_test(
    "EMRTD_LDS_J_2",
    "a large data group reads in short chunks",
    spec="ICAO Doc 9303-10 §4.7.2; ISO/IEC 7816-4:2020 §11.2.3 (READ BINARY with offsets in P1-P2)",
    purpose="DG2 read in chunks of 223 bytes (short Le under secure messaging) equals DG2 read with extended length.",
)
def lds_chunks(context: FlowContext) -> None:
    session = open_session(context)
    whole = session.read(2, "DG2")
    session.channel.chunk = 0xDF
    chunked = session.read(2, "DG2 in chunks")
    FlowContext.check(chunked == whole, "DG2 in short chunks", len(whole), len(chunked))
