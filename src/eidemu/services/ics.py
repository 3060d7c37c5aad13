"""A local test double of ICS (自然人憑證用戶身分確認服務), the identity confirmation service banks
use to check that a citizen certificate belongs to the person opening an account.

``POST /cgi-bin/CheckSNPID/CheckSNPID`` over HTTPS (a TEST server certificate,
``fixtures/pki/mobile/ics``), body ``ICSRequestXMLData=<ICSRequest>…</ICSRequest>``
(``docs/moica-services.md``): the ``<ICSReq>`` element exactly as sent is what the bank signed
(SHA1withRSA, RSASSA-PKCS1-v1_5, RFC 8017 §8.2, hex in ``<Signature>``), its length in bytes is
``<ICSReqLength>``, and ``<ClientID>`` is the SHA-1 thumbprint of a registered bank certificate.

Each ``<Rec>`` is answered from the TEST PKI's identities, the ones the emulated cards carry:
``SSID`` (national ID) unknown -> 2, known with another certificate serial (``SN``) -> 1, else
the identity's status: valid 0, not yet valid 3 ("not activated"), expired 4, revoked 5.
Request-level errors are ``<ErrID>``: 1020 unknown ClientID and 1021 bad signature are public;
the others (1001-1005) are eidemu's numbering of what it refuses.
"""

from __future__ import annotations

import enum
import logging
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eidemu.emulator.pki.http_service import HttpAnswer, HttpRequest
from eidemu.emulator.pki.store import TestPki
from eidemu.fixtures import fixture_path

from . import crypto

log = logging.getLogger(__name__)

ICS_PATH = "/cgi-bin/CheckSNPID/CheckSNPID"
FORM_FIELD = "ICSRequestXMLData"
MAX_RECORDS = 1000
ICS_FIXTURES = fixture_path("pki") / "mobile" / "ics"
NONCE_PATTERN = re.compile(r"[0-9A-Za-z]{15}")
REQ_TIME_PATTERN = re.compile(r"[0-9]{14}")


@enum.unique
class RecordCode(enum.IntEnum):
    """Per-record ``<Code>`` (public client code, ``docs/moica-services.md``)."""

    MATCH = 0
    NO_RECORD = 1
    NO_CERTIFICATE = 2
    NOT_ACTIVATED = 3
    EXPIRED = 4
    REVOKED = 5
    DATABASE_FAILURE = 999


@enum.unique
class ErrorId(enum.IntEnum):
    """Request-level ``<ErrID>``: 1020 and 1021 are public, 1001-1005 eidemu's numbering."""

    MALFORMED = 1001
    LENGTH_MISMATCH = 1002
    BAD_NONCE = 1003
    BAD_REQ_TIME = 1004
    BAD_COUNT = 1005
    UNKNOWN_CLIENT = 1020
    BAD_SIGNATURE = 1021


class IcsError(Exception):
    def __init__(self, error_id: ErrorId, echo: dict[str, str] | None = None) -> None:
        super().__init__(error_id.name)
        self.error_id = error_id
        self.echo = echo or {}


STATUS_CODES = {
    "valid": RecordCode.MATCH,
    "not-yet-valid": RecordCode.NOT_ACTIVATED,
    "expired": RecordCode.EXPIRED,
    "revoked": RecordCode.REVOKED,
}


