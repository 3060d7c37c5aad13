"""eMRTD secure messaging, positive and negative (units SM).

``EMRTD_SM_A_*``: the protected exchange itself (ICAO Doc 9303-11 §9.8): DO 87/85/97,
response DO 99 and 8E, the send sequence counter stepping by one per message.
``EMRTD_SM_B_*``: what ends a session (§9.8.4, §9.8.6): a wrong MAC, a missing DO 8E, a
plain command, a replayed command, a skipped SSC value: answered unprotected with
``6987``/``6988`` and the keys gone, so a correctly protected command afterwards is refused.
"""

from __future__ import annotations

from eidemu.emulator.icao import lds
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.tlv import TLV, parse_all

from ..pythontests import CheckFailed, FlowContext
from .emrtd_common import Session, emrtd_test, hexs, open_bac, open_session

_SM_ERRORS = (0x6987, 0x6988)
_READ_COM = CommandAPDU(0x00, 0xB0, 0x80 | lds.LdsFile.COM.sfi, 0x00, b"", 4)


def _raw(session: Session, command: CommandAPDU) -> ResponseAPDU:
    return ResponseAPDU.parse(session.channel.connection.transmit(command.encode()))


def _unwrap(session: Session, raw: ResponseAPDU) -> ResponseAPDU:
    try:
        return session.sm.unwrap(raw)
    except ValueError as exc:
        raise CheckFailed(f"the chip's protected response: {exc}", "a verified response", hexs(raw.data)) from None


def _sw(value: int) -> str:
    return f"{value >> 8:02X} {value & 0xFF:02X}"


def _session_ended(session: Session, context: FlowContext, what: str) -> None:
    """A correctly protected command after the error is refused: the chip wiped its keys."""
    after = _raw(session, session.sm.wrap(_READ_COM))
    FlowContext.check(
        after.sw in (0x6882, 0x6987, 0x6988) and not after.data,
        f"after {what}, a correctly protected command is refused (the session ended)",
        "68 82, 69 87 or 69 88 without data",
        f"{_sw(after.sw)} {hexs(after.data)}".strip(),
    )


def _check_refused(response: ResponseAPDU, what: str) -> None:
    FlowContext.check(
        response.sw in _SM_ERRORS and not response.data,
        f"{what} is answered unprotected with 69 87 / 69 88",
        "69 87 or 69 88, no data",
        f"{_sw(response.sw)} {hexs(response.data)}".strip(),
    )


@emrtd_test(
    "EMRTD_SM_A_1",
    "a protected response carries DO 87, DO 99 and DO 8E",
    spec="ICAO Doc 9303-11 §9.8.5 (response: DO 87 with padding indicator 01, DO 99 status, DO 8E MAC)",
    purpose="READ BINARY of EF.COM under the session: the response is DO 87 (01 || cryptogram), DO 99 = 90 00 "
    "and DO 8E of 8 bytes in that order, the outer status word 90 00, and the MAC verifies.",
)
def sm_response_objects(context: FlowContext) -> None:
    session = open_session(context)
    raw = _raw(session, session.sm.wrap(_READ_COM))
    objects = parse_all(raw.data)
    tags = [o.tag for o in objects]
    FlowContext.check(
        tags == [0x87, 0x99, 0x8E], "response data objects", "87 99 8E", " ".join(f"{t:02X}" for t in tags)
    )
    FlowContext.check(objects[0].value[:1] == b"\x01", "DO 87 padding indicator", "01", hexs(objects[0].value[:1]))
    FlowContext.check(objects[1].value == b"\x90\x00", "DO 99", "90 00", hexs(objects[1].value))
    FlowContext.check(len(objects[2].value) == 8, "DO 8E length", "8", len(objects[2].value))
    FlowContext.check(raw.sw == 0x9000, "outer status word", "90 00", _sw(raw.sw))
    plain = _unwrap(session, raw)
    FlowContext.check(plain.data[:1] == b"\x60", "decrypted data starts EF.COM", "60", hexs(plain.data[:1]))


@emrtd_test(
    "EMRTD_SM_A_2",
    "the send sequence counter steps by one per message",
    spec="ICAO Doc 9303-11 §9.8.3 (SSC incremented before each command and each response)",
    purpose="Eight protected READ BINARY commands of EF.COM in a row: every response MAC verifies with SSC + 2 "
    "per exchange.",
)
def sm_ssc_steps(context: FlowContext) -> None:
    session = open_session(context)
    for offset in range(8):
        session.send(CommandAPDU(0x00, 0xB0, 0x80 | lds.LdsFile.COM.sfi, offset, b"", 1), f"READ BINARY at {offset}")


