"""A small relying-party web application that logs users in with the citizen certificate card
through a HiPKI-compatible local service (``eidemu hipki serve``), as real ones do.

The page (``index.html``): probes the service with ``/p11Image.bmp``, reads the user
certificate with ``GetUserCert`` and signs a server nonce with ``MakeSignature`` (PKCS7)
through the popup protocol. This server: hands out single-use nonces, and on ``/verify``
checks the CMS SignedData (RFC 5652 §5.4: the signature over the signed attributes with the
certificate's key, messageDigest over eContent), that eContent is the nonce it issued, the
certificate chain to the TEST roots with OCSP at eidemu's local PKI services (RFC 5280 §6,
RFC 6960), and that the certificate's ID digits (Subject Directory Attributes,
``docs/moica-card.md``) are the last 4 digits of the national ID the user typed.

Run: ``python examples/hipki-relying-party/server.py --port 8080 --hipki http://localhost:61161``
TEST ONLY: it trusts eidemu's TEST PKI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import secrets
import time
from pathlib import Path

from aiohttp import web
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from eidemu.conformance.flows.moica_relying_party import ChainValidationError, validate_signer
from eidemu.emulator.formats.moica_asn1 import OID_SUBJECT_DIRECTORY_ATTRIBUTES, decode_moica_sda
from eidemu.fixtures import fixture_path

HERE = Path(__file__).parent
NONCE_LIFETIME = 300.0
HASHES = {  # SHA-1 signatures are refused
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
INTERMEDIATES = [
    x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(encoding=Encoding.DER)
    for path in sorted(fixture_path("pki").joinpath("ca").glob("moica-*.cert.pem"))
]
NONCES = web.AppKey("nonces", dict)
HIPKI = web.AppKey("hipki", str)


class Rejected(Exception):
    """The login is refused; the message says why."""


def verify_login(signature_b64: str, nonce: str, national_id: str) -> dict[str, str]:
    """All the server-side checks; returns who logged in, or raises :class:`Rejected`."""
    try:
        info = cms.ContentInfo.load(base64.b64decode(signature_b64, validate=True))
        signed = info["content"]
        if info["content_type"].native != "signed_data":
            raise Rejected("not a CMS SignedData")
        content = signed["encap_content_info"]["content"].native
        (signer,) = signed["signer_infos"]
        certs = [c.chosen.dump() for c in signed["certificates"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise Rejected(f"malformed signature: {exc}") from None
    if content != nonce.encode():
        raise Rejected("the signed content is not the nonce this server issued")
    serial = signer["sid"].chosen["serial_number"].native
    cert = next(
        (x509.load_der_x509_certificate(d) for d in certs if x509.load_der_x509_certificate(d).serial_number == serial),
        None,
    )
    if cert is None:
        raise Rejected("the signer certificate is not in the signature")
    hash_name = signer["digest_algorithm"]["algorithm"].native
    if hash_name not in HASHES:
        raise Rejected(f"digest algorithm {hash_name} not accepted")
    attrs = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}
    if attrs.get("message_digest") != hashlib.new(hash_name, content).digest():
        raise Rejected("messageDigest does not match the content")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Rejected("the signer key is not RSA")
    try:
        key.verify(
            signer["signature"].native,
            b"\x31" + signer["signed_attrs"].dump()[1:],
            padding.PKCS1v15(),
            HASHES[hash_name],
        )
    except Exception:
        raise Rejected("the signature does not verify with the certificate") from None
    try:
        validate_signer(cert.public_bytes(Encoding.DER), INTERMEDIATES, "OCSP")
    except ChainValidationError as exc:
        raise Rejected(f"certificate not accepted: {exc}") from None
    subject_id = ""
    for extension in cert.extensions:
        if extension.oid.dotted_string == OID_SUBJECT_DIRECTORY_ATTRIBUTES:
            subject_id = decode_moica_sda(extension.value.public_bytes()) or ""
    if not subject_id or subject_id != national_id.strip()[-4:]:
        raise Rejected("the certificate does not belong to this national ID")
    return {"name": cert.subject.rfc4514_string(), "subjectID": subject_id}


async def index(request: web.Request) -> web.Response:
    page = (HERE / "index.html").read_text("utf-8").replace("{{HIPKI}}", request.app[HIPKI])
    return web.Response(text=page, content_type="text/html")


async def script(request: web.Request) -> web.Response:
    return web.Response(text=(HERE / "rp.js").read_text("utf-8"), content_type="application/javascript")


async def nonce(request: web.Request) -> web.Response:
    nonces = request.app[NONCES]
    now = time.monotonic()
    for old in [n for n, expiry in nonces.items() if expiry < now]:
        del nonces[old]
    value = secrets.token_hex(16)
    nonces[value] = now + NONCE_LIFETIME
    return web.json_response({"nonce": value})


async def verify(request: web.Request) -> web.Response:
    body = await request.json()
    value = str(body.get("nonce", ""))
    if request.app[NONCES].pop(value, 0) < time.monotonic():
        return web.json_response({"ok": False, "reason": "unknown or expired nonce"})
    try:
        who = await asyncio.to_thread(
            verify_login, str(body.get("signature", "")), value, str(body.get("nationalId", ""))
        )
    except Rejected as exc:
        return web.json_response({"ok": False, "reason": str(exc)})
    return web.json_response({"ok": True, **who})


def make_app(hipki_url: str) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[NONCES] = {}
    app[HIPKI] = hipki_url
    app.router.add_get("/", index)
    app.router.add_get("/rp.js", script)
    app.router.add_post("/nonce", nonce)
    app.router.add_post("/verify", verify)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--hipki", default="http://localhost:61161", help="the local signing service")
    args = parser.parse_args()
    web.run_app(
        make_app(args.hipki),
        host=args.host,
        port=args.port,
        print=lambda *_: print(f"relying party on {args.port}", flush=True),
    )


if __name__ == "__main__":
    main()
