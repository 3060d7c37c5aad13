"""PKCS#15 directory files: the ASN.1 structures and the encoder/parser of directory EFs.

Structures follow PKCS #15 v1.1 (RSA Laboratories, 2000) §6, whose ASN.1 module is reproduced
in ISO/IEC 7816-15:2004 Annex A. The module uses ``IMPLICIT TAGS``; the ``[0]``/``[1]``
tags on the parameters of ``PKCS15Object`` are explicit (X.680 §31.2.7: tagging a
``DummyReference`` is explicit), which is how every deployed PKCS#15 card encodes them.

A directory file (PrKDF, PuKDF, CDF, DODF, AODF; §6.7) is a concatenation of DER objects
followed by padding: readers stop at the first ``00`` or ``FF`` byte where a tag is
expected (§6.7: "unused space ... shall be filled with 00 or FF").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import core, keys, x509

# -- common types (PKCS#15 v1.1 §6.1) ------------------------------------------------------


class Identifier(core.OctetString):
    """``Identifier ::= OCTET STRING (SIZE (0..pkcs15-ub-identifier))`` (§6.1.6)."""


class Label(core.UTF8String):
    """``Label ::= UTF8String (SIZE(0..pkcs15-ub-label))`` (§6.1.5)."""


class Path(core.Sequence):
    """``Path ::= SEQUENCE {efidOrPath OCTET STRING, index INTEGER OPTIONAL, length [0] INTEGER
    OPTIONAL}`` (§6.1.7); index and length are both present or both absent."""

    _fields = [
        ("efid_or_path", core.OctetString),
        ("index", core.Integer, {"optional": True}),
        ("length", core.Integer, {"implicit": 0, "optional": True}),
    ]


class CommonObjectFlags(core.BitString):
    """``CommonObjectFlags ::= BIT STRING {private(0), modifiable(1)}`` (§6.1.11)."""

    _map = {0: "private", 1: "modifiable"}


class CommonObjectAttributes(core.Sequence):
    """``CommonObjectAttributes`` (§6.1.11): label, flags, authId (the AODF entry guarding it)."""

    _fields = [
        ("label", Label, {"optional": True}),
        ("flags", CommonObjectFlags, {"optional": True}),
        ("auth_id", Identifier, {"optional": True}),
        ("user_consent", core.Integer, {"optional": True}),
    ]


# -- keys (§6.2, §6.3) -----------------------------------------------------------------


class KeyUsageFlags(core.BitString):
    """``KeyUsageFlags`` (§6.2.3): the PKCS#11 usage bits."""

    _map = {
        0: "encrypt",
        1: "decrypt",
        2: "sign",
        3: "sign_recover",
        4: "wrap",
        5: "unwrap",
        6: "verify",
        7: "verify_recover",
        8: "derive",
        9: "non_repudiation",
    }


class KeyAccessFlags(core.BitString):
    """``KeyAccessFlags`` (§6.2.3)."""

    _map = {0: "sensitive", 1: "extractable", 2: "always_sensitive", 3: "never_extractable", 4: "local"}


class CommonKeyAttributes(core.Sequence):
    """``CommonKeyAttributes`` (§6.2.3): iD, usage, native, accessFlags, keyReference."""

    _fields = [
        ("id", Identifier),
        ("usage", KeyUsageFlags),
        ("native", core.Boolean, {"default": True}),
        ("access_flags", KeyAccessFlags, {"optional": True}),
        ("key_reference", core.Integer, {"optional": True}),
    ]


class CommonPrivateKeyAttributes(core.Sequence):
    """``CommonPrivateKeyAttributes ::= SEQUENCE {subjectName Name OPTIONAL, ...}`` (§6.2.4)."""

    _fields = [("subject_name", x509.Name, {"optional": True})]


class PrivateRsaKeyAttributes(core.Sequence):
    """``PrivateRSAKeyAttributes ::= SEQUENCE {value ObjectValue, modulusLength INTEGER}`` (§6.2.5).

    ``value`` is always the indirect form, ``ObjectValue.indirect.path`` (§6.1.8), which
    encodes as a bare Path.
    """

    _fields = [("value", Path), ("modulus_length", core.Integer)]


