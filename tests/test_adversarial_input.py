"""Bounded input everywhere (issue 10): device files, FIFOs, directories, oversized and
deeply nested documents, duplicate keys, names that try to smuggle URI options, and the
mistakes ``profile check`` reports.

Device and FIFO cases run ``eidemu`` as a real process under a timeout: a regression that
reads ``/dev/zero`` until memory runs out, or blocks opening a FIFO, fails the test in
seconds instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eidemu.cli import main
from eidemu.emulator.formats.files import (
    MAX_NESTING,
    PROFILE_LIMIT,
    InputFileError,
    nesting_problem,
    read_bounded,
)
from eidemu.emulator.profile import PROFILE_DIR

TIMEOUT = 30


def eidemu(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eidemu.cli", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=cwd,
    )


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_exit_2(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err


# -- device files, FIFOs, directories ------------------------------------------------------------


@pytest.fixture(scope="module")
def specials(tmp_path_factory):
    base = tmp_path_factory.mktemp("specials")
    fifo = base / "fifo"
    os.mkfifo(fifo)
    return {
        "/dev/zero": ("/dev/zero", "a character device"),
        "/dev/urandom": ("/dev/urandom", "a character device"),
        "fifo": (str(fifo), "a FIFO"),
        "directory": (str(base), "a directory"),
    }


COMMANDS = {
    "profile check": lambda f: ["profile", "check", f],
    "profile show": lambda f: ["profile", "show", f],
    "apdu --profile": lambda f: ["apdu", "--profile", f, "00A40000"],
    "apdu --state": lambda f: ["apdu", "--profile", "iso-demo", "--state", f, "00A40000"],
    "apdu --card emulator:": lambda f: ["apdu", "--card", f"emulator:{f}", "00A40000"],
    "lint": lambda f: ["conformance", "lint", f],
    "run --scripts": lambda f: ["conformance", "run", "--no-catalogue", "--scripts", f],
    "run --card-config": lambda f: ["conformance", "run", "--card-config", f],
    "import trace": lambda f: ["conformance", "import", "--from", "trace", f],
    "import scriptor": lambda f: ["conformance", "import", "--from", "scriptor", f],
    "replay": lambda f: ["replay", f],
}


@pytest.mark.parametrize("kind", ["/dev/zero", "/dev/urandom", "fifo", "directory"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_special_files_are_refused_quickly_with_one_line(specials, kind, command):
    path, description = specials[kind]
    if kind == "directory" and command in ("lint", "run --scripts"):
        pytest.skip("a directory of scripts is a valid argument (searched for *.apdu)")
    started = time.monotonic()
    proc = eidemu(*COMMANDS[command](path))
    assert time.monotonic() - started < TIMEOUT
    assert_one_line_exit_2(proc.returncode, proc.stderr, path)
    assert "not a regular file" in proc.stderr
    if command != "apdu --state":  # the state message says no more than that
        assert description in proc.stderr
    assert not Path(path).with_name(f".{Path(path).name}.lock").exists()  # no lock file beside it


def test_read_bounded_refuses_oversized_files_without_reading_them(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(PROFILE_LIMIT + 1)  # sparse: costs no disk
    with pytest.raises(InputFileError) as info:
        read_bounded(big, PROFILE_LIMIT, "profile")
    assert str(info.value) == f"{big}: profile of {PROFILE_LIMIT + 1} bytes exceeds the limit of {PROFILE_LIMIT} bytes"
    proc = eidemu("profile", "check", str(big))
    assert_one_line_exit_2(proc.returncode, proc.stderr, f"{big}: profile of {PROFILE_LIMIT + 1} bytes exceeds")


def test_content_file_that_is_a_device_names_the_place(tmp_path, capsys):
    profile = tmp_path / "p.yaml"
    profile.write_text("eidemu_profile: 1\natr: 3B 00\nfiles:\n  - fid: 2F01\n    content: {file: /dev/zero}\n")
    code, _, err = run_main(capsys, "profile", "check", str(profile))
    assert_one_line_exit_2(code, err)
    assert err == (
        f"eidemu: error: {profile}: files[0].content.file: '/dev/zero': content file is not a regular file "
        "(a character device)\n"
    )


def test_script_including_a_device_names_the_line(tmp_path, capsys):
    script = tmp_path / "s.apdu"
    script.write_text("# first line\ninclude /dev/zero\n")
    code, _, err = run_main(capsys, "conformance", "lint", str(script))
    assert code == 2
    assert err == f"{script}:2: script is not a regular file (a character device)\n"


# -- nesting depth ---------------------------------------------------------------------------------


def deep_yaml_flow(depth: int) -> str:
    return "eidemu_profile: 1\natr: 3B 00\ndescription: " + "[" * depth + "]" * depth + "\n"


def deep_yaml_tree(depth: int) -> str:
    lines = ["eidemu_profile: 1", "atr: 3B 00", "files:"]
    for level in range(depth):
        pad = "  " * (2 * level + 1)
        lines += [f"{pad}- fid: {0x5000 + level:04X}", f"{pad}  children:"]
    lines.append("  " * (2 * depth + 1) + "- fid: 0001")
    return "\n".join(lines) + "\n"


def deep_json(depth: int) -> str:
    return '{"eidemu_profile": 1, "atr": "3B00", "description": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("flow.yaml", deep_yaml_flow(100_000)),
        ("flow-just-over.yaml", deep_yaml_flow(MAX_NESTING)),
        ("tree.yaml", deep_yaml_tree(2_000)),
        ("deep.json", deep_json(200_000)),
        ("deep-just-over.json", deep_json(MAX_NESTING)),
        ("aliases.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))),
    ],
)  # fmt: skip
def test_deep_or_exploding_profiles_are_refused(tmp_path, capsys, name, text):
    path = tmp_path / name
    path.write_text(text)
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert_one_line_exit_2(code, err, str(path))
    assert f"nested deeper than {MAX_NESTING} levels" in err or "more than 1000000 values" in err


def test_a_profile_just_inside_the_nesting_bound_loads(tmp_path, capsys):
    """The bound does not bite real profiles: a DF tree 20 levels deep is fine."""
    path = tmp_path / "ok.yaml"
    path.write_text(deep_yaml_tree(20))
    code, out, err = run_main(capsys, "profile", "check", str(path))
    assert (code, err) == (0, "")
    assert out == f"{path}: ok (ok)\n"


def test_nesting_problem_is_iterative():
    doc: list[object] = []
    for _ in range(100_000):
        doc = [doc]
    assert nesting_problem(doc) == f"nested deeper than {MAX_NESTING} levels"
    assert nesting_problem({"a": [1, {"b": 2}]}) is None


def test_deep_state_file_and_card_declaration_and_trace_are_refused(tmp_path, capsys):
    state = tmp_path / "s.json"
    state.write_text('{"eidemu_state": 1, "pins": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, _, err = run_main(capsys, "apdu", "--profile", "iso-demo", "--state", str(state), "00A40000")
    assert_one_line_exit_2(code, err, f"{state}: state file is nested too deeply")

    config = tmp_path / "card.yaml"
    config.write_text("tokens: " + "[" * 10_000 + "]" * 10_000 + "\n")
    code, _, err = run_main(capsys, "conformance", "list", "--card-config", str(config))
    assert_one_line_exit_2(code, err, f"{config}: line 1")

    trace = tmp_path / "t.jsonl"
    trace.write_text('{"direction": "command", "hex": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    code, _, err = run_main(capsys, "conformance", "import", "--from", "trace", str(trace))
    assert_one_line_exit_2(code, err, f"{trace}:1: not a trace line: nested too deeply")


def test_include_chains_are_bounded(tmp_path, capsys):
    for i in range(50):
        (tmp_path / f"f{i}.apdu").write_text(f"include f{i + 1}.apdu\n")
    (tmp_path / "f50.apdu").write_text("")
    code, _, err = run_main(capsys, "conformance", "lint", str(tmp_path / "f0.apdu"))
    assert code == 2
    assert err.endswith(".apdu:1: includes nested deeper than 32 files\n")


# -- parse errors do not print what they failed to parse ----------------------------------------------


def test_including_a_foreign_file_does_not_print_its_content(tmp_path, capsys):
    secret = tmp_path / "passwords.txt"
    secret.write_text("root:hunter2-is-my-password\n")
    script = tmp_path / "s.apdu"
    script.write_text("include passwords.txt\n")
    code, _, err = run_main(capsys, "conformance", "lint", str(script))
    assert code == 2
    assert err == f"{secret}:1: a line outside a test (start one with 'test ID: title')\n"
    inside = tmp_path / "t.apdu"
    inside.write_text("test T_X_01: t\nsend 00 A4 00 00\n  sw 90 00\ninclude passwords.txt\nend\n")
    code, _, err = run_main(capsys, "conformance", "lint", str(inside))
    assert err == f"{secret}:1: a file included inside a test holds steps only (no test, end or key: lines)\n"
    secret.write_text("hunter2 is my password\n")
    code, _, err = run_main(capsys, "conformance", "lint", str(inside))
    assert err.startswith(f"{secret}:1: unknown keyword; (steps: send")
    assert "hunter2" not in err


def test_unknown_keywords_get_a_suggestion_not_an_echo(tmp_path, capsys):
    script = tmp_path / "s.apdu"
    script.write_text("test T_X_01: t\nsend 00 A4 00 00\n  sw 90 00\nsned 00 B0 00 00\nend\n")
    code, _, err = run_main(capsys, "conformance", "lint", str(script))
    assert code == 2
    assert err.startswith(f"{script}:4: unknown keyword; did you mean 'send'? (steps:")


def test_profile_syntax_errors_do_not_echo_values(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(
        "eidemu_profile: 1\natr: 3B 00\nkeys:\n  - {ref: 01, algorithm: aes, value: 00112233445566778899AABBCCDDEEXX}\n"
    )
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert code == 2
    assert err == f"eidemu: error: {path}: keys[0].value: not a hex string (unexpected character at digit 31)\n"
    assert "00112233" not in err


# -- every CLI error is one line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00garbage", "line 1: profile is not UTF-8 text"),
        (b"eidemu_profile: 1\natr: 3B 00\natr: 3B 01\n", "line 3, column 1: syntax error: duplicate key 'atr'"),
        (b"eidemu_profile: 1\natr: 3B 00\npins:\n  - {ref: 01, ref: 02, value: '1234'}\n", "duplicate key 'ref'"),
        (b"eidemu_profile: 1\natr: 3B 00\n? [a, b]\n: 1\n", "a mapping key must be a plain value"),
        (b"eidemu_profile: 1\natr: !!python/object:os.system x\n", "syntax error: could not determine a constructor"),
        (b"eidemu_profile: 1\natr: 3B 00\nname: *nothing\n", "syntax error: found undefined alias"),
        (b"[1, 2]\n", "top level: expected a mapping, found list"),
        (b"", "top level: expected a mapping, found NoneType"),
        (b"eidemu_profile: 1\natr: 3B 00\nfiles: {fid: 5000}\n", "files: expected a list, found dict"),
        (b"eidemu_profile: 1\natr: 3B 00\n2020-01-01: x\n", "unknown key '2020-01-01'"),
    ],
)
def test_profile_input_errors_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert_one_line_exit_2(code, err, f"{path}: ", message)


def test_json_syntax_errors_name_line_and_column(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text('{"eidemu_profile": 1,\n "atr": }')
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert code == 2
    assert err == f"eidemu: error: {path}: line 2, column 9: syntax error: Expecting value\n"


def test_profile_names_the_system_cannot_look_up(capsys):
    code, _, err = run_main(capsys, "profile", "check", "x" * 5000)
    assert_one_line_exit_2(code, err, "no such profile file")
    code, _, err = run_main(capsys, "profile", "check", "a\0b")
    assert_one_line_exit_2(code, err, "no such profile file")


# -- URI options cannot be smuggled through names --------------------------------------------------------


def test_profile_and_state_names_with_query_characters_are_quoted(tmp_path):
    """``apdu --profile/--state`` quote what they are given: a '?' or '&' in a name is part
    of the name, and the state file lands exactly where it was named."""
    folder = tmp_path / "odd?state=evil&x"
    folder.mkdir()
    profile = folder / "card?state=evil.yaml"
    shutil.copy(PROFILE_DIR / "iso-demo.yaml", profile)
    state = tmp_path / "s&state=other.json"
    proc = eidemu("apdu", "--profile", str(profile), "--state", str(state), "--allow-errors", "0020000108" + "39" * 8)
    assert proc.returncode == 0, proc.stderr
    assert "63 C2" in proc.stdout
    assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".s&state=other.json.lock",
        "odd?state=evil&x",
        "s&state=other.json",
    ]


def test_card_uris_are_percent_decoded_and_repeated_options_refused(tmp_path, capsys):
    state = tmp_path / "a&b.json"
    uri = f"emulator:iso-demo?state={tmp_path}/a%26b.json"
    code, out, err = run_main(capsys, "apdu", "--card", uri, "--allow-errors", "0020000108" + "39" * 8)
    assert code == 0 and "63 C2" in out, err
    assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 2
    code, _, err = run_main(capsys, "apdu", "--card", f"emulator:iso-demo?state={state}", "00A40000")
    assert_one_line_exit_2(code, err, "unknown emulator: option 'b.json'")  # unquoted '&' splits: refused
    code, _, err = run_main(capsys, "apdu", "--card", f"emulator:iso-demo?state={tmp_path}/c&state=/x", "00A40000")
    assert_one_line_exit_2(code, err, "emulator: option 'state' given twice")
    code, _, err = run_main(capsys, "apdu", "--card", "emulator:iso-demo?stat%65=x&bogus", "00A40000")
    assert_one_line_exit_2(code, err, "unknown emulator: option 'bogus'")


# -- profile check: what loads but is almost certainly a mistake ----------------------------------------


def test_profile_check_reports_likely_mistakes(tmp_path, capsys):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\x01\x02")
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "inside.bin").write_bytes(b"\x03")
    path = folder / "p.yaml"
    path.write_text(
        "eidemu_profile: 1\natr: 3B 00\n"
        "pins:\n  - {ref: 01, value: '1234', unblock: 'auth:07', change: 'auth:01&pin:05'}\n"
        "keys:\n  - {ref: 01, algorithm: aes, value: 00112233445566778899AABBCCDDEEFF}\n"
        "files:\n"
        "  - {fid: FFFF}\n"
        "  - {fid: 3FFF}\n"
        "  - {fid: 2F01, content: {file: ../outside.bin}, access: {read: 'pin:02|auth:01', update: 'auth:09'}}\n"
        "  - {fid: 2F02, content: {file: inside.bin}, access: {read: 'pin:01'}}\n"
        "  - fid: 5000\n    aid: A0 00 00 00 01\n    children:\n"
        "      - {fid: 5100, aid: A0 00 00 00 01}\n"
    )
    code, out, err = run_main(capsys, "profile", "check", str(path))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"eidemu: error: {path}: files[0].fid: FFFF is reserved (RFU)",
        f"eidemu: error: {path}: files[1].fid: 3FFF is reserved for path selection",
        f"eidemu: error: {path}: files[2].access.read: names PIN 02, which the profile does not define",
        f"eidemu: error: {path}: files[2].access.update: names key 09, which the profile does not define",
        f"eidemu: error: {path}: files[2].content.file: content file lies outside the profile's folder",
        f"eidemu: error: {path}: files[4].children[0].aid: DF name A000000001 already used at files[4].aid",
        f"eidemu: error: {path}: pins[0].unblock: names key 07, which the profile does not define",
        f"eidemu: error: {path}: pins[0].change: names PIN 05, which the profile does not define",
    ]


def test_profile_check_goes_on_after_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("eidemu_profile: 1\n")
    code, out, err = run_main(capsys, "profile", "check", str(bad), "iso-demo")
    assert code == 2
    assert err == f"eidemu: error: {bad}: top level: missing required key 'atr'\n"
    assert out.endswith("ok (iso-demo)\n")


def test_every_shipped_profile_passes_the_check(capsys):
    names = sorted(str(p) for p in PROFILE_DIR.glob("*.yaml"))
    code, out, err = run_main(capsys, "profile", "check", *names)
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == len(names)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("files:\n  - {fid: 2F01, access: {read: [1]}}\n", "files[0].access.read: expected a string"),
        ("pins:\n  - {ref: 01, value: '1234', unblock: [7]}\n", "pins[0].unblock: expected a string"),
        ("pins:\n  - {ref: 01, value: '1234', change: [7]}\n", "pins[0].change: expected a string"),
        ("applications:\n  - {aid: A000000001, type: [iso]}\n", "applications[0].type: expected a string"),
        (
            "applications:\n  - {aid: A000000001, type: iso, options: [1]}\n",
            "applications[0].options: expected a mapping",
        ),
        ("default_application: {type: iso, options: 5}\n", "default_application.options: expected a mapping"),
        (
            "default_application: {type: moica-gen1, options: {keys: 5}}\n",
            "default_application.options.keys: expected a list",
        ),
    ],
)
def test_nested_errors_name_the_place_once(tmp_path, capsys, body, message):
    """Found by benchmarks/fuzz_cli.py: an error inside a rule or an application was
    wrapped again with the place and the file name repeated."""
    path = tmp_path / "p.yaml"
    path.write_text(f"eidemu_profile: 1\natr: 3B 00\n{body}")
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert_one_line_exit_2(code, err, f"eidemu: error: {path}: {message}")
    assert err.count(str(path)) == 1


def test_a_few_lines_cannot_declare_gigabytes(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    files = "".join(f"  - {{fid: {0x1000 + i:04X}, size: 16000000}}\n" for i in range(100))
    path.write_text(f"eidemu_profile: 1\natr: 3B 00\nfiles:\n{files}")
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert code == 2
    assert err == (
        f"eidemu: error: {path}: top level: file sizes add up to 1600000000 bytes, "
        "more than the 67108864 a profile may hold\n"
    )


def test_duplicate_keys_in_json_profiles_are_refused(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text('{"eidemu_profile": 1, "atr": "3B00", "files": [{"fid": "2F01", "fid": "2F02"}]}')
    code, _, err = run_main(capsys, "profile", "check", str(path))
    assert code == 2
    assert err == f"eidemu: error: {path}: syntax error: duplicate key 'fid'\n"


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo"])
def test_pki_files_that_are_special_are_refused_with_one_line(specials, tmp_path, kind):
    """``pki serve`` reads the TEST PKI's manifest bounded too: a device or FIFO is one line."""
    path, description = specials[kind]
    pki = tmp_path / "pki"
    pki.mkdir()
    (pki / "manifest.json").symlink_to(path)
    started = time.monotonic()
    proc = eidemu("pki", "serve", "--pki", str(pki), "--port", "0")
    assert time.monotonic() - started < TIMEOUT
    assert_one_line_exit_2(proc.returncode, proc.stderr, str(pki / "manifest.json"))
    assert f"PKI manifest is not a regular file ({description})" in proc.stderr
