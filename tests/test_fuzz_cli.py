"""Fuzzing the profile loader and the command line with generated YAML/JSON profiles (issue 10).

Documents start from a small valid profile (in the manner of ``fixtures/profiles/iso-demo.yaml``)
and are mutated: values replaced by values of other types (lists, mappings, nulls,
booleans, floats, huge integers, long and odd strings, deep nesting), keys dropped or
added, entries duplicated; the text is then written as YAML or JSON and sometimes mutated
as text (bytes flipped, cut, YAML syntax inserted: anchors, aliases, tags, duplicate keys,
tabs). Each document is fed to ``eidemu profile check``, ``eidemu profile show`` and
``eidemu apdu --profile`` (``main()`` in this process). The invariant:

* exit status 0 (or 1 from ``apdu`` when the card answers an error status), or 2 with
  every line on standard error an ``eidemu: error: <file>: ...`` line naming the file;
* never a traceback, never "internal error", nothing on standard error with status 0.

The generator takes its choices from an :class:`Entropy` (``tests/emulator/test_fuzz.py``):
hypothesis here, a seeded PRNG in ``benchmarks/fuzz_cli.py`` (thousands of inputs, with
figures).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "emulator"))
from test_fuzz import FUZZ_SETTINGS, Entropy, HypothesisEntropy, RandomEntropy, pick

from eidemu.cli import main

BASE: dict[str, Any] = {
    "eidemu_profile": 1,
    "name": "fuzz",
    "atr": "3B 88 80 01 45 49 44 45 4D 55 30 31 3A",
    "channels": 4,
    "pins": [
        {"ref": "01", "value": "123456", "tries": 3, "min_length": 6, "max_length": 8, "pad_to": 8, "puk": "02"},
        {"ref": "02", "value": "87654321", "tries": 10, "min_length": 8, "max_length": 8},
    ],
    "keys": [{"ref": "01", "algorithm": "3des", "value": "404142434445464748494A4B4C4D4E4F"}],
    "data_objects": {"5F52": "45494445"},
    "files": [
        {"fid": "2F00", "type": "record", "sfi": "1E", "records": ["610C4F07A0000002471001500141"]},
        {"fid": "2F01", "content": "43008001"},
        {
            "fid": "5000",
            "aid": "A0 00 00 02 47 10 01",
            "children": [
                {"fid": "5001", "sfi": "01", "content": {"text": "hello"}, "access": {"read": "always"}},
                {"fid": "5002", "content": {"hex": "00112233", "pad_to": 8}, "access": {"read": "pin:01"}},
                {"fid": "5003", "size": 16, "fill": "00", "access": {"update": "always"}},
            ],
        },
    ],
    "applications": [{"aid": "A0 00 00 02 47 10 01", "type": "iso", "df": "3F00/5000"}],
}

ODD_STRINGS = (
    "",
    " ",
    "3F00",
    "FFFF",
    "3FFF",
    "ZZ",
    "0x3F00",
    "-1",
    "1e9",
    "pin:99",
    "auth:FF|pin:01",
    "sometimes",
    "../../../etc/passwd",
    "/dev/zero",
    "é€😀",
    "\x00\x01",
    "%s%n",
    "${x}",
    "a" * 300,
    "3B" * 40,
    "?state=x&y",
    "iso",
    "moica-gen1",
    "3F00/5000/9999",
)
KEYS = (
    "fid",
    "name",
    "type",
    "content",
    "children",
    "aid",
    "ref",
    "value",
    "file",
    "hex",
    "text",
    "x",
    "pins",
    "<<",
    "options",
    "df",
    "default_application",
    "records",
    "access",
    "unblock",
)


def random_value(ent: Entropy, depth: int = 0) -> Any:
    """A value of any JSON/YAML type, sometimes nested, sometimes deeply."""
    kind = ent.integer(0, 13)
    if kind == 0:
        return None
    if kind == 1:
        return bool(ent.integer(0, 1))
    if kind == 2:
        return pick(ent, (0, 1, -1, 7, 255, 256, 65535, 1 << 24, 1 << 64, -(1 << 70)))
    if kind == 3:
        return pick(ent, (0.5, -0.0, 1e308, float("inf")))
    if kind in (4, 5, 6):
        return pick(ent, ODD_STRINGS)
    if kind == 7:
        return ent.blob(0, 12).hex().upper()
    if kind == 8 and depth < 4:
        return [random_value(ent, depth + 1) for _ in range(ent.integer(0, 3))]
    if kind == 9 and depth < 4:
        return {pick(ent, KEYS): random_value(ent, depth + 1) for _ in range(ent.integer(0, 3))}
    if kind == 10:
        nested: Any = "x"
        for _ in range(pick(ent, (10, 60, 63, 64, 65, 200))):
            nested = [nested] if ent.integer(0, 1) else {"k": nested}
        return nested
    if kind == 11:
        return pick(ent, (1, 3, 15, 16, 20, 21, 64, 65))
    return ent.blob(0, 6).hex()


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict):
        out.append(value)
        for v in list(value.values()):
            _containers(v, out)
    elif isinstance(value, list):
        out.append(value)
        for v in list(value):
            _containers(v, out)
    return out


def mutate_document(ent: Entropy) -> Any:
    """The base profile with one to four structural mutations."""
    doc = copy.deepcopy(BASE)
    if ent.integer(0, 19) == 0:
        return random_value(ent)
    for _ in range(pick(ent, (1, 1, 1, 2, 2, 3, 4))):  # mostly few: deeper into the loader
        places = _containers(doc, [])
        target = pick(ent, places)
        action = ent.integer(0, 5)
        if isinstance(target, dict) and target:
            key = pick(ent, sorted(target, key=str))
            if action <= 2:
                target[key] = random_value(ent)
            elif action == 3:
                del target[key]
            elif action == 4:
                target[pick(ent, KEYS)] = random_value(ent)
            else:
                target[key] = copy.deepcopy(pick(ent, places))
        elif isinstance(target, list):
            if target and action <= 2:
                target[ent.integer(0, len(target) - 1)] = random_value(ent)
            elif target and action == 3:
                target.append(copy.deepcopy(pick(ent, target)))  # duplicates: same FID, ref, AID
            elif target and action == 4:
                del target[ent.integer(0, len(target) - 1)]
            else:
                target.append(random_value(ent))
    return doc


TEXT_INSERTS = (
    "\n&a x: 1\n",
    "\n*b\n",
    "\nname: twice\nname: again\n",
    "!!python/object:os.system ",
    "!!binary ",
    "\t",
    "{[",
    "\n---\nsecond: document\n",
    "\n? [a, b]\n: c\n",
    "\nx: &x [*x]\n",
    "%YAML 1.1\n",
    "\x00",
    "\ufeff",
    "<<: {eidemu_profile: 2}\n",
)


def profile_text(ent: Entropy) -> tuple[str, bytes]:
    """(file suffix, content) of a generated profile."""
    doc = mutate_document(ent)
    as_json = ent.integer(0, 3) == 0
    try:
        text = json.dumps(doc) if as_json else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    except (ValueError, RecursionError):
        text = "eidemu_profile: 1\n"
    data = text.encode("utf-8", "surrogatepass")
    if ent.integer(0, 2) == 0:
        for _ in range(ent.integer(1, 3)):
            at = ent.integer(0, len(data))
            action = ent.integer(0, 3)
            if action == 0:
                data = data[:at] + pick(ent, TEXT_INSERTS).encode() + data[at:]
            elif action == 1:
                data = data[:at]
            elif action == 2 and data:
                i = min(at, len(data) - 1)
                data = data[:i] + bytes((data[i] ^ (1 << ent.integer(0, 7)),)) + data[i + 1 :]
            else:
                data = data[:at] + ent.blob(1, 4) + data[at:]
    return (".json" if as_json else ".yaml"), data


# -- running the command line ---------------------------------------------------------------------

COMMANDS = (
    ("profile", "check"),
    ("profile", "show"),
    ("apdu", "--allow-errors", "--profile"),
)
APDUS = ("00A4000C023F00", "00A4040C07A0000002471001", "00B0000010", "0020000108313233343536FFFF")


class Broken(AssertionError):
    """An outcome that breaks the invariant: the command and what it printed."""


@dataclass
class Tally:
    """Figures of a fuzz run: inputs, and outcomes by command and exit status."""

    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def check_one(ent: Entropy, folder: Path, tally: Tally) -> None:
    """Generate one profile, run every command on it, check the invariant."""
    suffix, data = profile_text(ent)
    path = folder / f"p{tally.inputs}{suffix}"
    path.write_bytes(data)
    tally.inputs += 1
    for command in COMMANDS:
        argv = [*command, str(path)]
        if command[0] == "apdu":
            argv += [pick(ent, APDUS)]
        code, out, err = run_cli(argv)
        label = " ".join(c for c in command if not c.startswith("--"))
        tally.outcomes[f"{label}: exit {code}"] += 1
        lines = err.splitlines()
        problem = ""
        if "Traceback" in err or "internal error" in err:
            problem = "traceback or internal error"
        elif code not in ((0, 1, 2) if command[0] == "apdu" else (0, 2)):
            problem = f"exit status {code}"
        elif code == 2 and not lines:
            problem = "exit 2 without a message"
        elif code == 2 and not all(line.startswith(f"eidemu: error: {path}") for line in lines):
            problem = "an error line that does not name the file"
        elif code == 2 and command == ("apdu", "--allow-errors", "--profile") and len(lines) != 1:
            problem = "more than one line"
        elif code in (0, 1) and err and not all(line.startswith("eidemu: ") for line in lines):
            problem = "stray output on standard error"
        elif code == 0 and command == ("profile", "check") and out != f"{path}: ok ({_name(out)})\n":
            problem = "profile check passed without saying so"
        if problem:
            raise Broken(f"{problem}: eidemu {' '.join(argv)}\n--- input:\n{data[:2000]!r}\n--- stderr:\n{err[:2000]}")
        if code == 2 and lines:
            tally.messages[_message_class(lines[0], str(path))] += 1
    path.unlink()
    for leftover in folder.iterdir():  # a profile may have created nothing, but make sure
        if leftover.is_file():
            leftover.unlink()


def _name(out: str) -> str:
    return out.rpartition(" (")[2].rstrip(")\n")


_PLACE = re.compile(r"(?:line \d+(?:, column \d+)?: )?(?:top level: |[\w\[\].\-/<>]+: )?(.*)\Z", re.S)


def _message_class(line: str, path: str) -> str:
    """``eidemu: error: FILE: files[0].fid: not a hex string (...)`` -> ``not a hex string``."""
    rest = line[len(f"eidemu: error: {path}: ") :]
    match = _PLACE.match(rest)
    message = match.group(1) if match else rest
    return re.sub(r"(?<![\w-])\d+(?![\w-])", "N", re.split(r" \(|'", message, maxsplit=1)[0]).strip()[:60]


def run_random(count: int, seed: int = 1) -> Tally:
    """``count`` generated profiles through every command; raises Broken on the first failure."""
    ent = RandomEntropy(seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="eidemu-fuzz-cli-") as name:
        for _ in range(count):
            check_one(ent, Path(name), tally)
    return tally


# A third of the examples of the APDU fuzz: each input here is three command runs.
@settings(FUZZ_SETTINGS, max_examples=max(10, FUZZ_SETTINGS.max_examples // 3))
@given(st.data())
def test_generated_profiles_never_crash_the_cli(data):
    with tempfile.TemporaryDirectory(prefix="eidemu-fuzz-cli-") as name:
        check_one(HypothesisEntropy(data), Path(name), Tally())


def test_seeded_run_covers_both_outcomes():
    """The generator is not trivially valid or trivially broken: a seeded run of 80
    inputs ends in both accepted and refused profiles, for every command."""
    tally = run_random(80, seed=int(os.environ.get("EIDEMU_FUZZ_SEED", "3")))
    assert tally.inputs == 80
    for label in ("profile check", "profile show", "apdu"):
        assert tally.outcomes[f"{label}: exit 0"] > 0, tally.outcomes
        assert tally.outcomes[f"{label}: exit 2"] > 0, tally.outcomes