class PrivateRsaKeyObject(core.Sequence):
    """``PrivateKeyObject {PrivateRSAKeyAttributes}`` = ``PKCS15Object {CommonKeyAttributes,
    CommonPrivateKeyAttributes, PrivateRSAKeyAttributes}`` (§6.2.1, §6.1.10)."""

    _fields = [
        ("common_object_attributes", CommonObjectAttributes),
        ("class_attributes", CommonKeyAttributes),
        ("sub_class_attributes", CommonPrivateKeyAttributes, {"explicit": 0, "optional": True}),
        ("type_attributes", PrivateRsaKeyAttributes, {"explicit": 1}),
    ]


class CommonPublicKeyAttributes(core.Sequence):
    """``CommonPublicKeyAttributes ::= SEQUENCE {subjectName Name OPTIONAL, ...}`` (§6.3.2)."""

    _fields = [("subject_name", x509.Name, {"optional": True})]


class PublicRsaKeyAttributes(core.Sequence):
    """``PublicRSAKeyAttributes ::= SEQUENCE {value ObjectValue, modulusLength INTEGER}`` (§6.3.3)."""

    _fields = [("value", Path), ("modulus_length", core.Integer)]


class PublicRsaKeyObject(core.Sequence):
    """``PublicKeyObject {PublicRSAKeyAttributes}`` (§6.3.1)."""

    _fields = [
        ("common_object_attributes", CommonObjectAttributes),
        ("class_attributes", CommonKeyAttributes),
        ("sub_class_attributes", CommonPublicKeyAttributes, {"explicit": 0, "optional": True}),
        ("type_attributes", PublicRsaKeyAttributes, {"explicit": 1}),
    ]


# -- certificates (§6.5) ---------------------------------------------------------------


class CommonCertificateAttributes(core.Sequence):
    """``CommonCertificateAttributes ::= SEQUENCE {iD Identifier, authority BOOLEAN DEFAULT
    FALSE, ...}`` (§6.5.2)."""

    _fields = [
        ("id", Identifier),
        ("authority", core.Boolean, {"default": False}),
    ]


class X509CertificateAttributes(core.Sequence):
    """``X509CertificateAttributes ::= SEQUENCE {value ObjectValue, subject Name OPTIONAL,
    issuer [0] Name OPTIONAL, serialNumber INTEGER OPTIONAL}`` (§6.5.3)."""

    _fields = [
        ("value", Path),
        ("subject", x509.Name, {"optional": True}),
        ("issuer", x509.Name, {"explicit": 0, "optional": True}),
        ("serial_number", core.Integer, {"optional": True}),
    ]


class X509CertificateObject(core.Sequence):
    """``CertificateObject {X509CertificateAttributes}`` = ``PKCS15Object
    {CommonCertificateAttributes, NULL, X509CertificateAttributes}`` (§6.5.1)."""

    _fields = [
        ("common_object_attributes", CommonObjectAttributes),
        ("class_attributes", CommonCertificateAttributes),
        ("type_attributes", X509CertificateAttributes, {"explicit": 1}),
    ]


# -- data objects (§6.6) ----------------------------------------------------------------


class CommonDataObjectAttributes(core.Sequence):
    """``CommonDataObjectAttributes ::= SEQUENCE {applicationName Label OPTIONAL,
    applicationOID OBJECT IDENTIFIER OPTIONAL}`` (§6.6.2)."""

    _fields = [
        ("application_name", Label, {"optional": True}),
        ("application_oid", core.ObjectIdentifier, {"optional": True}),
    ]


class OpaqueDataObject(core.Sequence):
    """``DataObject {Opaque}`` = ``PKCS15Object {CommonDataObjectAttributes, NULL, Opaque}``
    with ``Opaque ::= ObjectValue`` (§6.6.1, §6.6.3)."""

    _fields = [
        ("common_object_attributes", CommonObjectAttributes),
        ("class_attributes", CommonDataObjectAttributes),
        ("type_attributes", Path, {"explicit": 1}),
    ]


