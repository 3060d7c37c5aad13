"""The eID middleware calls ``/eIDPM/...`` over the emulated eID chip ``eid-g3-valid-1`` (in
process): public data with the CAN, MRZ or card number; the private and household data in
two steps, the relying party signing the chip's challenge with its TEST terminal key; PIN
change and unblock; every failure with its ``result``."""

from __future__ import annotations

import base64
import json

import pytest

from eidemu.emulator.icao.cvc import sign
from eidemu.emulator.pki.eac import load_terminal
from eidemu.emulator.pki.eac_zones import holder_pin, holder_puk, zone_texts
from eidemu.fixtures import fixture_path
from eidemu.hipki.app import EID_KEY

from .test_api import NoReaders

CHIP = json.loads((fixture_path("pki") / "eid" / "chips" / "g3-valid-1" / "chip.json").read_text("utf-8"))
CHIP_DIR = fixture_path("pki") / "eid" / "chips" / "g3-valid-1"
IDENTITY = json.loads((fixture_path("pki") / "identities" / "g3-valid-1" / "identity.json").read_text("utf-8"))
PIN, PUK = holder_pin(IDENTITY["national_id"]), holder_puk(IDENTITY["national_id"])
EAC = fixture_path("pki") / "eac"


@pytest.fixture
def eid(make_service, tmp_path):
    return make_service(f"emulator:eid-g3-valid-1?state={tmp_path / 'chip.json'}", trusted=("rp.test",))


def call(client, name: str, package: dict, **kwargs) -> dict:
    answer = client.call(f"/eIDPM/{name}", package, **kwargs)
    assert answer["func"] == name and "ret_code" not in answer
    return answer


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def certificates(terminal: str) -> dict[str, str]:
    chain = load_terminal(EAC, terminal).chain
    return {
        "dvCert": base64.b64encode(chain[-2].encode()).decode(),
        "atCert": base64.b64encode(chain[-1].encode()).decode(),
    }


def signed(terminal: str, challenge: str) -> str:
    """What the relying party's server does with Step1's challenge: sign it with its terminal key."""
    t = load_terminal(EAC, terminal)
    return base64.b64encode(sign(t.key, t.algorithm, b64(challenge))).decode()


def step1(client, terminal: str = "at-private", **extra) -> dict:
    answer = call(client, "GetEIDPrivateDataStep1", {"can": CHIP["can"], **certificates(terminal), **extra})
    assert answer["result"] == "API_OK", answer
    return answer


def test_list_eid_names_the_reader_holding_an_eid_chip(eid, make_service):
    assert call(eid, "ListEID", {})["eIDs"] == [{"slotDescription": "eidemu emulated reader 00", "slotID": 0}]
    moica = make_service("emulator:moica-g2-valid-1")
    assert call(moica, "ListEID", {}) == {"func": "ListEID", "result": "API_OK", "eIDs": []}
    answer = call(moica, "GetEIDPublicData", {"can": "123456"})
    assert answer["result"] == "API_NO_CARD"


@pytest.mark.parametrize(
    "key", [{"can": CHIP["can"]}, {"mrz": CHIP["mrz_information"]}, {"cardNumber": CHIP["card_number"]}]
)
def test_public_data_is_the_chips_data_groups_and_sod(eid, key):
    answer = call(eid, "GetEIDPublicData", key)
    assert answer["result"] == "API_OK", answer
    for number in (1, 2, 11, 12):
        assert b64(answer[f"dg{number}"]) == (CHIP_DIR / f"DG{number}.bin").read_bytes()
    assert b64(answer["sod"]) == (CHIP_DIR / "EF.SOD.bin").read_bytes()
    only = call(eid, "GetEIDPublicData", {**key, "queryDG": [11]})
    assert set(only) == {"func", "result", "slotDescription", "dg11", "sod"}


