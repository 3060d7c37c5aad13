"""What ``conformance lint`` (and ``run``, which parses the same way) catches beyond syntax:
variables defined through themselves, expectations and masks no response can meet; and
that every broken file is reported with file:line, not only the first."""

from __future__ import annotations

from pathlib import Path

import pytest

from eidemu.cli import main
from eidemu.conformance.runner import CardUnderTest, Outcome, run_test
from eidemu.conformance.script import Location, ScriptError, parse_script

T = "test T_L_01: t\n"

MISTAKES = [
    # variables defined through themselves, directly or in a cycle (file level)
    ("set A = ${A}\n" + T + "send 00 A4 00 00\n  sw 90 00\n", 1, "variable A is defined through itself"),
    ("set A = 01 ${A}\n" + T + "send 00 A4 00 00\n  sw 90 00\n", 1, "variable A is defined through itself"),
    (
        "set A = ${B}\nset B = ${C}\nset C = ${A}\n" + T + "send 00 A4 00 00\n  sw 90 00\n",
        1,
        "variables defined through each other: A -> B -> C -> A",
    ),
    (
        "set A = 01\nset B = ${C}\nset C = ${A} 02\n" + T + "send 00 A4 00 00\n  sw 90 00\n",
        2,
        "set B uses ${C}, which is set later (line 3)",
    ),
    # status words no card can answer (ISO/IEC 7816-4 §5.1.3: SW1 is 6X or 9X, not 60)
    (T + "send 00 A4 00 00\n  sw 00 00\n", 3, "status word 00 00 cannot occur"),
    (T + "send 00 A4 00 00\n  sw 90 00 | 60 ??\n", 3, "status word 60 ?? cannot occur"),
    (T + "send 00 A4 00 00\n  sw A? ??\n", 3, "status word A? ?? cannot occur"),
    # masks that cover no byte
    (T + "send 00 B0 00 00 08\n  sw 90 00\n  mask data[4:2]\n", 2, "mask data[4:2] covers no byte"),
    (T + "send 00 B0 00 00 08\n  sw 90 00\n  mask data[-1:-3]\n", 2, "mask data[-1:-3] covers no byte"),
    (T + "send 00 B0 00 00 08\n  sw 90 00\n  mask data[:0]\n", 2, "mask data[:0] covers no byte"),
    (
        T + "send 00 B0 00 00 08\n  sw 90 00\n  data length 8\n  mask data[8:16]\n",
        2,
        "mask data[8:16] covers none of the 8 data bytes the expectations allow",
    ),
    (
        T + "send 00 B0 00 00 04\n  sw 90 00\n  data 01 02 ?? ??\n  mask data[4:]\n",
        2,
        "mask data[4:] covers none of the 4 data bytes",
    ),
    (T + "send 00 B0 00 00 04\n  sw 90 00\n  data empty\n  mask data\n", 2, "mask data covers none of the 0"),
    # data expectations that contradict each other
    (
        T + "send 00 B0 00 00 04\n  sw 90 00\n  data 01 02 03\n  data length 4\n",
        4,
        "contradict each other: at least 4 bytes and at most 3",
    ),
    (
        T + "send 00 B0 00 00 04\n  sw 90 00\n  data length 2\n  data prefix 01 02 03\n",
        4,
        "contradict each other: at least 3 bytes and at most 2",
    ),
    (
        T + "send 00 A4 04 00 00\n  sw 90 00\n  tlv 6F/84 length 7\n  tlv 6F/84 = A0 00 00\n",
        5,
        "TLV 6F/84 cannot be 3 bytes long here and 7 bytes at line 4",
    ),
    (T + "send 00 A4 04 00 00\n  sw 90 00\n  tlv 6F present\n  tlv 6F absent\n", 5, "cannot be present and absent"),
]


