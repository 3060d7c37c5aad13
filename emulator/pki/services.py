"""Local revocation services for the test PKI: CRL publication and an RFC 6960 OCSP responder.

``eidemu pki serve`` runs a bounded loopback HTTP service
(:class:`~eidemu.emulator.pki.http_service.LocalHttpService`: connection cap, per-connection
timeout, request size limits, one log line per request) with these routes:

* ``GET /crl/<ca>.crl``: the CA's complete CRL, DER, ``application/pkix-crl`` (RFC 5280 §5,
  RFC 2585 §4.2). CRLs are re-signed with the CA key when the server starts, with thisUpdate a
  minute ago and nextUpdate a day later, so they never look stale.
* ``GET /ca/<ca>.cer``: the CA certificate, DER, ``application/pkix-cert`` (the caIssuers
  target, RFC 5280 §4.2.2.1).
* ``POST /ocsp[/<ca>]`` with ``application/ocsp-request`` and ``GET /ocsp[/<ca>]/<base64>``
  (RFC 6960 §A.1): OCSP. The CA is found from the request's CertID (issuer name and key hash), not
  from the path; the response is signed by the issuing CA key itself (RFC 6960 §4.2.2.2, responder
  is the CA), names the responder by key hash, and echoes a nonce (RFC 8954 / RFC 6960 §4.4.1).
  Status is ``good`` for a certificate the CA issued, ``revoked`` with time and reason for one on
  its CRL, ``unknown`` for a serial it never issued; a CertID naming no test CA gets
  ``unauthorized`` (RFC 6960 §2.3).

The certificates carry the generation-time base URL in their CRLDP and AIA extensions: the server
must listen on that address (``manifest.json`` ``base_url``) for relying parties to reach it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import threading
import time
from collections import Counter
from http import HTTPStatus
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .generate import build_crl
from .http_service import HttpAnswer, HttpLimits, HttpRequest, LocalHttpService
from .store import CertificateAuthority, TestPki

log = logging.getLogger(__name__)

CRL_LIFETIME = dt.timedelta(days=1)
OCSP_LIFETIME = dt.timedelta(hours=1)
CLOCK_SKEW = dt.timedelta(minutes=1)

_OCSP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _issuer_hashes(ca: CertificateAuthority, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """CertID issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1): hashes of the DN and of the key bits."""
    # For RSA the subjectPublicKey BIT STRING holds exactly the PKCS#1 RSAPublicKey DER.
    key_bits = ca.cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    name_der = ca.cert.subject.public_bytes()
    return (
        hashlib.new(algorithm.name, name_der).digest(),
        hashlib.new(algorithm.name, key_bits).digest(),
    )


class RevocationAuthority:
    """Answers CRL and OCSP queries for a loaded test PKI (no HTTP in here: testable directly)."""

    def __init__(self, pki: TestPki, now: dt.datetime | None = None) -> None:
        self.pki = pki
        self._lock = threading.Lock()
        self.crls: dict[str, bytes] = {}
        self._crls_issued_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        self.refresh_crls(now)

    def refresh_crls(self, now: dt.datetime | None = None) -> None:
        """Re-sign every CA's CRL as of ``now`` (thisUpdate now - 1 min, nextUpdate + 1 day)."""
        now = now or dt.datetime.now(dt.UTC)
        # cRLNumber must increase between issued CRLs (RFC 5280 §5.2.3): seconds since the epoch do.
        crl_number = int(now.timestamp())
        crls = {
            name: build_crl(
                ca.cert, ca.key, self.pki.revoked_by(name), now - CLOCK_SKEW, now + CRL_LIFETIME, crl_number
            ).public_bytes(serialization.Encoding.DER)
            for name, ca in self.pki.cas.items()
        }
        with self._lock:
            self.crls, self._crls_issued_at = crls, now

    def crl(self, ca_name: str, now: dt.datetime | None = None) -> bytes | None:
        """The CA's current CRL; re-signed first once half its lifetime has passed, so it never goes stale."""
        now = now or dt.datetime.now(dt.UTC)
        if now - self._crls_issued_at > CRL_LIFETIME / 2:
            self.refresh_crls(now)
        return self.crls.get(ca_name)

    def ca_certificate(self, ca_name: str) -> bytes | None:
        ca = self.pki.cas.get(ca_name)
        return ca.cert.public_bytes(serialization.Encoding.DER) if ca else None

    def find_ca(self, request: ocsp.OCSPRequest) -> CertificateAuthority | None:
        """The CA whose name and key hashes match the request's CertID."""
        hash_type = _OCSP_HASHES.get(request.hash_algorithm.name)
        if hash_type is None:
            return None
        for ca in self.pki.cas.values():
            if _issuer_hashes(ca, hash_type()) == (request.issuer_name_hash, request.issuer_key_hash):
                return ca
        return None

    def ocsp_response(self, request_der: bytes, now: dt.datetime | None = None) -> bytes:
        """DER OCSPResponse for a DER OCSPRequest (RFC 6960 §4.1, §4.2)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            _ = request.serial_number  # raises for requests cryptography cannot represent
        except (ValueError, NotImplementedError):
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        ca = self.find_ca(request)
        if ca is None:
            return self._unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = now or dt.datetime.now(dt.UTC)
        this_update = now - CLOCK_SKEW
        issued = self.pki.issued.get((ca.name, request.serial_number))
        revocation_time, reason = None, None
        if issued is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif issued.revocation is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time, reason = issued.revocation.revocation_time, issued.revocation.reason
        else:
            status = ocsp.OCSPCertStatus.GOOD
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                request.issuer_name_hash,
                request.issuer_key_hash,
                request.serial_number,
                request.hash_algorithm,
                status,
                this_update,
                now + OCSP_LIFETIME,
                revocation_time,
                reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        )
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        log.info("OCSP %s serial %x: %s", ca.name, request.serial_number, status.name)
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    @staticmethod
    def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)

    def handle_get(self, path: str) -> HttpAnswer:
        """Route a GET request path (RFC 6960 §A.1 for OCSP GET)."""
        path = urlsplit(path).path
        if path.startswith("/crl/") and path.endswith(".crl"):
            body = self.crl(path[len("/crl/") : -len(".crl")])
            if body is not None:
                return HttpAnswer(HTTPStatus.OK, "application/pkix-crl", body)
        elif path.startswith("/ca/") and path.endswith(".cer"):
            body = self.ca_certificate(path[len("/ca/") : -len(".cer")])
            if body is not None:
                return HttpAnswer(HTTPStatus.OK, "application/pkix-cert", body)
        elif path.startswith("/ocsp/"):
            encoded = path[len("/ocsp/") :]
            first, _, rest = encoded.partition("/")
            if first in self.pki.cas:
                encoded = rest
            try:
                request_der = base64.b64decode(unquote(encoded), validate=True)
            except (binascii.Error, ValueError):
                return HttpAnswer(HTTPStatus.BAD_REQUEST, "text/plain", b"OCSP GET: bad base64\n")
            return HttpAnswer(HTTPStatus.OK, "application/ocsp-response", self.ocsp_response(request_der))
        elif path == "/":
            return HttpAnswer(HTTPStatus.OK, "text/plain; charset=utf-8", self.index().encode())
        return HttpAnswer(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def handle_post(self, path: str, content_type: str, body: bytes) -> HttpAnswer:
        """Route a POST request: only OCSP (RFC 6960 §A.1.1)."""
        path = urlsplit(path).path
        if path != "/ocsp" and not path.startswith("/ocsp/"):
            return HttpAnswer(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        if content_type.split(";")[0].strip().lower() != "application/ocsp-request":
            return HttpAnswer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "text/plain", b"expected application/ocsp-request\n")
        return HttpAnswer(HTTPStatus.OK, "application/ocsp-response", self.ocsp_response(body))

    def index(self) -> str:
        lines = [f"eidemu test PKI (TEST ONLY), certificates point at {self.pki.base_url}", ""]
        for name, ca in self.pki.cas.items():
            lines.append(f"{name}: crl/{name}.crl  ocsp/{name}  ca/{name}.cer  ({ca.cert.subject.rfc4514_string()})")
        return "\n".join(lines) + "\n"


class PkiHttpServer(LocalHttpService):
    """The CRL/OCSP service over HTTP for one :class:`RevocationAuthority` (replaceable with
    :meth:`load`), with the bounds of :class:`~eidemu.emulator.pki.http_service.LocalHttpService`."""

    def __init__(
        self,
        authority: RevocationAuthority | None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
    ) -> None:
        super().__init__(self._route, host, port, limits=limits, name="eidemu-pki-serve")
        self._authority = authority
        self._hits_lock = threading.Lock()
        self.hits: Counter[str] = Counter()  # "GET crl", "POST ocsp", ...: lets tests see real traffic

    def count(self, method: str, path: str) -> None:
        kind = urlsplit(path).path.strip("/").split("/")[0] or "index"
        with self._hits_lock:
            self.hits[f"{method} {kind}"] += 1

    @property
    def authority(self) -> RevocationAuthority:
        if self._authority is None:
            raise RuntimeError("no PKI loaded")
        return self._authority

    def load(self, pki_dir: Path | str) -> None:
        """Serve the PKI in ``pki_dir`` from now on (CRLs re-signed as of now)."""
        self._authority = RevocationAuthority(TestPki.load(pki_dir))

    def _route(self, request: HttpRequest) -> HttpAnswer:
        self.count(request.method, request.target)
        authority = self._authority
        if authority is None:
            return HttpAnswer(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no PKI loaded\n")
        if request.method in ("GET", "HEAD"):
            return authority.handle_get(request.target)
        if request.method == "POST":
            return authority.handle_post(request.target, request.headers.get("content-type", ""), request.body)
        allow = (("Allow", "GET, HEAD, POST"),)
        return HttpAnswer(HTTPStatus.METHOD_NOT_ALLOWED, "text/plain", b"GET, HEAD or POST\n", allow)


def serve_forever(
    pki_dir: Path | str, host: str = "127.0.0.1", port: int = 8765, *, limits: HttpLimits | None = None
) -> None:
    """Serve ``pki_dir`` until interrupted; warns if the certificates point elsewhere."""
    authority = RevocationAuthority(TestPki.load(pki_dir))
    with PkiHttpServer(authority, host, port, limits=limits) as server:
        expected = authority.pki.base_url
        served = server.base_url
        bounds = server.limits
        print(
            f"eidemu pki serve: {pki_dir} at {served} (CRLs re-signed {time.strftime('%Y-%m-%d %H:%M:%S')}; "
            f"at most {bounds.max_connections} connections, {bounds.connection_timeout:g} s each)",
            flush=True,
        )
        if urlsplit(expected).netloc != urlsplit(served).netloc:
            print(f"eidemu pki serve: warning: the certificates point at {expected}; revocation checks will miss")
        server.serve_forever()
