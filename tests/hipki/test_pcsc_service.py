"""The service over PC/SC (private pcscd + vpcd): readers and cards followed live, signing,
and the one-operation-at-a-time rule with two clients at once."""

from __future__ import annotations

import base64
import concurrent.futures
import json

import pytest
from asn1crypto import cms

from eidemu.emulator.profile import load_profile
from tests.pcsc.conftest import READER0, READER1, wait_for_card

from .conftest import PIN, Client, start

pytestmark = pytest.mark.pcsc


@pytest.fixture
def pcsc_service(stack, tmp_path):
    running = start("pcsc:Virtual PCD", tmp_path, trusted=("rp.test",))
    try:
        yield Client(running)
    finally:
        running.close()


def tokens(client: Client) -> dict[str, object]:
    answer = client.get("/pkcs11info").json()
    assert answer["ret_code"] == 0
    return {s["slotDescription"]: s["token"] and s["token"]["serialNumber"] for s in answer["slots"]}


def test_cards_inserted_and_removed_are_followed_without_restart(pcsc_service, slots, tmp_path):
    assert tokens(pcsc_service) == {READER0: None, READER1: None}
    flags = [s["flags"] for s in pcsc_service.get("/pkcs11info").json()["slots"]]
    assert flags == [6, 6]
    slots.insert(0, load_profile("moica-g2-valid-1").build(tmp_path / "a.json"))
    wait_for_card(READER0)
    assert tokens(pcsc_service) == {READER0: "TP46375051237517", READER1: None}
    slots.insert(1, load_profile("moica-g3-valid-1").build(tmp_path / "b.json"))
    wait_for_card(READER1)
    found = tokens(pcsc_service)
    assert found[READER0] == "TP46375051237517" and isinstance(found[READER1], str) and found[READER1] != found[READER0]
    slots.remove(0)
    wait_for_card(READER0, present=False)
    assert tokens(pcsc_service)[READER0] is None
    # another card in the same reader: a new token, not the cached one
    slots.insert(0, load_profile("moica-g2-valid-2").build(tmp_path / "c.json"))
    wait_for_card(READER0)
    assert tokens(pcsc_service)[READER0] not in (None, "TP46375051237517")


def test_sign_pkcs7_over_pcsc_and_two_clients_are_served_in_turn(pcsc_service, slots, tmp_path):
    slots.insert(0, load_profile("moica-g2-valid-1").build(tmp_path / "a.json"))
    wait_for_card(READER0)
    package = {"tbs": "over pcsc", "signatureType": "PKCS7", "pin": PIN, "slotDescription": READER0}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: pcsc_service.call("/sign", package), range(6)))
    assert [a["ret_code"] for a in answers] == [0] * 6
    for answer in answers:
        info = cms.ContentInfo.load(base64.b64decode(answer["signature"]))
        assert info["content"]["encap_content_info"]["content"].native == b"over pcsc"
    assert json.loads(json.dumps(answers[0]))["cardSN"] == "TP46375051237517"


def test_sign_with_no_card_in_any_reader(pcsc_service):
    assert pcsc_service.call("/sign", {"tbs": "x", "pin": PIN})["ret_code"] == 0x76000006


def test_eid_calls_over_pcsc_beside_a_citizen_card(pcsc_service, slots, tmp_path):
    """An eID chip and a citizen card behind pcscd + vpcd: ListEID names the chip's reader; the
    public data, then the private data in two steps (the relying party signing the challenge
    with its TEST terminal key), every zone hashing as EF.SOD says; the citizen card signs
    between the two steps in the other reader."""
    from eidemu.conformance.eid.passive import zone_hashes
    from eidemu.conformance.eid.report import Verdict

    from .test_eidpm import CHIP, certificates, signed
    from .test_eidpm import PIN as EID_PIN

    slots.insert(0, load_profile("eid-g3-valid-1").build(tmp_path / "eid.json"))
    slots.insert(1, load_profile("moica-g2-valid-1").build(tmp_path / "moica.json"))
    wait_for_card(READER0)
    wait_for_card(READER1)
    assert pcsc_service.call("/eIDPM/ListEID", {})["eIDs"] == [{"slotDescription": READER0, "slotID": 0}]
    public = pcsc_service.call("/eIDPM/GetEIDPublicData", {"can": CHIP["can"]})
    assert public["result"] == "API_OK" and public["slotDescription"] == READER0
    first = pcsc_service.call(
        "/eIDPM/GetEIDPrivateDataStep1", {"can": CHIP["can"], "pin1": EID_PIN, **certificates("at-private")}
    )
    assert first["result"] == "API_OK", first
    signature = pcsc_service.call("/sign", {"tbs": "between", "pin": PIN, "slotDescription": READER1})
    assert signature["ret_code"] == 0 and signature["cardSN"] == "TP46375051237517"
    second = {"handle": first["handle"], "signedData": signed("at-private", first["challenge"])}
    answer = pcsc_service.call("/eIDPM/GetEIDPrivateDataStep2", second)
    assert answer["result"] == "API_OK", answer
    zones = {int(k[2:]): base64.b64decode(v) for k, v in answer.items() if k.startswith("dg")}
    assert sorted(zones) == [3, 4, 5, 6, 7, 8, 9]
    check = zone_hashes(base64.b64decode(public["sod"]), zones)
    assert check.verdict is Verdict.PASSED, check
