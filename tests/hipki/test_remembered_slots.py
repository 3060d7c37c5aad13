"""Requests picked from a remembered view of the readers (the PC/SC watcher's, a moment behind):
a card changed before the request began is followed, one that leaves during it is not.

The source here is an in-process double of :class:`eidemu.hipki.cards.PcscSource`: one
reader whose card can be removed or swapped; ``slots()`` answers what was true when
``remember()`` last ran, ``slots(fresh=True)`` what is true now; a connection made to one card
fails once that card has left, as pcsc-lite answers ``SCARD_W_REMOVED_CARD``.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from asn1crypto import cms

from eidemu.conformance.connection import CardConnectionError, ConnectionWrapper, InProcessConnection
from eidemu.emulator.profile import load_profile
from eidemu.hipki.cards import SlotState
from eidemu.hipki.errors import HipkiError, RetCode
from eidemu.hipki.service import HipkiService

READER = "Remembered Reader 00"
CARDS = {"TP46375051237517": ("moica-g2-valid-1", "0890123"), "TP48455382628212": ("moica-g2-valid-2", "0571202")}


class SwappableSource:
    def __init__(self, tmp_path) -> None:
        self.cards = {
            number: load_profile(profile).build(tmp_path / f"{number}.json") for number, (profile, _) in CARDS.items()
        }
        self.inserted: str | None = "TP46375051237517"
        self.generation = 1
        self.fresh_asks = 0
        self.commands = 0
        self.remove_after: int | None = None  # remove the card after this many answered commands
        self.description = "double:"
        self.remember()

    def now(self) -> list[SlotState]:
        return [SlotState(0, READER, self.inserted is not None, self.generation)]

    def remember(self) -> None:
        self.remembered = self.now()

    def slots(self, fresh: bool = False) -> list[SlotState]:
        if fresh:
            self.fresh_asks += 1
            return self.now()
        return self.remembered

    def insert(self, number: str | None) -> None:
        self.inserted = number
        self.generation += 1

    def connect(self, slot: SlotState) -> ConnectionToOneCard:
        if self.inserted is None:
            raise CardConnectionError(f"no card in {READER!r}")
        card = self.cards[self.inserted]
        card.power_on()
        return ConnectionToOneCard(self, InProcessConnection(card, "double"), self.generation)

    def release(self, slot: SlotState, connection) -> None:
        connection.close()

    def close(self) -> None:
        pass


class ConnectionToOneCard(ConnectionWrapper):
    """Answers while the card it was made to stays inserted."""

    def __init__(self, source: SwappableSource, inner: InProcessConnection, generation: int) -> None:
        super().__init__(inner)
        self.source, self.generation = source, generation

    def transmit(self, command: bytes) -> bytes:
        if self.source.generation != self.generation:
            raise CardConnectionError("the card was removed")
        response = self.inner.transmit(command)
        self.source.commands += 1
        if self.source.remove_after is not None and self.source.commands >= self.source.remove_after:
            self.source.insert(None)
        return response


def sign(service: HipkiService, pin: str) -> dict:
    package = {"tbs": "remembered", "signatureType": "PKCS7", "pin": pin, "withCardSN": "true"}
    try:
        return asyncio.run(service.sign(package))
    except HipkiError as exc:
        return exc.answer("sign")


def signer_number(answer: dict) -> str:
    info = cms.ContentInfo.load(base64.b64decode(answer["signature"]))
    assert info["content"]["encap_content_info"]["content"].native == b"remembered"
    return str(answer["cardSN"])


@pytest.fixture
def double(tmp_path):
    """(source, service): the first card inserted and seen by the remembered view."""
    source = SwappableSource(tmp_path)
    service = HipkiService(source)
    yield source, service
    service.close()


FIRST, SECOND = CARDS


def test_a_card_swapped_before_the_request_signs_although_the_view_is_behind(double):
    source, service = double
    assert signer_number(sign(service, CARDS[FIRST][1])) == FIRST
    source.insert(SECOND)  # the remembered view still shows the first card
    answer = sign(service, CARDS[SECOND][1])
    assert answer["ret_code"] == 0, answer
    assert signer_number(answer) == SECOND
    assert source.fresh_asks == 1


def test_a_card_removed_before_the_request_is_no_card(double):
    source, service = double
    assert sign(service, CARDS[FIRST][1])["ret_code"] == 0
    source.insert(None)  # the remembered view still shows it
    assert sign(service, CARDS[FIRST][1])["ret_code"] == RetCode.NO_CARD
    assert source.fresh_asks == 1


def test_a_card_leaving_during_the_request_is_no_card_and_not_retried(double):
    source, service = double
    assert sign(service, CARDS[FIRST][1])["ret_code"] == 0
    source.remove_after = source.commands + 1  # gone after the VERIFY answers
    source.remember()
    assert sign(service, CARDS[FIRST][1])["ret_code"] == RetCode.NO_CARD
    assert source.fresh_asks == 0


def test_a_card_the_view_has_not_seen_yet_is_found_by_asking_afresh(double):
    source, service = double
    source.insert(None)
    source.remember()
    source.insert(SECOND)  # inserted; the view still shows an empty reader
    answer = sign(service, CARDS[SECOND][1])
    assert answer["ret_code"] == 0, answer
    assert signer_number(answer) == SECOND
    assert source.fresh_asks == 1


def test_requests_on_an_unchanged_card_never_ask_the_readers_afresh(double):
    source, service = double
    for _ in range(3):
        assert sign(service, CARDS[FIRST][1])["ret_code"] == 0
    assert source.fresh_asks == 0
