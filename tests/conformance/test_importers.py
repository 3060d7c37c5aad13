"""Importers: scriptor scripts and session logs, hex traces, JSON-lines traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eidemu.conformance.importers import import_file
from eidemu.conformance.runner import CardUnderTest, Outcome, run_test
from eidemu.conformance.script import Script, ScriptError, Send, format_script, parse_script

SCRIPTOR_INPUT = """\
#!/usr/bin/env scriptor
# select the demo application
reset
00 A4 04 0C 07 A0 00 00 02 47 10 01
00 B0 81 00 05
exit
00 00 00 00
"""

SCRIPTOR_SESSION = """\
Using T=1 protocol
> 00 A4 04 0C 07 A0 00 00 02 47 10 01
< 90 00 : Normal processing.
> 00 B0 81 00 05
< 48 65 6C 6C 6F 90 00 : Normal processing.
> 00 84 00 00 08
< 01 02 03 04 05 06 07 08 90 00 : Normal processing.
"""

HEX_TRACE = """\
// one APDU per line, response after ->
00A4040C07A0000002471001 -> 9000
00 A4 02 0C 02 50 02 => 90 00
00B0000001 | 6982
00A4000C023F00
"""


def _roundtrip(test) -> Script:
    script = Script("x", tests=(test,))
    return parse_script(format_script(script), "x.apdu")


def test_scriptor_input_becomes_sends_that_expect_success(tmp_path: Path):
    path = tmp_path / "select.scr"
    path.write_text(SCRIPTOR_INPUT)
    test = import_file(path, "scriptor")
    assert test.id == "IMPORTED_SELECT_01"
    text = format_script(Script("x", tests=(test,)))
    expected = (
        "reset\n# no response recorded: success assumed\nsend 00 A4 04 0C 07 A0 00 00 02 47 10 01\n  sw 90 00 | 61 ??"
    )
    assert expected in text
    assert "00 00 00 00" not in text  # after exit
    assert _roundtrip(test).tests[0].steps == test.steps
    result = run_test(CardUnderTest("emulator:iso-demo"), Script("x"), test)
    assert result.outcome == Outcome.PASSED


def test_scriptor_session_log_keeps_responses_and_masks_challenges(tmp_path: Path):
    path = tmp_path / "session.txt"
    path.write_text(SCRIPTOR_SESSION)
    test = import_file(path, "scriptor", test_id="MY_SESSION_01")
    sends = [s for s in test.steps if isinstance(s, Send)]
    assert [str(e) for e in sends[1].expectations] == ["sw 90 00", "data 48 65 6C 6C 6F"]
    assert [str(e) for e in sends[2].expectations] == ["sw 90 00", "data length 8"]
    assert sends[2].masks.ranges == ((None, None),)
    result = run_test(CardUnderTest("emulator:iso-demo"), Script("x"), test)
    assert result.outcome == Outcome.PASSED


def test_hex_trace_with_and_without_responses(tmp_path: Path):
    path = tmp_path / "trace.hex"
    path.write_text(HEX_TRACE)
    test = import_file(path, "hex")
    sends = [s for s in test.steps if isinstance(s, Send)]
    assert [str(s.expectations[0]) for s in sends] == ["sw 90 00", "sw 90 00", "sw 69 82", "sw 90 00 | 61 ??"]
    assert sends[3].comment == "no response recorded: success assumed"
    assert run_test(CardUnderTest("emulator:iso-demo"), Script("x"), test).outcome == Outcome.PASSED


def test_trace_import_turns_redacted_pins_into_variables(tmp_path: Path):
    lines = [
        {"direction": "command", "hex": "00A4040C07A0000002471001"},
        {"direction": "response", "hex": "9000"},
        {"event": "reset"},
        {"direction": "command", "hex": "0020000108" + "**" * 8},
        {"direction": "response", "hex": "63C2"},
        {"direction": "command", "hex": "00CA5F5200"},
        {"direction": "response", "hex": "45494445 4D559000".replace(" ", ""), "mask": ["data[0:2]"]},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    test = import_file(path, "trace")
    text = format_script(Script("x", tests=(test,)))
    assert "send 00 20 00 01 data ${WRONG_PIN_01}\n  sw 63 C2\n  data empty" in text  # refused: another secret
    assert "reset" in text
    assert "mask data[0:2]" in text
    assert _roundtrip(test).tests[0].steps == test.steps


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("hex", "00A4040C07A0\n", "t.in:1: not a command APDU"),
        ("hex", "00A4000C -> 9\n", "t.in:1: response: not a hex string (odd number of digits)"),
        ("scriptor", "< 90 00\n", "t.in:1: a response without a command before it"),
        ("trace", '{"direction": "sideways", "hex": "00"}\n', "t.in:1: direction: expected command or response"),
        ("trace", "not json\n", "t.in:1: not JSON"),
        ("hex", "# nothing\n", "t.in:0: no command APDUs found"),
    ],
)
def test_import_errors_name_the_line(tmp_path: Path, fmt, content, message):
    path = tmp_path / "t.in"
    path.write_text(content)
    with pytest.raises(ScriptError) as info:
        import_file(path, fmt)
    assert str(info.value).startswith(str(tmp_path))
    assert message in str(info.value)