def test_public_data_failures(eid):
    wrong = call(eid, "GetEIDPublicData", {"can": "000000" if CHIP["can"] != "000000" else "111111"})
    assert wrong["result"] == "API_ACCESS_KEY_INCORRECT" and CHIP["can"] not in json.dumps(wrong)
    assert call(eid, "GetEIDPublicData", {"can": CHIP["can"], "queryDG": "3"})["result"] == "API_ACCESS_DENIED"
    assert call(eid, "GetEIDPublicData", {"can": CHIP["can"], "queryDG": "DG2,x"})["result"] == "API_BAD_PARAMETER"
    assert call(eid, "GetEIDPublicData", {"can": "12345"})["result"] == "API_BAD_PARAMETER"
    assert call(eid, "GetEIDPublicData", {})["result"] == "API_BAD_PARAMETER"
    assert call(eid, "GetEIDPublicData", {"can": CHIP["can"], "queryDG": [16]})["result"] == "API_BAD_PARAMETER"
    untrusted = call(eid, "GetEIDPublicData", {"can": CHIP["can"]}, headers={"Origin": "https://evil.test"})
    assert untrusted["result"] == "API_UNTRUSTED_SITE"
    assert call(eid, "DeleteEID", {})["result"] == "API_NOT_SUPPORTED"


def test_private_data_in_two_steps_with_the_relying_partys_terminal_key(eid):
    first = step1(eid, pin1=PIN)
    answer = call(
        eid,
        "GetEIDPrivateDataStep2",
        {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])},
    )
    assert answer["result"] == "API_OK", answer
    assert sorted(k for k in answer if k.startswith("dg")) == [f"dg{n}" for n in range(3, 10)]
    texts = zone_texts(IDENTITY)
    for number in (3, 4, 5, 6, 7, 9):
        data = b64(answer[f"dg{number}"])
        assert data == (CHIP_DIR / f"DG{number}.bin").read_bytes()
        assert texts[number][0].encode("utf-8") in data
    assert PIN not in json.dumps(answer)
    again = {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])}
    assert call(eid, "GetEIDPrivateDataStep2", again)["result"] == "API_HANDLE_INVALID"


def test_household_data_with_the_household_terminal_and_no_pin(eid):
    first = step1(eid, "at-household")
    answer = call(
        eid,
        "GetEIDHouseHoldData",
        {"handle": first["handle"], "signedData": signed("at-household", first["challenge"])},
    )
    assert answer["result"] == "API_OK", answer
    assert b64(answer["dg13"]) == (CHIP_DIR / "DG13.bin").read_bytes()
    first = step1(eid, "at-household", pin1=PIN)
    private = {"handle": first["handle"], "signedData": signed("at-household", first["challenge"])}
    assert call(eid, "GetEIDPrivateDataStep2", private)["result"] == "API_ACCESS_DENIED"  # no DG3 right


def test_second_step_failures(eid):
    first = step1(eid, pin1=PIN)
    forged = signed("at-household", first["challenge"])  # another terminal's key
    assert (
        call(eid, "GetEIDPrivateDataStep2", {"handle": first["handle"], "signedData": forged})["result"]
        == "API_TA_FAILED"
    )
    wrong_pin = "0" * 6 if PIN != "000000" else "1" * 6
    first = step1(eid, pin1=wrong_pin)
    answer = call(
        eid,
        "GetEIDPrivateDataStep2",
        {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])},
    )
    assert (answer["result"], answer["triesLeft"]) == ("API_PIN_INCORRECT", 2)
    assert wrong_pin not in json.dumps(answer)
    # the card used otherwise between the steps ends the chip's session
    first = step1(eid, pin1=PIN)
    assert call(eid, "GetEIDPublicData", {"can": CHIP["can"], "queryDG": [1]})["result"] == "API_OK"
    late = {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])}
    assert call(eid, "GetEIDPrivateDataStep2", late)["result"] == "API_HANDLE_INVALID"
    # an expired handle
    first = step1(eid, pin1=PIN)
    calls = eid.http.app[EID_KEY]
    clock = calls.clock
    calls.clock = lambda: clock() + 61
    try:
        expired = {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])}
        assert call(eid, "GetEIDPrivateDataStep2", expired)["result"] == "API_HANDLE_INVALID"
    finally:
        calls.clock = clock
    assert (
        call(eid, "GetEIDPrivateDataStep2", {"handle": "nope", "signedData": "AAAA"})["result"] == "API_HANDLE_INVALID"
    )
    broken = {**certificates("at-private"), "can": CHIP["can"], "dvCert": "AAAA"}
    assert call(eid, "GetEIDPrivateDataStep1", broken)["result"] == "API_BAD_PARAMETER"
    reversed_chain = {
        "can": CHIP["can"],
        "dvCert": certificates("at-private")["atCert"],
        "atCert": certificates("at-private")["dvCert"],
    }
    assert call(eid, "GetEIDPrivateDataStep1", reversed_chain)["result"] == "API_CERTIFICATE_REJECTED"


