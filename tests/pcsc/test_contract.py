"""The tester's one contract (:class:`eidemu.conformance.connection.CardConnection`), the same
test for every connection type: in-process (``emulator:``), ``vpcd:`` (this process plays
vpcd against a card listening in reverse mode), ``pcsc:`` (a private pcscd with Debian's
vpcd driver, through pyscard) and ``served:`` (the harness serves the card into that pcscd).

Each connection must give the profile's ATR, transmit APDUs unchanged, clear the verified
PIN on a warm and on a cold reset, make the card see a reset for a warm reset and a power
cycle for a cold one, and close idempotently. Where the test can watch the card object
(all but ``served:``, which builds its own), the power events the card receives are
checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eidemu.cards import insert_card
from eidemu.conformance.connection import CardConnection, InProcessConnection, Rebuildable, open_card
from eidemu.conformance.pcsc import PcscConnection
from eidemu.conformance.vpcd import VpcdConnection
from eidemu.emulator.profile import load_profile
from eidemu.emulator.transport.vpcd import VpcdListener

from .conftest import READER0

ATR = bytes.fromhex("3B888001454944454D5530313A")  # iso-demo's ATR (fixtures/profiles/iso-demo.yaml)
OK = b"\x90\x00"
PIN_OK = bytes.fromhex("0020000108313233343536FFFF")  # VERIFY PIN 1 "123456", padded with FF
PIN_STATUS = bytes.fromhex("00200001")  # VERIFY without data: 9000 verified, 63C3 not
NOT_VERIFIED = bytes.fromhex("63C3")
SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")


class WatchedCard:
    """The iso-demo card, with the power events it receives recorded in order."""

    def __init__(self) -> None:
        self.card = load_profile("iso-demo").build()
        self.atr = self.card.atr
        self.events: list[str] = []

    def transmit(self, raw: bytes) -> bytes:
        return self.card.transmit(raw)

    def power_on(self) -> bytes:
        self.events.append("on")
        return self.card.power_on()

    def power_off(self) -> None:
        self.events.append("off")
        self.card.power_off()

    def reset(self) -> bytes:
        self.events.append("reset")
        return self.card.reset()


@dataclass
class Opened:
    connection: CardConnection
    card: WatchedCard | None  # None where the connection builds its own card (served:)


def _in_process(request: pytest.FixtureRequest) -> Iterator[Opened]:
    card = WatchedCard()
    connection = InProcessConnection(card, "emulator:iso-demo (watched)")
    yield Opened(connection, card)
    connection.close()


def _emulator(request: pytest.FixtureRequest) -> Iterator[Opened]:
    connection = open_card("emulator:iso-demo")
    yield Opened(connection, None)
    connection.close()


def _vpcd(request: pytest.FixtureRequest) -> Iterator[Opened]:
    card = WatchedCard()
    listener = VpcdListener(card, "127.0.0.1", 0).start()
    try:
        connection = open_card(f"vpcd:127.0.0.1:{listener.port}")
        yield Opened(connection, card)
        connection.close()
    finally:
        listener.stop()


def _pcsc(request: pytest.FixtureRequest) -> Iterator[Opened]:
    slots = request.getfixturevalue("slots")
    card = WatchedCard()
    insert_card(slots, 0, card)
    connection = open_card(f"pcsc:{READER0}")
    yield Opened(connection, card)
    connection.close()


def _served(request: pytest.FixtureRequest) -> Iterator[Opened]:
    stack = request.getfixturevalue("stack")
    connection = open_card(f"served:iso-demo?vpcd=localhost:{stack.port}&slot=1")
    yield Opened(connection, None)
    connection.close()


OPENERS = {"in-process": _in_process, "emulator": _emulator, "vpcd": _vpcd, "pcsc": _pcsc, "served": _served}


@pytest.fixture(params=list(OPENERS))
def opened(request: pytest.FixtureRequest) -> Iterator[Opened]:
    yield from OPENERS[request.param](request)


def _verify(connection: CardConnection) -> None:
    assert connection.transmit(PIN_OK) == OK
    assert connection.transmit(PIN_STATUS) == OK


def test_every_connection_keeps_the_contract(opened: Opened) -> None:
    connection, card = opened.connection, opened.card
    assert isinstance(connection, CardConnection)
    assert connection.atr == ATR
    assert connection.transmit(SELECT_APP) == OK
    assert connection.transmit(PIN_STATUS) == NOT_VERIFIED

    _verify(connection)
    if card is not None:
        card.events.clear()
    assert connection.reset(cold=False) == ATR
    assert connection.atr == ATR
    assert connection.transmit(PIN_STATUS) == NOT_VERIFIED
    if card is not None:
        assert card.events == ["reset"]

    _verify(connection)
    if card is not None:
        card.events.clear()
    assert connection.reset(cold=True) == ATR
    assert connection.transmit(PIN_STATUS) == NOT_VERIFIED
    if card is not None:
        assert card.events == ["off", "on"]

    connection.close()
    connection.close()  # idempotent


def test_only_cards_the_harness_builds_are_rebuildable(opened: Opened) -> None:
    expected = {"emulator:iso-demo": True}
    rebuildable = isinstance(opened.connection, Rebuildable)
    if opened.connection.description.startswith("served:"):
        assert rebuildable
    else:
        assert rebuildable == expected.get(opened.connection.description, False)


def test_a_pcsc_cold_reset_reaches_the_card_as_a_power_cycle(slots) -> None:
    """The runner's ``power-cycle`` step on a ``pcsc:`` card: SCardReconnect(SCARD_UNPOWER_CARD),
    which pcscd and vpcd turn into power off and on, not a warm reset."""
    card = WatchedCard()
    insert_card(slots, 0, card)
    with PcscConnection(READER0) as connection:
        card.events.clear()
        connection.reset(cold=True)
        assert card.events == ["off", "on"]
        card.events.clear()
        connection.reset()
        assert card.events == ["reset"]


def test_vpcd_connection_is_the_class_the_scheme_opens() -> None:
    listener = VpcdListener(WatchedCard(), "127.0.0.1", 0).start()
    try:
        connection = open_card(f"vpcd:127.0.0.1:{listener.port}")
        assert type(connection) is VpcdConnection
        connection.close()
    finally:
        listener.stop()


def test_a_script_power_cycle_on_a_pcsc_card_is_a_cold_reset(slots) -> None:
    """The runner's ``power-cycle`` and ``reset`` steps go through ``reset(cold)`` of the connection."""
    from eidemu.conformance.runner import CardUnderTest, Outcome, run_test
    from eidemu.conformance.script import parse_script

    card = WatchedCard()
    insert_card(slots, 0, card)
    script = parse_script(
        "test T_POWER_01: power cycle and reset\n"
        "send 00 20 00 01 08 31 32 33 34 35 36 FF FF\n  sw 90 00\n"
        "power-cycle\n"
        "send 00 20 00 01\n  sw 63 C3\n"
        "reset\n",
        "power.apdu",
    )
    under_test = CardUnderTest(f"pcsc:{READER0}")
    try:
        card.events.clear()
        result = run_test(under_test, script, script.tests[0])
    finally:
        under_test.close()
    assert result.outcome == Outcome.PASSED, result.message
    assert card.events == ["reset", "off", "on", "reset"]  # the runner's reset before the test, then the steps