@emrtd_test(
    "EMRTD_SM_A_3",
    "READ BINARY with odd INS under secure messaging",
    spec="ICAO Doc 9303-11 §9.8.4 (DO 85 for odd INS); ICAO Doc 9303-10 §4.6.1; ISO/IEC 7816-4:2020 §11.2.3",
    purpose="READ BINARY B1 of the selected DG1 with DO 54 offset 0004 in DO 85: the answer is DO 53 with the "
    "bytes of DG1 from offset 4.",
    tokens=("READ-BINARY-ODD",),
)
def sm_odd_ins(context: FlowContext) -> None:
    session = open_session(context)
    dg1 = session.read(1, "DG1")
    answer = session.send(
        CommandAPDU(0x00, 0xB1, 0x00, 0x00, bytes.fromhex("54020004"), 256), "READ BINARY B1", accept=(0x9000, 0x6282)
    )
    found = TLV.parse(answer)
    FlowContext.check(found.tag == 0x53, "READ BINARY B1 answers DO 53", "53", f"{found.tag:02X}")
    FlowContext.check(found.value == dg1[4:], "DO 53 holds DG1 from offset 4", hexs(dg1[4:]), hexs(found.value))


@emrtd_test(
    "EMRTD_SM_A_4",
    "extended length under secure messaging reads DG2 in one command",
    spec="ICAO Doc 9303-11 §9.8.4 (DO 97 of two bytes); ICAO Doc 9303-10 §4.7.2; ISO/IEC 7816-4:2020 §5.1",
    purpose="READ BINARY of DG2 by SFI with DO 97 = 00 00 (extended Le) answers the whole data group in one response.",
    tokens=("EXTENDED-LENGTH",),
)
def sm_extended(context: FlowContext) -> None:
    session = open_session(context)
    whole = session.send(CommandAPDU(0x00, 0xB0, 0x82, 0x00, b"", 65536, True), "READ BINARY DG2 (extended)")
    expected = session.read(2, "DG2")
    FlowContext.check(whole == expected, "one extended READ BINARY returns all of DG2", len(expected), len(whole))


@emrtd_test(
    "EMRTD_SM_A_5",
    "an error status word under secure messaging keeps the session",
    spec="ICAO Doc 9303-11 §9.8.5 (the status word in DO 99); ISO/IEC 7816-4:2020 §5.6 (6A82)",
    purpose="READ BINARY of DG16 (SFI 10), which the chip lacks, answers 6A 82 and the session goes on: "
    "EF.COM then reads under it.",
    tokens=("!LDS-DG16",),
)
def sm_error_keeps_session(context: FlowContext) -> None:
    session = open_session(context)
    missing = session.channel.send(CommandAPDU(0x00, 0xB0, 0x90, 0x00, b"", 1), "READ BINARY DG16", accept=(0x6A82,))
    FlowContext.check(missing.sw == 0x6A82, "DG16", "6A 82", _sw(missing.sw))
    session.send(_READ_COM, "READ BINARY EF.COM after the error")


@emrtd_test(
    "EMRTD_SM_A_6",
    "3DES secure messaging after BAC",
    spec="ICAO Doc 9303-11 §9.8 (3DES: retail MAC, SSC of 8 bytes from RND.IC and RND.IFD), §9.8.2",
    purpose="After BAC, the protected READ BINARY of EF.COM answers DO 87, 99, 8E with a retail MAC that verifies.",
    tokens=("BAC",),
)
def sm_3des(context: FlowContext) -> None:
    session = open_bac(context)
    raw = _raw(session, session.sm.wrap(_READ_COM))
    tags = [o.tag for o in parse_all(raw.data)]
    FlowContext.check(
        tags == [0x87, 0x99, 0x8E], "response data objects", "87 99 8E", " ".join(f"{t:02X}" for t in tags)
    )
    plain = _unwrap(session, raw)
    FlowContext.check(plain.data[:1] == b"\x60", "decrypted data starts EF.COM", "60", hexs(plain.data[:1]))


def _bad_mac(command: CommandAPDU) -> CommandAPDU:
    return command._replace(data=command.data[:-1] + bytes((command.data[-1] ^ 0x01,)))


@emrtd_test(
    "EMRTD_SM_B_1",
    "a wrong MAC ends the session",
    spec="ICAO Doc 9303-11 §9.8.4, §9.8.6 (an SM error ends the session: 6987/6988, keys deleted)",
    purpose="A protected READ BINARY whose DO 8E has one bit changed is answered unprotected 69 88 (or 69 87); "
    "the next correctly protected command is refused too.",
)
def sm_wrong_mac(context: FlowContext) -> None:
    session = open_session(context)
    _check_refused(_raw(session, _bad_mac(session.sm.wrap(_READ_COM))), "a command with a wrong MAC")
    _session_ended(session, context, "a wrong MAC")


