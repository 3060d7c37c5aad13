"""Each step of Card.transmit on its own, then the secure-messaging path end to end.

The steps (see eidemu.emulator.cardos.card): ClassByte.decode, Card.unwrap_command,
Card.card_level_command, Application.process, Card.chain_response, Card.wrap_response.
"""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from eidemu.emulator.cardos.card import Application, Card, Channel
from eidemu.emulator.iso7816.apdu import ClassByte, CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.sw import CardError

from .sm_demo import SmDemoApplication


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# -- 1. class byte ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cla", "channel", "sm", "chained", "application_class"),
    [
        (0x00, 0, False, False, 0x00),
        (0x03, 3, False, False, 0x00),
        (0x0C, 0, True, False, 0x00),
        (0x0D, 1, True, False, 0x00),
        (0x10, 0, False, True, 0x00),
        (0x1F, 3, True, True, 0x00),
        (0x40, 4, False, False, 0x00),
        (0x4F, 19, False, False, 0x00),
        (0x60, 4, True, False, 0x00),
        (0x71, 5, True, True, 0x00),
        (0x80, 0, False, False, 0x80),
        (0x8C, 0, False, False, 0x8C),  # proprietary: the b4-b3 bits are not SM
        (0x9F, 0, False, False, 0x9F),
    ],
)
def test_class_byte_decoding(cla: int, channel: int, sm: bool, chained: bool, application_class: int) -> None:
    decoded = ClassByte.decode(cla)
    assert (decoded.value, decoded.channel, decoded.secure_messaging, decoded.chained) == (cla, channel, sm, chained)
    assert decoded.application_class == application_class
    assert decoded.interindustry == (cla < 0x80)


def test_class_byte_ff_is_refused_6e00() -> None:
    with pytest.raises(CardError) as info:
        ClassByte.decode(0xFF)
    assert info.value.sw == 0x6E00


# -- 2. secure messaging in -----------------------------------------------------------


class Tagging:
    """A session double: unwraps by dropping a leading 'P', wraps by prefixing 'W'."""

    def __init__(self) -> None:
        self.wrapped: list[tuple[bytes, int]] = []

    def unwrap(self, cmd: CommandAPDU) -> CommandAPDU:
        if not cmd.data.startswith(b"P"):
            raise CardError(0x6988, "not protected")
        return cmd._replace(data=cmd.data[1:])

    def wrap(self, data: bytes, sw: int) -> tuple[bytes, int]:
        if data == b"boom":
            raise RuntimeError("wrap bug")
        self.wrapped.append((data, sw))
        return b"W" + data, sw


@pytest.fixture
def powered(card: Card) -> Card:
    card.power_on()
    return card


def channel0(card: Card) -> Channel:
    return card.channels[0]


def test_plain_command_normalises_the_class_and_ends_a_session(powered: Card) -> None:
    channel = channel0(powered)
    channel.start_secure_messaging(Tagging())
    cmd = CommandAPDU(0x10, 0xB0, 0, 0, b"", 4)
    assert powered.unwrap_command(cmd, ClassByte.decode(0x10), channel) == CommandAPDU(0x00, 0xB0, 0, 0, b"", 4)
    assert channel.sm is None
    proprietary = CommandAPDU(0x80, 0xB0, 0, 0)
    assert powered.unwrap_command(proprietary, ClassByte.decode(0x80), channel) is proprietary


def test_protected_command_unwrapped_by_the_session(powered: Card) -> None:
    channel = channel0(powered)
    session = Tagging()
    channel.start_secure_messaging(session)
    plain = powered.unwrap_command(CommandAPDU(0x0C, 0xA4, 0, 0x0C, b"P\x3f\x00"), ClassByte.decode(0x0C), channel)
    assert plain == CommandAPDU(0x00, 0xA4, 0, 0x0C, b"\x3f\x00")
    assert channel.sm is session