def thumbprint(cert: x509.Certificate) -> str:
    """``ClientID``: SHA-1 of the certificate's DER, upper-case hex."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - the protocol's identifier


@dataclass(frozen=True)
class Record:
    """One ``<Rec>`` of a request: ``ID`` (the bank's sequence), ``SN``, ``SSID``."""

    id: str
    sn: str
    ssid: str


@dataclass(frozen=True)
class IcsRequest:
    """A parsed ``<ICSRequest>``; ``signed`` is the ``<ICSReq>`` element as sent."""

    client_id: str
    nonce: str
    req_time: str
    total_count: int
    records: tuple[Record, ...]
    signed: bytes
    signature: bytes

    @classmethod
    def parse(cls, xml: bytes) -> IcsRequest:
        text = xml.decode("utf-8")
        if "<!" in text:  # no DOCTYPE, entities or CDATA: nothing to expand
            raise IcsError(ErrorId.MALFORMED)
        start, end = text.find("<ICSReq>"), text.find("</ICSReq>")
        if start < 0 or end < start:
            raise IcsError(ErrorId.MALFORMED)
        signed = text[start : end + len("</ICSReq>")].encode("utf-8")
        try:
            root = ElementTree.fromstring(text)  # noqa: S314 - DTDs refused above
        except ElementTree.ParseError:
            raise IcsError(ErrorId.MALFORMED) from None
        req = root.find("ICSReq")
        if root.tag != "ICSRequest" or req is None:
            raise IcsError(ErrorId.MALFORMED)
        echo = {name: (req.findtext(name) or "") for name in ("ClientID", "Nonce", "ReqTime", "TotalCount")}
        length = (root.findtext("ICSReqLength") or "").strip()
        if not length.isdigit() or int(length) != len(signed):
            raise IcsError(ErrorId.LENGTH_MISMATCH, echo)
        try:
            signature = bytes.fromhex((root.findtext("Signature") or "").strip())
        except ValueError:
            raise IcsError(ErrorId.BAD_SIGNATURE, echo) from None
        if not NONCE_PATTERN.fullmatch(echo["Nonce"]):
            raise IcsError(ErrorId.BAD_NONCE, echo)
        if not REQ_TIME_PATTERN.fullmatch(echo["ReqTime"]):
            raise IcsError(ErrorId.BAD_REQ_TIME, echo)
        records = tuple(
            Record(r.findtext("ID") or "", (r.findtext("SN") or "").strip(), (r.findtext("SSID") or "").strip())
            for r in req.findall("Rec")
        )
        count = echo["TotalCount"]
        if not count.isdigit() or int(count) != len(records) or not 1 <= len(records) <= MAX_RECORDS:
            raise IcsError(ErrorId.BAD_COUNT, echo)
        return cls(echo["ClientID"].strip().upper(), echo["Nonce"], echo["ReqTime"], int(count), records,
                   signed, signature)  # fmt: skip


def build_request(
    bank_key: rsa.RSAPrivateKey,
    bank_cert: x509.Certificate,
    records: Iterable[tuple[str, str]],
    nonce: str,
    req_time: str,
) -> str:
    """The XML a bank sends (what the example and the tests use): records are (SN, SSID)."""
    recs = "".join(
        f"<Rec><ID>{i}</ID><SN>{_xml(sn)}</SN><SSID>{_xml(ssid)}</SSID></Rec>"
        for i, (sn, ssid) in enumerate(records, 1)
    )
    count = recs.count("<Rec>")
    req = (
        f"<ICSReq><ClientID>{thumbprint(bank_cert)}</ClientID><Nonce>{nonce}</Nonce><ReqTime>{req_time}</ReqTime>"
        f"<TotalCount>{count}</TotalCount>{recs}</ICSReq>"
    )
    signature = bank_key.sign(req.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - ICS's algorithm
    return (
        f"<ICSRequest>{req}<ICSReqLength>{len(req.encode('utf-8'))}</ICSReqLength>"
        f"<Signature>{signature.hex().upper()}</Signature></ICSRequest>"
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class IcsService:
    """CheckSNPID without HTTP (testable directly); :meth:`handle` is the HTTP handler."""

    def __init__(self, pki: TestPki, banks: Iterable[x509.Certificate], *, database_failure: bool = False) -> None:
        self.banks = {thumbprint(cert): cert for cert in banks}
        self.by_id = {r.identity.national_id: r for r in pki.identities.values()}
        self.database_failure = database_failure

    def check(self, xml: bytes) -> str:
        """The ``<ICSResponse>`` for one request's XML."""
        try:
            request = IcsRequest.parse(xml)
            bank = self.banks.get(request.client_id)
            if bank is None:
                raise IcsError(ErrorId.UNKNOWN_CLIENT, _echo(request))
            public_key = bank.public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            try:
                public_key.verify(request.signature, request.signed, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
            except InvalidSignature:
                raise IcsError(ErrorId.BAD_SIGNATURE, _echo(request)) from None
        except UnicodeDecodeError:
            return _error_response(ErrorId.MALFORMED, {})
        except IcsError as error:
            log.info("ICS request refused: ErrID %d", error.error_id)
            return _error_response(error.error_id, error.echo)
        rows = []
        for record in request.records:
            code = self.record_code(record)
            rows.append(
                f"<Rec><ID>{_xml(record.id)}</ID><SN>{_xml(record.sn)}</SN><SSID4>{_xml(record.ssid[-4:])}</SSID4>"
                f"<Code>{int(code)}</Code></Rec>"
            )
            log.info("ICS record %s: %d", crypto.hash_id(record.ssid)[:16], code)
        return f"<ICSResponse>{_echo_xml(_echo(request))}{''.join(rows)}</ICSResponse>"

    def record_code(self, record: Record) -> RecordCode:
        if self.database_failure:
            return RecordCode.DATABASE_FAILURE
        identity = self.by_id.get(record.ssid)
        if identity is None or identity.ca.startswith("lookalike"):
            return RecordCode.NO_CERTIFICATE
        if record.sn != identity.identity.cert_serial_number:
            return RecordCode.NO_RECORD
        return STATUS_CODES.get(identity.status, RecordCode.NO_RECORD)

    def handle(self, request: HttpRequest) -> HttpAnswer:
        if urlsplit(request.target).path != ICS_PATH:
            return HttpAnswer(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        if request.method != "POST":
            return HttpAnswer(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"POST only\n", (("Allow", "POST"),))
        try:
            form = parse_qs(request.body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            form = {}
        values = form.get(FORM_FIELD, [])
        body = self.check(values[0].encode("utf-8")) if len(values) == 1 else _error_response(ErrorId.MALFORMED, {})
        return HttpAnswer(HTTPStatus.OK, "text/xml; charset=utf-8", body.encode("utf-8"))


def _echo(request: IcsRequest) -> dict[str, str]:
    return {"ClientID": request.client_id, "Nonce": request.nonce, "ReqTime": request.req_time,
            "TotalCount": str(request.total_count)}  # fmt: skip


def _echo_xml(echo: dict[str, str]) -> str:
    return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in echo.items())


def _error_response(error_id: ErrorId, echo: dict[str, str]) -> str:
    return f"<ICSResponse>{_echo_xml(echo)}<ErrID>{int(error_id)}</ErrID></ICSResponse>"


def server_context(
    cert: Path = ICS_FIXTURES / "server.cert.pem", key: Path = ICS_FIXTURES / "server.key.pem"
) -> ssl.SSLContext:
    """The TLS context of ``eidemu ics serve``: the TEST server certificate, TLS 1.2 or later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def client_context(ca: Path = ICS_FIXTURES / "ca.cert.pem") -> ssl.SSLContext:
    """What a bank's client uses to trust the double: TEST ICS Root only."""
    return ssl.create_default_context(cafile=str(ca))


def load_banks(paths: Iterable[Path]) -> list[x509.Certificate]:
    """Registered bank certificates (PEM files); ValueError naming a file that is not one."""
    banks = []
    for path in paths:
        try:
            banks.append(x509.load_pem_x509_certificate(path.read_bytes()))
        except ValueError:
            raise ValueError(f"{path}: not a PEM certificate") from None
    return banks


def default_bank() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The shipped TEST bank: certificate and key."""
    cert = x509.load_pem_x509_certificate((ICS_FIXTURES / "bank.cert.pem").read_bytes())
    key = serialization.load_pem_private_key((ICS_FIXTURES / "bank.key.pem").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return cert, key
