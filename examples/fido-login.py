#!/usr/bin/env python3
"""A relying party's login with the mobile citizen certificate, against eidemu's TEST double.

The SP asks whether the holder has a bound device (checkDeviceStatus), gets a login ticket
(getSpTicket, op_code ATH), pushes it to the phone (requestAthOrSignPush), polls for the result
(getAthOrSignResult) and verifies what comes back: the idp_checksum under its AES key, the
holder's signature over the ticket with the returned certificate, that certificate's chain
up to TEST MOICA G3 and its root, and its status at the TEST PKI's OCSP responder. The holder
is eidemu's scripted phone (approves after a delay).

    python examples/fido-login.py                      # starts the double in-process
    python examples/fido-login.py --server http://127.0.0.1:8766/ --no-phone   # against `eidemu fido serve`

Exit code 0 when the login verified, 1 otherwise. TEST ONLY.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
import threading
import time
import urllib.request
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from eidemu.emulator.pki.services import PkiHttpServer, RevocationAuthority
from eidemu.emulator.pki.store import TestPki
from eidemu.fixtures import fixture_path
from eidemu.services.fido import DEFAULT_SP_ID, DEFAULT_SP_KEY, FidoService, sp_request, verify_idp_checksum
from eidemu.services.phone import Phone
from eidemu.services.server import running


def call(server: str, name: str, **fields: Any) -> dict[str, Any]:
    body = json.dumps(sp_request(DEFAULT_SP_ID, DEFAULT_SP_KEY, name, **fields)).encode()
    if not server.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {server}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(f"{server}moise/sp/{name}", data=body, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the double's URL
        return json.loads(response.read())


def login(server: str, id_num: str, poll_interval: float, phone: Phone | None, pki: TestPki) -> bool:
    transaction_id = f"login-{int(time.time() * 1000)}"
    status = call(server, "checkDeviceStatus", transaction_id=transaction_id, id_num=id_num)
    print(f"checkDeviceStatus: is_fido={status.get('is_fido')} is_mcert_sign={status.get('is_mcert_sign')}")
    if not status.get("is_fido"):
        return False
    answer = call(server, "getSpTicket", transaction_id=transaction_id, op_code="ATH", id_num=id_num,
                  hint="TEST login", time_limit=60)  # fmt: skip
    if str(answer["error_code"]) != "0" or not verify_idp_checksum(DEFAULT_SP_KEY, "getSpTicket", answer):
        print(f"getSpTicket: {answer['error_code']} {answer.get('error_message')}")
        return False
    ticket = answer["sp_ticket"]
    pushed = call(server, "requestAthOrSignPush", transaction_id=transaction_id, sp_ticket=ticket)
    print(f"requestAthOrSignPush: {pushed['error_code']}")
    if str(pushed["error_code"]) != "0":
        return False
    if phone is not None:  # the holder approves on the phone a moment later
        threading.Timer(poll_interval / 2, phone.approve, (ticket,)).start()
    while True:
        time.sleep(poll_interval)
        result = call(server, "getAthOrSignResult", transaction_id=transaction_id, sp_ticket=ticket)
        if result["error_code"] != "SPTKTID_TXNLOG_NF":
            break
        print("getAthOrSignResult: pending")
    print(f"getAthOrSignResult: {result['error_code']} {result.get('error_message')}")
    if str(result["error_code"]) != "0":
        return False
    if not verify_idp_checksum(DEFAULT_SP_KEY, "getAthOrSignResult", result):
        print("idp_checksum does not verify")
        return False
    cert = x509.load_der_x509_certificate(base64.b64decode(result["cert"]))
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(result["signed_response"]), ticket.encode(), padding.PKCS1v15(), hashes.SHA256())
    issuer, root = pki.cas["moica-g3"].cert, pki.cas["root-g3"].cert
    cert.verify_directly_issued_by(issuer)
    issuer.verify_directly_issued_by(root)
    if not certificate_is_good(cert, issuer, pki):
        return False
    print(
        f"login verified: {cert.subject.rfc4514_string()} (RSA-{key.key_size}), "
        f"chain to {root.subject.rfc4514_string()}"
    )
    return True


def certificate_is_good(cert: x509.Certificate, issuer: x509.Certificate, pki: TestPki) -> bool:
    """Ask the TEST PKI's OCSP responder (RFC 6960) about the holder's certificate; the
    responder runs in-process here (``eidemu pki serve`` is the same service)."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - CertID
    with PkiHttpServer(RevocationAuthority(pki)) as server:
        server.start_in_thread()
        post = urllib.request.Request(  # noqa: S310 - the local responder
            f"{server.base_url}ocsp", data=request.public_bytes(Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        )  # fmt: skip
        with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310
            answer = ocsp.load_der_ocsp_response(response.read())
    issuer_key = issuer.public_key()
    assert isinstance(issuer_key, rsa.RSAPublicKey) and answer.signature_hash_algorithm is not None
    issuer_key.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), answer.signature_hash_algorithm)
    print(f"OCSP: {answer.certificate_status.name}")
    return answer.certificate_status == ocsp.OCSPCertStatus.GOOD


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a running `eidemu fido serve` (default: start one in-process)")
    parser.add_argument("--holder", default="g3-valid-1", help="TEST PKI identity slug")
    parser.add_argument("--poll-interval", type=float, default=4.0, help="seconds between polls (the spec: >= 4)")
    parser.add_argument("--no-phone", action="store_true", help="approve yourself with `eidemu fido phone approve`")
    args = parser.parse_args()
    pki = TestPki.load(fixture_path("pki"))
    id_num = pki.identities[args.holder].identity.national_id
    with contextlib.ExitStack() as stack:
        server = args.server
        if server is None:
            server = stack.enter_context(running(FidoService(pki).handle, name="fido-example")).base_url
        phone = None if args.no_phone else Phone(server, id_num)
        ok = login(server, id_num, args.poll_interval, phone, pki)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
