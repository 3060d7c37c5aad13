"""ASN.1 structures of the eMRTD chip: SecurityInfos, the LDS security object and the CSCA master list.

Each class names the ICAO Doc 9303 (8th edition, 2021) clause that defines it:

* SecurityInfos and their members (PACEInfo, PACEDomainParameterInfo, ChipAuthenticationInfo,
  ChipAuthenticationPublicKeyInfo, ActiveAuthenticationInfo, TerminalAuthenticationInfo):
  9303-11 §9.2, with the BSI TR-03110-3 Appendix A definitions they are taken from;
* LDSSecurityObject: 9303-10 §4.6.2 (EF.SOD);
* CscaMasterList: 9303-12 §9.

Only :mod:`asn1crypto` is used; encoding is DER, ``SET OF`` sorted by asn1crypto. The helpers at
the end turn raw bytes into typed objects (``parse_security_infos``) and back
(``encode_security_infos``); decoding is usable from the terminal side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asn1crypto import algos, core, keys
from asn1crypto import x509 as asn1_x509

# Object identifiers: one table for the codec, in oids.py.
from .oids import (  # noqa: F401  (re-exported for the LDS builders)
    BSI_DE,
    ECDSA_PLAIN_SHA256,
    ECDSA_PLAIN_SHA384,
    ECDSA_PLAIN_SHA512,
    ECDSA_PLAIN_SIGNATURES,
    ID_AA,
    ID_CA,
    ID_CA_DH,
    ID_CA_ECDH,
    ID_CSCA_MASTER_LIST,
    ID_CSCA_MASTER_LIST_SIGNING_KEY,
    ID_DOCUMENT_TYPE_LIST,
    ID_ICAO_MRTD_SECURITY,
    ID_LDS_SECURITY_OBJECT,
    ID_PACE,
    ID_PACE_DH_GM,
    ID_PACE_DH_IM,
    ID_PACE_ECDH_CAM,
    ID_PACE_ECDH_GM,
    ID_PACE_ECDH_IM,
    ID_PK,
    ID_PK_DH,
    ID_PK_ECDH,
    ID_SECURITY_OBJECT,
    ID_TA,
)

ICAO_MRTD_SECURITY = ID_ICAO_MRTD_SECURITY
ID_AA_PROTOCOL = ID_AA
# The cipher suffixes shared by id-PACE-*, id-CA-*: 1 = 3DES-CBC-CBC, 2/3/4 = AES-CBC-CMAC-128/192/256.
CIPHER_SUFFIXES = {"3DES": 1, "AES-128": 2, "AES-192": 3, "AES-256": 4}


def pace_oid(mapping: str, cipher: str) -> str:
    """id-PACE-<mapping>-<cipher>, e.g. ``pace_oid("ECDH-GM", "AES-128")`` (9303-11 §9.2)."""
    base = {
        "DH-GM": ID_PACE_DH_GM,
        "ECDH-GM": ID_PACE_ECDH_GM,
        "DH-IM": ID_PACE_DH_IM,
        "ECDH-IM": ID_PACE_ECDH_IM,
        "ECDH-CAM": ID_PACE_ECDH_CAM,
    }[mapping]
    if mapping == "ECDH-CAM" and cipher == "3DES":
        raise ValueError("PACE-CAM is defined with AES only (9303-11 §9.2)")
    return f"{base}.{CIPHER_SUFFIXES[cipher]}"


def ca_oid(agreement: str, cipher: str) -> str:
    """id-CA-<DH|ECDH>-<cipher> (9303-11 §9.2)."""
    return f"{ID_CA_DH if agreement == 'DH' else ID_CA_ECDH}.{CIPHER_SUFFIXES[cipher]}"


# --- SecurityInfos (9303-11 §9.2) --------------------------------------------------------------


class SecurityInfo(core.Sequence):
    """SecurityInfo ::= SEQUENCE { protocol OID, requiredData ANY, optionalData ANY OPTIONAL } (9303-11 §9.2)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("required_data", core.Any),
        ("optional_data", core.Any, {"optional": True}),
    ]


class SecurityInfos(core.SetOf):
    """SecurityInfos ::= SET OF SecurityInfo (9303-11 §9.2): content of EF.CardAccess and DG14."""

    _child_spec = SecurityInfo


class PACEInfo(core.Sequence):
    """PACEInfo: protocol id-PACE-*, version INTEGER (2), parameterId INTEGER OPTIONAL (9303-11 §9.2).

    parameterId names a standardized domain parameter set (9303-11 §9.2, e.g. 13 = brainpoolP256r1).
    """

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("parameter_id", core.Integer, {"optional": True}),
    ]


class AlgorithmIdentifier(core.Sequence):
    """AlgorithmIdentifier (RFC 5280 §4.1.1.2) with the parameters kept as they are encoded."""

    _fields = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class PACEDomainParameterInfo(core.Sequence):
    """PACEDomainParameterInfo: protocol id-PACE-DH-*/ECDH-*, domainParameter, parameterId (9303-11 §9.2)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("domain_parameter", AlgorithmIdentifier),
        ("parameter_id", core.Integer, {"optional": True}),
    ]


class ChipAuthenticationInfo(core.Sequence):
    """ChipAuthenticationInfo: protocol id-CA-*, version INTEGER (1), keyId OPTIONAL (9303-11 §9.2)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("key_id", core.Integer, {"optional": True}),
    ]


