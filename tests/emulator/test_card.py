"""Transmission layer: channels, chaining both ways, GET RESPONSE, power, failure paths."""

import logging

import pytest

from eidemu.emulator.cardos.card import Application
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.sw import SW, CardError

from .conftest import PIN_BAD, PIN_OK, Terminal

SELECT_APP = "00A4040C07A0000002471001"


def test_malformed_apdus_answer_6700_without_raising(send):
    for raw in ("", "00", "00A4", "00A4000C03 3F00", "00B000000001"):
        assert send(raw.replace(" ", "")) == (b"", 0x6700)
    assert send(SELECT_APP) == (b"", 0x9000)  # the card still answers


def test_response_chaining_61xx_and_get_response(send):
    data, sw = send("00A4040007A0000002471001")  # FCI of 21 bytes, no Le: T=0 style 61xx
    assert (data, sw) == (b"", 0x6115)
    fci, sw = send("00C0000010")  # ask for 16 of the 21
    assert sw == 0x6105 and len(fci) == 16
    rest, sw = send("00C0000005")
    assert sw == 0x9000 and fci + rest == bytes.fromhex("6F13820138830250008407A00000024710018A0105")
    assert send.sw("00C0000000") == 0x6985  # nothing pending any more


def test_response_longer_than_le_is_chained(send):
    send("00A4000C020101")
    data, sw = send("00B0000000 0200".replace(" ", ""))  # extended Le 512
    assert sw == 0x9000 and len(data) == 512
    data, sw = send("00B1000004 540200C8 FF".replace(" ", ""))  # odd-INS read: 53 tag grows the answer
    assert sw == 0x9000 and data[:3] == bytes.fromhex("5381FB")


def test_get_response_cleared_by_another_command(send):
    assert send.sw("00A4040007A0000002471001") == 0x6115
    assert send.sw("00A4000C023F00") == 0x9000
    assert send.sw("00C0000015") == 0x6985


def test_command_chaining_collects_data(send):
    send(SELECT_APP)
    send("00A4020C025003")
    assert send.sw("10D6000002 4142".replace(" ", "")) == 0x9000  # CLA b5: more to come
    assert send.sw("10D6000002 4344".replace(" ", "")) == 0x9000
    assert send.sw("00D6000002 4546".replace(" ", "")) == 0x9000  # last of the chain
    assert send("00B0000006") == (b"ABCDEF", 0x9000)


def test_command_chaining_interrupted(send):
    send(SELECT_APP)
    send("00A4020C025003")
    assert send.sw("10D6000002 4142".replace(" ", "")) == 0x9000
    assert send.sw("00B0000004") == 0x6883  # another command while a chain is open
    assert send("00B0000002") == (b"\x00\x00", 0x9000)  # nothing was written


def test_manage_channel_open_close_and_independent_state(send):
    assert send("0070000001") == (b"\x01", 0x9000)
    assert send("0070000001") == (b"\x02", 0x9000)
    assert send("0070000001") == (b"\x03", 0x9000)
    assert send.sw("0070000001") == 0x6881  # four channels in iso-demo: 0..3
    # channel 1 selects the application and verifies; channel 2 sees neither
    assert send.sw("01A4040C07A0000002471001") == 0x9000
    assert send.sw(f"01{PIN_OK[2:]}") == 0x9000
    assert send("01B0820006") == (b"secret", 0x9000)
    assert send.sw("02B0820006") == 0x6A82  # MF is current on channel 2: no SFI 2 there
    assert send.sw("02A4040C07A0000002471001") == 0x9000
    assert send.sw("02B0820006") == 0x6982  # PIN verified on channel 1 only
    assert send.sw("00B0820006") == 0x6A82
    assert send.sw("00708001") == 0x9000  # close channel 1 from channel 0
    assert send.sw("01B0810001") == 0x6881  # channel 1 is closed
    assert send.sw("00708000") == 0x6A86  # the basic channel cannot be closed
    assert send.sw("00708001") == 0x6A86  # already closed
    assert send.sw("02708000") == 0x9000  # P2=00 closes the channel the command came on
    assert send.sw("02B0810001") == 0x6881


def test_manage_channel_specific_number_and_inheritance(send):
    send(SELECT_APP)
    assert send.sw("00700002") == 0x9000  # open channel 2 by number
    assert send.sw("00700002") == 0x6985  # already open
    assert send.sw("00700009") == 0x6A86
    assert send.sw("02B0810001") == 0x6A82  # opened from channel 0: MF current
    assert send.sw("02A4040C07A0000002471001") == 0x9000
    assert send("0270000001") == (b"\x01", 0x9000)  # opened from channel 2: inherits the DF
    assert send("01B0810005") == (b"Hello", 0x9000)


