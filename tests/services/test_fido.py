"""The mobile certificate double's SP API over HTTP: every call, every error code, exact fields."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from eidemu.emulator.pki.services import RevocationAuthority
from eidemu.emulator.pki.store import TestPki
from eidemu.services import crypto
from eidemu.services.fido import (
    DEFAULT_SP_KEY,
    REQUEST_FIELDS,
    ErrorCode,
    FidoConfig,
    FidoService,
    Quirks,
    deep_link,
    qr_payload,
    sp_request,
    ticket_from_link,
    verify_idp_checksum,
)
from eidemu.services.server import running

from .conftest import Clock, Fido, holder_id

SLUG = "g3-valid-1"


def ticket(fido: Fido, pki: TestPki, **fields: Any) -> str:
    fields.setdefault("op_code", "ATH")
    fields.setdefault("id_num", holder_id(pki, SLUG))
    fields.setdefault("time_limit", 120)
    answer = fido.post("getSpTicket", **fields)
    assert answer["error_code"] == "0", answer
    return str(answer["sp_ticket"])


def holder_cert(answer: dict[str, Any]) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(answer["cert"]))


# -- primitives -------------------------------------------------------------------------------


def test_checksum_is_aes_gcm_with_a_zero_iv_over_the_sha256_hex_of_the_fields() -> None:
    value = crypto.checksum(DEFAULT_SP_KEY, ["txn-1", "EIDEMU-TEST-SP", "ATH"])
    plain = AESGCM(DEFAULT_SP_KEY).decrypt(bytes(12), base64.b64decode(value), None)
    assert plain == hashlib.sha256(b"txn-1EIDEMU-TEST-SPATH").hexdigest().encode()
    assert len(base64.b64decode(value)) == 64 + 16
    assert crypto.checksum_matches(DEFAULT_SP_KEY, ["txn-1", "EIDEMU-TEST-SP", "ATH"], value)
    assert not crypto.checksum_matches(DEFAULT_SP_KEY, ["txn-2", "EIDEMU-TEST-SP", "ATH"], value)
    assert not crypto.checksum_matches(DEFAULT_SP_KEY, ["txn-1"], 5)


def test_ticket_is_base64url_json_dot_base64url_sha256_of_the_first_segment() -> None:
    ticket_text = crypto.make_ticket({"tid": "ab", "exp": 5})
    first, second = ticket_text.split(".")
    assert json.loads(crypto.b64url_decode(first)) == {"exp": 5, "tid": "ab"}
    assert crypto.b64url_decode(second) == hashlib.sha256(first.encode()).digest()
    assert "=" not in ticket_text
    with pytest.raises(ValueError, match="hash mismatch"):
        crypto.parse_ticket(first + "." + crypto.b64url(bytes(32)))
    with pytest.raises(ValueError, match="malformed"):
        crypto.parse_ticket("no-dot")


# -- the complete flows -----------------------------------------------------------------------


def test_push_login_ticket_push_poll_approve_poll(fido: Fido, pki: TestPki) -> None:
    id_num = holder_id(pki, SLUG)
    status = fido.post("checkDeviceStatus", id_num=id_num)
    assert status == {
        "transaction_id": "txn-0001",
        "hashed_id_num": hashlib.sha256(id_num.encode()).hexdigest(),
        "is_fido": True,
        "is_mcert_sign": True,
        "error_code": "0",
        "error_message": "success",
        "idp_checksum": status["idp_checksum"],
    }
    assert verify_idp_checksum(DEFAULT_SP_KEY, "checkDeviceStatus", status)

    answer = fido.post("getSpTicket", op_code="ATH", id_num=id_num, time_limit=120, hint="login to TEST bank")
    assert set(answer) == {"transaction_id", "sp_ticket", "error_code", "error_message", "idp_checksum"}
    assert answer["error_code"] == "0" and isinstance(answer["sp_ticket"], str)
    assert verify_idp_checksum(DEFAULT_SP_KEY, "getSpTicket", answer)
    sp_ticket = answer["sp_ticket"]

    pushed = fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    assert (pushed["error_code"], pushed["sp_ticket"]) == ("0", sp_ticket)
    assert verify_idp_checksum(DEFAULT_SP_KEY, "requestAthOrSignPush", pushed)

    pending = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    assert (pending["error_code"], "idp_checksum" in pending) == ("SPTKTID_TXNLOG_NF", False)

    assert fido.service.phone_answer(sp_ticket, "approve") is ErrorCode.OK
    result = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    assert result["error_code"] == "0"
    assert set(result) == {"transaction_id", "hashed_id_num", "signed_response", "cert", "error_code",
                           "error_message", "idp_checksum"}  # fmt: skip
    assert result["hashed_id_num"] == hashlib.sha256(id_num.encode()).hexdigest()
    assert verify_idp_checksum(DEFAULT_SP_KEY, "getAthOrSignResult", result)
    cert = holder_cert(result)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
    key.verify(base64.b64decode(result["signed_response"]), sp_ticket.encode(), padding.PKCS1v15(), hashes.SHA256())
    cert.verify_directly_issued_by(pki.cas["moica-g3"].cert)
    pki.cas["moica-g3"].cert.verify_directly_issued_by(pki.cas["root-g3"].cert)

    again = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    assert again["error_code"] == "SPTKTID_SPTKT_RDM"


@pytest.mark.parametrize("hash_name", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_sign_pkcs1_verifies_with_the_certificate(fido: Fido, pki: TestPki, hash_name: str) -> None:
    document = "轉帳 NT$1,000 to TEST account"
    info = {"sign_type": "PKCS#1", "tbs_encoding": "NONE", "hash_algorithm": hash_name}
    sp_ticket = ticket(fido, pki, op_code="SIGN", sign_data=document, sign_info=info)
    fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    fido.service.phone_answer(sp_ticket, "approve")
    result = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    holder_cert(result).public_key().verify(  # type: ignore[call-arg]
        base64.b64decode(result["signed_response"]), document.encode(), padding.PKCS1v15(),
        getattr(hashes, hash_name)(),
    )  # fmt: skip


def test_sign_raw_signs_the_given_digest(fido: Fido, pki: TestPki) -> None:
    digest = hashlib.sha256(b"contract").digest()
    info = {"sign_type": "RAW", "tbs_encoding": "base64", "hash_algorithm": "SHA256"}
    sp_ticket = ticket(fido, pki, op_code="SIGN", sign_data=base64.b64encode(digest).decode(), sign_info=info)
    fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    fido.service.phone_answer(sp_ticket, "approve")
    result = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    holder_cert(result).public_key().verify(  # type: ignore[call-arg]
        base64.b64decode(result["signed_response"]), digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )
    short = fido.post("getSpTicket", op_code="SIGN", id_num=holder_id(pki, SLUG), sign_data="AAAA", sign_info=info)
    assert (short["error_code"], short["error_message"]) == ("PARAM_INVALID", "sign_data: RAW needs a SHA256 digest")


def test_sign_pkcs7_verifies_with_openssl_cms_and_the_chain(fido: Fido, pki: TestPki, tmp_path: Path) -> None:
    document = b"%PDF-1.7 TEST document"
    info = {"sign_type": "PKCS#7", "tbs_encoding": "base64", "hash_algorithm": "SHA256"}
    sp_ticket = ticket(fido, pki, op_code="SIGN", sign_data=base64.b64encode(document).decode(), sign_info=info)
    fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    fido.service.phone_answer(sp_ticket, "approve")
    result = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    der = base64.b64decode(result["signed_response"])
    content = cms.ContentInfo.load(der)
    assert content["content_type"].native == "signed_data"
    assert content["content"]["encap_content_info"]["content"].native == document
    (tmp_path / "sig.der").write_bytes(der)
    chain = b"".join(pki.cas[n].cert.public_bytes(Encoding.PEM) for n in ("moica-g3", "root-g3"))
    (tmp_path / "chain.pem").write_bytes(chain)
    run = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(tmp_path / "sig.der"), "-CAfile",
         str(tmp_path / "chain.pem"), "-out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Verification successful" in run.stderr
    assert (tmp_path / "out").read_bytes() == document


def test_batch_signing_returns_one_signature_per_document(fido: Fido, pki: TestPki) -> None:
    documents = [f"invoice {i}" for i in range(3)]
    answer = fido.post("doBatchSigning", id_num=holder_id(pki, SLUG), sign_data=documents, time_limit=60)
    assert answer["error_code"] == "0"
    assert verify_idp_checksum(DEFAULT_SP_KEY, "doBatchSigning", answer)
    fido.post("requestAthOrSignPush", sp_ticket=answer["sp_ticket"])
    fido.service.phone_answer(answer["sp_ticket"], "approve")
    result = fido.post("getAthOrSignResult", sp_ticket=answer["sp_ticket"])
    assert isinstance(result["signed_response"], list) and len(result["signed_response"]) == 3
    assert verify_idp_checksum(DEFAULT_SP_KEY, "getAthOrSignResult", result)
    key = holder_cert(result).public_key()
    for document, signature in zip(documents, result["signed_response"]):
        key.verify(base64.b64decode(signature), document.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([f"d{i}" for i in range(21)], "sign_data: 1 to 20 documents of at most 1024 characters"),
        (["x" * 1025], "sign_data: 1 to 20 documents of at most 1024 characters"),
        ([], "sign_data: 1 to 20 documents of at most 1024 characters"),
        ("not a list", "sign_data: 1 to 20 documents of at most 1024 characters"),
    ],
)
def test_batch_signing_limits(fido: Fido, pki: TestPki, documents: Any, message: str) -> None:
    answer = fido.post("doBatchSigning", id_num=holder_id(pki, SLUG), sign_data=documents)
    assert (answer["error_code"], answer["error_message"]) == ("PARAM_INVALID", message)
    assert "idp_checksum" not in answer


def test_twenty_documents_of_1024_characters_are_accepted(fido: Fido, pki: TestPki) -> None:
    answer = fido.post("doBatchSigning", id_num=holder_id(pki, SLUG), sign_data=["y" * 1024] * 20)
    assert answer["error_code"] == "0"


# -- error codes ------------------------------------------------------------------------------


def test_wrong_checksum(fido: Fido, pki: TestPki) -> None:
    message = sp_request("EIDEMU-TEST-SP", DEFAULT_SP_KEY, "checkDeviceStatus", transaction_id="t", id_num="A1")
    message["id_num"] = holder_id(pki, SLUG)  # changed after the checksum was made
    answer = fido.raw("checkDeviceStatus", message)
    assert answer == {
        "transaction_id": "t",
        "error_code": "SP_CHECKSUM_ERR",
        "error_message": "sp_checksum does not verify",
    }
    other_key = fido.post("checkDeviceStatus", key=bytes(32), id_num=holder_id(pki, SLUG))
    assert other_key["error_code"] == "SP_CHECKSUM_ERR"


def test_unknown_service_id(fido: Fido, pki: TestPki) -> None:
    answer = fido.post("checkDeviceStatus", sp_id="NOBODY", id_num=holder_id(pki, SLUG))
    assert (answer["error_code"], answer["error_message"]) == ("SP_SERVICE_ID_NF", "unknown sp_service_id")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"op_code": "XX"}, "op_code: ATH, SIGN or NFCSIGN (BATSIGN: doBatchSigning)"),
        ({"op_code": "ATH", "op_mode": "FAX"}, "op_mode: one of I-SCAN, APP2APP, MWEB2APP, PUSH"),
        ({"op_code": "ATH", "time_limit": 29}, "time_limit: seconds, 30 to 600"),
        ({"op_code": "ATH", "time_limit": 601}, "time_limit: seconds, 30 to 600"),
        ({"op_code": "ATH", "time_limit": True}, "time_limit: seconds, 30 to 600"),
        ({"op_code": "SIGN"}, "sign_data: the to-be-signed text is required"),
        ({"op_code": "ATH", "sign_info": {"sign_type": "XML"}}, "sign_info.sign_type: one of PKCS#1, PKCS#7, RAW"),
        ({"op_code": "ATH", "sign_info": {"hash_algorithm": "MD5"}},
         "sign_info.hash_algorithm: one of SHA1, SHA224, SHA256, SHA384, SHA512"),
        ({"op_code": "ATH", "sign_info": {"tbs_encoding": "hex"}}, "sign_info.tbs_encoding: NONE or base64"),
        ({"op_code": "SIGN", "sign_data": "%%", "sign_info": {"tbs_encoding": "base64"}}, "sign_data: not base64"),
    ],
)  # fmt: skip
def test_bad_parameters(fido: Fido, pki: TestPki, fields: dict[str, Any], message: str) -> None:
    fields.setdefault("id_num", holder_id(pki, SLUG))
    answer = fido.post("getSpTicket", **fields)
    assert (answer["error_code"], answer["error_message"]) == ("PARAM_INVALID", message)


def test_push_request_without_id_and_missing_fields(fido: Fido) -> None:
    answer = fido.post("getSpTicket", op_code="ATH")
    assert (answer["error_code"], answer["error_message"]) == ("PARAM_INVALID", "id_num: required for a push request")
    missing = fido.raw("getSpTicket", {"transaction_id": "t", "sp_service_id": "EIDEMU-TEST-SP"})
    assert (missing["error_code"], missing["error_message"]) == (
        "PARAM_INVALID", "sp_checksum: a non-empty string is required")  # fmt: skip
    not_json = fido.raw("getSpTicket", b"\xff{")
    assert not_json == {"error_code": "PARAM_INVALID", "error_message": "body: a JSON object"}
    unknown = fido.raw(
        "deleteEverything", {"transaction_id": "t", "sp_service_id": "EIDEMU-TEST-SP", "sp_checksum": "x"}
    )
    assert (unknown["error_code"], unknown["error_message"]) == ("PARAM_INVALID", "no such call: deleteEverything")


def test_unknown_holder(fido: Fido) -> None:
    answer = fido.post("getSpTicket", op_code="ATH", id_num="A123456789")
    assert (answer["error_code"], answer["error_message"]) == ("ID_NUM_NF", "no mobile certificate for this ID")
    status = fido.post("checkDeviceStatus", id_num="A123456789")
    assert (status["is_fido"], status["is_mcert_sign"], status["error_code"]) == (False, False, "0")


def test_bad_and_foreign_tickets(fido: Fido, pki: TestPki) -> None:
    sp_ticket = ticket(fido, pki)
    forged = sp_ticket[:-2] + ("AA" if not sp_ticket.endswith("AA") else "BB")
    for value in (forged, "garbage", 17, crypto.make_ticket({"tid": "unknown"})):
        answer = fido.post("getAthOrSignResult", sp_ticket=value)
        assert (answer["error_code"], answer["error_message"]) == ("SPTKT_INVALID", "malformed or unknown sp_ticket")


def test_ticket_expires_after_its_time_limit(fido: Fido, pki: TestPki, clock: Clock) -> None:
    sp_ticket = ticket(fido, pki, time_limit=30)
    clock.now += 29.9
    assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "SPTKTID_TXNLOG_NF"
    clock.now += 0.1
    assert fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)["error_code"] == "SPTKT_OVD"
    assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "SPTKT_OVD"
    assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "SPTKTID_SPTKT_RDM"


def test_a_ticket_is_pushed_once(fido: Fido, pki: TestPki) -> None:
    sp_ticket = ticket(fido, pki)
    assert fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)["error_code"] == "0"
    assert fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)["error_code"] == "SPTKTID_SPTKT_RDM"


def test_a_ticket_of_another_sp_is_not_found(pki: TestPki, clock: Clock) -> None:
    other = {"sp_service_id": "OTHER-SP", "aes_key": "11" * 32}
    config = FidoConfig.from_json({"service_providers": [other, {"sp_service_id": "EIDEMU-TEST-SP",
                                                                  "aes_key": DEFAULT_SP_KEY.hex()}]})  # fmt: skip
    service = FidoService(pki, config, clock)
    with running(service.handle, name="test-fido") as http:
        fido = Fido(service, http.base_url)
        sp_ticket = ticket(fido, pki)
        answer = fido.post("getAthOrSignResult", sp_id="OTHER-SP", key=bytes.fromhex("11" * 32), sp_ticket=sp_ticket)
        assert answer["error_code"] == "SPTKT_INVALID"


# -- the phone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "code", "message"),
    [
        ("cancel", "APP_USER_CANCEL", "the holder cancelled"),
        ("biometric_fail", "APP_BIO_AUTH_FAIL", "biometric verification failed on the device"),
        ("wrong_app", "OTP_NF", "the ticket belongs to the other app (test vs production)"),
        ("timeout", "SPTKT_OVD", "ticket expired"),
    ],
)
def test_phone_refusals_reach_the_sp(fido: Fido, pki: TestPki, action: str, code: str, message: str) -> None:
    sp_ticket = ticket(fido, pki)
    fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    fido.service.phone_answer(sp_ticket, action)
    answer = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    assert (answer["error_code"], answer["error_message"]) == (code, message)
    assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "SPTKTID_SPTKT_RDM"


def test_unbound_device_and_missing_push_token(fido: Fido, pki: TestPki) -> None:
    id_num = holder_id(pki, SLUG)
    fido.service.set_device(id_num, bound=False)
    status = fido.post("checkDeviceStatus", id_num=id_num)
    assert (status["is_fido"], status["is_mcert_sign"]) == (False, False)
    answer = fido.post("requestAthOrSignPush", sp_ticket=ticket(fido, pki))
    assert (answer["error_code"], answer["error_message"]) == ("DEV_NOT_BOUND", "the holder has no bound device")
    fido.service.set_device(id_num, bound=True, push_token=False)
    answer = fido.post("requestAthOrSignPush", sp_ticket=ticket(fido, pki))
    assert (answer["error_code"], answer["error_message"]) == (
        "PS_FCM_NOT_FOUND",
        "no push token for the holder's device",
    )


def test_policy_approve_after_n_seconds(pki: TestPki, clock: Clock) -> None:
    config = FidoConfig.from_json({"policy": {SLUG: {"action": "approve", "after": 5}}})
    service = FidoService(pki, config, clock)
    with running(service.handle, name="test-fido") as http:
        fido = Fido(service, http.base_url)
        sp_ticket = ticket(fido, pki)
        assert fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)["error_code"] == "0"
        clock.now += 4.9
        assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "SPTKTID_TXNLOG_NF"
        clock.now += 0.1
        assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "0"


@pytest.mark.parametrize(
    ("rule", "push_code", "result_code"),
    [
        ({"action": "cancel"}, "0", "APP_USER_CANCEL"),
        ({"action": "biometric_fail"}, "0", "APP_BIO_AUTH_FAIL"),
        ({"action": "timeout"}, "0", "SPTKT_OVD"),
        ({"action": "wait"}, "0", "SPTKTID_TXNLOG_NF"),
        ({"action": "not_bound"}, "DEV_NOT_BOUND", "SPTKTID_TXNLOG_NF"),
        ({"action": "no_push_token"}, "PS_FCM_NOT_FOUND", "SPTKTID_TXNLOG_NF"),
    ],
)
def test_policy_actions(pki: TestPki, clock: Clock, rule: dict[str, Any], push_code: str, result_code: str) -> None:
    service = FidoService(pki, FidoConfig.from_json({"default_policy": rule}), clock)
    with running(service.handle, name="test-fido") as http:
        fido = Fido(service, http.base_url)
        sp_ticket = ticket(fido, pki)
        assert fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)["error_code"] == push_code
        assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == result_code


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"policy": {"x": {"action": "dance"}}}, "cfg: policy.x.action: one of wait, approve, cancel, biometric_fail, "
         "timeout, wrong_app, not_bound, no_push_token, not 'dance'"),
        ({"policy": {"x": {"action": "approve", "after": -1}}}, "cfg: policy.x.after: seconds between 0 and 600"),
        ({"service_providers": [{"sp_service_id": "A", "aes_key": "00"}]},
         "cfg: service_providers[0].aes_key: 32 bytes (64 hex digits) for AES-256"),
        ({"service_providers": [{"sp_service_id": "A"}]},
         "cfg: service_providers[0]: needs sp_service_id and aes_key (hex)"),
        ({"quirks": {"loud": True}}, "cfg: quirks: only error_code_as_int and slow_pending_polls"),
        ([], "cfg: expected a JSON object"),
    ],
)  # fmt: skip
def test_bad_configuration_names_the_place(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as error:
        FidoConfig.from_json(data, "cfg")
    assert str(error.value) == message


def test_deep_links_and_qr_payload_are_scanned_by_the_phone(fido: Fido, pki: TestPki) -> None:
    sp_ticket = ticket(fido, pki, op_mode="APP2APP", id_num="")
    link = deep_link(sp_ticket, "a2a", "https://sp.example/cb", "state-1")
    assert link == (
        "mobilemoica://moica.moi.gov.tw/a2a/verifySign?sp_ticket=" + crypto.b64url(sp_ticket.encode())
        + "&rtn_url=aHR0cHM6Ly9zcC5leGFtcGxlL2Ni&rtn_val=c3RhdGUtMQ"
    )  # fmt: skip
    assert ticket_from_link(link) == sp_ticket == ticket_from_link(qr_payload(sp_ticket))
    with pytest.raises(ValueError, match="not a mobile certificate deep link"):
        ticket_from_link("https://evil.example/a2a/verifySign?sp_ticket=x")
    from eidemu.services.phone import Phone

    phone = Phone(fido.base_url, holder_id(pki, SLUG))
    assert phone.approve(link=qr_payload(sp_ticket)) == "0"
    result = fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    assert result["hashed_id_num"] == crypto.hash_id(holder_id(pki, SLUG))


def test_phone_over_http_refusals(fido: Fido, pki: TestPki) -> None:
    from eidemu.services.phone import Phone, PhoneError

    phone = Phone(fido.base_url, holder_id(pki, SLUG))
    sp_ticket = ticket(fido, pki)
    assert phone.cancel(sp_ticket) == "APP_USER_CANCEL"
    with pytest.raises(PhoneError) as error:
        phone.approve(sp_ticket)
    assert error.value.error_code == "SPTKTID_SPTKT_RDM"
    assert phone.device("unbind") == "unbind"
    assert fido.post("checkDeviceStatus", id_num=holder_id(pki, SLUG))["is_fido"] is False
    assert phone.device("bind") == "bind"
    other = Phone(fido.base_url, holder_id(pki, "g3-revoked"))
    with pytest.raises(PhoneError) as error:
        other.approve(ticket(fido, pki))
    assert str(error.value) == "ID_NUM_NF: the ticket is for another holder"


def test_web_redirect_then_callback(fido: Fido, pki: TestPki) -> None:
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    sp_ticket = ticket(fido, pki, op_mode="MWEB2APP", id_num="")
    form = urlencode({"sp_ticket": sp_ticket, "rtn_url": "https://sp.example/cb", "rtn_val": "s1"}).encode()
    with urllib.request.urlopen(f"{fido.base_url}moise/web/verifySign", data=form, timeout=10) as response:
        page = response.read().decode()
    link = deep_link(sp_ticket, "w2a", "https://sp.example/cb", "s1")
    assert f'id="deep-link" href="{link.replace("&", "&amp;")}"' in page

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    wait_url = f"{fido.base_url}moise/web/wait?" + urlencode({"sp_ticket": sp_ticket})
    with opener.open(wait_url, timeout=10) as response:
        assert response.status == 200 and b"waiting" in response.read()
    fido.service.phone_answer(ticket_from_link(link), "approve", holder_id(pki, SLUG))
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(wait_url, timeout=10)
    assert redirect.value.code == 303
    assert redirect.value.headers["Location"] == "https://sp.example/cb?" + urlencode(
        {"sp_ticket": sp_ticket, "rtn_val": "s1"}
    )
    assert fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] == "0"


# -- quirks -----------------------------------------------------------------------------------


def test_quirks_are_off_by_default_and_switchable(pki: TestPki, clock: Clock) -> None:
    assert FidoConfig().quirks == Quirks(error_code_as_int=False, slow_pending_polls=0)
    config = FidoConfig.from_json({"quirks": {"error_code_as_int": True, "slow_pending_polls": 2}})
    service = FidoService(pki, config, clock)
    with running(service.handle, name="test-fido") as http:
        fido = Fido(service, http.base_url)
        sp_ticket = ticket_int(fido, pki)
        service.phone_answer(sp_ticket, "approve")
        codes = [fido.post("getAthOrSignResult", sp_ticket=sp_ticket)["error_code"] for _ in range(3)]
        assert codes == ["SPTKTID_TXNLOG_NF", "SPTKTID_TXNLOG_NF", 0]


def ticket_int(fido: Fido, pki: TestPki) -> str:
    answer = fido.post("getSpTicket", op_code="ATH", id_num=holder_id(pki, SLUG))
    assert answer["error_code"] == 0 and type(answer["error_code"]) is int
    return str(answer["sp_ticket"])


# -- safety, revocation -----------------------------------------------------------------------


def test_logs_carry_neither_id_numbers_nor_keys(fido: Fido, pki: TestPki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sp_ticket = ticket(fido, pki)
    fido.post("requestAthOrSignPush", sp_ticket=sp_ticket)
    fido.service.phone_answer(sp_ticket, "approve")
    fido.post("getAthOrSignResult", sp_ticket=sp_ticket)
    text = caplog.text
    assert crypto.hash_id(holder_id(pki, SLUG))[:16] in text
    assert holder_id(pki, SLUG) not in text
    assert DEFAULT_SP_KEY.hex() not in text
    assert DEFAULT_SP_KEY.hex() not in repr(fido.service.config)
    assert holder_id(pki, SLUG) not in repr(list(fido.service.holders.values()))
    assert len([r for r in caplog.records if r.name == "eidemu.http"]) == 3  # one line per request


def test_mobile_certificates_are_known_to_the_ocsp_and_crl_services(pki: TestPki) -> None:
    from cryptography.x509 import ocsp

    authority = RevocationAuthority(pki)
    for holder in FidoService(pki).holders.values():
        cert = x509.load_der_x509_certificate(holder.cert_der)
        issuer = pki.cas["moica-g3"].cert
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        answer = ocsp.load_der_ocsp_response(authority.ocsp_response(request.public_bytes(Encoding.DER)))
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert cert.public_key().key_size == 4096  # type: ignore[union-attr]
        assert cert.issuer == issuer.subject
        crl = x509.load_der_x509_crl(authority.crl("moica-g3") or b"")
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None


ODD_VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x" * 5000, [], ["a", 1], {}, {"a": [1]}, "\u0000\ud7ff"]


@pytest.mark.parametrize("call", sorted(REQUEST_FIELDS))
def test_odd_field_values_get_an_error_code_never_a_500(fido: Fido, pki: TestPki, call: str) -> None:
    fields = ["id_num", "op_code", "op_mode", "hint", "sign_data", "sign_info", "time_limit", "sp_ticket"]
    for name in fields:
        for value in ODD_VALUES:
            message = {"op_code": "SIGN", "id_num": holder_id(pki, SLUG), "sign_data": "d", "time_limit": 60,
                       "sign_info": {"sign_type": value, "hash_algorithm": value}, name: value}  # fmt: skip
            answer = fido.post(call, **message)
            assert isinstance(answer["error_code"], str) and isinstance(answer["error_message"], str)
    assert fido.service.ticket_for("nothing") is None


def test_every_error_code_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "moica-services.md").read_text("utf-8")
    for code in ErrorCode:
        if code is not ErrorCode.OK:
            assert f"`{code.value}`" in docs, code