# -- authentication objects (§6.8) ------------------------------------------------------


class PinFlags(core.BitString):
    """``PinFlags`` (§6.8.2)."""

    _map = {
        0: "case_sensitive",
        1: "local",
        2: "change_disabled",
        3: "unblock_disabled",
        4: "initialized",
        5: "needs_padding",
        6: "unblocking_pin",
        7: "so_pin",
        8: "disable_allowed",
        9: "integrity_protected",
        10: "confidentiality_protected",
        11: "exchange_ref_data",
    }


class PinType(core.Enumerated):
    """``PinType ::= ENUMERATED {bcd, ascii-numeric, utf8, half-nibble-bcd, iso9564-1}`` (§6.8.2)."""

    _map = {0: "bcd", 1: "ascii_numeric", 2: "utf8", 3: "half_nibble_bcd", 4: "iso9564_1"}


class PinAttributes(core.Sequence):
    """``PinAttributes`` (§6.8.2)."""

    _fields = [
        ("pin_flags", PinFlags),
        ("pin_type", PinType),
        ("min_length", core.Integer),
        ("stored_length", core.Integer),
        ("max_length", core.Integer, {"optional": True}),
        ("pin_reference", core.Integer, {"implicit": 0, "default": 0}),
        ("pad_char", core.OctetString, {"optional": True}),
        ("last_pin_change", core.GeneralizedTime, {"optional": True}),
        ("path", Path, {"optional": True}),
    ]


class CommonAuthenticationObjectAttributes(core.Sequence):
    """``CommonAuthenticationObjectAttributes ::= SEQUENCE {authId Identifier, ...}`` (§6.8.1)."""

    _fields = [("auth_id", Identifier)]


class PinObject(core.Sequence):
    """``AuthenticationObject {PinAttributes}`` (§6.8.1)."""

    _fields = [
        ("common_object_attributes", CommonObjectAttributes),
        ("class_attributes", CommonAuthenticationObjectAttributes),
        ("type_attributes", PinAttributes, {"explicit": 1}),
    ]


# -- ODF and TokenInfo (§6.7, §6.9) -------------------------------------------------------


class PKCS15Objects(core.Choice):
    """``PKCS15Objects`` (§6.7): one ODF entry, its context tag naming the directory kind."""

    _alternatives = [
        ("private_keys", Path, {"explicit": 0}),
        ("public_keys", Path, {"explicit": 1}),
        ("trusted_public_keys", Path, {"explicit": 2}),
        ("secret_keys", Path, {"explicit": 3}),
        ("certificates", Path, {"explicit": 4}),
        ("trusted_certificates", Path, {"explicit": 5}),
        ("useful_certificates", Path, {"explicit": 6}),
        ("data_objects", Path, {"explicit": 7}),
        ("auth_objects", Path, {"explicit": 8}),
    ]


class TokenFlags(core.BitString):
    """``TokenFlags ::= BIT STRING {readonly(0), loginRequired(1), prnGeneration(2),
    eidCompliant(3)}`` (§6.9)."""

    _map = {0: "readonly", 1: "login_required", 2: "prn_generation", 3: "eid_compliant"}


class TokenInfo(core.Sequence):
    """``TokenInfo`` (§6.9): version, serial number, manufacturer, label, flags."""

    _fields = [
        ("version", core.Integer),
        ("serial_number", core.OctetString),
        ("manufacturer_id", Label, {"optional": True}),
        ("label", Label, {"implicit": 0, "optional": True}),
        ("token_flags", TokenFlags),
    ]


# -- directory files ----------------------------------------------------------------------

PADDING = (0x00, 0xFF)


def encode_directory(objects: Iterable[core.Asn1Value], size: int = 0, pad: int = 0x00) -> bytes:
    """A directory EF's content: the DER objects one after another, padded to ``size`` (§6.7)."""
    data = b"".join(obj.dump(force=True) for obj in objects)
    if size and len(data) > size:
        raise ValueError(f"directory content of {len(data)} bytes exceeds the file size {size}")
    return data.ljust(size, bytes((pad,)))