@pytest.mark.parametrize(("text", "line", "message"), MISTAKES)
def test_lint_catches_what_can_never_work(text: str, line: int, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(text, "m.apdu")
    assert info.value.location == Location("m.apdu", line)
    assert message in str(info.value)


FINE = [
    "set A = 01\nset B = ${A} 02\n",  # uses one set above it
    "set B = ${CARD_VALUE} 02\n",  # a card variable
    "set A = 01\nset A = ${A} 02\n",  # the first definition counts; the second is never used
]


@pytest.mark.parametrize("variables", FINE)
def test_variables_that_can_work_pass(variables: str) -> None:
    script = parse_script(variables + T + "send 00 A4 00 00\n  sw 90 00 | 6? ?? | 9F ??\n", "ok.apdu")
    assert script.warnings == ()


def test_masks_and_lengths_that_can_work_pass() -> None:
    text = (
        T + "send 00 B0 00 00 08\n  sw 90 00\n  data length 8\n  mask data[4:8]\n  mask data[-2:]\n"
        "send 00 B0 00 00 08\n  sw 90 00\n  data length >=2\n  mask data[100:]\n"  # a long response may have it
        "send 00 B0 00 00 08\n  sw 90 00\n  data 01 02 ${X}\n  mask data[4:]\n"  # a variable: length unknown
        "send 00 A4 04 00 00\n  sw 90 00\n  tlv 6F/84 length 2\n  tlv 6F/84 = A0 00\n"
    )
    assert parse_script(text, "ok.apdu").warnings == ()


def test_self_reference_inside_a_test_is_a_warning_unless_a_value_came_before() -> None:
    script = parse_script(T + "set PIN = ${PIN} FF\nsend 00 20 00 01 data ${PIN}\n  sw 90 00\n", "w.apdu")
    assert script.warnings == (
        "w.apdu:2: set PIN uses ${PIN} before this test or file gives it a value (only the card declaration can)",
    )
    before = T + "send 00 B0 00 00 02\n  sw 90 00\n  capture PIN = data\nset PIN = ${PIN} FF\n"
    assert parse_script(before + "send 00 20 00 01 data ${PIN}\n  sw 90 00\n", "ok.apdu").warnings == ()
    at_file_level = "set PIN = 31 32\n" + T + "set PIN = ${PIN} FF\nsend 00 20 00 01 data ${PIN}\n  sw 90 00\n"
    assert parse_script(at_file_level, "ok.apdu").warnings == ()


def test_file_variables_built_from_others_expand_at_run_time() -> None:
    card = CardUnderTest("emulator:iso-demo")
    script = parse_script(
        "set PART = A0 00 00 02 47\nset MY_AID = ${PART} 10 01\n" + T + "send 00 A4 04 0C data ${MY_AID}\n  sw 90 00\n",
        "v.apdu",
    )
    assert run_test(card, script, script.tests[0]).outcome == Outcome.PASSED
    text = "set MY_AID = ${NOT_SET} 01\n" + T + "send 00 A4 04 0C data ${MY_AID}\n  sw 90 00\n"
    missing = parse_script(text, "u.apdu")
    result = run_test(card, missing, missing.tests[0])
    assert (result.outcome, result.message) == (
        Outcome.NOT_RUN,
        "needs ${NOT_SET}: not set by the card's declaration (set with --var NAME=HEX or in the card file)",
    )


def _write_broken_files(tmp_path: Path) -> list[Path]:
    (tmp_path / "a_good.apdu").write_text(T + "send 00 A4 00 0C\n  sw 90 00\n")
    (tmp_path / "b_bad.apdu").write_text("set A = ${A}\n" + T.replace("01", "02") + "send 00 A4 00 0C\n  sw 90 00\n")
    (tmp_path / "c_bad.apdu").write_text(T.replace("01", "03") + "send 00 A4 00 0C\n  sw 60 00\n")
    return [tmp_path / name for name in ("b_bad.apdu", "c_bad.apdu")]


def test_lint_and_run_report_every_broken_file_with_file_and_line(tmp_path: Path, capsys) -> None:
    bad_b, bad_c = _write_broken_files(tmp_path)
    expected = [
        f"{bad_b}:1: variable A is defined through itself",
        f"{bad_c}:3: status word 60 00 cannot occur: SW1 is 6X or 9X, never 60 (ISO/IEC 7816-4:2005 §5.1.3)",
    ]
    assert main(["conformance", "lint", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == expected
    assert main(["conformance", "run", "--no-catalogue", "--scripts", str(tmp_path), "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"eidemu: error: {line}" for line in expected]
    assert captured.out == ""
