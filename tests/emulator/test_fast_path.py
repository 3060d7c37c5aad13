"""The card's fast path (Application.fast_handlers) answers exactly as the normal path.

Two cards from the same profile run the same random command sequence, one with the fast
path and one without; after every command both must have given the same response and be in
the same state (current DF and EF on each channel, pending response data, chaining, verified
PINs, retry counters, the RSA operation's halves and result). The sequences mix the commands
the fast path takes (5-byte READ BINARY and SELECT by FID, in every class, by SFI and by
offset, past the end, on record EFs and protected files, found and not; for the citizen
certificate card also the protected VERIFY, right and wrong, ``80 EA 82`` and ``80 C1``) with
what changes the state they depend on: selections, VERIFY, response data left pending by a
61xx, chaining, logical channels and UPDATE BINARY."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from eidemu.conformance.moica import TEST_TRANSPORT_KEY, pin_block, protect_pin_data
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]

ISO_SETUP = [
    "00A4000C023F00",  # MF
    "00A4040C07A0000002471001",  # DF.DEMO by AID
    "00A4040007A0000002471001",  # ... with FCI and no Le: 61xx, data left pending
    "00A4020C025001",  # EF.PUBLIC
    "00A4020C025002",  # EF.PRIVATE (read needs PIN 01)
    "00A4020C025004",  # a record EF
    "00A4000C020101",  # EF.LARGE (40000 bytes)
    "00A4000C022F00",  # EF.DIR (records)
    "0020000108313233343536FFFF",  # VERIFY right
    "0020000108393939393939FFFF",  # VERIFY wrong
    "00D683000401020304",  # UPDATE BINARY EF.NOTES by SFI 03
    "1020000104313233",  # a chain begins (CLA 10)
    "0070000001",  # MANAGE CHANNEL: open 1
    "01A4040C07A0000002471001",  # select on channel 1
    "00C0000005",  # GET RESPONSE
]


def _moica_commands() -> list[str]:
    """VERIFY (right and wrong), both halves of an RSA operation, and fetching the result."""
    identity = json.loads((ROOT / "fixtures/pki/identities/g2-valid-1/identity.json").read_text("utf-8"))
    verify = [
        "8C20000120" + protect_pin_data(TEST_TRANSPORT_KEY, bytes(8), pin_block(pin)).hex()
        for pin in (identity["initial_pin"], "999999")
    ]
    block = b"\x00\x01" + b"\xff" * 202 + b"\x00" + bytes.fromhex("3031300d060960864801650304020105000420") + bytes(32)
    halves = [
        f"80EA{p1:02X}{ref:02X}80" + half.hex()
        for p1, half in ((0x82, block[:128]), (0x02, block[128:]))
        for ref in (5, 6, 9)
    ]
    fetch = ["80C1000000", "80C1000080", "80C10080FF", "80C100F020", "80C1010000", "80C1000000" + "00"]
    return verify + [verify[0]] * 3 + halves + ["80EA82058000" + block[:127].hex()] + fetch


MOICA_SETUP = [
    *_moica_commands(),
    "80A40000023F00",
    "80A40000025030",
    "80A400000208F2",
    "80A40000020900",
    "80A40000020903",
    "80A40000024100",
    "80A40000020810",  # record EF (public keys)
    "00A4000C023F00",  # CLA 00 SELECT: refused, state unchanged
]

# Classes the fast path takes (00, 80) and ones it must leave alone (channel, SM, chaining bits).
ISO_READ_CLASSES = [0x00, 0x00, 0x80, 0x01, 0x0C, 0x10, 0x40]
MOICA_READ_CLASSES = [0x80, 0x80, 0x00, 0x8C, 0x81]


def read_commands(classes: list[int]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda cla, ins, p1, p2, le: bytes((cla, ins, p1, p2, le)).hex(),
        st.sampled_from(classes),
        st.sampled_from([0xB0, 0xB0, 0xB0, 0xB1]),
        # SFIs of the profiles' EFs (transparent, protected, record), offsets, odd P1s
        st.one_of(st.sampled_from([0x81, 0x82, 0x83, 0x84, 0x9E, 0x00, 0x01, 0x7F, 0xA1, 0xC1]), st.integers(0, 0xFF)),
        st.one_of(st.sampled_from([0x00, 0x10, 0xC0, 0xC8, 0xFF]), st.integers(0, 0xFF)),
        st.one_of(st.sampled_from([0x00, 0x08, 0x20, 0xC8]), st.integers(0, 0xFF)),
    )


def select_commands(classes: list[int], fids: list[str]) -> st.SearchStrategy[str]:
    """SELECT by FID in the forms the fast path takes (P1 00, Lc 02) and near misses."""
    return st.builds(
        lambda cla, p1, p2, fid, le: f"{cla:02X}A4{p1:02X}{p2:02X}02{fid}{le}",
        st.sampled_from(classes),
        st.sampled_from([0x00, 0x00, 0x00, 0x02, 0x08]),
        st.sampled_from([0x0C, 0x0C, 0x00, 0x04, 0x0D]),
        st.one_of(st.sampled_from(fids), st.integers(0, 0xFFFF).map(lambda n: f"{n:04X}")),
        st.sampled_from(["", "", "00"]),
    )


def state(card: Card) -> list[object]:
    """Each channel's state, by value (files by path, the application by AID)."""
    return [
        (
            n,
            c.app.aid,
            c.current_df.path,
            c.current_ef.path if c.current_ef is not None else None,
            c.pending,
            c.chain_header,
            bytes(c.chain_data),
            sorted(c.security.verified_pins),
            sorted(c.app_state.items()),
        )
        for n, c in sorted(card.channels.items())
    ]