def test_further_interindustry_class_channels():
    from eidemu.emulator.profile import load_profile

    card = load_profile("iso-demo").build()
    card.max_channels = 8
    send = Terminal(card)
    assert send("00700005") == (b"", 0x9000)
    assert send("41A4040C07A0000002471001") == (b"", 0x9000)  # CLA 41: channel 5
    assert send("41B0810005") == (b"Hello", 0x9000)


def test_power_cycle_and_reset_clear_volatile_state(send, card):
    send(PIN_OK)
    send(SELECT_APP)
    send("0070000001")
    send(PIN_BAD)
    assert card.reset() == card.atr
    assert send.sw("00200001") == 0x63C2  # counter kept, verification lost
    assert send.sw("01A4000C023F00") == 0x6881  # channels closed
    assert send.sw("00B0810001") == 0x6A82  # MF current again
    card.power_off()
    assert send.sw("00200001") == 0x63C2  # powered on again on the next APDU


class Exploding(Application):
    def __init__(self, card, df, aid=b"", options=None):
        super().__init__(card, df, aid, options)
        self.handlers[0x01] = self.boom

    def boom(self, cmd: CommandAPDU, channel) -> bytes:
        raise RuntimeError("handler bug")


def test_unexpected_exception_answers_6f00_and_is_logged(card, caplog):
    card.set_default_application(Exploding(card, card.mf))
    card.reset()
    send = Terminal(card)
    with caplog.at_level(logging.ERROR, logger="eidemu.card"):
        assert send("00010000") == (b"", 0x6F00)
    assert "handler bug" in caplog.text and "6F00" in caplog.text
    assert send("00020000") == (b"", 0x6D00)


class Counting:
    """A secure-messaging double that tags wrapped responses, to check the layer's contract."""

    def __init__(self):
        self.unwrapped = 0

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU:
        if cmd.data == b"bad":
            raise CardError(SW.INCORRECT_SM_DATA_OBJECTS)
        self.unwrapped += 1
        return cmd

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        return b"W" + data, sw


def test_secure_messaging_layer_hook(card):
    send = Terminal(card)
    assert send.sw("0CA4000C023F00") == 0x6882  # SM bits without a session
    session = Counting()
    card.channels[0].start_secure_messaging(session)
    assert send("0CA4000C023F00") == (b"W", 0x9000)
    assert session.unwrapped == 1
    assert send("0CA4000C03626164") == (b"", 0x6988)  # SM error: plain answer, session ended
    assert card.channels[0].sm is None
    card.channels[0].start_secure_messaging(session)
    assert send("00A4000C023F00") == (b"", 0x9000)  # a plain command ends the session
    assert card.channels[0].sm is None


@pytest.mark.parametrize("always", [True])
def test_always_get_response_mode(card, always):
    card.always_get_response = always
    send = Terminal(card)
    assert send("00CA9F7F00") == (b"", 0x6107)
    assert send("00C0000007") == (bytes.fromhex("9F7F04DEADBEEF"), 0x9000)


class OwnDispatch(Application):
    """An application that dispatches itself (overrides process)."""

    def __init__(self, card, df):
        super().__init__(card, df)
        self.handlers[0xCA] = lambda cmd, channel: b"table"
        self.seen: list[int] = []

    def process(self, cmd: CommandAPDU, channel) -> bytes:
        self.seen.append(cmd.ins)
        return b"own"


def test_handlers_are_live_and_process_keeps_control(card):
    send = Terminal(card)
    assert send("00A4000C023F00") == (b"", 0x9000)
    card.default_app.handlers[0x01] = lambda cmd, channel: b"late"
    assert send("0001000000") == (b"late", 0x9000)  # a handler added after power-on is seen
    assert send("80010000") == (b"", 0x6E00)  # the class rule still applies
    del card.default_app.handlers[0x01]
    assert send("00010000") == (b"", 0x6D00)  # and a removed one is gone

    own = OwnDispatch(card, card.mf)
    card.set_default_application(own)
    card.reset()
    assert send("00CA000000") == (b"own", 0x9000)  # its process(), not its handlers table
    assert own.seen == [0xCA]


def test_card_level_commands_are_not_given_to_applications(card):
    """GET RESPONSE and MANAGE CHANNEL are the OS's, whatever the application's table says."""
    card.default_app.handlers[0xC0] = lambda cmd, channel: b"app"
    card.default_app.handlers[0x70] = lambda cmd, channel: b"app"
    send = Terminal(card)
    assert send("00C0000000") == (b"", 0x6985)  # nothing pending: the OS answers
    assert send("0070000001") == (b"\x01", 0x9000)  # channel 1 opened by the OS


def test_tracer_can_be_set_and_removed(card):
    seen: list[tuple[bytes, bytes]] = []
    card.tracer = lambda command, response, start: seen.append((command, response))
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    assert seen == [(bytes.fromhex("00A4000C023F00"), b"\x90\x00")]
    card.tracer = None
    assert card.tracer is None
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    assert len(seen) == 1  # no longer traced
