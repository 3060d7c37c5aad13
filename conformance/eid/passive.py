"""Passive authentication, decided by the terminal itself (ICAO 9303-11 §5.1; 9303-12).

The checks are this module's own, made with ``cryptography`` and ``asn1crypto`` on the
bytes the chip sent; nothing of the chip's or the PKI generator's code judges them:

- the CMS SignedData of EF.SOD (RFC 5652 §5.4-§5.6): eContentType, the signed attributes
  re-encoded as a DER SET (tag ``31``) and verified with the Document Signer's key, the
  contentType attribute equal to eContentType, the messageDigest attribute equal to the
  hash of the eContent;
- each data group's hash recomputed over the whole file and compared with the
  LDSSecurityObject (9303-10 §4.6.2); the data groups behind Extended Access Control
  (``6982`` without it) reported as not read, and :func:`zone_hashes` for those read after
  Terminal Authentication;
- the Document Signer certificate issued by a CSCA of the trust store (signature and
  issuer name; 9303-11 §5.1), the trust store coming from a master list whose own CMS
  signature and signer are verified (9303-12 §9) or from CSCA certificate files;
- validity of the DS and the CSCA at the time of the check (RFC 5280 §4.1.2.5);
- the CSCA's CRL: signed by the CSCA, current, and not listing the DS (RFC 5280 §6.3);
- key usage: digitalSignature on the DS; keyCertSign, cRLSign and a CA basicConstraints
  on the CSCA (the 9303-12 §7.1 certificate profile).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import cms
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from eidemu.emulator.icao import asn1 as icao_asn1

from .report import Check, Verdict

#: eContentType of EF.SOD, of a CSCA master list, extKeyUsage of its signer (9303-10 §4.6.2, 9303-12 §9)
ID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
ID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
ID_MASTER_LIST_SIGNING = "2.23.136.1.1.3"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class TrustStoreError(ValueError):
    """A master list, certificate or CRL file that cannot be used; one line naming the file."""


def _hash(name: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[name]()
    except KeyError:
        raise ValueError(f"unsupported hash algorithm {name}") from None


def _verify_signature(
    certificate: x509.Certificate, signature: bytes, data: bytes, algorithm: cms.SignedDigestAlgorithm, digest: str
) -> None:
    """Check ``signature`` over ``data`` with the certificate's key (RFC 5652 §5.6; RFC 4056
    for RSASSA-PSS; RFC 5753 for ECDSA); InvalidSignature or ValueError if it fails."""
    key = certificate.public_key()
    name = algorithm["algorithm"].native
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(_hash(digest)))
    elif isinstance(key, rsa.RSAPublicKey):
        if name == "rsassa_pss":
            params = algorithm["parameters"]
            pss_hash = _hash(params["hash_algorithm"]["algorithm"].native)
            mgf_hash = _hash(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            pad: padding.AsymmetricPadding = padding.PSS(padding.MGF1(mgf_hash), params["salt_length"].native)
            key.verify(signature, data, pad, pss_hash)
        else:
            key.verify(signature, data, padding.PKCS1v15(), _hash(digest))
    else:
        raise ValueError(f"unsupported signer key type {type(key).__name__}")


@dataclass(frozen=True)
class SignedContent:
    """A CMS SignedData the terminal has verified: its eContent and signer (RFC 5652 §5)."""

    content_type: str
    content: bytes
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]


def verify_signed_data(der: bytes, expected_content_type: str, what: str) -> SignedContent:
    """Decode and verify one CMS SignedData with its single signer; ValueError with a
    one-line reason at the first failing step.

    The signer's certificate must be among the included certificates (9303-10 §4.6.2: the DS
    certificate travels in EF.SOD). The signature covers the signed attributes encoded as
    a DER SET OF (tag ``31``), not the ``[0]`` IMPLICIT form they are stored in
    (RFC 5652 §5.4).
    """
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"{what}: ContentInfo holds {info['content_type'].dotted}, not SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content_type = encap["content_type"].dotted
        if encap["content"].native is None:
            raise ValueError(f"{what}: no eContent")
        e_content = encap["content"].contents
        certificates = tuple(x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"] or ())
        signer_infos = signed["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError(f"{what}: {len(signer_infos)} SignerInfos, expected one")
        signer_info = signer_infos[0]
        digest = signer_info["digest_algorithm"]["algorithm"].native
        attributes = signer_info["signed_attrs"]
        if not len(attributes):
            raise ValueError(f"{what}: no signed attributes")
        sid = signer_info["sid"]
        signature = signer_info["signature"].native
        signature_algorithm = signer_info["signature_algorithm"]
        attribute_values: dict[str, list[asn1_core.Asn1Value]] = {}
        for attribute in attributes:
            attribute_values.setdefault(attribute["type"].dotted, []).extend(attribute["values"])
        signed_attributes = cms.CMSAttributes(list(attributes)).dump(force=True)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        if str(exc).startswith(what):
            raise
        raise ValueError(f"{what}: not a CMS SignedData: {exc}") from None
    if content_type != expected_content_type:
        raise ValueError(f"{what}: eContentType {content_type}, expected {expected_content_type}")
    content_types = attribute_values.get("1.2.840.113549.1.9.3", [])
    digests = attribute_values.get("1.2.840.113549.1.9.4", [])
    if len(content_types) != 1 or len(digests) != 1:
        raise ValueError(f"{what}: signed attributes need exactly one contentType and one messageDigest")
    if content_types[0].dotted != content_type:
        raise ValueError(f"{what}: the contentType attribute differs from eContentType")
    try:
        computed = hashlib.new(digest, e_content).digest()
    except ValueError:
        raise ValueError(f"{what}: unsupported digest algorithm {digest}") from None
    if not hmac.compare_digest(computed, digests[0].native):
        raise ValueError(f"{what}: the messageDigest attribute is not the {digest} of the eContent")
    signer = _find_signer(certificates, sid)
    if signer is None:
        raise ValueError(f"{what}: the signer's certificate is not in the SignedData")
    if signed_attributes[0] != 0x31:
        raise ValueError(f"{what}: signed attributes do not re-encode as a SET")
    try:
        _verify_signature(signer, signature, signed_attributes, signature_algorithm, digest)
    except InvalidSignature:
        raise ValueError(f"{what}: the signature over the signed attributes does not verify") from None
    return SignedContent(content_type, e_content, signer, certificates)


def _find_signer(certificates: Iterable[x509.Certificate], sid: cms.SignerIdentifier) -> x509.Certificate | None:
    for certificate in certificates:
        if sid.name == "issuer_and_serial_number":
            issuer = sid.chosen["issuer"].dump()
            if certificate.serial_number == sid.chosen["serial_number"].native and hmac.compare_digest(
                certificate.issuer.public_bytes(), issuer
            ):
                return certificate
        else:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return certificate
    return None


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _key_usage(certificate: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _load_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise TrustStoreError(f"{path}: not an X.509 certificate file: {exc}") from None


@dataclass(frozen=True)
class TrustStore:
    """CSCA certificates the terminal trusts, how they came, and the CRLs it holds.

    ``source_check`` records the verification of the master list the CSCAs came from
    (``None`` for certificate files given directly).
    """

    cscas: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    source: str = ""
    source_check: Check | None = field(default=None)

    @classmethod
    def from_master_list(cls, path: Path, crls: Sequence[Path] = ()) -> TrustStore:
        """The CSCAs of a master list whose own CMS signature verifies, by a signer with the
        master list signing extKeyUsage issued by one of the listed CSCAs (9303-12 §9).

        A master list that fails is not trusted: the store is empty and ``source_check``
        says why; a file that is no master list at all is a :class:`TrustStoreError`.
        """
        der = path.read_bytes()
        try:
            signed = verify_signed_data(der, ID_CSCA_MASTER_LIST, "master list")
            verified: str | None = None
        except ValueError as exc:
            signed, verified = None, str(exc)
        try:
            raw = _master_list_content(der)
            cscas = tuple(x509.load_der_x509_certificate(c) for c in raw)
        except ValueError as exc:
            raise TrustStoreError(f"{path}: not a CSCA master list: {exc}") from None
        if signed is not None:
            signer = signed.signer
            try:
                usages = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
                has_usage = any(u.dotted_string == ID_MASTER_LIST_SIGNING for u in usages)
            except x509.ExtensionNotFound:
                has_usage = False
            if not has_usage:
                verified = "master list: the signer lacks extKeyUsage id-icao-cscaMasterListSigningKey"
            elif not any(issued_by(signer, csca) for csca in cscas):
                verified = "master list: the signer is not issued by a CSCA of the list"
        loaded = tuple(_load_crl(p) for p in crls)
        if verified is not None:
            return cls((), loaded, str(path), Check.failed("pa.master-list", verified))
        reason = f"{len(cscas)} CSCA certificate(s), signed by {signed.signer.subject.rfc4514_string()}"  # type: ignore[union-attr]
        return cls(cscas, loaded, str(path), Check.passed("pa.master-list", reason))

    @classmethod
    def from_certificates(cls, paths: Sequence[Path], crls: Sequence[Path] = ()) -> TrustStore:
        """CSCA certificates from PEM or DER files, trusted as given."""
        cscas = tuple(c for p in paths for c in _load_certificates(p))
        return cls(cscas, tuple(_load_crl(p) for p in crls), ", ".join(map(str, paths)))


def _master_list_content(der: bytes) -> list[bytes]:
    info = cms.ContentInfo.load(der, strict=True)
    content = info["content"]["encap_content_info"]["content"].contents
    master = icao_asn1.CscaMasterList.load(content, strict=True)
    return [c.dump() for c in master["cert_list"]]


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    try:
        if data.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise TrustStoreError(f"{path}: not a CRL: {exc}") from None


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def passive_authentication(
    sod: bytes,
    data_groups: Mapping[int, bytes],
    trust: TrustStore,
    now: dt.datetime | None = None,
    protected: Iterable[int] = (),
) -> list[Check]:
    """All passive-authentication checks of one chip (9303-11 §5.1), in order.

    ``sod`` is the content of EF.SOD (template ``77``); ``data_groups`` maps the number of
    each data group read to its whole file content; ``protected`` numbers the data groups
    EF.COM lists that the chip refused to read without Extended Access Control (``6982``),
    reported as not read (SKIPPED). A failing step fails only its own check; steps that
    cannot run without an earlier one are FAILED with that reason.
    """
    protected = frozenset(protected)
    now = now or dt.datetime.now(dt.UTC)
    checks: list[Check] = []
    if trust.source_check is not None:
        checks.append(trust.source_check)
    try:
        tlv_tag, body = sod[0], _strip_template(sod)
        if tlv_tag != 0x77:
            raise ValueError(f"EF.SOD: template tag {tlv_tag:02X}, expected 77")
        signed = verify_signed_data(body, ID_LDS_SECURITY_OBJECT, "EF.SOD")
    except ValueError as exc:
        checks.append(Check.failed("pa.sod-signature", str(exc)))
        return checks
    ds = signed.signer
    checks.append(Check.passed("pa.sod-signature", f"signed by {ds.subject.rfc4514_string()}"))

    # data group hashes (9303-10 §4.6.2)
    try:
        algorithm, expected = _data_group_hashes(signed.content)
    except ValueError as exc:
        checks.append(Check.failed("pa.dg-hashes", f"LDSSecurityObject: {exc}"))
        expected, algorithm = {}, ""
    for number in sorted(set(expected) | set(data_groups) | protected):
        name = f"pa.dg-hash:DG{number}"
        if number not in data_groups:
            if number not in expected:
                checks.append(Check.failed(name, "listed in EF.COM but not hashed in EF.SOD"))
            elif number in protected:
                checks.append(Check.skipped(name, "behind Extended Access Control (6982), not read"))
            else:
                checks.append(Check.skipped(name, "listed in EF.SOD, not read"))
        else:
            checks.append(_hash_check(name, number, data_groups[number], algorithm, expected))

    # chain to a CSCA (9303-11 §5.1)
    issuers = [c for c in trust.cscas if issued_by(ds, c)]
    csca = issuers[0] if issuers else None
    if csca is None:
        where = trust.source or "the trust store"
        checks.append(Check.failed("pa.ds-chain", f"the Document Signer is not issued by a CSCA of {where}"))
    else:
        checks.append(Check.passed("pa.ds-chain", f"issued by {csca.subject.rfc4514_string()}"))

    # validity now (RFC 5280 §4.1.2.5)
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    if not _valid_at(ds, now):
        window = f"{ds.not_valid_before_utc:%Y-%m-%d} to {ds.not_valid_after_utc:%Y-%m-%d}"
        checks.append(Check.failed("pa.ds-validity", f"the Document Signer is valid {window}, not at {stamp}"))
    elif csca is not None and not _valid_at(csca, now):
        checks.append(Check.failed("pa.ds-validity", f"the CSCA is not valid at {stamp}"))
    else:
        checks.append(Check.passed("pa.ds-validity", f"valid until {ds.not_valid_after_utc:%Y-%m-%d}"))

    checks.append(_revocation(ds, csca, trust.crls, now))
    checks.append(_key_usages(ds, csca))
    return checks


def _data_group_hashes(lds_security_object: bytes) -> tuple[str, dict[int, bytes]]:
    """The hash algorithm and the DataGroupHash values of an LDSSecurityObject (9303-10 §4.6.2.2);
    ValueError if it does not decode or names an unknown algorithm."""
    lso = icao_asn1.LDSSecurityObject.load(lds_security_object, strict=True)
    algorithm = lso["hash_algorithm"]["algorithm"].native
    hashlib.new(algorithm)
    return algorithm, {
        h["data_group_number"].native: h["data_group_hash_value"].native for h in lso["data_group_hash_values"]
    }


def _hash_check(name: str, number: int, data: bytes, algorithm: str, expected: Mapping[int, bytes]) -> Check:
    if number not in expected:
        return Check.failed(name, "read from the chip but not listed in EF.SOD")
    if hmac.compare_digest(hashlib.new(algorithm, data).digest(), expected[number]):
        return Check.passed(name, algorithm)
    return Check.failed(name, f"the {algorithm} of DG{number} differs from EF.SOD's")


def zone_hashes(sod: bytes, data_groups: Mapping[int, bytes], name: str = "zone-hashes") -> Check:
    """The data groups read after Extended Access Control against EF.SOD's hashes, as one
    verdict: EF.SOD's signature verified again (9303-11 §5.1, steps 1 and 3), then every hash
    recomputed over the whole data group (9303-10 §4.6.2). A zone altered after signing fails."""
    if not data_groups:
        return Check.skipped(name, "no data group read after Extended Access Control")
    try:
        if sod[:1] != b"\x77":
            raise ValueError(f"EF.SOD: template tag {sod[:1].hex().upper() or 'none'}, expected 77")
        signed = verify_signed_data(_strip_template(sod), ID_LDS_SECURITY_OBJECT, "EF.SOD")
        algorithm, expected = _data_group_hashes(signed.content)
    except ValueError as exc:
        return Check.failed(name, str(exc))
    results = [_hash_check(f"DG{n}", n, data_groups[n], algorithm, expected) for n in sorted(data_groups)]
    bad = [f"{c.name}: {c.reason}" for c in results if c.verdict is not Verdict.PASSED]
    if bad:
        return Check.failed(name, "; ".join(bad))
    return Check.passed(name, f"{', '.join(c.name for c in results)} match EF.SOD ({algorithm})")


def _strip_template(data: bytes) -> bytes:
    """The value of the outer BER-TLV (EF.SOD's ``77``)."""
    if len(data) < 2:
        raise ValueError("EF.SOD: empty")
    first = data[1]
    if first < 0x80:
        start, length = 2, first
    else:
        count = first & 0x7F
        start, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    if start + length != len(data):
        raise ValueError(f"EF.SOD: template length {length} does not match the {len(data) - start} bytes")
    return data[start:]


def _revocation(
    ds: x509.Certificate,
    csca: x509.Certificate | None,
    crls: Sequence[x509.CertificateRevocationList],
    now: dt.datetime,
) -> Check:
    """The CSCA's CRL: issued and signed by the CSCA, current, DS not listed (RFC 5280 §6.3)."""
    name = "pa.ds-revocation"
    if not crls:
        return Check.skipped(name, "no CRL given")
    if csca is None:
        return Check.failed(name, "no CSCA to check the CRL against")
    own = [c for c in crls if c.issuer == csca.subject]
    if not own:
        return Check.failed(name, "no CRL of the issuing CSCA")
    crl = own[0]
    if not crl.is_signature_valid(csca.public_key()):  # type: ignore[arg-type]
        return Check.failed(name, "the CRL's signature does not verify with the CSCA's key")
    next_update = crl.next_update_utc
    if crl.last_update_utc > now or (next_update is not None and next_update < now):
        return Check.failed(name, f"the CRL is not current (next update {next_update:%Y-%m-%d})")
    entry = crl.get_revoked_certificate_by_serial_number(ds.serial_number)
    if entry is not None:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = "unspecified"
        since = f"{entry.revocation_date_utc:%Y-%m-%d}"
        return Check.failed(name, f"the Document Signer is revoked ({reason}) since {since}")
    return Check.passed(name, f"not on the CSCA CRL of {crl.last_update_utc:%Y-%m-%d}")


def _key_usages(ds: x509.Certificate, csca: x509.Certificate | None) -> Check:
    """DS: digitalSignature; CSCA: keyCertSign, cRLSign, basicConstraints CA (9303-12 §7.1)."""
    name = "pa.key-usage"
    usage = _key_usage(ds)
    if usage is None or not usage.digital_signature:
        return Check.failed(name, "the Document Signer's keyUsage lacks digitalSignature")
    if csca is not None:
        csca_usage = _key_usage(csca)
        if csca_usage is None or not (csca_usage.key_cert_sign and csca_usage.crl_sign):
            return Check.failed(name, "the CSCA's keyUsage lacks keyCertSign or cRLSign")
        try:
            ca = csca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            return Check.failed(name, "the CSCA is not a CA (basicConstraints)")
    return Check.passed(name, "DS digitalSignature" + ("; CSCA keyCertSign, cRLSign, CA" if csca else ""))