def run_both(profile_name: str, commands: list[str]) -> None:
    profile = load_profile(profile_name)
    fast, slow = profile.build(), profile.build()
    slow.fast_path = False
    slow.reset()
    fast.reset()
    assert fast._fast and not slow._fast  # the comparison compares something
    for command in commands:
        raw = bytes.fromhex(command)
        assert fast.transmit(raw) == slow.transmit(raw), command
        assert state(fast) == state(slow), command
        assert [p.remaining for p in fast.pins.values()] == [p.remaining for p in slow.pins.values()]


ISO_SELECTS = select_commands(ISO_READ_CLASSES, ["3F00", "5000", "5001", "5002", "5004", "0101", "2F00", "2F01"])
MOICA_SELECTS = select_commands(MOICA_READ_CLASSES, ["3F00", "5030", "08F2", "0900", "0903", "4100", "0810", "5032"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(ISO_SETUP), read_commands(ISO_READ_CLASSES), ISO_SELECTS), max_size=30))
@example(["00A4040C07A0000002471001", "00A4020C025005", "00B081C020", "00B0000010", "00B0810000"])
def test_iso_fast_path_answers_as_the_normal_path(commands: list[str]) -> None:
    run_both("iso-demo", commands)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(MOICA_SETUP), read_commands(MOICA_READ_CLASSES), MOICA_SELECTS), max_size=25))
@example(["80A40000025030", "80A400000208F2", "80B0150040", "80B0FFF000", "80A40000024100", "80B00000FF"])
@example([MOICA_SETUP[i] for i in (12, 0, 5, 12, 8, 12, 13, 14, 15, 16, 7, 5, 1, 5, 17)])  # sign, fetch, wrong PIN
def test_moica_fast_path_answers_as_the_normal_path(commands: list[str]) -> None:
    run_both("moica-g2-valid-1", commands)


def test_fast_path_serves_plain_reads_and_steps_aside_when_replaced() -> None:
    card = load_profile("iso-demo").build()
    card.transmit(bytes.fromhex("00A4040C07A0000002471001"))
    calls: list[bytes] = []
    app = card.channels[0].app
    original = app.read_binary_fast  # type: ignore[attr-defined]

    def counting(raw: bytes, channel: object) -> bytes | None:
        calls.append(raw)
        return original(raw, channel)

    card._fast[app] = {k: (t, h, counting) for k, (t, h, _) in card._fast[app].items()}
    assert card.transmit(bytes.fromhex("00B08100C8"))[-2:] == b"\x90\x00"
    assert len(calls) == 1  # the common read took the fast path
    app.handlers[0xB0] = lambda cmd, channel: b"replaced"
    assert card.transmit(bytes.fromhex("00B08100C8")) == b"replaced\x90\x00"
    assert len(calls) == 1  # a replaced handler is never bypassed


def test_a_failing_fast_handler_answers_6f00_and_is_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    card = load_profile("iso-demo").build()
    card.transmit(bytes.fromhex("00A4040C07A0000002471001"))
    app = card.channels[0].app

    def broken(raw: bytes, channel: object) -> bytes | None:
        raise ZeroDivisionError("fast handler bug")

    table, handler, _ = card._fast[app][0xB0]
    card._fast[app][0xB0] = (table, handler, broken)  # READ BINARY (CLA 00) only
    with caplog.at_level("ERROR", logger="eidemu.card"):
        assert card.transmit(bytes.fromhex("00B08100C8")) == b"\x6f\x00"
    assert "fast handler bug" in caplog.text and "00 B0 81 00" in caplog.text
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"  # the card goes on
