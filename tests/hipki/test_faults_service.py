"""Fault plans reach what a web relying party sees: the card served behind the fault layer
(as ``eidemu serve --faults`` does) is pulled out in the middle of a ``/sign`` through the
HiPKI-compatible service over pcscd + vpcd, and the page gets the documented "no card"."""

from __future__ import annotations

import pytest

from eidemu.emulator.faults import FaultPlan, FaultyCard
from eidemu.emulator.profile import load_profile
from tests.pcsc.conftest import READER0, wait_for_card

from .conftest import PIN, Client, start

pytestmark = pytest.mark.pcsc

NO_CARD = 0x76000006


def test_card_pulled_out_during_signing_answers_no_card_then_signs_again(stack, slots, tmp_path):
    faulty = FaultyCard(load_profile("moica-g2-valid-1").build(tmp_path / "card.json"))
    slots.insert(0, faulty)
    wait_for_card(READER0)
    running = start("pcsc:Virtual PCD", tmp_path, trusted=("rp.test",))
    try:
        client = Client(running)
        package = {"tbs": "pulled out", "signatureType": "PKCS7", "pin": PIN, "slotDescription": READER0}
        faulty.arm(FaultPlan.from_lines(["fault=remove command=80EA"]))  # the private-key operation
        answer = client.call("/sign", package)
        assert answer["ret_code"] == NO_CARD, answer
        assert answer["cardSN"] == ""
        assert "removed" in answer["message"]
        wait_for_card(READER0, present=False)  # the reader reports the slot empty
        # The PIN was right: after re-insertion the same request signs, no try was lost.
        faulty.clear()
        slots.reinsert(0)
        wait_for_card(READER0)
        again = client.call("/sign", package)
        assert again["ret_code"] == 0 and again["cardSN"] == "TP46375051237517"
    finally:
        running.close()
        slots.remove(0)