def test_secure_messaging_errors_end_the_session(powered: Card) -> None:
    channel = channel0(powered)
    with pytest.raises(CardError) as info:
        powered.unwrap_command(CommandAPDU(0x0C, 0xA4, 0, 0x0C, b"P"), ClassByte.decode(0x0C), channel)
    assert info.value.sw == 0x6882  # no session
    channel.start_secure_messaging(Tagging())
    with pytest.raises(CardError) as info:
        powered.unwrap_command(CommandAPDU(0x0C, 0xA4, 0, 0x0C, b"X"), ClassByte.decode(0x0C), channel)
    assert info.value.sw == 0x6988
    assert channel.sm is None  # ICAO 9303-11 §9.8.4


# -- 3. card-level commands -------------------------------------------------------------


def test_get_response_is_answered_by_the_os(powered: Card) -> None:
    channel = channel0(powered)
    channel.pending = bytes(range(10))
    cla = ClassByte.decode(0)
    assert powered.card_level_command(CommandAPDU(0, 0xC0, 0, 0, b"", 4), cla, channel) == ResponseAPDU(
        h("00010203"), 0x6106
    )
    assert powered.card_level_command(CommandAPDU(0, 0xC0, 0, 0, b"", 6), cla, channel) == ResponseAPDU(
        h("040506070809"), 0x9000
    )
    with pytest.raises(CardError) as info:
        powered.card_level_command(CommandAPDU(0, 0xC0, 0, 0, b"", 6), cla, channel)
    assert info.value.sw == 0x6985


def test_any_other_command_drops_pending_data_and_passes_through(powered: Card) -> None:
    channel = channel0(powered)
    channel.pending = b"left over"
    cmd = CommandAPDU(0, 0xB0, 0, 0, b"", 4)
    assert powered.card_level_command(cmd, ClassByte.decode(0), channel) is cmd
    assert channel.pending == b""


def test_manage_channel_is_answered_by_the_os(powered: Card) -> None:
    outcome = powered.card_level_command(CommandAPDU(0, 0x70, 0, 0, b"", 1), ClassByte.decode(0), channel0(powered))
    assert outcome == ResponseAPDU(b"\x01", 0x9000)
    assert sorted(powered.channels) == [0, 1]


def test_command_chain_is_collected_then_handed_on_whole(powered: Card) -> None:
    channel = channel0(powered)
    first = CommandAPDU(0x00, 0x2A, 0x80, 0x86, h("0011"))
    assert powered.card_level_command(first, ClassByte.decode(0x10), channel) == ResponseAPDU(b"", 0x9000)
    assert channel.chain is not None and bytes(channel.chain.data) == h("0011")
    last = CommandAPDU(0x00, 0x2A, 0x80, 0x86, h("2233"), 256)
    assert powered.card_level_command(last, ClassByte.decode(0x00), channel) == CommandAPDU(
        0x00, 0x2A, 0x80, 0x86, h("00112233"), 256
    )
    assert channel.chain is None
    powered.card_level_command(first, ClassByte.decode(0x10), channel)
    with pytest.raises(CardError) as info:  # another header interrupts the chain
        powered.card_level_command(CommandAPDU(0, 0xB0, 0, 0, b"", 1), ClassByte.decode(0), channel)
    assert info.value.sw == 0x6883 and channel.chain is None


def test_a_chain_the_application_answers_link_by_link_is_not_collected(powered: Card) -> None:
    """Application.chained_by_protocol (PACE's GENERAL AUTHENTICATE, ICAO 9303-11 §4.4.4.2):
    each link goes on with the chaining bit kept in the class byte; other chains as before."""

    class LinkByLink(Application):
        chained_by_protocol = frozenset((0x86,))

    channel = channel0(powered)
    channel.app = LinkByLink(powered, powered.mf)
    link = CommandAPDU(0x00, 0x86, 0x00, 0x00, h("7C00"), 256)
    assert powered.card_level_command(link, ClassByte.decode(0x10), channel) == link._replace(cla=0x10)
    assert channel.chain is None
    assert powered.card_level_command(link, ClassByte.decode(0x00), channel) is link
    other = CommandAPDU(0x00, 0x2A, 0x80, 0x86, h("0011"))
    assert powered.card_level_command(other, ClassByte.decode(0x10), channel) == ResponseAPDU(b"", 0x9000)


