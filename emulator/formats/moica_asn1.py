"""ASN.1 structures the ``cryptography`` x509 builder has no class for.

Subject Directory Attributes (RFC 5280 §4.2.1.8) as MOICA uses it: one attribute
``2.16.886.1.100.2.51`` whose value is the last 4 digits of the holder's national ID number
(moica-card.md, "Certificates"). Public relying-party code reads the first value of the
attribute's SET as a string, so the value is encoded as a single PrintableString.
"""

from __future__ import annotations

from asn1crypto import core

OID_SUBJECT_DIRECTORY_ATTRIBUTES = "2.5.29.9"
OID_MOICA_ID_LAST4 = "2.16.886.1.100.2.51"


class MoicaAttributeType(core.ObjectIdentifier):
    """AttributeType (X.501 / RFC 5280 §4.1.2.4) values used in MOICA certificates."""

    _map = {OID_MOICA_ID_LAST4: "id_number_last4"}


class AttributeValues(core.SetOf):
    """``SET OF AttributeValue`` for attribute types not in :class:`MoicaAttributeType`."""

    _child_spec = core.Any


class SubjectDirectoryAttribute(core.Sequence):
    """``Attribute ::= SEQUENCE { type AttributeType, values SET OF AttributeValue }`` (RFC 5280 §4.1.2.4)."""

    _fields = [("type", MoicaAttributeType), ("values", AttributeValues)]


class SubjectDirectoryAttributes(core.SequenceOf):
    """``SubjectDirectoryAttributes ::= SEQUENCE SIZE (1..MAX) OF Attribute`` (RFC 5280 §4.2.1.8)."""

    _child_spec = SubjectDirectoryAttribute


def encode_moica_sda(id_last4: str) -> bytes:
    """DER of the extension value carrying ``2.16.886.1.100.2.51`` = ``id_last4``."""
    if len(id_last4) != 4 or not id_last4.isdigit():
        raise ValueError("the SDA attribute holds exactly the last 4 digits of the national ID")
    attribute = SubjectDirectoryAttribute(
        {"type": OID_MOICA_ID_LAST4, "values": AttributeValues([core.PrintableString(id_last4)])}
    )
    return SubjectDirectoryAttributes([attribute]).dump()


def decode_moica_sda(der: bytes) -> str | None:
    """The ``2.16.886.1.100.2.51`` value from an SDA extension value, or None if absent."""
    for attribute in SubjectDirectoryAttributes.load(der):
        if attribute["type"].dotted == OID_MOICA_ID_LAST4:
            # Any universal string type is accepted on reading; core.load picks the class from the tag.
            return str(core.load(attribute["values"][0].dump()).native)
    return None
