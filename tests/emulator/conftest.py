import pytest

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.iso7816.apdu import parse_hex
from eidemu.emulator.profile import load_profile


class Terminal:
    """Sends hex APDUs to an in-process card and returns (data, sw)."""

    def __init__(self, card: Card) -> None:
        self.card = card

    def __call__(self, hex_apdu: str) -> tuple[bytes, int]:
        rsp = self.card.transmit(parse_hex(hex_apdu))
        return rsp[:-2], int.from_bytes(rsp[-2:], "big")

    def sw(self, hex_apdu: str) -> int:
        return self(hex_apdu)[1]


@pytest.fixture(scope="session")
def demo_profile():
    return load_profile("iso-demo")


@pytest.fixture
def card(demo_profile):
    return demo_profile.build()


@pytest.fixture
def send(card):
    return Terminal(card)


PIN_OK = "0020000108 313233343536FFFF"
PIN_BAD = "0020000108 393939393939FFFF"
