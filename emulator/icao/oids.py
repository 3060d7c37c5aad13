"""Object identifiers of the ICAO 9303-11 protocols and what each one selects.

Sources: ICAO Doc 9303-11 (8th ed., 2021) §9.2 (SecurityInfos and their OIDs), §9.5.1
(standardized domain parameters, Table "Standardized Domain Parameters"), §4.4 (PACE),
§6.2 (Chip Authentication), §6.1 (Active Authentication); BSI TR-03110-3 §A.1 (the same
OIDs under ``bsi-de``) and BSI TR-03111 §5.2.1 (``ecdsa-plain-signatures``).

OIDs are dotted strings, as asn1crypto takes them. The tables map each protocol OID to
its key agreement (DH or ECDH), mapping and cipher, so a chip reading its profile and a
terminal reading EF.CardAccess make the same choice from the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, unique

# bsi-de OBJECT IDENTIFIER ::= {itu-t(0) identified-organization(4) etsi(0)
#   reserved(127) etsi-identified-organization(0) 7}  (9303-11 §9.2)
BSI_DE = "0.4.0.127.0.7"

# -- Public keys in SecurityInfos (9303-11 §9.2.6): id-PK
ID_PK = BSI_DE + ".2.2.1"
ID_PK_DH = ID_PK + ".1"
ID_PK_ECDH = ID_PK + ".2"

# -- Terminal Authentication (BSI TR-03110-3 §A.1.1.3), listed for completeness
ID_TA = BSI_DE + ".2.2.2"
ID_SECURITY_OBJECT = BSI_DE + ".3.2.1"  # BSI TR-03110-3 Appendix A: eContentType of EF.CardSecurity

# -- Chip Authentication (9303-11 §9.2.5): id-CA
ID_CA = BSI_DE + ".2.2.3"
ID_CA_DH = ID_CA + ".1"
ID_CA_DH_3DES_CBC_CBC = ID_CA_DH + ".1"
ID_CA_DH_AES_CBC_CMAC_128 = ID_CA_DH + ".2"
ID_CA_DH_AES_CBC_CMAC_192 = ID_CA_DH + ".3"
ID_CA_DH_AES_CBC_CMAC_256 = ID_CA_DH + ".4"
ID_CA_ECDH = ID_CA + ".2"
ID_CA_ECDH_3DES_CBC_CBC = ID_CA_ECDH + ".1"
ID_CA_ECDH_AES_CBC_CMAC_128 = ID_CA_ECDH + ".2"
ID_CA_ECDH_AES_CBC_CMAC_192 = ID_CA_ECDH + ".3"
ID_CA_ECDH_AES_CBC_CMAC_256 = ID_CA_ECDH + ".4"

# -- PACE (9303-11 §9.2.1): id-PACE
ID_PACE = BSI_DE + ".2.2.4"
ID_PACE_DH_GM = ID_PACE + ".1"
ID_PACE_DH_GM_3DES_CBC_CBC = ID_PACE_DH_GM + ".1"
ID_PACE_DH_GM_AES_CBC_CMAC_128 = ID_PACE_DH_GM + ".2"
ID_PACE_DH_GM_AES_CBC_CMAC_192 = ID_PACE_DH_GM + ".3"
ID_PACE_DH_GM_AES_CBC_CMAC_256 = ID_PACE_DH_GM + ".4"
ID_PACE_ECDH_GM = ID_PACE + ".2"
ID_PACE_ECDH_GM_3DES_CBC_CBC = ID_PACE_ECDH_GM + ".1"
ID_PACE_ECDH_GM_AES_CBC_CMAC_128 = ID_PACE_ECDH_GM + ".2"
ID_PACE_ECDH_GM_AES_CBC_CMAC_192 = ID_PACE_ECDH_GM + ".3"
ID_PACE_ECDH_GM_AES_CBC_CMAC_256 = ID_PACE_ECDH_GM + ".4"
ID_PACE_DH_IM = ID_PACE + ".3"
ID_PACE_DH_IM_3DES_CBC_CBC = ID_PACE_DH_IM + ".1"
ID_PACE_DH_IM_AES_CBC_CMAC_128 = ID_PACE_DH_IM + ".2"
ID_PACE_DH_IM_AES_CBC_CMAC_192 = ID_PACE_DH_IM + ".3"
ID_PACE_DH_IM_AES_CBC_CMAC_256 = ID_PACE_DH_IM + ".4"
ID_PACE_ECDH_IM = ID_PACE + ".4"
ID_PACE_ECDH_IM_3DES_CBC_CBC = ID_PACE_ECDH_IM + ".1"
ID_PACE_ECDH_IM_AES_CBC_CMAC_128 = ID_PACE_ECDH_IM + ".2"
ID_PACE_ECDH_IM_AES_CBC_CMAC_192 = ID_PACE_ECDH_IM + ".3"
ID_PACE_ECDH_IM_AES_CBC_CMAC_256 = ID_PACE_ECDH_IM + ".4"
# PACE with Chip Authentication Mapping: ECDH and AES only (9303-11 §4.4.3.5, §9.2.1)
ID_PACE_ECDH_CAM = ID_PACE + ".6"
ID_PACE_ECDH_CAM_AES_CBC_CMAC_128 = ID_PACE_ECDH_CAM + ".2"
ID_PACE_ECDH_CAM_AES_CBC_CMAC_192 = ID_PACE_ECDH_CAM + ".3"
ID_PACE_ECDH_CAM_AES_CBC_CMAC_256 = ID_PACE_ECDH_CAM + ".4"

# -- Standardized domain parameters (9303-11 §9.5.1): the AlgorithmIdentifier of a
#    PACEDomainParameterInfo names them by this OID with the parameter ID as its parameter.
ID_STANDARDIZED_DOMAIN_PARAMETERS = BSI_DE + ".1.2"

# -- Plain-format ECDSA signatures, r || s (BSI TR-03111 §5.2.1)
ECDSA_PLAIN_SIGNATURES = BSI_DE + ".1.1.4.1"
ECDSA_PLAIN_SHA1 = ECDSA_PLAIN_SIGNATURES + ".1"
ECDSA_PLAIN_SHA224 = ECDSA_PLAIN_SIGNATURES + ".2"
ECDSA_PLAIN_SHA256 = ECDSA_PLAIN_SIGNATURES + ".3"
ECDSA_PLAIN_SHA384 = ECDSA_PLAIN_SIGNATURES + ".4"
ECDSA_PLAIN_SHA512 = ECDSA_PLAIN_SIGNATURES + ".5"
ECDSA_PLAIN_RIPEMD160 = ECDSA_PLAIN_SIGNATURES + ".6"

# -- X9.62 ecdsa-with-SHA* (RFC 5758 §3.2), also accepted in ActiveAuthenticationInfo
ECDSA_WITH_SHA1 = "1.2.840.10045.4.1"
ECDSA_WITH_SHA224 = "1.2.840.10045.4.3.1"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3"
ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4"

# -- ICAO arc: id-icao-mrtd-security (9303-11 §9.2.4, 9303-12 §4.1)
ID_ICAO_MRTD_SECURITY = "2.23.136.1.1"
ID_LDS_SECURITY_OBJECT = ID_ICAO_MRTD_SECURITY + ".1"
ID_CSCA_MASTER_LIST = ID_ICAO_MRTD_SECURITY + ".2"
ID_CSCA_MASTER_LIST_SIGNING_KEY = ID_ICAO_MRTD_SECURITY + ".3"
ID_DOCUMENT_TYPE_LIST = ID_ICAO_MRTD_SECURITY + ".6.2"  # 9303-12 §7.1 documentTypeList extension
# Active Authentication protocol, the protocol OID of ActiveAuthenticationInfo (9303-11 §9.2.4)
ID_AA = ID_ICAO_MRTD_SECURITY + ".5"

# Hash named by each ECDSA signature algorithm OID (for ActiveAuthenticationInfo, 9303-11 §6.1)
ECDSA_HASH: dict[str, str] = {
    ECDSA_PLAIN_SHA1: "sha1",
    ECDSA_PLAIN_SHA224: "sha224",
    ECDSA_PLAIN_SHA256: "sha256",
    ECDSA_PLAIN_SHA384: "sha384",
    ECDSA_PLAIN_SHA512: "sha512",
    ECDSA_WITH_SHA1: "sha1",
    ECDSA_WITH_SHA224: "sha224",
    ECDSA_WITH_SHA256: "sha256",
    ECDSA_WITH_SHA384: "sha384",
    ECDSA_WITH_SHA512: "sha512",
}


@unique
class KeyAgreement(Enum):
    """Diffie-Hellman over a prime field or over an elliptic curve (9303-11 §9.6)."""

    DH = "DH"
    ECDH = "ECDH"


@unique
class Mapping(Enum):
    """PACE mapping of the nonce to ephemeral domain parameters (9303-11 §4.4.3.3)."""

    GENERIC = "GM"
    INTEGRATED = "IM"
    CHIP_AUTHENTICATION = "CAM"


@dataclass(frozen=True)
class CipherSuite:
    """Block cipher and key length a protocol OID selects (9303-11 §9.7.1, §9.8).

    ``algorithm`` is ``"3des"`` or ``"aes"``, the names emulator/iso7816/sm.py uses.
    """

    algorithm: str
    key_length: int

    @property
    def block_size(self) -> int:
        return 8 if self.algorithm == "3des" else 16


TDES = CipherSuite("3des", 16)
AES_128 = CipherSuite("aes", 16)
AES_192 = CipherSuite("aes", 24)
AES_256 = CipherSuite("aes", 32)
_SUITES = {"1": TDES, "2": AES_128, "3": AES_192, "4": AES_256}


@dataclass(frozen=True)
class PaceProtocol:
    """One PACE protocol OID: key agreement, mapping and cipher (9303-11 §9.2.1)."""

    oid: str
    agreement: KeyAgreement
    mapping: Mapping
    cipher: CipherSuite


@dataclass(frozen=True)
class ChipAuthenticationProtocol:
    """One Chip Authentication OID: key agreement and cipher (9303-11 §9.2.5)."""

    oid: str
    agreement: KeyAgreement
    cipher: CipherSuite


def _pace_table() -> dict[str, PaceProtocol]:
    arcs = {
        "1": (KeyAgreement.DH, Mapping.GENERIC),
        "2": (KeyAgreement.ECDH, Mapping.GENERIC),
        "3": (KeyAgreement.DH, Mapping.INTEGRATED),
        "4": (KeyAgreement.ECDH, Mapping.INTEGRATED),
        "6": (KeyAgreement.ECDH, Mapping.CHIP_AUTHENTICATION),
    }
    table = {}
    for arc, (agreement, mapping) in arcs.items():
        for last, suite in _SUITES.items():
            if mapping is Mapping.CHIP_AUTHENTICATION and suite is TDES:
                continue  # PACE-CAM is defined for AES only
            oid = f"{ID_PACE}.{arc}.{last}"
            table[oid] = PaceProtocol(oid, agreement, mapping, suite)
    return table


#: Every PACE protocol OID of 9303-11 §9.2.1 with what it selects.
PACE_PROTOCOLS: dict[str, PaceProtocol] = _pace_table()

#: Every Chip Authentication protocol OID of 9303-11 §9.2.5 with what it selects.
CA_PROTOCOLS: dict[str, ChipAuthenticationProtocol] = {
    f"{ID_CA}.{arc}.{last}": ChipAuthenticationProtocol(f"{ID_CA}.{arc}.{last}", agreement, suite)
    for arc, agreement in (("1", KeyAgreement.DH), ("2", KeyAgreement.ECDH))
    for last, suite in _SUITES.items()
}


@dataclass(frozen=True)
class StandardizedDomainParameters:
    """One row of 9303-11 §9.5.1's table of standardized domain parameters.

    ``name`` is the curve or group name used by :mod:`eidemu.emulator.icao.ec` and
    :mod:`eidemu.emulator.icao.dh`; ``bits`` the size of the field prime (DH: the modulus).
    """

    parameter_id: int
    agreement: KeyAgreement
    name: str
    bits: int


#: Standardized domain parameters by ID (9303-11 §9.5.1; IDs 3-7 and 19-31 are reserved).
STANDARDIZED_DOMAIN_PARAMETERS: dict[int, StandardizedDomainParameters] = {
    row.parameter_id: row
    for row in (
        # RFC 5114 §2.1-§2.3 MODP groups
        StandardizedDomainParameters(0, KeyAgreement.DH, "modp1024_160", 1024),
        StandardizedDomainParameters(1, KeyAgreement.DH, "modp2048_224", 2048),
        StandardizedDomainParameters(2, KeyAgreement.DH, "modp2048_256", 2048),
        # NIST FIPS 186-4 curves and RFC 5639 Brainpool curves
        StandardizedDomainParameters(8, KeyAgreement.ECDH, "secp192r1", 192),
        StandardizedDomainParameters(9, KeyAgreement.ECDH, "brainpoolP192r1", 192),
        StandardizedDomainParameters(10, KeyAgreement.ECDH, "secp224r1", 224),
        StandardizedDomainParameters(11, KeyAgreement.ECDH, "brainpoolP224r1", 224),
        StandardizedDomainParameters(12, KeyAgreement.ECDH, "secp256r1", 256),
        StandardizedDomainParameters(13, KeyAgreement.ECDH, "brainpoolP256r1", 256),
        StandardizedDomainParameters(14, KeyAgreement.ECDH, "brainpoolP320r1", 320),
        StandardizedDomainParameters(15, KeyAgreement.ECDH, "secp384r1", 384),
        StandardizedDomainParameters(16, KeyAgreement.ECDH, "brainpoolP384r1", 384),
        StandardizedDomainParameters(17, KeyAgreement.ECDH, "brainpoolP512r1", 512),
        StandardizedDomainParameters(18, KeyAgreement.ECDH, "secp521r1", 521),
    )
}


def pace_protocol(oid: str) -> PaceProtocol:
    """The PACE protocol an OID names; ``ValueError`` naming the OID if it is not one."""
    try:
        return PACE_PROTOCOLS[oid]
    except KeyError:
        raise ValueError(f"{oid} is not a PACE protocol OID of ICAO 9303-11 §9.2.1") from None


def ca_protocol(oid: str) -> ChipAuthenticationProtocol:
    """The Chip Authentication protocol an OID names; ``ValueError`` if it is not one."""
    try:
        return CA_PROTOCOLS[oid]
    except KeyError:
        raise ValueError(f"{oid} is not a Chip Authentication OID of ICAO 9303-11 §9.2.5") from None


def standardized_domain_parameters(parameter_id: int) -> StandardizedDomainParameters:
    """A row of the standardized domain parameter table; ``ValueError`` for a reserved ID."""
    try:
        return STANDARDIZED_DOMAIN_PARAMETERS[parameter_id]
    except KeyError:
        raise ValueError(f"standardized domain parameter ID {parameter_id} is reserved (ICAO 9303-11 §9.5.1)") from None
