"""Fault plans: parsing (YAML, one-line rules), round trips and one-line errors naming the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from eidemu.emulator.faults import FaultKind, FaultPlan, FaultRule, HeaderPattern, PlanError, TearPoint, load_plan

PLAN = """\
eidemu_faults: 1
seed: 7
timing: real
timing_scale: 0.1
rules:
  - fault: remove
    command: 80EA02
    reinsert_after: 2.0
  - fault: status
    sw: 6581
    apdu: 3
  - fault: tear
    command: xx20
    point: before
    commit: 2
  - fault: corrupt
    command: 00B0
    target: mac
    offset: -1
    xor: "01"
  - fault: delay
    command: 80C1
    seconds: 0.25
    after: 2
    after_command: 80EA02
    times: 0
  - fault: mute
    probability: 0.5
    timeout: 1.5
"""


def test_yaml_plan_parses_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    plan = load_plan(path)
    assert plan.seed == 7 and plan.timing == "real" and plan.timing_scale == 0.1
    kinds = [r.fault for r in plan.rules]
    assert kinds == [
        FaultKind.REMOVE,
        FaultKind.STATUS,
        FaultKind.TEAR,
        FaultKind.CORRUPT,
        FaultKind.DELAY,
        FaultKind.MUTE,
    ]
    remove, status, tear, corrupt, delay, mute = plan.rules
    assert remove.command == HeaderPattern((0x80, 0xEA, 0x02)) and remove.reinsert_after == 2.0
    assert status.sw == 0x6581 and status.apdu == 3
    assert tear.command == HeaderPattern((None, 0x20)) and tear.point is TearPoint.BEFORE and tear.commit == 2
    assert (corrupt.target, corrupt.offset, corrupt.xor) == ("mac", -1, 0x01)
    assert (delay.seconds, delay.after, delay.times) == (0.25, 2, 0)
    assert delay.after_command == HeaderPattern((0x80, 0xEA, 0x02))
    assert (mute.probability, mute.timeout) == (0.5, 1.5)
    again = FaultPlan.parse(plan.encode(), "again")
    assert again == plan


def test_one_line_rule_is_the_same_rule() -> None:
    line = FaultRule.parse_line("fault=remove command=80EA02 reinsert_after=2")
    assert line == FaultRule(FaultKind.REMOVE, command=HeaderPattern((0x80, 0xEA, 0x02)), reinsert_after=2.0)
    assert line.line() == "fault=remove command=80EA02 reinsert_after=2.0"
    assert FaultRule.parse_line(line.line()) == line


def test_header_pattern_matches_with_wildcards() -> None:
    pattern = HeaderPattern.parse("xx 20 00")
    assert pattern.matches(bytes.fromhex("8C200001"))
    assert pattern.matches(bytes.fromhex("00200001"))
    assert not pattern.matches(bytes.fromhex("00240001"))
    assert not pattern.matches(bytes.fromhex("0020"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: []", "p.yaml: eidemu_faults: must be 1 (the plan format version)"),
        ("eidemu_faults: 1\nrules: [{fault: explode, apdu: 1}]", "p.yaml: rules[0].fault: unknown fault 'explode'"),
        ("eidemu_faults: 1\nrules: [{fault: status, sw: 65}]", "p.yaml: rules[0].sw: must be 4 hex digits"),
        ("eidemu_faults: 1\nrules: [{fault: status, sw: 6581}]", "p.yaml: rules[0]: give a trigger"),
        ("eidemu_faults: 1\nrules: [{fault: status, apdu: 0}]", "p.yaml: rules[0].apdu: APDUs are numbered from 1"),
        ("eidemu_faults: 1\nrules: [{fault: remove, apdu: 1, sw: 6581}]", "p.yaml: rules[0].sw: not a setting"),
        ("eidemu_faults: 1\nrules: [{fault: mute, command: 8G}]", "p.yaml: rules[0].command: command pattern"),
        ("eidemu_faults: 1\nrules: [{fault: delay, probability: 2}]", "p.yaml: rules[0].probability: must be"),
        ("eidemu_faults: 1\nrules: [{fault: tear, apdu: 1, point: middle}]", "p.yaml: rules[0].point: must be"),
        ("eidemu_faults: 1\nrules: [{fault: delay, after: 2}]", "p.yaml: rules[0].after: needs 'after_command'"),
        ("eidemu_faults: 1\nrulez: []", "p.yaml: unknown key 'rulez'"),
        ("eidemu_faults: 1\ntiming: fast", "p.yaml: timing: must be 'off' or 'real'"),
        ("eidemu_faults: [1", "p.yaml: line 1, column 18: syntax error: expected ',' or ']'"),
    ],
)
def test_bad_plans_get_one_line_naming_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    shown = str(info.value).replace(str(tmp_path) + "/", "")
    assert shown.startswith(message), shown
    assert "\n" not in shown


def test_bad_one_line_rule() -> None:
    with pytest.raises(PlanError, match=r"^--fault 1: 'remove' is not key=value$"):
        FaultPlan.from_lines(["remove"])
    with pytest.raises(PlanError, match=r"^--fault 1: unknown key 'when'"):
        FaultPlan.from_lines(["fault=remove when=now"])
