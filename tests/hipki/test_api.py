"""The HiPKI-compatible API in process (emulated cards): every endpoint and every error code,
with the exact JSON field names and types of docs/hipki.md (numbers as signed 32-bit)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from eidemu.hipki.bmp import bmp_text
from eidemu.hipki.cms import OID_CARD_NUMBER, OID_RANDOM_NONCE

from .conftest import IDENTITY, PIN

SIGN = {"func": "MakeSignature", "tbs": "報稅 nonce+/=", "pin": PIN}
HASHES = {"SHA1": hashes.SHA1(), "SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512()}


def error_fields(answer: dict) -> tuple[int, int]:
    assert isinstance(answer["message"], str) and answer["message"]
    return answer["ret_code"], answer["last_error"]


# -- /pkcs11info --------------------------------------------------------------------------------


def test_pkcs11info_without_certificates(hipki):
    answer = hipki.get("/pkcs11info").json()
    assert list(answer) == [
        "func",
        "ret_code",
        "last_error",
        "serverVersion",
        "libraryDescription",
        "cryptokiVersion",
        "slots",
    ]
    assert (answer["func"], answer["ret_code"], answer["last_error"]) == ("pkcs11info", 0, 0)
    assert answer["serverVersion"] == "1.3.4.9"
    assert all(answer["serverVersion"] >= gate for gate in ("1.3.4.3", "1.3.4.13", "1.3.4.103328"))
    (slot,) = answer["slots"]
    assert slot == {"slotDescription": "eidemu emulated reader 00", "slotID": 0, "flags": 7, "token": slot["token"]}
    token = slot["token"]
    assert list(token) == ["serialNumber", "label", "ulMinPinLen", "ulMaxPinLen", "keys"]
    assert token["serialNumber"] == IDENTITY["card_number"] == "TP46375051237517"
    assert (token["ulMinPinLen"], token["ulMaxPinLen"]) == (6, 8)
    assert [k["id"] for k in token["keys"]] == ["U0lHTg==", "S0VZWA=="]  # b"SIGN", b"KEYX"
    assert "certs" not in token


def test_pkcs11info_with_certificates_get_and_post(hipki):
    for answer in (hipki.get("/pkcs11info?withcert=true").json(), hipki.post("/pkcs11info?withcert=true").json()):
        certs = answer["slots"][0]["token"]["certs"]
        assert [c["usage"] for c in certs] == ["digitalSignature", "keyEncipherment|dataEncipherment"]
        sign = certs[0]
        assert list(sign) == [
            "certb64",
            "usage",
            "label",
            "id",
            "sn",
            "subjectDN",
            "issuerDN",
            "notBeforeT",
            "notAfterT",
            "subjectID",
            "email",
        ]
        assert sign["subjectID"] == IDENTITY["national_id"][-4:] == "9048"
        assert sign["sn"] == IDENTITY["certificates"]["sign"]["serial_number"]
        assert sign["notBeforeT"] == 1793145600  # 2026-10-28T00:00:00Z
        assert isinstance(sign["notAfterT"], int)
        cert = x509.load_der_x509_certificate(base64.b64decode(sign["certb64"]))
        assert cert.serial_number == int(sign["sn"], 16)
        assert sign["email"] == ""


def test_unknown_token_and_its_sign_error(make_service):
    client = make_service("emulator:iso-demo")
    assert client.get("/pkcs11info").json()["slots"][0]["token"] == "unknown token"
    answer = client.call("/sign", SIGN)
    assert error_fields(answer) == (0x7610000C, 0)


# -- /sign --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HASHES))
def test_sign_pkcs1_each_hash_verifies_with_the_certificate(hipki, name):
    answer = hipki.call("/sign", SIGN | {"hashAlgorithm": name})
    assert list(answer) == ["func", "ret_code", "last_error", "signature", "certb64", "cardSN"]
    assert (answer["func"], answer["ret_code"], answer["cardSN"]) == ("sign", 0, "TP46375051237517")
    cert = x509.load_der_x509_certificate(base64.b64decode(answer["certb64"]))
    signature = base64.b64decode(answer["signature"])
    cert.public_key().verify(signature, SIGN["tbs"].encode(), padding.PKCS1v15(), HASHES[name])  # type: ignore[union-attr, call-arg, arg-type]


def test_sign_tbs_base64(hipki):
    data = bytes(range(256))
    answer = hipki.call("/sign", SIGN | {"tbs": base64.b64encode(data).decode(), "tbsEncoding": "base64"})
    cert = x509.load_der_x509_certificate(base64.b64decode(answer["certb64"]))
    cert.public_key().verify(base64.b64decode(answer["signature"]), data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg, arg-type]


@pytest.mark.parametrize("name", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_sign_pkcs7_with_all_attributes(hipki, name):
    package = SIGN | {
        "signatureType": "PKCS7",
        "hashAlgorithm": name,
        "withSigningTime": "true",
        "nonce": "server-nonce-42",
        "withCardSN": "true",
    }
    answer = hipki.call("/sign", package)
    assert answer["ret_code"] == 0
    info = cms.ContentInfo.load(base64.b64decode(answer["signature"]))
    signed = info["content"]
    assert info["content_type"].native == "signed_data"
    assert signed["encap_content_info"]["content"].native == SIGN["tbs"].encode()
    (cert,) = signed["certificates"]
    assert cert.chosen.dump() == base64.b64decode(answer["certb64"])
    (signer,) = signed["signer_infos"]
    attrs = {a["type"].dotted: a["values"] for a in signer["signed_attrs"]}
    assert set(attrs) == {
        "1.2.840.113549.1.9.3",
        "1.2.840.113549.1.9.4",
        "1.2.840.113549.1.9.5",
        OID_RANDOM_NONCE,
        OID_CARD_NUMBER,
    }
    digest = hashlib.new(name.lower(), SIGN["tbs"].encode()).digest()
    assert attrs["1.2.840.113549.1.9.4"][0].native == digest
    assert attrs[OID_RANDOM_NONCE][0].parsed.native == b"server-nonce-42"
    assert attrs[OID_CARD_NUMBER][0].parsed.native == "TP46375051237517"
    signing_time = attrs["1.2.840.113549.1.9.5"][0].native
    assert abs(signing_time.timestamp() - time.time()) < 60
    public = x509.load_der_x509_certificate(cert.chosen.dump()).public_key()
    signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # RFC 5652 §5.4: signed as a SET
    public.verify(signer["signature"].native, signed_attrs, padding.PKCS1v15(), HASHES[name])  # type: ignore[union-attr, call-arg, arg-type]


def test_sign_pkcs7_minimal_has_only_content_type_and_digest(hipki):
    answer = hipki.call("/sign", SIGN | {"signatureType": "PKCS7", "nonce": "__NotExistedTag__"})
    signer = cms.ContentInfo.load(base64.b64decode(answer["signature"]))["content"]["signer_infos"][0]
    assert [a["type"].native for a in signer["signed_attrs"]] == ["content_type", "message_digest"]


# -- /decrypt -----------------------------------------------------------------------------------------


def _encrypt_to_card(hipki, plain: bytes) -> str:
    certs = hipki.get("/pkcs11info?withcert=true").json()["slots"][0]["token"]["certs"]
    cert = x509.load_der_x509_certificate(base64.b64decode(certs[1]["certb64"]))
    return base64.b64encode(cert.public_key().encrypt(plain, padding.PKCS1v15())).decode()  # type: ignore[union-attr, call-arg]


def test_decrypt_text_and_base64(hipki):
    cipher = _encrypt_to_card(hipki, "祕密 key".encode())
    answer = hipki.call("/decrypt", {"func": "DecryptData", "cipher": cipher, "pin": PIN})
    assert answer == {
        "func": "decrypt",
        "ret_code": 0,
        "last_error": 0,
        "plain": "祕密 key",
        "cardSN": "TP46375051237517",
    }
    cipher = _encrypt_to_card(hipki, b"\x00\xff\x10")
    answer = hipki.call("/decrypt", {"cipher": cipher, "pin": PIN, "plainEncoding": "base64"})
    assert answer["plain"] == "AP8Q"


def test_decrypt_without_cipher_is_76000004(hipki):
    assert error_fields(hipki.call("/decrypt", {"pin": PIN})) == (0x76000004, 0)


# -- /p11Image.bmp -----------------------------------------------------------------------------------


def test_p11image_is_a_2000x1_bmp_carrying_the_pkcs11info_json(hipki):
    response = hipki.get("/p11Image.bmp", headers={"Origin": "http://rp.test:8080"})
    assert response.headers["Content-Type"] == "image/bmp"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    image = response.content
    assert len(image) == 54 + 6000
    assert image[:2] == b"BM" and int.from_bytes(image[18:22], "little") == 2000
    assert int.from_bytes(image[22:26], "little") == 1 and int.from_bytes(image[28:30], "little") == 24
    assert json.loads(bmp_text(image)) == hipki.get("/pkcs11info").json()


def test_p11image_tells_an_untrusted_site(hipki):
    answer = json.loads(bmp_text(hipki.get("/p11Image.bmp", headers={"Origin": "http://evil.test"}).content))
    assert error_fields(answer) == (0x76000031, 0)
    assert answer["serverVersion"] == "1.3.4.9"


# -- popup, addDomain, selfTest -------------------------------------------------------------------------


def _page_config(text: str) -> dict:
    start = text.index('<script id="config" type="application/json">') + len(
        '<script id="config" type="application/json">'
    )
    return json.loads(text[start : text.index("</script>", start)])


@pytest.mark.parametrize("path", ["/popupForm", "/ChtPopupForm"])
def test_popup_page_for_a_trusted_site_carries_a_ticket(hipki, path):
    response = hipki.get(path, headers={"Referer": "http://rp.test:8080/login"})
    assert response.headers["Content-Type"].startswith("text/html")
    config = _page_config(response.text)
    assert config["origin"] == "http://rp.test:8080"
    assert "error" not in config and len(config["ticket"]) >= 32
    assert config["funcs"] == {
        "MakeSignature": "sign",
        "GetUserCert": "pkcs11info",
        "CheckEnvir": "pkcs11info",
        "DecryptData": "decrypt",
    }
    assert '{"func":"getTbs"}' in response.text
    # The ticket lets the popup's same-origin call through, for the site it was issued to.
    answer = hipki.call("/sign", SIGN, headers={"X-HiPKI-Ticket": config["ticket"], "Origin": hipki.url})
    assert answer["ret_code"] == 0
    again = hipki.call("/sign", SIGN, headers={"X-HiPKI-Ticket": config["ticket"], "Origin": hipki.url})
    assert error_fields(again) == (0x7600000F, 0)  # one request per popup
    answer = hipki.call("/sign", SIGN, headers={"X-HiPKI-Ticket": "forged"})
    assert error_fields(answer) == (0x7600000F, 0)


def test_popup_page_for_an_untrusted_site_or_without_referer(hipki):
    config = _page_config(hipki.get("/popupForm", headers={"Referer": "http://evil.test/"}).text)
    assert "ticket" not in config and config["error"]["ret_code"] == 0x76000031
    config = _page_config(hipki.get("/popupForm").text)
    assert config["origin"] == "*" and config["error"]["ret_code"] == 0x7600000F


def test_add_domain_auto_approved_is_kept_in_the_trust_file(make_service, tmp_path):
    client = make_service("emulator:moica-g2-valid-1", auto_approve=True)
    config = _page_config(client.get("/addDomain?domain=Bank.Test").text)
    assert config["result"] == {"func": "addDomain", "ret_code": 0, "last_error": 0, "domain": "bank.test"}
    assert json.loads((tmp_path / "trusted.json").read_text()) == ["bank.test"]
    assert client.call("/sign", SIGN, headers={"Origin": "http://bank.test"})["ret_code"] == 0


def test_add_domain_asks_the_person_and_the_scripted_user_can_deny(hipki, tmp_path):
    config = _page_config(hipki.get("/addDomain?domain=bank.test").text)
    assert config["result"] is None  # the page shows Trust / Cancel
    hipki.control({"user": ["deny"]})
    assert _page_config(hipki.get("/addDomain?domain=bank.test").text)["result"]["ret_code"] == 0x76000999
    refused = hipki.post(
        "/addDomain", data={"domain": "bank.test", "answer": "approve"}, headers={"Origin": "http://evil.test"}
    )
    assert _page_config(refused.text)["result"]["ret_code"] == 0x7600000F
    approved = hipki.post(
        "/addDomain", data={"domain": "bank.test", "answer": "approve"}, headers={"Origin": hipki.url}
    )
    assert _page_config(approved.text)["result"]["ret_code"] == 0
    assert json.loads((tmp_path / "trusted.json").read_text()) == ["bank.test", "rp.test"]
    bad = _page_config(hipki.get("/addDomain?domain=<script>").text)
    assert bad["result"]["ret_code"] == 0x7600000C


def test_self_test_page(hipki):
    response = hipki.get("/selfTest.htm")
    assert response.status_code == 200 and "Self-test" in response.text and "1.3.4.9" in response.text
    # its own same-origin call is served
    assert hipki.post("/pkcs11info", headers={"Origin": hipki.url}).json()["ret_code"] == 0


# -- errors ----------------------------------------------------------------------------------------------


def test_wrong_pin_twice_then_locked_with_tries_left_as_signed_32_bit(hipki):
    answers = [hipki.call("/sign", SIGN | {"pin": "111111"}) for _ in range(3)]
    assert [error_fields(a) for a in answers] == [
        (0x76100006, -2147483646),  # 0x80000002: two tries left
        (0x76100006, -2147483647),  # 0x80000001: one try left
        (0x76100006, 0xA4),  # locked
    ]
    assert all(a["cardSN"] == "" and a["signature"] == "" for a in answers)
    assert error_fields(hipki.call("/sign", SIGN)) == (0x76100006, 0xA4)  # the right PIN no longer helps


def test_wrong_pin_then_right_pin_signs(hipki):
    assert hipki.call("/sign", SIGN | {"pin": "111111"})["last_error"] == -2147483646
    assert hipki.call("/sign", SIGN)["ret_code"] == 0


def test_pin_length_and_missing_pin(hipki):
    assert error_fields(hipki.call("/sign", SIGN | {"pin": "12345"})) == (0x76100006, 0xA2)
    assert error_fields(hipki.call("/sign", SIGN | {"pin": "123456789"})) == (0x76100006, 0xA2)
    no_pin = {k: v for k, v in SIGN.items() if k != "pin"}
    assert error_fields(hipki.call("/sign", no_pin)) == (0x76000998, 0)


def test_scripted_user_pin_cancel_timeout(make_service):
    client = make_service("emulator:moica-g2-valid-1", prompt_timeout=0.2)
    no_pin = {k: v for k, v in SIGN.items() if k != "pin"}
    client.control({"user": [f"pin:{PIN}", "cancel", "timeout"]})
    assert client.call("/sign", no_pin)["ret_code"] == 0
    assert error_fields(client.call("/sign", no_pin)) == (0x76000999, 0)
    started = time.monotonic()
    assert error_fields(client.call("/sign", no_pin)) == (0x7600000D, 0)
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("profile", "code"), [("moica-g2-expired", 0x76500002), ("moica-g2-not-yet-valid", 0x76500001)]
)
def test_certificate_validity_checked_on_request(make_service, profile, code):
    client = make_service(f"emulator:{profile}")
    identity = profile.removeprefix("moica-")
    pin = json.loads((IDENTITY_DIR / identity / "identity.json").read_text("utf-8"))["initial_pin"]
    assert error_fields(client.call("/sign", SIGN | {"pin": pin, "checkValidity": "true"})) == (code, 0)
    assert client.call("/sign", SIGN | {"pin": pin, "checkValidity": "false"})["ret_code"] == 0


def test_bad_json_and_bad_parameters(hipki):
    assert error_fields(hipki.call("/sign", "{not json")) == (0x7600000B, 0)
    assert error_fields(hipki.call("/sign", "[1, 2]")) == (0x7600000B, 0)
    response = hipki.post("/sign", data={"other": "x"}).json()
    assert error_fields(response) == (0x7600000C, 0)
    for bad in (
        {"hashAlgorithm": "MD5"},
        {"signatureType": "PKCS12"},
        {"tbsEncoding": "hex"},
        {"tbsEncoding": "base64", "tbs": "***"},
        {"withSigningTime": "yes"},
    ):
        assert error_fields(hipki.call("/sign", SIGN | bad)) == (0x7600000C, 0), bad
    assert error_fields(hipki.call("/sign", SIGN | {"tbs": ""})) == (0x76000003, 0)
    assert hipki.get("/sign").json()["ret_code"] == 0x7600000C  # the package goes in a POST body


def test_key_not_found(hipki):
    answer = hipki.call("/sign", SIGN | {"keyidb64": base64.b64encode(b"NOPE").decode()})
    assert error_fields(answer) == (0x7610000D, 0)


def test_untrusted_and_forbidden_origins(hipki):
    assert error_fields(hipki.call("/sign", SIGN, headers={"Origin": "http://evil.test"})) == (0x76000031, 0)
    assert error_fields(hipki.call("/sign", SIGN, headers={"Referer": "https://evil.test/x"})) == (0x76000031, 0)
    assert error_fields(hipki.call("/sign", SIGN, headers={"Origin": "null"})) == (0x7600000F, 0)
    assert hipki.call("/sign", SIGN, headers={"Origin": "http://rp.test:8080"})["ret_code"] == 0


@pytest.mark.parametrize("path", ["/getChallenge", "/makeCsr", "/CardManagement/sendCardCommand", "/nothing"])
def test_unknown_function(hipki, path):
    answer = hipki.post(path).json()
    assert error_fields(answer) == (0x7600000E, 0)
    assert error_fields(hipki.call("/sign", SIGN | {"func": "DeleteEverything"})) == (0x7600000E, 0)


def test_no_card_then_card_back_live(hipki):
    hipki.control({"card": "remove"})
    slot = hipki.get("/pkcs11info").json()["slots"][0]
    assert (slot["flags"], slot["token"]) == (6, None)
    assert error_fields(hipki.call("/sign", SIGN)) == (0x76000006, 0)
    hipki.control({"card": "insert"})
    assert hipki.get("/pkcs11info").json()["slots"][0]["token"]["serialNumber"] == "TP46375051237517"
    assert hipki.call("/sign", SIGN)["ret_code"] == 0


class NoReaders:
    description = "pcsc:"

    def slots(self, fresh=False):
        return []

    def close(self):
        pass


def test_no_reader(hipki):
    hipki.service.source = NoReaders()
    assert hipki.get("/pkcs11info").json()["slots"] == []
    assert error_fields(hipki.call("/sign", SIGN)) == (0x76100003, 0)
    assert error_fields(hipki.call("/sign", SIGN | {"slotDescription": "Nope"})) == (0x76100003, 0)


def test_named_reader_that_does_not_exist(hipki):
    assert error_fields(hipki.call("/sign", SIGN | {"readername": "Nope 00"})) == (0x76100003, 0)
    assert hipki.call("/sign", SIGN | {"slotDescription": "eidemu emulated reader 00"})["ret_code"] == 0


def test_fail_next_with_a_chosen_code(hipki):
    hipki.control({"fail_next": {"ret_code": 0x76100006, "last_error": 0x80000001, "path": "/sign"}})
    assert hipki.get("/pkcs11info").json()["ret_code"] == 0  # only /sign was named
    assert error_fields(hipki.call("/sign", SIGN)) == (0x76100006, -2147483647)
    assert hipki.call("/sign", SIGN)["ret_code"] == 0
    hipki.control({"fail_next": 0x7600000D})
    assert hipki.get("/pkcs11info").json()["ret_code"] == 0x7600000D


def test_control_refused_to_pages_and_when_off(hipki, make_service):
    assert hipki.post("/eidemu/control", json={"fail_next": 1}).status_code == 403
    refused = hipki.post(
        "/eidemu/control", json={"fail_next": 1}, headers={"X-Eidemu-Control": "1", "Origin": "http://rp.test"}
    )
    assert refused.status_code == 403
    off = make_service("emulator:moica-g2-valid-1", test_control=False)
    assert off.post("/eidemu/control", json={"fail_next": 1}, headers={"X-Eidemu-Control": "1"}).status_code == 403


def test_one_card_operation_at_a_time_queue_times_out(make_service):
    client = make_service("emulator:moica-g2-valid-1", queue_timeout=0.3)
    client.get("/pkcs11info")  # the slot's session exists
    (session,) = client.service.sessions.values()
    session.lock.acquire()  # a long card operation
    try:
        started = time.monotonic()
        answer = client.call("/sign", SIGN)
        assert error_fields(answer) == (0x7600000D, 0)
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        session.lock.release()
    assert client.call("/sign", SIGN)["ret_code"] == 0


def test_bodies_are_bounded_and_host_must_be_loopback(make_service):
    import dataclasses

    from eidemu.hipki.server import LIMITS

    client = make_service("emulator:moica-g2-valid-1", limits=dataclasses.replace(LIMITS, max_body=4096))
    response = client.post("/sign", data={"tbsPackage": json.dumps(SIGN | {"tbs": "x" * 8000})})
    assert response.status_code == 413 and response.json()["ret_code"] == 0x7600000C
    assert client.get("/pkcs11info", headers={"Host": "rebind.evil.test"}).status_code == 403


def test_pins_never_in_logs_or_answers(hipki, caplog):
    caplog.set_level(logging.DEBUG)
    answers = [hipki.call("/sign", SIGN | {"pin": "7654321"}), hipki.call("/sign", SIGN)]
    text = caplog.text + json.dumps(answers)
    assert "7654321" not in text and PIN not in text
    assert "/sign" in caplog.text  # the access log names the path


from .conftest import ROOT  # noqa: E402

IDENTITY_DIR = ROOT / "fixtures" / "pki" / "identities"
