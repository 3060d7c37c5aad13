"""Card-side failures the emulated card does not produce on its own, made with doubles:
the card refusing the private operation (not logged in, or another status word), and a
decryption whose result is not a PKCS#1 v1.5 block."""

from __future__ import annotations

import base64
import json

from eidemu.conformance.moica import MoicaCard, MoicaError
from eidemu.hipki.service import HipkiService

from .conftest import PIN

SIGN = {"tbs": "x", "pin": PIN}


def test_card_not_logged_in_is_76000007(hipki, monkeypatch):
    monkeypatch.setattr(HipkiService, "_login", staticmethod(lambda client, pin: None))  # VERIFY skipped
    hipki.control({"card": "remove"})
    hipki.control({"card": "insert"})  # a fresh power-up: the PIN is not verified
    answer = hipki.call("/sign", SIGN)
    assert (answer["ret_code"], answer["last_error"], answer["message"]) == (
        0x76000007, 0, "the card is not logged in"
    )  # fmt: skip


def test_card_refusing_the_operation_is_76300001(hipki, monkeypatch):
    def refuse(self, key_reference, block):
        raise MoicaError("EA first half", 0x6A88)

    monkeypatch.setattr(MoicaCard, "private_operation", refuse)
    answer = hipki.call("/sign", SIGN)
    assert (answer["ret_code"], answer["last_error"], answer["message"]) == (
        0x76300001, 0x06, "the card refused the operation (6A88)"
    )  # fmt: skip


def test_decryption_error_is_76300002(hipki):
    certs = hipki.get("/pkcs11info?withcert=true").json()["slots"][0]["token"]["certs"]
    assert certs[1]["usage"] == "keyEncipherment|dataEncipherment"
    garbage = base64.b64encode(b"\x01" * 256).decode()  # below the modulus, not an RSAES block once decrypted
    answer = hipki.call("/decrypt", {"cipher": garbage, "pin": PIN})
    assert (answer["ret_code"], answer["last_error"]) == (0x76300002, 0x06)
    assert hipki.call("/decrypt", {"cipher": "AAAA", "pin": PIN})["ret_code"] == 0x7600000C  # not one RSA block


def test_a_bug_is_a_json_answer_not_a_500(hipki, monkeypatch):
    def broken(self, *args):
        raise RuntimeError(f"bug holding {PIN}")

    monkeypatch.setattr(MoicaCard, "verify_pin", broken)
    response = hipki.post("/sign", data={"tbsPackage": json.dumps({"tbs": "x", "pin": PIN})})
    assert response.status_code == 200
    assert response.json() == {
        "func": "sign", "ret_code": 0x7600000D, "last_error": 0, "message": "internal error in the service",
        "signature": "", "certb64": "", "cardSN": "",
    }  # fmt: skip