@emrtd_test(
    "EMRTD_SM_B_2",
    "a protected command without DO 8E ends the session",
    spec="ICAO Doc 9303-11 §9.8.4 (DO 8E is mandatory), §9.8.6; ISO/IEC 7816-4:2020 §5.6 (6987)",
    purpose="A READ BINARY with CLA 0C and only DO 97 is answered 69 87 or 69 88; the session ends.",
)
def sm_missing_mac(context: FlowContext) -> None:
    session = open_session(context)
    wrapped = session.sm.wrap(_READ_COM)
    without = wrapped._replace(data=b"".join(o.encode() for o in parse_all(wrapped.data) if o.tag != 0x8E))
    _check_refused(_raw(session, without), "a command without DO 8E")
    _session_ended(session, context, "a missing DO 8E")


@emrtd_test(
    "EMRTD_SM_B_3",
    "a plain command inside a session ends it",
    spec="ICAO Doc 9303-11 §9.8.6 (a plain APDU aborts secure messaging); ISO/IEC 7816-4:2020 §10",
    purpose="A plain READ BINARY of DG1 during the session answers 69 82 (no data) and ends the session: the "
    "next protected command is refused.",
)
def sm_plain_command(context: FlowContext) -> None:
    session = open_session(context)
    plain = _raw(session, CommandAPDU(0x00, 0xB0, 0x81, 0x00, b"", 256))
    FlowContext.check(
        plain.sw == 0x6982 and not plain.data, "a plain READ BINARY of DG1", "69 82, no data", _sw(plain.sw)
    )
    _session_ended(session, context, "a plain command")


@emrtd_test(
    "EMRTD_SM_B_4",
    "a replayed command is refused and ends the session",
    spec="ICAO Doc 9303-11 §9.8.3 (the SSC makes every MAC unique), §9.8.6",
    purpose="A protected command sent a second time with the same bytes (an old SSC) is answered 69 88 / 69 87 "
    "without data, and the session ends.",
)
def sm_replay(context: FlowContext) -> None:
    session = open_session(context)
    wrapped = session.sm.wrap(_READ_COM)
    first = _raw(session, wrapped)
    _unwrap(session, first)
    _check_refused(_raw(session, wrapped), "the replayed command")
    _session_ended(session, context, "a replay")


@emrtd_test(
    "EMRTD_SM_B_5",
    "a command with a skipped SSC value is refused",
    spec="ICAO Doc 9303-11 §9.8.3 (SSC + 1 for each message), §9.8.6",
    purpose="The terminal steps its SSC once more than it should before a protected command: the chip "
    "answers 69 88 / 69 87 and the session ends.",
)
def sm_wrong_ssc(context: FlowContext) -> None:
    session = open_session(context)
    session.sm.keys.next_ssc()
    _check_refused(_raw(session, session.sm.wrap(_READ_COM)), "a command MACed with SSC + 2")
    _session_ended(session, context, "a wrong SSC")


@emrtd_test(
    "EMRTD_SM_B_6",
    "a wrong MAC ends a BAC session",
    spec="ICAO Doc 9303-11 §9.8.6; §4.3 (BAC, 3DES retail MAC)",
    purpose="After BAC, a protected command with a wrong retail MAC answers 69 88 / 69 87 and the session ends.",
    tokens=("BAC",),
)
def sm_wrong_mac_bac(context: FlowContext) -> None:
    session = open_bac(context)
    _check_refused(_raw(session, _bad_mac(session.sm.wrap(_READ_COM))), "a command with a wrong MAC")
    _session_ended(session, context, "a wrong MAC")


@emrtd_test(
    "EMRTD_SM_B_7",
    "DO 87 without the padding-content indicator is refused",
    spec="ICAO Doc 9303-11 §9.8.4 (DO 87: padding indicator 01, then the cryptogram)",
    purpose="SELECT of EF.COM whose DO 87 lacks the leading 01 (but is correctly MACed) answers 69 88 / 69 87 "
    "and the session ends.",
)
def sm_do87_indicator(context: FlowContext) -> None:
    session = open_session(context)
    keys = session.sm.keys
    keys.next_ssc()
    header = bytes((0x0C, 0xA4, 0x02, 0x0C))
    body = TLV(0x87, keys.encrypt(b"\x01\x1e")).encode()
    block = keys.block
    padded = header + b"\x80" + b"\x00" * (block - 5)
    mac = keys.mac(padded + body)
    command = CommandAPDU(0x0C, 0xA4, 0x02, 0x0C, body + TLV(0x8E, mac).encode(), 256)
    _check_refused(_raw(session, command), "DO 87 without 01")
    _session_ended(session, context, "a malformed DO 87")