class ChipAuthenticationPublicKeyInfo(core.Sequence):
    """ChipAuthenticationPublicKeyInfo: id-PK-DH/ECDH, a SubjectPublicKeyInfo, keyId OPTIONAL (9303-11 §9.2)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("chip_authentication_public_key", keys.PublicKeyInfo),
        ("key_id", core.Integer, {"optional": True}),
    ]


class ActiveAuthenticationInfo(core.Sequence):
    """ActiveAuthenticationInfo: id-icao-mrtd-security-aaProtocolObject, version (1), signatureAlgorithm.

    Present in DG14 when Active Authentication uses ECDSA (9303-11 §9.2); the signature
    algorithm is a plain-ECDSA OID of BSI TR-03111 (``ecdsa-plain-SHA256`` ...).
    """

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class TerminalAuthenticationInfo(core.Sequence):
    """TerminalAuthenticationInfo: id-TA, version INTEGER (1 or 2), efCVCA FileID OPTIONAL (9303-11 §9.2)."""

    _fields = [
        ("protocol", core.ObjectIdentifier),
        ("version", core.Integer),
        ("ef_cvca", core.Any, {"optional": True}),
    ]


TypedSecurityInfo = (
    PACEInfo
    | PACEDomainParameterInfo
    | ChipAuthenticationInfo
    | ChipAuthenticationPublicKeyInfo
    | ActiveAuthenticationInfo
    | TerminalAuthenticationInfo
    | SecurityInfo
)


def _specific_class(protocol: str) -> type[core.Sequence]:
    """The SecurityInfo subtype a protocol OID selects (9303-11 §9.2); SecurityInfo if unknown."""
    parent = protocol.rsplit(".", 1)[0]
    if parent in (ID_PACE_DH_GM, ID_PACE_ECDH_GM, ID_PACE_DH_IM, ID_PACE_ECDH_IM, ID_PACE_ECDH_CAM):
        return PACEInfo
    if protocol in (ID_PACE_DH_GM, ID_PACE_ECDH_GM, ID_PACE_DH_IM, ID_PACE_ECDH_IM, ID_PACE_ECDH_CAM):
        return PACEDomainParameterInfo
    if parent in (ID_CA_DH, ID_CA_ECDH):
        return ChipAuthenticationInfo
    if protocol in (ID_PK_DH, ID_PK_ECDH):
        return ChipAuthenticationPublicKeyInfo
    if protocol == ID_AA_PROTOCOL:
        return ActiveAuthenticationInfo
    if protocol == ID_TA:
        return TerminalAuthenticationInfo
    return SecurityInfo


def parse_security_infos(der: bytes) -> list[TypedSecurityInfo]:
    """Decode a SecurityInfos SET into typed members, in encoded order (9303-11 §9.2).

    Unknown protocols stay generic :class:`SecurityInfo` objects, as a reader must ignore them.
    Raises ``ValueError`` on malformed DER.
    """
    infos = SecurityInfos.load(der, strict=True)
    result: list[TypedSecurityInfo] = []
    for info in infos:
        cls = _specific_class(info["protocol"].dotted)
        typed = cls.load(info.dump(), strict=True)
        typed.native  # noqa: B018  (force a full parse so malformed members fail here)
        result.append(typed)
    return result


def encode_security_infos(infos: Iterable[core.Sequence]) -> bytes:
    """DER of ``SecurityInfos`` holding ``infos`` (sorted, as DER requires for SET OF)."""
    return SecurityInfos([SecurityInfo.load(info.dump()) for info in infos]).dump(force=True)


# --- LDS security object (9303-10 §4.6.2) -----------------------------------------------------


class DataGroupHash(core.Sequence):
    """DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER (1..16), dataGroupHashValue OCTET STRING }."""

    _fields = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):
    _child_spec = DataGroupHash


class LDSVersionInfo(core.Sequence):
    """LDSVersionInfo ::= SEQUENCE { ldsVersion PrintableString, unicodeVersion PrintableString } (LDS 1.8)."""

    _fields = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LDSSecurityObject(core.Sequence):
    """LDSSecurityObject: version (v0 for LDS 1.7), hashAlgorithm, dataGroupHashValues (9303-10 §4.6.2).

    The optional ldsVersionInfo belongs to version v1 (LDS 1.8); this project writes v0.
    """

    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LDSVersionInfo, {"optional": True}),
    ]


# --- CSCA master list (9303-12 §9) --------------------------------------------------------------


class CertificateSet(core.SetOf):
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):
    """CscaMasterList ::= SEQUENCE { version INTEGER (v0), certList SET OF Certificate } (9303-12 §9)."""

    _fields = [
        ("version", core.Integer),
        ("cert_list", CertificateSet),
    ]


class DocumentTypeList(core.Sequence):
    """DocumentTypeListSyntax: version (0), docTypeList SET OF PrintableString (9303-12 §7.1)."""

    class _DocTypes(core.SetOf):
        _child_spec = core.PrintableString

    _fields = [
        ("version", core.Integer),
        ("doc_type_list", _DocTypes),
    ]


def encode_document_type_list(types: Sequence[str]) -> bytes:
    """The documentTypeList extension value for a Document Signer certificate (9303-12 §7.1)."""
    return DocumentTypeList({"version": 0, "doc_type_list": list(types)}).dump(force=True)