def test_change_pin_block_and_unblock_with_the_puk(eid):
    other = "24681357"
    assert call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": PIN, "newPin": other})["result"] == "API_OK"
    wrong = call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": PIN, "newPin": other})
    assert (wrong["result"], wrong["triesLeft"]) == ("API_PIN_INCORRECT", 2)
    assert call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": PIN, "newPin": other})["triesLeft"] == 1
    assert call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": PIN, "newPin": other})["triesLeft"] == 0
    blocked = call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": other, "newPin": PIN})
    assert blocked["result"] == "API_PIN_BLOCKED"
    bad_puk = call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": "0" * 8 if PUK != "0" * 8 else "1" * 8})
    assert (bad_puk["result"], bad_puk["triesLeft"]) == ("API_PUK_INCORRECT", 9)
    assert call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": PUK, "newPin": PIN})["result"] == "API_OK"
    first = step1(eid, pin1=PIN)  # the PIN works again
    answer = call(
        eid,
        "GetEIDPrivateDataStep2",
        {"handle": first["handle"], "signedData": signed("at-private", first["challenge"]), "queryDG": "3"},
    )
    assert answer["result"] == "API_OK" and "dg3" in answer
    assert (
        call(eid, "ChangePinEID", {"can": CHIP["can"], "oldPin": PIN, "newPin": "12"})["result"] == "API_BAD_PARAMETER"
    )
    assert call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": "123"})["result"] == "API_BAD_PARAMETER"


def test_card_replaced_between_the_steps_no_reader_forbidden_origin_and_blocked_puk(eid):
    first = step1(eid, pin1=PIN)
    eid.control({"card": "remove"})
    eid.control({"card": "insert"})  # the same chip again: a new insertion, its session gone
    late = {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])}
    assert call(eid, "GetEIDPrivateDataStep2", late)["result"] == "API_CARD_REMOVED"
    opaque = call(eid, "GetEIDPublicData", {"can": CHIP["can"]}, headers={"Origin": "null"})
    assert opaque["result"] == "API_FORBIDDEN_DOMAIN"
    wrong = "0" * 8 if PUK != "0" * 8 else "1" * 8
    for left in range(9, 0, -1):
        answer = call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": wrong})
        assert (answer["result"], answer["triesLeft"]) == ("API_PUK_INCORRECT", left)
    last = call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": wrong})  # 63C0 or 6983: both end it
    assert last["triesLeft"] == 0 and last["result"] in ("API_PUK_INCORRECT", "API_PUK_BLOCKED")
    answer = call(eid, "UnblockCardEID", {"can": CHIP["can"], "puk": PUK})
    assert (answer["result"], answer["triesLeft"]) == ("API_PUK_BLOCKED", 0)
    eid.service.source = NoReaders()
    assert call(eid, "ListEID", {})["eIDs"] == []
    assert call(eid, "GetEIDPublicData", {"can": CHIP["can"]})["result"] == "API_NO_READER"