# -- 4. the application ------------------------------------------------------------------


def test_the_application_answers_by_its_handlers_and_class_rule(powered: Card) -> None:
    app = Application(powered, powered.mf)
    app.handlers[0xCA] = lambda cmd, channel: bytes((channel.number, cmd.p2))
    channel = channel0(powered)
    assert app.process(CommandAPDU(0, 0xCA, 0, 0x42), channel) == h("0042")
    for cmd, sw in [(CommandAPDU(0, 0xCB, 0, 0), 0x6D00), (CommandAPDU(0x80, 0xCA, 0, 0), 0x6E00)]:
        with pytest.raises(CardError) as info:
            app.process(cmd, channel)
        assert info.value.sw == sw
    channel.app = app
    assert powered.transmit(h("00CA004200")) == h("0042 9000")  # the card asks the current application


# -- 5. response chaining and SM out -----------------------------------------------------


def test_response_chaining(powered: Card) -> None:
    channel = channel0(powered)
    assert powered.chain_response(b"", None, channel) == ResponseAPDU(b"", 0x9000)
    assert powered.chain_response(h("0102"), 2, channel) == ResponseAPDU(h("0102"), 0x9000)
    assert powered.chain_response(h("010203"), 2, channel) == ResponseAPDU(h("0102"), 0x6101)
    assert channel.pending == h("03")
    assert powered.chain_response(h("0102"), None, channel) == ResponseAPDU(b"", 0x6102)  # no Le: all behind 61xx
    assert powered.chain_response(bytes(300), 10, channel) == ResponseAPDU(bytes(10), 0x6100)  # 290 left: 00
    powered.always_get_response = True
    assert powered.chain_response(h("0102"), 2, channel) == ResponseAPDU(b"", 0x6102)


def test_wrap_response_uses_the_given_session(powered: Card) -> None:
    channel = channel0(powered)
    session = Tagging()
    channel.start_secure_messaging(session)
    assert powered.wrap_response(ResponseAPDU(h("AA"), 0x6282), session, channel) == ResponseAPDU(h("57AA"), 0x6282)
    assert session.wrapped == [(h("AA"), 0x6282)]


def test_wrap_failure_answers_6f00_and_ends_the_session(powered: Card, caplog: pytest.LogCaptureFixture) -> None:
    channel = channel0(powered)
    session = Tagging()
    channel.start_secure_messaging(session)
    with caplog.at_level(logging.ERROR, logger="eidemu.card"):
        assert powered.wrap_response(ResponseAPDU(b"boom", 0x9000), session, channel) == ResponseAPDU(b"", 0x6F00)
    assert "wrap failed" in caplog.text and channel.sm is None


# -- the whole path ------------------------------------------------------------------------


def test_transmit_answers_the_steps_failures(card: Card) -> None:
    assert card.transmit(h("00A4")) == h("6700")  # parse
    assert card.transmit(h("FFA4000C")) == h("6E00")  # class byte FF
    assert card.transmit(h("01A4000C023F00")) == h("6881")  # channel 1 is not open
    assert card.transmit(h("0CA4000C023F00")) == h("6882")  # SM class, no session


def test_response_to_a_protected_command_is_wrapped_by_the_session_that_unwrapped_it(card: Card) -> None:
    """Even when the handler ends the session (SELECT of another application does)."""
    session = Tagging()
    card.power_on()
    card.channels[0].start_secure_messaging(session)
    assert card.transmit(h("0CA4040C08 50A0000002471001")) == h("57 9000")
    assert card.channels[0].sm is None
    assert session.wrapped == [(b"", 0x9000)]


# -- secure messaging from a protocol, end to end -------------------------------------------

