"""The script format: parsing, canonical formatting, commands, expectations, errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from eidemu.conformance.script import (
    CommandTemplate,
    ExpansionError,
    Location,
    Masks,
    Reset,
    ScriptError,
    Send,
    format_script,
    load_script,
    parse_command,
    parse_script,
)
from eidemu.emulator.iso7816.apdu import ResponseAPDU

HERE = Location("t.apdu", 1)

FULL = """\
# a comment
suite: demo
tokens: ISO7816
set AID = A0 00 00 02 47 10 01

test DEMO_SELECT_01: select by AID
  purpose: selects
  purpose: the application
  spec: ISO/IEC 7816-4:2005 §7.1.1
  tokens: SELECT-AID, !CLA-80
  pre: card reset
  destructive: yes
  category: SELECTION
send 00 A4 04 00 data ${AID} le 00
  sw 90 00 | 61 ??
  tlv 6F/84 = ${AID}
  data prefix 6F
  data regex 6F.*
  data length 10..80
  capture FCI = data[0:2]
  mask data[2:4]
send 00 84 00 00 08    # raw bytes
  sw 90 00
  data length >=8
  capture SW = sw
reset
  atr 3B ??
power-cycle
set X = ${FCI}
end
"""


def test_full_script_parses_with_every_field():
    script = parse_script(FULL, "t.apdu")
    assert script.suite == "demo"
    assert [v.name for v in script.variables] == ["AID"]
    (test,) = script.tests
    assert test.id == "DEMO_SELECT_01"
    assert test.purpose == "selects the application"
    assert test.tokens == ("ISO7816", "SELECT-AID", "!CLA-80")
    assert test.preconditions == ("card reset",)
    assert test.destructive is True
    assert test.group == "SELECTION"
    kinds = [type(s).__name__ for s in test.steps]
    assert kinds == ["Send", "Send", "Reset", "Reset", "SetVariable"]
    first = test.steps[0]
    assert isinstance(first, Send)
    assert first.command == CommandTemplate(header="00A40400", data="${AID}", le="00")
    assert first.masks == Masks(((2, 4),))
    assert len(first.expectations) == 5 and len(first.captures) == 1
    assert first.location == Location("t.apdu", 14)
    assert test.steps[2] == Reset(cold=False, atr="3B??")


def test_canonical_text_round_trips():
    script = parse_script(FULL, "t.apdu")
    text = format_script(script)
    again = parse_script(text, "again.apdu")
    assert again.tests == script.tests
    assert again.variables == script.variables
    assert format_script(again) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00 A4 04 0C data A0 00 00 02 47 10 01", "00A4040C07A0000002471001"),
        ("00 B0 00 00 le 00", "00B0000000"),
        ("00 B0 00 00 le 0000", "00B00000000000"),
        ("00 A4 00 0C", "00A4000C"),
        ("00 A4 00 0C 05 3F 00", "00A4000C053F00"),  # raw: sent as written, even if malformed
        ("00 D6 00 00 data " + "AB" * 300, "00D60000" + "00012C" + "AB" * 300),  # extended Lc
    ],
)
def test_commands_encode_with_automatic_lc(text, expected):
    assert parse_command(text, HERE).build({}).hex().upper() == expected


def test_variables_expand_at_run_time_and_unset_ones_raise():
    cmd = parse_command("00 20 00 ${REF} data ${PIN}", HERE)
    assert cmd.build({"REF": b"\x01", "PIN": b"1234"}).hex().upper() == "002000010431323334"
    with pytest.raises(ExpansionError, match=r"\$\{PIN\} is not set"):
        cmd.build({"REF": b"\x01"})


def _check(line: str, data: bytes, sw: int = 0x9000, variables=None):
    script = parse_script(f"test T_CHECK_01: t\nsend 00 00 00 00\n{line}\n", "c.apdu")
    send = script.tests[0].steps[0]
    assert isinstance(send, Send)
    return send.expectations[-1].check(ResponseAPDU(data, sw), variables or {}, send.masks)


@pytest.mark.parametrize(
    ("line", "data", "sw", "ok"),
    [
        ("sw 90 00", b"", 0x9000, True),
        ("sw 90 00", b"", 0x6A82, False),
        ("sw 63 C?", b"", 0x63C2, True),
        ("sw 63 C?", b"", 0x6300, False),
        ("sw 61 ??", b"", 0x6115, True),
        ("sw 90 00 | 62 82", b"", 0x6282, True),
        ("data 01 02 03", b"\x01\x02\x03", 0x9000, True),
        ("data 01 02 03", b"\x01\x02", 0x9000, False),
        ("data 01 ?2 ??", b"\x01\x72\xff", 0x9000, True),
        ("data prefix 01 02", b"\x01\x02\x03", 0x9000, True),
        ("data prefix 01 02", b"\x01", 0x9000, False),
        ("data regex 0102.*", b"\x01\x02\x03", 0x9000, True),
        ("data regex 02.*", b"\x01\x02\x03", 0x9000, False),
        ("data length 3", b"abc", 0x9000, True),
        ("data length 1..2", b"abc", 0x9000, False),
        ("data length >=2", b"abc", 0x9000, True),
        ("data empty", b"", 0x9000, True),
        ("data empty", b"a", 0x9000, False),
        ("tlv 6F/84 = A0 00", bytes.fromhex("6F048402A000"), 0x9000, True),
        ("tlv 6F/84 = A0 01", bytes.fromhex("6F048402A000"), 0x9000, False),
        ("tlv 6F/84 prefix A0", bytes.fromhex("6F048402A000"), 0x9000, True),
        ("tlv 6F/84 length 2", bytes.fromhex("6F048402A000"), 0x9000, True),
        ("tlv 6F/85 present", bytes.fromhex("6F048402A000"), 0x9000, False),
        ("tlv 6F/85 absent", bytes.fromhex("6F048402A000"), 0x9000, True),
        ("tlv 6F present", bytes.fromhex("6F05"), 0x9000, False),  # not valid BER-TLV
    ],
)
def test_expectations(line, data, sw, ok):
    assert (_check(line, data, sw) is None) is ok


def test_mismatch_states_expected_and_received():
    mismatch = _check("sw ${GOOD}", b"", 0x6A82, {"GOOD": b"\x90\x00"})
    assert str(mismatch) == "status word: expected 90 00 (${GOOD}), received 6A 82 (FILE_NOT_FOUND)"
    mismatch = _check("data length ${SIZE}", b"abc", 0x9000, {"SIZE": b"\x00\xc8"})
    assert str(mismatch) == "data length: expected 200 (${SIZE}), received 3 bytes"


def test_masked_bytes_always_match():
    text = "test T_MASK_01: t\nsend 00 84 00 00 04\n  mask data[1:3]\n  data 01 02 03 04\n"
    send = parse_script(text).tests[0].steps[0]
    assert isinstance(send, Send)
    assert send.expectations[0].check(ResponseAPDU(b"\x01\xaa\xbb\x04", 0x9000), {}, send.masks) is None
    assert send.expectations[0].check(ResponseAPDU(b"\x09\xaa\xbb\x04", 0x9000), {}, send.masks) is not None


def test_capture_takes_slices_status_words_and_tlv_values():
    text = (
        "test T_CAP_01: t\nsend 00 00 00 00\n  capture A = data[1:3]\n  capture B = sw[1:2]\n  capture C = tlv 6F/84\n"
    )
    send = parse_script(text).tests[0].steps[0]
    assert isinstance(send, Send)
    response = ResponseAPDU(bytes.fromhex("6F048402A000"), 0x6115)
    assert [c.take(response) for c in send.captures] == [bytes.fromhex("0484"), b"\x15", bytes.fromhex("A000")]


ERRORS = [
    ("test bad: t\nsend 00 A4 00 00\n", 1, "test ID 'bad' must look like ISO_SELECT_01"),
    ("test T_X_01 no colon\n", 1, "write 'test ID: title'"),
    ("test T_X_01: t\nsend 00 A4 0G 00\n", 2, "APDU: unexpected character 'G'"),
    ("test T_X_01: t\nsend 00 A4 0 00\n", 2, "odd number of hex digits"),
    ("test T_X_01: t\nsend 00 A4 00 data 3F00\n", 2, "APDU header must be 4 bytes"),
    ("test T_X_01: t\nsend 00 B0 00 00 le 000000\n", 2, "le is one byte"),
    ("test T_X_01: t\n\n\nsend 00 A4 00 00\n  sw 9000 00\n", 5, "status word '9000 00' must be 2 bytes"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  data length 5..2\n", 3, "length '5..2'"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  data regex (\n", 3, "bad regular expression"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  tlv 6G/84 present\n", 3, "TLV path element '6G'"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  frobnicate\n", 3, "unknown keyword; (steps: send"),
    ("test T_X_01: t\n  sw 90 00\n", 2, "sw follows a send step"),
    ("send 00 A4 00 00\n", 1, "'send' outside a test"),
    ("purpose: x\n", 1, "purpose: outside a test"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  spec: late\n", 3, "spec: belongs before the test's first step"),
    ("test T_X_01: t\n  destructive: maybe\n", 2, "destructive: yes or no"),
    ("test T_X_01: t\n  tokens: A B\n", 2, "token 'A B'"),
    ("test T_X_01: t\n  purpose: nothing to send\nend\n", 1, "test T_X_01 has no send step"),
    ("test T_X_01: t\nsend 00 A4 00 00\ntest T_X_01: t\nsend 00 A4 00 00\n", 3, "duplicate test ID T_X_01"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  capture 1x = data\n", 3, "write 'capture NAME = data'"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  mask sw\n", 3, "write 'mask data'"),
    ("test T_X_01: t\nreset now\n", 2, "reset takes no arguments"),
    ("test T_X_01: t\nsend 00 A4 00 00\n  atr 3B\n", 3, "atr follows a reset"),
    ("end\n", 1, "'end' outside a test"),
]


@pytest.mark.parametrize(("text", "line", "message"), ERRORS)
def test_errors_name_file_and_line(text, line, message):
    with pytest.raises(ScriptError) as info:
        parse_script(text, "bad.apdu")
    assert info.value.location == Location("bad.apdu", line)
    assert str(info.value).startswith(f"bad.apdu:{line}: ")
    assert message in str(info.value)


def test_includes_nest_and_report_errors_in_the_included_file(tmp_path: Path):
    (tmp_path / "_steps.apdu").write_text("# fragment\nsend 00 A4 00 0C data 3F 00\n  sw 90 00\n")
    (tmp_path / "other.apdu").write_text("test T_OTHER_01: other\nsend 00 A4 00 0C\n  sw 90 00\n")
    (tmp_path / "main.apdu").write_text(
        "include other.apdu\ntest T_MAIN_01: main\ninclude _steps.apdu\nsend 00 B0 00 00 le 01\n  sw 90 00\n"
    )
    script = load_script(tmp_path / "main.apdu")
    assert [t.id for t in script.tests] == ["T_OTHER_01", "T_MAIN_01"]
    steps = script.tests[1].steps
    assert [s.location.line for s in steps] == [2, 4]
    assert steps[0].location.path.endswith("_steps.apdu")

    (tmp_path / "_bad.apdu").write_text("send 00 A4 00 0C\n  sw 90 0X\n")
    (tmp_path / "uses_bad.apdu").write_text("test T_BAD_01: t\ninclude _bad.apdu\n")
    with pytest.raises(ScriptError, match=r"_bad\.apdu:2: sw: unexpected character 'X'"):
        load_script(tmp_path / "uses_bad.apdu")


def test_include_cycles_and_missing_files_are_errors(tmp_path: Path):
    (tmp_path / "a.apdu").write_text("include b.apdu\n")
    (tmp_path / "b.apdu").write_text("include a.apdu\n")
    with pytest.raises(ScriptError, match=r"b\.apdu:1: include cycle through .*a\.apdu"):
        load_script(tmp_path / "a.apdu")
    (tmp_path / "c.apdu").write_text("\ninclude nowhere.apdu\n")
    with pytest.raises(ScriptError, match=r"c\.apdu:2: cannot read .*nowhere\.apdu"):
        load_script(tmp_path / "c.apdu")


def test_send_without_status_word_expectation_is_a_warning():
    script = parse_script("test T_W_01: t\nsend 00 A4 00 0C\n", "w.apdu")
    assert script.warnings == ("w.apdu:2: send without an 'sw' expectation accepts any status word",)


def test_comment_sign_inside_a_regex_is_kept():
    script = parse_script("test T_R_01: t\nsend 00 A4 00 0C\n  data regex [#]?.*  # trailing comment\n")
    send = script.tests[0].steps[0]
    assert isinstance(send, Send)
    assert str(send.expectations[0]) == "data regex [#]?.*"
