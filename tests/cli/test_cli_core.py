"""The eidemu command line: exit codes 0/1/2 and one-line errors, no tracebacks."""

import json
import subprocess
import sys

import pytest

from eidemu.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_apdu_prints_decoded_exchange(capsys):
    code, out, err = run(capsys, "apdu", "--profile", "iso-demo", "00A4040C07A0000002471001", "00B0810005")
    assert code == 0, err
    assert "> 00 A4 04 0C 07 A0 00 00 02 47 10 01    SELECT" in out
    assert '< 48 65 6C 6C 6F 90 00    NO_ERROR  "Hello"' in out


def test_apdu_exit_1_when_the_card_answers_an_error(capsys):
    code, out, _ = run(capsys, "apdu", "--profile", "iso-demo", "00A4000C021234")
    assert code == 1 and "6A 82    FILE_NOT_FOUND" in out
    code, _, _ = run(capsys, "apdu", "--profile", "iso-demo", "--allow-errors", "00A4000C021234")
    assert code == 0


def test_apdu_masks_pins_and_traces_them_masked(capsys, tmp_path):
    trace = tmp_path / "t.jsonl"
    code, out, _ = run(capsys, "apdu", "--profile", "iso-demo", "--trace", str(trace), "0020000108313233343536FFFF")
    assert code == 0
    assert "313233" not in out.replace(" ", "") and "** ** **" in out
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    assert lines[0]["hex"] == "0020000108" + "**" * 8 and lines[1]["sw"] == "9000"


def test_apdu_state_file_keeps_counter(capsys, tmp_path):
    state = str(tmp_path / "s.json")
    run(capsys, "apdu", "--profile", "iso-demo", "--state", state, "--allow-errors", "0020000108" + "39" * 8)
    _, out, _ = run(capsys, "apdu", "--profile", "iso-demo", "--state", state, "--allow-errors", "00200001")
    assert "63 C2" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apdu", "--profile", "iso-demo", "00A4ZZ"], "APDU 1: not a hex string (unexpected character at digit 5)"),
        (
            ["apdu", "--profile", "iso-demo", "00A4000C03AABB"],
            "APDU 1 (00 A4 00 0C 03 AA BB): Lc=3 does not match",
        ),
        (
            ["apdu", "--profile", "iso-demo", "00A40000", "0020000108313233343536FF"],
            "APDU 2 (00 20 00 01 ** ** ** ** ** ** ** **): Lc=8 does not match",
        ),
        (["apdu", "--profile", "nope", "00A40000"], "nope: no such profile file"),
        (["apdu", "--card", "floppy:a", "00A40000"], "unknown card URI scheme 'floppy'"),
        (["profile", "check", "missing.yaml"], "missing.yaml: no such profile file"),
        (["apdu"], "the following arguments are required"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_profile_check_and_show(capsys):
    code, out, _ = run(capsys, "profile", "check", "iso-demo")
    assert code == 0 and out.strip().endswith("ok (iso-demo)")
    code, out, _ = run(capsys, "profile", "show", "iso-demo")
    assert code == 0
    assert "ATR      3B 88 80 01 45 49 44 45 4D 55 30 31 3A" in out
    assert "5002 EF.PRIVATE: EF transparent, 26 bytes  SFI 02  [read pin:01, update pin:01]" in out
    assert "123456" not in out


def test_bad_profile_is_one_line_from_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("eidemu_profile: 1\natr: 3B00\nfiles:\n  - fid: XYZ\n")
    proc = subprocess.run(
        [sys.executable, "-m", "eidemu.cli", "profile", "check", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == f"eidemu: error: {bad}: files[0].fid: not a hex string (unexpected character at digit 1)"
    )


def test_demo_in_process_signs_and_validates(capsys):
    code, out, _ = run(capsys, "demo", "--in-process")
    assert code == 0
    assert "[1] the card runs in this process (no virtual reader)" in out
    assert "card number TP46375051237517, version CHT V32N" in out
    assert "> 8C 20 00 01 20 " + "** " * 19 + "... (37 bytes)    VERIFY" in out
    assert "signature valid (RSASSA-PKCS1-v1_5, SHA-256)" in out
    assert "valid, not revoked (OCSP): TEST Government Root Certification Authority -> TEST MOICA G2 ->" in out
    assert out.rstrip().endswith("APDUs exchanged with emulator:moica-g2-valid-1")


def test_demo_refuses_a_profile_that_is_no_citizen_card(capsys):
    code, _, err = run(capsys, "demo", "--in-process", "--profile", "iso-demo")
    assert code == 2 and "the demo needs a citizen certificate card profile" in err


def test_serve_refuses_one_state_file_for_two_cards(capsys, tmp_path):
    state = tmp_path / "s.json"
    code = main(["serve", "--profile", "iso-demo", "--profile", "iso-demo", "--state", str(state),
                 "--state", f"{tmp_path}/../{tmp_path.name}/s.json"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"eidemu: error: {tmp_path}/../{tmp_path.name}/s.json: the same state file for two cards "
        "(one state file serves one card)\n"
    )
    assert not state.exists()