STATIC_KEY = h("404142434445464748494A4B4C4D4E4F")  # iso-demo key 01 (TEST ONLY)
RND_ICC = h("4608F91988702212")
RND_IFD = h("781723860C06C226")

# (command, response), each exact; the first two are plain, the rest protected.
SM_DEMO = [
    ("0084000008", "4608F91988702212 9000"),  # GET CHALLENGE: RND.ICC
    (
        "0082000110 0B3EB256632C4E33990D2DAACB85A08B 10",  # MUTUAL AUTHENTICATE: E(K, RND.IFD || RND.ICC)
        "1C48CE916189D919A04A5B3C1D47638D 9000",  # E(K, RND.ICC || RND.IFD); SM from now on
    ),
    (
        "0CA4000C15 8709018FEEDD2CBA9D1AB1 8E08C78E1FDD0E88ED4B 00",  # SELECT 5000 (DF.DEMO)
        "99029000 8E082E928749DB593F1A 9000",
    ),
    (
        "0CA4020C15 870901EEC11FCC5B59E2AD 8E08736C97646E6858FB 00",  # SELECT EF 5001
        "99029000 8E086083B5FE5A637DD1 9000",
    ),
    (
        "0CB000000D 970108 8E08F72A4DC4BEF1D0E3 00",  # READ BINARY, Le 8
        "871101D055859DA929245B73BEC67C2A4D5675 99029000 8E08D778FF4266A7BE27 9000",
    ),
]


def _tdes_cbc(data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(TripleDES(STATIC_KEY + STATIC_KEY[:8]), modes.CBC(bytes(8)))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


@pytest.fixture
def sm_card(card: Card) -> Card:
    card.set_default_application(SmDemoApplication(card, card.mf))
    card.reset()
    card.random = lambda n: RND_ICC[:n]
    return card


def test_sm_demo_end_to_end_exact_bytes(sm_card: Card) -> None:
    # The authentication cryptograms, checked with cryptography directly.
    assert _tdes_cbc(RND_IFD + RND_ICC, encrypt=True) == h(SM_DEMO[1][0])[5:21]
    assert _tdes_cbc(h(SM_DEMO[1][1])[:16], encrypt=False) == RND_ICC + RND_IFD
    for command, response in SM_DEMO:
        assert sm_card.transmit(h(command)).hex().upper() == response.replace(" ", ""), command
    assert sm_card.channels[0].sm is not None
    assert sm_card.transmit(h("00A4000C023F00")) == h("9000")  # a plain command ends the session
    assert sm_card.channels[0].sm is None


def test_sm_demo_terminal_side_reads_the_responses(sm_card: Card) -> None:
    from eidemu.emulator.iso7816.sm import TerminalSession

    from .sm_demo import derive_session

    terminal = TerminalSession(derive_session(STATIC_KEY, RND_ICC, RND_IFD))
    for command, _ in SM_DEMO[:2]:
        sm_card.transmit(h(command))
    for cmd, expected in [
        (CommandAPDU(0, 0xA4, 0x00, 0x0C, h("5000")), ResponseAPDU(b"", 0x9000)),
        (CommandAPDU(0, 0xA4, 0x02, 0x0C, h("5001")), ResponseAPDU(b"", 0x9000)),
        (CommandAPDU(0, 0xB0, 0x00, 0x00, ne=8), ResponseAPDU(b"Hello fr", 0x9000)),
        (CommandAPDU(0, 0xA4, 0x02, 0x0C, h("0F0F")), ResponseAPDU(b"", 0x6A82)),  # errors are protected too
    ]:
        assert terminal.unwrap(ResponseAPDU.parse(sm_card.transmit(terminal.wrap(cmd).encode()))) == expected


def test_sm_demo_wrong_cryptogram_installs_no_session(sm_card: Card) -> None:
    sm_card.transmit(h("0084000008"))
    assert sm_card.transmit(h("0082000110" + "00" * 16 + "10")) == h("6982")
    assert sm_card.channels[0].sm is None
