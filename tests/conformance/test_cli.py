"""``eidemu conformance lint|import|list|run`` and ``eidemu replay``: exit codes and outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from eidemu.cli import main

from .conftest import BROKEN


def test_run_catalogue_quiet_passes(capsys):
    assert main(["conformance", "run", "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("emulator:iso-demo: ")
    assert out[0].endswith(" passed, 214 not applicable")  # the MOICA eMRTD and eID-zone tests, scripts and Python


def test_run_writes_junit_report_and_traces(tmp_path: Path, capsys):
    junit, report, traces = tmp_path / "r.xml", tmp_path / "r.html", tmp_path / "traces"
    args = ["conformance", "run", "--select", "ISO_PIN_*", "--junit", str(junit), "--report", str(report)]
    assert main([*args, "--trace", str(traces)]) == 0
    out = capsys.readouterr().out
    assert "PASSED         ISO_PIN_01" in out  # one line per test when stdout is not a terminal
    assert ET.parse(junit).getroot().get("tests") == "6"
    assert "ISO_PIN_04" in report.read_text()
    assert sorted(p.name for p in traces.iterdir()) == [f"ISO_PIN_0{i}.jsonl" for i in range(1, 7)]


def test_run_against_a_broken_card_exits_1_and_names_the_failure(capsys):
    from .broken import doubles  # noqa: F401

    card = f"emulator:{BROKEN / 'broken-wrong-sw.yaml'}"
    assert main(["conformance", "run", "-q", "--card", card, "--card-config", "iso-demo"]) == 1
    out = capsys.readouterr().out
    assert "FAILED ISO_INS_01 (" in out and "status word: expected 6D 00, received 6E 00" in out
    assert out.strip().splitlines()[-1].endswith("2 failed, 214 not applicable")


def test_run_options_tokens_and_vars(tmp_path: Path, capsys):
    config = tmp_path / "card.yaml"
    config.write_text("tokens: [ISO7816, CLA-00]\nvariables: {}\n")
    args = ["conformance", "run", "-q", "--card-config", str(config), "--select", "ISO_PIN_01,ISO_INS_01"]
    assert main(args) == 0
    assert "1 passed, 1 not applicable" in capsys.readouterr().out
    args += ["--tokens", "PIN", "--var", "PIN_REF=01", "--var", "PIN_TRIES_SW=63C3"]
    assert main(args) == 0
    assert "2 passed" in capsys.readouterr().out


def test_lint_reports_file_and_line(tmp_path: Path, capsys):
    good = tmp_path / "good.apdu"
    good.write_text("test T_GOOD_01: fine\nsend 00 A4 00 0C\n  sw 90 00\n")
    bad = tmp_path / "bad.apdu"
    bad.write_text("test T_BAD_01: broken\n\nsend 00 A4 00 0C\n  sw 9Z 00\n")
    assert main(["conformance", "lint", str(good)]) == 0
    assert capsys.readouterr().out == "1 test case(s) OK\n"
    assert main(["conformance", "lint", str(good), str(bad)]) == 2
    assert capsys.readouterr().err == f"{bad}:4: sw: unexpected character 'Z'\n"
    warn = tmp_path / "warn.apdu"
    warn.write_text("test T_WARN_01: no sw\nsend 00 A4 00 0C\n")
    assert main(["conformance", "lint", str(warn)]) == 0
    assert main(["conformance", "lint", "--strict", str(warn)]) == 2


def test_lint_the_shipped_catalogue(capsys):
    from eidemu.conformance.runner import CATALOGUE_DIR

    assert main(["conformance", "lint", str(CATALOGUE_DIR)]) == 0


def test_bad_usage_exits_2(capsys, tmp_path: Path):
    assert main(["conformance", "run", "--select", "NOPE_*"]) == 2
    assert "no test case matches the selection" in capsys.readouterr().err
    assert main(["conformance", "run", "--card", "emulator:no-such-profile"]) == 2
    assert main(["conformance", "run", "--var", "X"]) == 2


def test_import_writes_a_runnable_script(tmp_path: Path, capsys):
    source = tmp_path / "apdus.txt"
    source.write_text("00A4040C07A0000002471001 -> 9000\n00B0810005 -> 48656C6C6F9000\n")
    out = tmp_path / "apdus.apdu"
    assert main(["conformance", "import", "--from", "hex", str(source), "-o", str(out), "--id", "MY_READ_01"]) == 0
    assert main(["conformance", "run", "-q", "--no-catalogue", "--scripts", str(out)]) == 0
    assert "1 tests: 1 passed" in capsys.readouterr().out


def test_record_with_apdu_trace_then_replay(tmp_path: Path, capsys):
    trace = tmp_path / "rec.jsonl"
    apdus = ["00A4040C07A0000002471001", "0020000108313233343536FFFF", "00A4020C025002", "00B0000006", "0084000008"]
    assert main(["apdu", "--profile", "iso-demo", "--trace", str(trace), *apdus]) == 0
    capsys.readouterr()
    assert main(["replay", str(trace), "--var", "PIN_01=313233343536FFFF"]) == 0
    assert "5 exchanges replayed against emulator:iso-demo: identical" in capsys.readouterr().out

    assert main(["replay", str(trace)]) == 2  # the PIN was redacted and not given: nothing sent
    assert (
        "0 exchanges replayed against emulator:iso-demo: stopped: needs ${PIN_01}: not set" in capsys.readouterr().out
    )

    from .broken import doubles  # noqa: F401

    card = f"emulator:{BROKEN / 'broken-truncated.yaml'}"
    assert main(["replay", str(trace), "--card", card, "--var", "PIN_01=313233343536FFFF"]) == 1
    out = capsys.readouterr().out
    assert "[4] > 00 B0 00 00 06  READ_BINARY" in out
    assert "data: expected 73 65 63 72 65 74, received 73 65 63 72 65" in out
    assert out.strip().endswith("5 exchanges replayed against emulator:broken-truncated: 1 differ")


def test_replay_masks_declared_per_step(tmp_path: Path, capsys):
    lines = [
        {"direction": "command", "hex": "00CA5F5200"},
        {"direction": "response", "hex": "0000444445559000"},
    ]
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["replay", str(trace)]) == 1
    capsys.readouterr()
    assert main(["replay", str(trace), "--mask", "1:data[0:6]"]) == 0
    assert main(["replay", str(trace), "--mask", "2:data"]) == 2
    assert "STEP 1..1" in capsys.readouterr().err
