"""Signatures the service returns: PKCS#1 v1.5 blocks for the card and attached CMS SignedData.

The card performs only the raw RSA private operation on a 256-byte block
(``docs/moica-card.md``, "Private-key operations"); the host builds the block: EMSA-PKCS1-v1_5
(RFC 8017 §9.2) over a DigestInfo whose prefixes are those of RFC 8017 §9.2 note 1.

PKCS7 answers are attached SignedData (RFC 5652 §5) with eContent id-data = the tbs, the
signer certificate only, and signed attributes contentType and messageDigest (§11.1, §11.2),
signingTime on request (§11.3), the random nonce ``1.2.840.113549.1.9.25.3``
(RFC 7894 §2.2: OCTET STRING) and the card number ``2.16.886.1.100.2.204`` (a
PrintableString: eidemu's choice, ``docs/hipki.md``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, core, x509

OID_RANDOM_NONCE = "1.2.840.113549.1.9.25.3"
OID_CARD_NUMBER = "2.16.886.1.100.2.204"

# RFC 8017 §9.2 note 1: DER of DigestInfo up to the digest, per hash.
DIGEST_INFO_PREFIX = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
HASH_NAMES = {"SHA1": "sha1", "SHA-1": "sha1", "SHA256": "sha256", "SHA-256": "sha256"}
HASH_NAMES |= {"SHA384": "sha384", "SHA-384": "sha384", "SHA512": "sha512", "SHA-512": "sha512"}


def hash_name(name: str) -> str:
    """``hashAlgorithm`` (SHA1 | SHA256 | SHA384 | SHA512, case-insensitive) -> hashlib name."""
    try:
        return HASH_NAMES[name.strip().upper()]
    except KeyError:
        raise ValueError(f"hashAlgorithm {name!r} is not one of SHA1, SHA256, SHA384, SHA512") from None


def emsa_pkcs1_v15(hash_alg: str, digest: bytes, k: int = 256) -> bytes:
    """EM = 00 01 FF..FF 00 || DigestInfo (RFC 8017 §9.2) for a ``k``-byte modulus."""
    t = DIGEST_INFO_PREFIX[hash_alg] + digest
    if len(digest) != hashlib.new(hash_alg).digest_size or k < len(t) + 11:
        raise ValueError("digest length does not match the hash")
    return b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


RawSigner = Callable[[bytes], bytes]
"""The card's private operation: a 256-byte block in, the 256-byte result out."""


def sign_pkcs1(tbs: bytes, hash_alg: str, raw_sign: RawSigner) -> bytes:
    """RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1) over ``tbs`` with ``hash_alg``."""
    return raw_sign(emsa_pkcs1_v15(hash_alg, hashlib.new(hash_alg, tbs).digest()))


@dataclass(frozen=True)
class SignedAttributeRequest:
    """Which optional signed attributes to add (``withSigningTime``, ``nonce``, ``withCardSN``)."""

    signing_time: dt.datetime | None = None
    nonce: bytes | None = None
    card_number: str | None = None


def _attribute(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    """An attribute asn1crypto has no name for: type OID and a SET of one value."""
    return cms.CMSAttribute({"type": cms.CMSAttributeType(oid), "values": [value]})


def signed_attributes(content: bytes, hash_alg: str, request: SignedAttributeRequest) -> cms.CMSAttributes:
    """The signed attributes, in the order listed above (DER sorts the SET when encoded)."""
    attrs = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.new(hash_alg, content).digest()]}),
    ]
    if request.signing_time is not None:
        attrs.append(
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": request.signing_time})]})
        )
    if request.nonce is not None:
        attrs.append(_attribute(OID_RANDOM_NONCE, core.OctetString(request.nonce)))
    if request.card_number is not None:
        attrs.append(_attribute(OID_CARD_NUMBER, core.PrintableString(request.card_number)))
    return cms.CMSAttributes(attrs)


def sign_cms(
    content: bytes,
    signer_der: bytes,
    hash_alg: str,
    raw_sign: RawSigner,
    request: SignedAttributeRequest,
) -> bytes:
    """DER of an attached CMS SignedData over ``content`` by the holder of the certificate
    ``signer_der`` (RFC 5652 §5.1-§5.4): the signature is
    RSASSA-PKCS1-v1_5 with ``hash_alg`` over the DER of the signed attributes as a SET (§5.4)."""
    tbs_certificate = x509.Certificate.load(signer_der)["tbs_certificate"]
    attrs = signed_attributes(content, hash_alg, request)
    signature = raw_sign(emsa_pkcs1_v15(hash_alg, hashlib.new(hash_alg, attrs.dump()).digest()))
    digest_algorithm = algos.DigestAlgorithm({"algorithm": hash_alg})
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {
                            "issuer": tbs_certificate["issuer"].copy(),
                            "serial_number": tbs_certificate["serial_number"].native,
                        }
                    )
                }
            ),
            "digest_algorithm": digest_algorithm,
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "rsassa_pkcs1v15"}),
            "signature": signature,
        }
    )
    # SignedData (RFC 5652 §5.1) assembled from DER parts: asn1crypto re-encodes a certificate
    # whose length octets end in 0x80 (it takes them for the indefinite form), which costs
    # milliseconds per signature; the certificate's own DER is copied as it is instead.
    encap = cms.EncapsulatedContentInfo({"content_type": "data", "content": content})
    signed_data = _tlv(
        0x30,
        core.Integer(1).dump()
        + cms.DigestAlgorithms([digest_algorithm]).dump()
        + encap.dump()
        + _tlv(0xA0, signer_der)  # certificates [0] IMPLICIT CertificateSet
        + cms.SignerInfos([signer_info]).dump(),
    )
    return _tlv(0x30, cms.ContentType("signed_data").dump() + _tlv(0xA0, signed_data))


def _tlv(tag: int, value: bytes) -> bytes:
    """One DER TLV with a definite length (X.690 §8.1.3)."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + value


__all__ = [
    "DIGEST_INFO_PREFIX",
    "OID_CARD_NUMBER",
    "OID_RANDOM_NONCE",
    "SignedAttributeRequest",
    "emsa_pkcs1_v15",
    "hash_name",
    "sign_cms",
    "sign_pkcs1",
    "signed_attributes",
]
