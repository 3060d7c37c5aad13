"""PINs never reach any output (issue 10, "Secrets in output").

Runs many command-line paths with the shipped test PINs of ``fixtures/profiles/iso-demo.yaml``
(user PIN ``123456``, PUK ``87654321``) and new values set on the way, in every form a PIN
command takes (VERIFY 20/21, CHANGE REFERENCE DATA 24/25, RESET RETRY COUNTER 2C/2D, the
proprietary classes 80 and 8C the MOICA card uses, chained, secure-messaging class,
extended length, malformed lengths), then scans everything written (standard output and
error, traces, JUnit XML, HTML reports, imported scripts, log lines) for the PIN bytes in
hex (upper and lower case, with and without spaces) and in ASCII.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from eidemu.cli import main
from eidemu.emulator.iso7816.trace import SECRET_INS, redacted_hex

SECRETS = ("123456", "87654321", "24681357", "97531864")
"""The iso-demo PIN and PUK, and the new values the commands below set."""


def pin_block(text: str, pad_to: int = 8) -> str:
    return text.encode().ljust(pad_to, b"\xff").hex().upper()


PIN, PUK, NEW1, NEW2 = (pin_block(s) for s in SECRETS)
TLV_PIN = "8006" + b"123456".hex()

COMMANDS = [
    "00200001" + "08" + PIN,  # VERIFY, right
    "00200001" + "08" + pin_block("111111"),  # VERIFY, wrong (tries drop)
    "00210001" + "08" + TLV_PIN,  # VERIFY, odd INS (BER-TLV data)
    "00240001" + "10" + PIN + NEW1,  # CHANGE REFERENCE DATA
    "00250001" + "08" + TLV_PIN,  # odd form
    "002C0001" + "10" + b"87654321".hex() + NEW2,  # RESET RETRY COUNTER with PUK
    "002D0001" + "08" + TLV_PIN,
    "80200001" + "08" + PIN,  # the MOICA card's plain VERIFY class
    "8C200001" + "08" + PIN,  # protected VERIFY class (not supported by iso-demo)
    "10200001" + "04" + PIN[:8],  # chained VERIFY, first link
    "0C200001" + "08" + PIN,  # secure messaging indicated, no session
    "0020000100" + "0008" + PIN,  # extended length
    "0020000108" + PIN + "00",  # with Le
    "E0200001" + "08" + PIN,  # a proprietary class no card here knows
]


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    hexed = raw.hex()
    spaced = " ".join(hexed[i : i + 2] for i in range(0, len(hexed), 2))
    return [hexed.upper(), hexed, spaced.upper(), spaced, secret]


def json_strings(text: str) -> str:
    """The string values of JSON lines (timestamps are numbers and may hold any digits)."""
    out = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                out.append(str(k))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for line in text.splitlines():
        if line.strip():
            walk(json.loads(line))
    return "\n".join(out)


def assert_no_secret(name: str, text: str) -> None:
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in text, f"{name} shows the PIN {secret!r} as {form!r}"


class Outputs:
    """Collects every output of the commands run: streams, and files written."""

    def __init__(self, capsys: pytest.CaptureFixture[str], out: Path) -> None:
        self.capsys, self.out = capsys, out
        self.texts: dict[str, str] = {}

    def run(self, label: str, *argv: str) -> int:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        self.texts[f"{label}: stdout"] = out
        self.texts[f"{label}: stderr"] = err
        assert "Traceback" not in err
        return code

    def files(self) -> None:
        for path in sorted(self.out.rglob("*")):
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                self.texts[str(path)] = json_strings(text) if path.suffix in (".jsonl", ".trace") else text


def test_redaction_covers_every_pin_instruction_in_every_class():
    for ins in (0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D):
        assert ins in SECRET_INS
        for cla in (0x00, 0x0C, 0x10, 0x80, 0x8C, 0xE0, 0xFF):
            command = bytes((cla, ins, 0x00, 0x01, 0x08)) + bytes.fromhex(PIN)
            assert redacted_hex(command) == f"{cla:02X}{ins:02X}000108" + "**" * 8
    # lengths that do not parse: everything after the header is masked
    assert redacted_hex(bytes.fromhex("0020000109" + PIN)) == "00200001" + "**" * 9
    assert redacted_hex(bytes.fromhex("00200001" + PIN[:6])) == "00200001******"
    assert redacted_hex(bytes.fromhex("0020000100" + "0008" + PIN)) == "00200001000008" + "**" * 8
    assert redacted_hex(bytes.fromhex("00B0000008")) == "00B0000008"


def test_no_pin_in_any_output(capsys, tmp_path, caplog):
    """Inputs (with PINs, as users write them) go to ``in/``; every output to ``out/``."""
    out = tmp_path / "out"
    out.mkdir()
    o = Outputs(capsys, out)
    tmp_path = tmp_path / "in"
    tmp_path.mkdir()
    state = tmp_path / "card.state"  # the card's EEPROM holds the PIN, as a real card does
    trace = out / "apdu.jsonl"
    caplog.set_level(logging.DEBUG)

    # apdu: every PIN command form, traced, verbose
    code = o.run("apdu", "-v", "apdu", "--profile", "iso-demo", "--state", str(state), "--trace", str(trace),
                 "--allow-errors", *COMMANDS)  # fmt: skip
    assert code == 0
    assert o.texts["apdu: stdout"].count("> ") == len(COMMANDS)
    assert "** ** ** ** ** ** ** **" in o.texts["apdu: stdout"]

    # apdu usage errors: malformed lengths in each PIN instruction
    for ins in ("20", "21", "24", "25", "2C", "2D"):
        code = o.run(f"apdu-bad-{ins}", "apdu", "--profile", "iso-demo", f"80{ins}000109{PIN}")
        assert code == 2
        assert o.texts[f"apdu-bad-{ins}: stderr"].startswith(f"eidemu: error: APDU 1 (80 {ins} 00 01 ** ** ")
    code = o.run("apdu-nonhex", "apdu", "--profile", "iso-demo", "0020000108" + PIN[:-1] + "Z")
    assert code == 2

    # replay the trace (responses differ: the PIN changed on the way), with its own trace
    o.run("replay", "replay", "--card", "emulator:iso-demo", str(trace), "--trace", str(out / "replay.jsonl"))

    # import the trace and a scriptor session with the PINs in clear
    o.run("import-trace", "conformance", "import", "--from", "trace", str(trace), "-o", str(out / "t.apdu"))
    scriptor = tmp_path / "session.scr"
    scriptor.write_text("\n".join(["reset", *COMMANDS[:8]]) + "\n")
    o.run("import-scriptor", "conformance", "import", "--from", "scriptor", str(scriptor))
    assert "${PIN_01}" in o.texts["import-scriptor: stdout"]
    hex_trace = tmp_path / "session.apdu_in"
    hex_trace.write_text(f"00200001 08 {' '.join(PIN[i : i + 2] for i in range(0, 16, 2))} -> 90 00\n")
    o.run("import-hex", "conformance", "import", "--from", "hex", str(hex_trace))

    # conformance runs: PIN tests passing, and a script of ours that fails and errs
    script = tmp_path / "pins.apdu"
    script.write_text(
        "test OWN_PIN_01: a VERIFY that fails its check\n"
        f"send 00 20 00 01 08 {PIN}\n  sw 6A 88\n  data 00\nend\n"
        "test OWN_PIN_02: a CHANGE REFERENCE DATA with a variable\n"
        f"set NEW = {NEW1}\nsend 00 24 00 01 data {PIN} ${{NEW}}\n  sw 62 00\n"
        f"send 80 20 00 01 08 {PIN}\n  sw 90 00\nend\n"
        "test OWN_PIN_03: an unset variable\nsend 00 20 00 01 data ${MISSING}\n  sw 90 00\nend\n"
    )
    reports = out / "reports"
    reports.mkdir()
    code = o.run("run", "conformance", "run", "--card", "emulator:iso-demo", "--select", "ISO_PIN_*,OWN_PIN_*",
                 "--scripts", str(script), "--junit", str(reports / "junit.xml"),
                 "--report", str(reports / "report.html"), "--trace", str(reports / "traces"))  # fmt: skip
    assert code == 1  # our failing tests
    assert "OWN_PIN_01" in o.texts["run: stdout"]
    o.run("run-quiet", "conformance", "run", "-q", "--card", "emulator:iso-demo", "--select", "OWN_PIN_*",
          "--scripts", str(script), "--no-catalogue", "--var", f"PIN={PIN}")  # fmt: skip
    o.run("var-bad", "conformance", "run", "--card", "emulator:iso-demo", "--var", f"PIN={PIN[:-1]}Z")

    # scripts that do not parse, with the PIN on the bad line
    broken = tmp_path / "broken.apdu"
    broken.write_text(f"test OWN_BAD_01: broken\nsend 00 20 00 01 08 {PIN[:-1]}Z\nend\n")
    assert o.run("lint-bad", "conformance", "lint", str(broken)) == 2
    odd = tmp_path / "odd.apdu"
    odd.write_text(f"test OWN_BAD_02: odd\nsend 00 20 00 01 08 {PIN}0\nend\n")
    assert o.run("lint-odd", "conformance", "lint", str(odd)) == 2
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(f"{SECRETS[0]}\n")
    includer = tmp_path / "includer.apdu"
    includer.write_text("include secret.txt\n")
    assert o.run("lint-include", "conformance", "lint", str(includer)) == 2
    assert "includer.apdu:1" in o.texts["lint-include: stderr"] or "secret.txt:1" in o.texts["lint-include: stderr"]

    # profiles whose PIN entries are wrong
    for i, pin_lines in enumerate(
        (
            f'    value_hex: "{PIN[:-1]}Z"\n',
            f'    value_hex: "{PIN}{PIN}"\n',
            f'    value: "{SECRETS[0]}"\n    value_hex: "{PIN}"\n',
            f'    value: "{SECRETS[0]}{SECRETS[0]}{SECRETS[0]}"\n',
        )
    ):
        profile = tmp_path / f"bad-pin-{i}.yaml"
        profile.write_text(f"eidemu_profile: 1\natr: 3B 00\npins:\n  - ref: 01\n{pin_lines}")
        assert o.run(f"profile-{i}", "profile", "check", str(profile)) == 2

    o.texts["log records"] = "\n".join(r.getMessage() for r in caplog.records)
    o.files()
    assert any(name.endswith("report.html") for name in o.texts)
    assert any(name.endswith("ISO_PIN_03.jsonl") for name in o.texts)
    for name, text in o.texts.items():
        assert_no_secret(name, text)