def split_directory(data: bytes) -> list[bytes]:
    """The DER objects of a directory EF, up to the first padding byte (§6.7).

    Raises ValueError on a truncated object: a reader that got only part of the file must
    read further rather than mistake the prefix for the whole directory.
    """
    objects = []
    offset = 0
    while offset < len(data) and data[offset] not in PADDING:
        end = offset + _der_length(data, offset)
        if end > len(data):
            raise ValueError(f"object at offset {offset} runs past the data read ({end} > {len(data)})")
        objects.append(bytes(data[offset:end]))
        offset = end
    return objects


def directory_complete(data: bytes) -> bool:
    """True when ``data`` already holds the whole directory (padding or its end reached)."""
    offset = 0
    while offset < len(data):
        if data[offset] in PADDING:
            return True
        try:
            offset += _der_length(data, offset)
        except ValueError:
            return False
    return False


def _der_length(data: bytes, offset: int) -> int:
    """Total length (tag + length + value) of the DER object at ``offset``; one-byte tags."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER header")
    first = data[offset + 1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 3 or offset + 2 + n > len(data):
        raise ValueError("bad or truncated DER length")
    return 2 + n + int.from_bytes(data[offset + 2 : offset + 2 + n], "big")


# -- convenience for descriptions of the card -------------------------------------------


@dataclass(frozen=True)
class KeyDescription:
    """What the directories say about one key pair: id, label, usage and where it is."""

    id: bytes
    label: str
    key_reference: int
    modulus_bits: int
    signing: bool
    auth_id: bytes
    subject: x509.Name | None = None
    usage: frozenset[str] | None = None
    """KeyUsageFlags names (§6.2.3) overriding the ones ``signing`` implies."""

    def private_key_object(self, key_path: bytes) -> PrivateRsaKeyObject:
        usage = set(self.usage) if self.usage is not None else None
        if usage is None:
            usage = {"sign", "non_repudiation"} if self.signing else {"decrypt", "unwrap"}
        return PrivateRsaKeyObject(
            {
                "common_object_attributes": {"label": self.label, "flags": {"private"}, "auth_id": self.auth_id},
                "class_attributes": {
                    "id": self.id,
                    "usage": usage,
                    "access_flags": {"sensitive", "always_sensitive", "never_extractable", "local"},
                    "key_reference": self.key_reference,
                },
                "sub_class_attributes": {"subject_name": self.subject} if self.subject is not None else None,
                "type_attributes": {"value": {"efid_or_path": key_path}, "modulus_length": self.modulus_bits},
            }
        )

    def public_key_object(self, records_path: bytes) -> PublicRsaKeyObject:
        usage = {"verify"} if self.signing else {"encrypt", "wrap"}
        return PublicRsaKeyObject(
            {
                "common_object_attributes": {"label": self.label},
                "class_attributes": {"id": self.id, "usage": usage, "key_reference": self.key_reference},
                "sub_class_attributes": {"subject_name": self.subject} if self.subject is not None else None,
                "type_attributes": {"value": {"efid_or_path": records_path}, "modulus_length": self.modulus_bits},
            }
        )


def certificate_object(
    cert: x509.Certificate, cert_id: bytes, label: str, path: bytes, index: int | None, authority: bool
) -> X509CertificateObject:
    """A CDF entry (§6.5): a Path carrying index and length into a shared EF, or (index
    None) the path of an EF holding the certificate alone."""
    value: dict[str, object] = {"efid_or_path": path}
    if index is not None:
        value.update(index=index, length=len(cert.dump()))
    return X509CertificateObject(
        {
            "common_object_attributes": {"label": label},
            "class_attributes": {"id": cert_id, "authority": authority},
            "type_attributes": {
                "value": value,
                "subject": cert.subject,
                "issuer": cert.issuer,
                "serial_number": cert.serial_number,
            },
        }
    )


def rsa_public_key(cert: x509.Certificate) -> keys.RSAPublicKey:
    """The RSAPublicKey (RFC 8017 §A.1.1) inside a certificate."""
    return cert.public_key["public_key"].parsed
