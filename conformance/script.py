"""APDU test scripts: a line-oriented text format, its parser and its formatter.

The format is documented in ``docs/conformance-scripts.md``. A script file holds test cases
in the manner of the ICAO 9303-10/-11 and BSI TR-03105 test plans: each has a stable ID,
a title, a purpose, the clause it checks, applicability tokens, preconditions and a list of
steps. A step sends a command APDU (ISO/IEC 7816-4:2005 §5.1) and states what the response must
be; reset and power-cycle steps restart the card.

Parsed objects are frozen dataclasses. ``format_script(parse_script(text))`` writes the
canonical text back; parsing that text again gives equal objects (locations aside), which
is what the importers rely on: they build objects and print them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from eidemu.emulator.formats.files import SCRIPT_LIMIT, InputFileError, read_text_bounded
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.tlv import TLVError, find

SCRIPT_SUFFIX = ".apdu"
MAX_INCLUDE_DEPTH = 32

_ID = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN = re.compile(r"!?[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
_SLICE = re.compile(r"(data|sw)(?:\[(-?\d*):(-?\d*)\])?\Z")


class ScriptError(ValueError):
    """A script that cannot be parsed: ``file:line: message``, one line for users."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class ExpansionError(ValueError):
    """A ``${name}`` that has no value when the step runs."""


@dataclass(frozen=True)
class Location:
    """Where a parsed object came from, for error messages and reports."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


NOWHERE = Location("<generated>", 0)


def expand(template: str, variables: Mapping[str, bytes]) -> str:
    """Substitute ``${name}`` with the variable's bytes as upper-case hex."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise ExpansionError(f"variable ${{{name}}} is not set")
        return variables[name].hex().upper()

    return _VAR.sub(value, template)


def variables_in(template: str) -> list[str]:
    return _VAR.findall(template)


def _hex_text(text: str, location: Location, wildcards: bool = False, what: str = "hex") -> str:
    """Normalise hex (spaces allowed) to upper case; keep ``${var}`` and, if allowed, ``?``."""
    compact = "".join(text.split())
    plain = _VAR.sub("", compact)
    allowed = "0123456789abcdefABCDEF" + ("?" if wildcards else "")
    # Errors name the character, never the text: a send line may hold a PIN.
    bad = next((c for c in plain if c not in allowed), None)
    if bad is not None:
        shown = repr(bad) if bad.isprintable() and bad.isascii() else f"U+{ord(bad):04X}"
        raise ScriptError(location, f"{what}: unexpected character {shown}")
    if len(plain) % 2:
        raise ScriptError(location, f"{what}: odd number of hex digits")
    parts = _VAR.split(compact)  # even indexes are hex, odd ones variable names
    return "".join(f"${{{p}}}" if i % 2 else p.upper() for i, p in enumerate(parts))


def _spaced(hex_text: str) -> str:
    """``00A4`` -> ``00 A4``, leaving ``${var}`` intact."""
    out: list[str] = []
    for i, part in enumerate(_VAR.split(hex_text)):
        if i % 2:
            out.append(f"${{{part}}}")
        else:
            out.extend(part[j : j + 2] for j in range(0, len(part), 2))
    return " ".join(out)


def nibbles_match(pattern: str, value_hex: str) -> bool:
    """Equal length and every pattern nibble equal or ``?``."""
    return len(pattern) == len(value_hex) and all(p in ("?", v) for p, v in zip(pattern, value_hex))


# -- commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandTemplate:
    """A command APDU as written: literal bytes, or header + data + Le with automatic Lc.

    ``raw`` sends exactly the bytes given (needed for malformed-length tests). Otherwise
    the APDU is encoded by :meth:`CommandAPDU.encode` (ISO/IEC 7816-4:2005 §5.1, extended length
    when the data or Ne needs it); ``le`` of one byte is short Le (00 = 256), of two
    bytes extended Le (0000 = 65536).
    """

    header: str = ""
    data: str | None = None
    le: str | None = None
    raw: str | None = None

    def build(self, variables: Mapping[str, bytes]) -> bytes:
        if self.raw is not None:
            return bytes.fromhex(expand(self.raw, variables))
        header = bytes.fromhex(expand(self.header, variables))
        if len(header) != 4:
            raise ExpansionError(f"APDU header is {len(header)} bytes after expansion, not 4")
        data = bytes.fromhex(expand(self.data, variables)) if self.data is not None else b""
        ne: int | None = None
        extended = False
        if self.le is not None:
            le = bytes.fromhex(expand(self.le, variables))
            if len(le) == 1:
                ne = le[0] or 256
            elif len(le) == 2:
                ne, extended = int.from_bytes(le, "big") or 65536, True
            else:
                raise ExpansionError(f"Le is {len(le)} bytes; write one byte (short) or two (extended)")
        return CommandAPDU(header[0], header[1], header[2], header[3], data, ne, extended).encode()

    def __str__(self) -> str:
        if self.raw is not None:
            return _spaced(self.raw)
        text = _spaced(self.header)
        if self.data is not None:
            text += " data " + _spaced(self.data)
        if self.le is not None:
            text += " le " + _spaced(self.le)
        return text

    @property
    def ins(self) -> int | None:
        """The instruction byte if it is written literally (for reports and redaction)."""
        source = self.raw if self.raw is not None else self.header
        head = source[:4]
        return int(head[2:4], 16) if len(head) == 4 and "$" not in head else None


# -- expectations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """What an expectation wanted and what the card gave, both as readable text."""

    check: str
    expected: str
    received: str

    def __str__(self) -> str:
        return f"{self.check}: expected {self.expected}, received {self.received}"


@dataclass(frozen=True)
class Masks:
    """Byte ranges of the response data that legitimately differ between cards or runs."""

    ranges: tuple[tuple[int | None, int | None], ...] = ()

    def apply(self, data: bytes) -> str:
        """Hex of ``data`` with masked bytes written ``??``."""
        hexed = list(data.hex().upper())
        for start, end in self.ranges:
            for i in range(len(data))[slice(start, end)]:
                hexed[2 * i] = hexed[2 * i + 1] = "?"
        return "".join(hexed)


def _show(hex_text: str, limit: int = 48) -> str:
    if not hex_text:
        return "(no data)"
    shown = _spaced(hex_text[: 2 * limit])
    return shown + (f" … ({len(hex_text) // 2} bytes)" if len(hex_text) > 2 * limit else "")


@dataclass(frozen=True)
class ExpectSW:
    """``sw 90 00 | 61 ??``: the status word matches one of the patterns (nibble wildcards)."""

    alternatives: tuple[str, ...]
    location: Location = field(default=NOWHERE, compare=False)

    def check(self, response: ResponseAPDU, variables: Mapping[str, bytes], masks: Masks) -> Mismatch | None:
        received = f"{response.sw:04X}"
        patterns = [expand(p, variables) for p in self.alternatives]
        if any(nibbles_match(p, received) for p in patterns):
            return None
        from eidemu.emulator.iso7816.sw import describe_sw

        expected = " | ".join(_spaced(p) for p in patterns)
        if patterns != list(self.alternatives):
            expected += f" ({self.describe()})"
        return Mismatch("status word", expected, f"{_spaced(received)} ({describe_sw(response.sw)})")

    def describe(self) -> str:
        return " | ".join(_spaced(p) for p in self.alternatives)

    def __str__(self) -> str:
        return f"sw {self.describe()}"


@dataclass(frozen=True)
class ExpectData:
    """``data HEX`` (exact, nibble wildcards) or ``data prefix HEX``; masked bytes always match."""

    pattern: str
    prefix: bool = False
    location: Location = field(default=NOWHERE, compare=False)

    def check(self, response: ResponseAPDU, variables: Mapping[str, bytes], masks: Masks) -> Mismatch | None:
        want = expand(self.pattern, variables)
        got = masks.apply(response.data)
        if self.prefix:
            got = got[: len(want)]
        if len(want) == len(got) and all(p == v or "?" in (p, v) for p, v in zip(want, got)):
            return None
        what = "data prefix" if self.prefix else "data"
        return Mismatch(what, _show(want), _show(response.data.hex().upper()))

    def __str__(self) -> str:
        return f"data {'prefix ' if self.prefix else ''}{_spaced(self.pattern)}"


@dataclass(frozen=True)
class ExpectRegex:
    """``data regex RE``: the upper-case hex of the data (no spaces) matches RE in full."""

    regex: str
    location: Location = field(default=NOWHERE, compare=False)

    def check(self, response: ResponseAPDU, variables: Mapping[str, bytes], masks: Masks) -> Mismatch | None:
        if re.fullmatch(self.regex, response.data.hex().upper()):
            return None
        return Mismatch("data regex", f"/{self.regex}/", _show(response.data.hex().upper()))

    def __str__(self) -> str:
        return f"data regex {self.regex}"


@dataclass(frozen=True)
class ExpectLength:
    """``data length N``, ``N..M``, ``>=N``, ``${VAR}`` or ``data empty``: the data field's length.

    Numbers are decimal bytes; a variable's bytes are read as a big-endian number (so a
    card declaration's ``EF_SIZE: 00 C8`` serves as a length of 200).
    """

    low: int
    high: int | None
    location: Location = field(default=NOWHERE, compare=False)
    variable: str = ""

    def check(self, response: ResponseAPDU, variables: Mapping[str, bytes], masks: Masks) -> Mismatch | None:
        n = len(response.data)
        low, high = self.low, self.high
        if self.variable:
            low = high = int.from_bytes(bytes.fromhex(expand(f"${{{self.variable}}}", variables)), "big")
        if low <= n and (high is None or n <= high):
            return None
        expected = self.describe() if not self.variable else f"{low} (${{{self.variable}}})"
        return Mismatch("data length", expected, f"{n} bytes")

    def describe(self) -> str:
        if self.variable:
            return f"${{{self.variable}}}"
        if self.high is None:
            return f">={self.low}"
        return str(self.low) if self.low == self.high else f"{self.low}..{self.high}"

    def __str__(self) -> str:
        return "data empty" if self.low == self.high == 0 and not self.variable else f"data length {self.describe()}"


@dataclass(frozen=True)
class ExpectTLV:
    """``tlv 6F/84 = HEX | prefix HEX | length N | present | absent`` (BER-TLV, ISO/IEC 7816-4:2005 §5.2.2)."""

    path: tuple[int, ...]
    op: str
    value: str = ""
    location: Location = field(default=NOWHERE, compare=False)

    def check(self, response: ResponseAPDU, variables: Mapping[str, bytes], masks: Masks) -> Mismatch | None:
        where = f"TLV {self.path_text}"
        try:
            found = find(response.data, *self.path)
        except TLVError as exc:
            return Mismatch(where, self.describe(), f"data that is not valid BER-TLV ({exc})")
        if self.op == "absent":
            return None if found is None else Mismatch(where, "absent", _show(found.value.hex().upper()))
        if found is None:
            return Mismatch(where, self.describe(), "no such data object")
        got = found.value.hex().upper()
        if self.op == "present":
            return None
        if self.op == "length":
            return (
                None
                if len(found.value) == int(self.value)
                else Mismatch(where, self.describe(), f"length {len(found.value)}")
            )
        want = expand(self.value, variables)
        ok = nibbles_match(want, got[: len(want)]) if self.op == "prefix" else nibbles_match(want, got)
        return None if ok else Mismatch(where, self.describe(), _show(got))

    @property
    def path_text(self) -> str:
        return "/".join(f"{t:02X}" for t in self.path)

    def describe(self) -> str:
        if self.op in ("present", "absent"):
            return self.op
        if self.op == "length":
            return f"length {self.value}"
        return f"{'prefix ' if self.op == 'prefix' else '= '}{_spaced(self.value)}"

    def __str__(self) -> str:
        return f"tlv {self.path_text} {self.describe()}"


Expectation = ExpectSW | ExpectData | ExpectRegex | ExpectLength | ExpectTLV


@dataclass(frozen=True)
class Capture:
    """``capture NAME = data[a:b] | sw | tlv PATH``: keep part of the response for later steps."""

    name: str
    source: str  # "data", "sw" or "tlv"
    start: int | None = None
    end: int | None = None
    path: tuple[int, ...] = ()
    location: Location = field(default=NOWHERE, compare=False)

    def take(self, response: ResponseAPDU) -> bytes:
        if self.source == "sw":
            return response.sw.to_bytes(2, "big")[self.start : self.end]
        if self.source == "tlv":
            found = find(response.data, *self.path)
            if found is None:
                raise ExpansionError(f"capture {self.name}: no data object {'/'.join(f'{t:02X}' for t in self.path)}")
            return found.value[self.start : self.end]
        return response.data[self.start : self.end]

    def __str__(self) -> str:
        if self.source == "tlv":
            return f"capture {self.name} = tlv {'/'.join(f'{t:02X}' for t in self.path)}"
        return f"capture {self.name} = {self.source}{_slice_text(self.start, self.end)}"


def _slice_text(start: int | None, end: int | None) -> str:
    if start is None and end is None:
        return ""
    return f"[{'' if start is None else start}:{'' if end is None else end}]"


# -- steps and test cases ------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Transmit one command APDU and check the response."""

    command: CommandTemplate
    expectations: tuple[Expectation, ...] = ()
    captures: tuple[Capture, ...] = ()
    masks: Masks = Masks()
    comment: str = field(default="", compare=False)  # written as a '#' line; not parsed back
    location: Location = field(default=NOWHERE, compare=False)

    def lines(self) -> Iterator[str]:
        if self.comment:
            yield f"# {self.comment}"
        yield f"send {self.command}"
        for rng in self.masks.ranges:
            yield f"  mask data{_slice_text(*rng)}"
        for item in (*self.expectations, *self.captures):
            yield f"  {item}"


@dataclass(frozen=True)
class Reset:
    """``reset`` (warm) or ``power-cycle`` (cold): the card restarts, volatile state is lost.

    ``atr``: an optional ATR pattern (nibble wildcards) the card must answer with.
    """

    cold: bool = False
    atr: str | None = None
    location: Location = field(default=NOWHERE, compare=False)

    def lines(self) -> Iterator[str]:
        yield "power-cycle" if self.cold else "reset"
        if self.atr is not None:
            yield f"  atr {_spaced(self.atr)}"


@dataclass(frozen=True)
class SetVariable:
    """``set NAME = HEX``: give a variable a value for the following steps."""

    name: str
    value: str
    location: Location = field(default=NOWHERE, compare=False)

    def lines(self) -> Iterator[str]:
        yield f"set {self.name} = {_spaced(self.value)}"


@dataclass(frozen=True)
class FaultStep:
    """``fault arm RULE`` or ``fault clear``: change the emulated card's fault plan from
    this step on (a one-line rule as in docs/faults.md, e.g. ``fault arm fault=status
    sw=6581 command=80EA``). Only cards behind the fault layer take it."""

    action: str  # "arm" or "clear"
    rule: str = ""
    location: Location = field(default=NOWHERE, compare=False)

    def lines(self) -> Iterator[str]:
        yield f"fault {self.action} {self.rule}".rstrip()


def _fault_step(rest: str, loc: Location) -> FaultStep:
    from eidemu.emulator.faults.plan import FaultRule, PlanError

    action, _, rule = rest.strip().partition(" ")
    if action == "clear" and not rule.strip():
        return FaultStep("clear", location=loc)
    if action != "arm" or not rule.strip():
        raise ScriptError(loc, "fault steps are 'fault arm RULE' or 'fault clear' (docs/faults.md)")
    try:
        parsed = FaultRule.parse_line(rule, "fault arm")
    except PlanError as exc:
        raise ScriptError(loc, str(exc)) from None
    return FaultStep("arm", parsed.line(), loc)


Step = Send | Reset | SetVariable | FaultStep


@dataclass(frozen=True)
class TestCase:
    """One test case (the unit reported PASSED/FAILED/...), ICAO/BSI test-plan style."""

    __test__ = False  # not a pytest class, despite the name

    id: str
    title: str
    purpose: str = ""
    spec: str = ""
    tokens: tuple[str, ...] = ()
    preconditions: tuple[str, ...] = ()
    destructive: bool = False
    category: str = ""
    steps: tuple[Step, ...] = ()
    location: Location = field(default=NOWHERE, compare=False)

    @property
    def group(self) -> str:
        """The category, defaulting to the ID without its number (``ISO_SELECT_01`` -> ``ISO_SELECT``)."""
        return self.category or self.id.rsplit("_", 1)[0]

    def applies_to(self, card_tokens: frozenset[str]) -> tuple[bool, str]:
        """All plain tokens held and no ``!token`` held; else the reason why not."""
        missing = [t for t in self.tokens if not t.startswith("!") and t not in card_tokens]
        excluded = [t[1:] for t in self.tokens if t.startswith("!") and t[1:] in card_tokens]
        if missing:
            return False, f"card lacks {', '.join(missing)}"
        if excluded:
            return False, f"card has {', '.join(excluded)}"
        return True, ""

    def lines(self) -> Iterator[str]:
        yield f"test {self.id}: {self.title}"
        for key, value in (("purpose", self.purpose), ("spec", self.spec), ("category", self.category)):
            if value:
                yield f"  {key}: {value}"
        if self.tokens:
            yield f"  tokens: {', '.join(self.tokens)}"
        for pre in self.preconditions:
            yield f"  pre: {pre}"
        if self.destructive:
            yield "  destructive: yes"
        yield ""
        for step in self.steps:
            yield from step.lines()
        yield "end"


@dataclass(frozen=True)
class Script:
    """A parsed script file: its suite name, file-level variables and test cases."""

    path: str
    suite: str = ""
    variables: tuple[SetVariable, ...] = ()
    tests: tuple[TestCase, ...] = ()
    warnings: tuple[str, ...] = ()


def format_script(script: Script, header: str = "") -> str:
    """The canonical text of a script (what the importers write)."""
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    if script.suite:
        out.append(f"suite: {script.suite}")
    out.extend(line for v in script.variables for line in v.lines())
    for test in script.tests:
        out.append("")
        out.extend(test.lines())
    return "\n".join(out).lstrip("\n") + "\n"


# -- the parser ----------------------------------------------------------------------------

HEADER_KEYS = ("title", "purpose", "spec", "tokens", "pre", "destructive", "category")
STEP_KEYWORDS = (
    "test",
    "end",
    "include",
    "set",
    "send",
    "reset",
    "power-cycle",
    "atr",
    "sw",
    "data",
    "tlv",
    "capture",
    "mask",
)


def _strip_comment(line: str) -> str:
    """``#`` starts a comment at the line start or after whitespace (a regex may hold ``[#]``)."""
    for i, c in enumerate(line):
        if c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _parse_tags(text: str, location: Location) -> tuple[int, ...]:
    tags = []
    for part in text.split("/"):
        part = part.strip()
        try:
            if not part or len(part) % 2:
                raise ValueError
            tags.append(int(part, 16))
        except ValueError:
            raise ScriptError(location, f"TLV path element {part!r} is not a hex tag (e.g. 6F/84)") from None
    return tuple(tags)


def _parse_length(text: str, location: Location) -> tuple[int, int | None]:
    text = text.replace(" ", "")
    try:
        if text.startswith(">="):
            return int(text[2:]), None
        if ".." in text:
            low, high = text.split("..", 1)
            if int(low) > int(high):
                raise ValueError
            return int(low), int(high)
        return int(text), int(text)
    except ValueError:
        raise ScriptError(location, f"length {text!r}: write N, N..M or >=N (decimal bytes)") from None


def parse_command(text: str, location: Location) -> CommandTemplate:
    """``00 A4 04 00 data A0 00 ... le 00`` (automatic Lc) or plain hex sent as written."""
    words = text.split()
    if not words:
        raise ScriptError(location, "send needs an APDU")
    if "data" not in words and "le" not in words:
        raw = _hex_text(text, location, what="APDU")
        if len(_VAR.sub("", raw)) < 8 and not _VAR.search(raw):
            raise ScriptError(location, "an APDU has at least 4 header bytes (CLA INS P1 P2)")
        return CommandTemplate(raw=raw)
    parts: dict[str, list[str]] = {"header": [], "data": [], "le": []}
    section = "header"
    seen: set[str] = set()
    for word in words:
        if word in ("data", "le"):
            if word in seen:
                raise ScriptError(location, f"{word!r} given twice")
            if word == "data" and "le" in seen:
                raise ScriptError(location, "write data before le")
            seen.add(word)
            section = word
            continue
        parts[section].append(word)
    header = _hex_text(" ".join(parts["header"]), location, what="APDU header")
    if not _VAR.search(header) and len(header) != 8:
        raise ScriptError(location, f"APDU header must be 4 bytes (CLA INS P1 P2), got {len(header) // 2}")
    data = le = None
    if "data" in seen:
        data = _hex_text(" ".join(parts["data"]), location, what="data")
        if not data:
            raise ScriptError(location, "'data' needs bytes; leave it out for no data")
        if not _VAR.search(data) and len(data) // 2 > 65535:
            raise ScriptError(location, "data longer than 65535 bytes")
    if "le" in seen:
        le = _hex_text(" ".join(parts["le"]), location, what="le")
        if not _VAR.search(le) and len(le) not in (2, 4):
            raise ScriptError(location, "le is one byte (short, 00 = 256) or two bytes (extended, 0000 = 65536)")
    return CommandTemplate(header=header, data=data, le=le)


_HEADER = re.compile(r"([a-z]+):\s*(.*)\Z")


class _Parser:
    """Line-by-line parser; ``include`` recurses with a stack to report cycles."""

    def __init__(self) -> None:
        self.stack: list[Path] = []
        self.warnings: list[str] = []

    def read(self, path: Path, location: Location | None) -> str:
        where = location or Location(str(path), 0)
        if path.resolve() in self.stack:
            raise ScriptError(where, f"include cycle through {path}")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise ScriptError(where, f"includes nested deeper than {MAX_INCLUDE_DEPTH} files")
        try:
            return read_text_bounded(path, SCRIPT_LIMIT, "script")
        except FileNotFoundError:
            raise ScriptError(where, f"cannot read {path}: no such file") from None
        except InputFileError as exc:
            message = str(exc)
            raise ScriptError(
                where, message.partition(": ")[2] if message.startswith(f"{path}: ") else message
            ) from None

    def parse_file(self, path: Path, location: Location | None = None, fragment: bool = False) -> Script:
        text = self.read(path, location)
        self.stack.append(path.resolve())
        try:
            return self.parse_text(text, str(path), path.parent, fragment)
        finally:
            self.stack.pop()

    def parse_text(self, text: str, source: str, base: Path, fragment: bool = False) -> Script:
        """Parse a whole file. A ``fragment`` (included inside a test) holds steps only,
        returned as the single test case ``FRAGMENT_00``."""
        suite = ""
        file_tokens: tuple[str, ...] = ()
        variables: list[SetVariable] = []
        tests: list[TestCase] = []
        current: dict[str, object] | None = (
            {"id": "FRAGMENT_00", "title": "", "location": Location(source, 1)} if fragment else None
        )
        steps: list[Step] = []

        def finish() -> None:
            nonlocal current, steps
            if current is None:
                return
            steps = self._close_send(steps)
            loc = current["location"]
            assert isinstance(loc, Location)
            if not fragment and not any(isinstance(s, Send) for s in steps):
                raise ScriptError(loc, f"test {current['id']} has no send step")
            tests.append(
                TestCase(
                    id=str(current["id"]),
                    title=str(current["title"]),
                    purpose=str(current.get("purpose", "")),
                    spec=str(current.get("spec", "")),
                    tokens=_merge_tokens(file_tokens, current.get("tokens", ())),  # type: ignore[arg-type]
                    preconditions=tuple(current.get("pre", ())),  # type: ignore[arg-type]
                    destructive=bool(current.get("destructive", False)),
                    category=str(current.get("category", "")),
                    steps=tuple(steps),
                    location=loc,
                )
            )
            current, steps = None, []

        for number, raw_line in enumerate(text.splitlines(), 1):
            loc = Location(source, number)
            line = _strip_comment(raw_line).strip()
            if not line:
                continue
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            header = _HEADER.match(line)
            if fragment and (keyword == "test" or header or keyword == "end"):
                raise ScriptError(loc, "a file included inside a test holds steps only (no test, end or key: lines)")
            if keyword == "test":
                finish()
                current = self._start_test(rest, loc)
            elif keyword == "end" and not rest:
                if current is None:
                    raise ScriptError(loc, "'end' outside a test")
                finish()
            elif header and header.group(1) in ("suite", *HEADER_KEYS):
                key, value = header.group(1), header.group(2).strip()
                if key == "suite":
                    if current is not None or tests:
                        raise ScriptError(loc, "suite: belongs before the first test")
                    suite = value
                elif current is None:
                    if key != "tokens":
                        raise ScriptError(loc, f"{key}: outside a test (start one with 'test ID: title')")
                    file_tokens = self._tokens(value, loc)
                elif steps:
                    raise ScriptError(loc, f"{key}: belongs before the test's first step")
                else:
                    self._header(current, key, value, loc)
            elif keyword == "include":
                if not rest:
                    raise ScriptError(loc, "include needs a file name")
                if current is None:
                    included = self.parse_file(base / rest, loc)
                    variables.extend(included.variables)
                    tests.extend(included.tests)
                else:
                    included = self.parse_file(base / rest, loc, fragment=True)
                    steps = self._close_send(steps)
                    steps.extend(included.variables)
                    steps.extend(included.tests[0].steps)
            elif keyword == "set":
                setvar = self._set(rest, loc)
                if current is None:
                    variables.append(setvar)
                else:
                    steps = self._close_send(steps)
                    self._check_test_variable(setvar, steps, variables)
                    steps.append(setvar)
            elif current is None:
                what = repr(keyword) if keyword in STEP_KEYWORDS else "a line"
                raise ScriptError(loc, f"{what} outside a test (start one with 'test ID: title')")
            else:
                steps = self._step(steps, keyword, rest, loc)
        finish()
        _check_file_variables(variables)
        seen: dict[str, Location] = {}
        for t in tests:
            if t.id in seen:
                raise ScriptError(t.location, f"duplicate test ID {t.id} (first at {seen[t.id]})")
            seen[t.id] = t.location
        return Script(source, suite, tuple(variables), tuple(tests), tuple(self.warnings))

    # -- pieces --

    def _start_test(self, text: str, loc: Location) -> dict[str, object]:
        test_id, sep, title = text.partition(":")
        test_id = test_id.strip()
        if not sep or not title.strip():
            raise ScriptError(loc, "write 'test ID: title', e.g. 'test ISO_SELECT_01: SELECT MF by FID'")
        if not _ID.match(test_id):
            raise ScriptError(loc, f"test ID {test_id!r} must look like ISO_SELECT_01 (capitals, digits, underscores)")
        return {"id": test_id, "title": title.strip(), "location": loc}

    def _header(self, current: dict[str, object], key: str, value: str, loc: Location) -> None:
        if key == "tokens":
            current["tokens"] = self._tokens(value, loc)
        elif key == "pre":
            current["pre"] = (*current.get("pre", ()), value)  # type: ignore[misc]
        elif key == "destructive":
            if value.lower() not in ("yes", "no", "true", "false"):
                raise ScriptError(loc, "destructive: yes or no")
            current["destructive"] = value.lower() in ("yes", "true")
        elif key in ("purpose", "title") and key in current and key != "title":
            current[key] = f"{current[key]} {value}"  # long purposes continue on more lines
        else:
            current[key] = value

    @staticmethod
    def _tokens(value: str, loc: Location) -> tuple[str, ...]:
        tokens = tuple(t.strip() for t in value.split(",") if t.strip())
        for t in tokens:
            if not _TOKEN.match(t):
                raise ScriptError(loc, f"token {t!r}: letters, digits, '-', '_', '.'; '!' in front to exclude")
        return tokens

    @staticmethod
    def _set(rest: str, loc: Location) -> SetVariable:
        name, sep, value = rest.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise ScriptError(loc, "write 'set NAME = HEX'")
        return SetVariable(name, _hex_text(value, loc, what=f"value of {name}"), loc)

    def _check_test_variable(self, setvar: SetVariable, steps: list[Step], file_variables: list[SetVariable]) -> None:
        """``set A = ${A} ..`` inside a test, before the test or the file gave A a value: the
        value can only come from the card declaration, which is rarely what was meant."""
        if setvar.name not in variables_in(setvar.value):
            return
        known = {v.name for v in file_variables}
        for step in steps:
            if isinstance(step, SetVariable):
                known.add(step.name)
            elif isinstance(step, Send):
                known.update(c.name for c in step.captures)
        if setvar.name not in known:
            self.warnings.append(
                f"{setvar.location}: set {setvar.name} uses ${{{setvar.name}}} before this test or file gives it a "
                "value (only the card declaration can)"
            )

    def _close_send(self, steps: list[Step]) -> list[Step]:
        if steps and isinstance(steps[-1], Send):
            send = steps[-1]
            _check_send(send)
            if not any(isinstance(e, ExpectSW) for e in send.expectations):
                self.warnings.append(f"{send.location}: send without an 'sw' expectation accepts any status word")
        return steps

    def _step(self, steps: list[Step], keyword: str, rest: str, loc: Location) -> list[Step]:
        if keyword == "send":
            steps = self._close_send(steps)
            steps.append(Send(parse_command(rest, loc), location=loc))
            return steps
        if keyword in ("reset", "power-cycle"):
            if rest:
                raise ScriptError(loc, f"{keyword} takes no arguments (an ATR check goes on the next line: atr ...)")
            steps = self._close_send(steps)
            steps.append(Reset(cold=keyword == "power-cycle", location=loc))
            return steps
        if keyword == "fault":
            steps = self._close_send(steps)
            steps.append(_fault_step(rest, loc))
            return steps
        previous = steps[-1] if steps else None
        if keyword == "atr":
            if not isinstance(previous, Reset) or previous.atr is not None:
                raise ScriptError(loc, "atr follows a reset or power-cycle step (once)")
            steps[-1] = replace(previous, atr=_hex_text(rest, loc, wildcards=True, what="atr"))
            return steps
        if keyword in ("sw", "data", "tlv", "capture", "mask"):
            if not isinstance(previous, Send):
                raise ScriptError(loc, f"{keyword} follows a send step")
            steps[-1] = self._add_to_send(previous, keyword, rest, loc)
            return steps
        # The word is not echoed: this may be the first line of a file that is no script
        # (an include of the wrong file), and its content is nobody's business.
        close = difflib.get_close_matches(keyword.lower(), STEP_KEYWORDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScriptError(
            loc,
            f"unknown keyword; {hint}(steps: send, reset, power-cycle, set, include, fault; "
            "checks after a send: sw, data, tlv, capture, mask)",
        )

    def _add_to_send(self, send: Send, keyword: str, rest: str, loc: Location) -> Send:
        if keyword == "sw":
            alternatives = []
            for alt in rest.split("|"):
                pattern = _hex_text(alt, loc, wildcards=True, what="sw")
                if not _VAR.search(pattern) and len(pattern) != 4:
                    raise ScriptError(loc, f"status word {alt.strip()!r} must be 2 bytes, e.g. 90 00 or 63 C?")
                alternatives.append(pattern)
            if not rest.strip():
                raise ScriptError(loc, "sw needs a status word, e.g. 'sw 90 00'")
            return replace(send, expectations=(*send.expectations, ExpectSW(tuple(alternatives), loc)))
        if keyword == "data":
            return replace(send, expectations=(*send.expectations, self._data(rest, loc)))
        if keyword == "tlv":
            return replace(send, expectations=(*send.expectations, self._tlv(rest, loc)))
        if keyword == "capture":
            return replace(send, captures=(*send.captures, self._capture(rest, loc)))
        return replace(send, masks=Masks((*send.masks.ranges, parse_mask(rest, loc))))

    @staticmethod
    def _data(rest: str, loc: Location) -> Expectation:
        kind, _, value = rest.partition(" ")
        if kind == "empty" and not value:
            return ExpectLength(0, 0, loc)
        if kind == "length":
            match = _VAR.fullmatch(value.strip())
            if match:
                return ExpectLength(-1, -1, loc, match.group(1))
            low, high = _parse_length(value, loc)
            return ExpectLength(low, high, loc)
        if kind == "regex":
            try:
                re.compile(value.strip())
            except re.error as exc:
                raise ScriptError(loc, f"bad regular expression: {exc}") from None
            return ExpectRegex(value.strip(), loc)
        if kind == "prefix":
            return ExpectData(_hex_text(value, loc, wildcards=True, what="data prefix"), True, loc)
        if not rest.strip():
            raise ScriptError(loc, "data needs HEX, or: prefix HEX, regex RE, length N, empty")
        return ExpectData(_hex_text(rest, loc, wildcards=True, what="data"), False, loc)

    @staticmethod
    def _tlv(rest: str, loc: Location) -> ExpectTLV:
        path_text, _, tail = rest.partition(" ")
        path = _parse_tags(path_text, loc)
        tail = tail.strip()
        if tail in ("present", "absent"):
            return ExpectTLV(path, tail, "", loc)
        op, _, value = tail.partition(" ")
        if op == "length":
            try:
                return ExpectTLV(path, "length", str(int(value)), loc)
            except ValueError:
                raise ScriptError(loc, "tlv PATH length N (decimal)") from None
        if op in ("=", "prefix"):
            kind = "equals" if op == "=" else "prefix"
            return ExpectTLV(path, kind, _hex_text(value, loc, wildcards=True, what="tlv value"), loc)
        raise ScriptError(loc, "write 'tlv PATH = HEX', 'tlv PATH prefix HEX', 'tlv PATH length N', present or absent")

    @staticmethod
    def _capture(rest: str, loc: Location) -> Capture:
        name, sep, source = rest.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not _NAME.match(name):
            raise ScriptError(loc, "write 'capture NAME = data', 'data[a:b]', 'sw' or 'tlv PATH'")
        if source.startswith("tlv "):
            return Capture(name, "tlv", path=_parse_tags(source[4:].strip(), loc), location=loc)
        match = _SLICE.match(source.replace(" ", ""))
        if not match:
            raise ScriptError(loc, f"capture source {source!r}: data, data[a:b], sw or tlv PATH")
        return Capture(name, match.group(1), _int_or_none(match.group(2)), _int_or_none(match.group(3)), location=loc)


# -- checks for what can never work (conformance lint, and run before it sends anything) ----


def _check_file_variables(variables: list[SetVariable]) -> None:
    """File-level ``set`` lines are given values in file order (after the card's variables):
    one may use the card's variables and those set above it, never itself or one set below
    it, and no group of them may be defined through each other."""
    defined: dict[str, SetVariable] = {}
    for setvar in variables:
        defined.setdefault(setvar.name, setvar)  # the first definition counts, as when running
    cycle = _variable_cycle(defined)
    if cycle:
        first = defined[cycle[0]]
        if len(cycle) == 2:
            raise ScriptError(first.location, f"variable {first.name} is defined through itself")
        chain = " -> ".join(cycle)
        raise ScriptError(first.location, f"variables defined through each other: {chain}")
    seen: set[str] = set()
    for setvar in variables:
        for name in variables_in(setvar.value):
            if name in defined and name not in seen:
                later = defined[name].location
                raise ScriptError(
                    setvar.location, f"set {setvar.name} uses ${{{name}}}, which is set later (line {later.line})"
                )
        seen.add(setvar.name)


def _variable_cycle(defined: Mapping[str, SetVariable]) -> list[str]:
    """A cycle of references among file-level variables, as ``[A, B, A]``; ``[]`` if none.

    Iterative depth-first search, so a long chain of variables cannot exhaust the stack."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in defined:
        if root in state:
            continue
        path: list[str] = [root]
        pending: list[list[str]] = [[n for n in variables_in(defined[root].value) if n in defined]]
        state[root] = 1
        while path:
            if not pending[-1]:
                state[path.pop()] = 2
                pending.pop()
                continue
            name = pending[-1].pop()
            if state.get(name) == 1:
                return [*path[path.index(name) :], name]
            if name not in state:
                state[name] = 1
                path.append(name)
                pending.append([n for n in variables_in(defined[name].value) if n in defined])
    return []


_SW1_POSSIBLE = [f"{sw1:02X}" for sw1 in (*range(0x61, 0x70), *range(0x90, 0xA0))]
"""SW1 values a card can answer: '6X' or '9X', except '60' (ISO/IEC 7816-4:2005 §5.1.3)."""


def _check_send(send: Send) -> None:
    """Expectations of one send that no response can meet, and masks that cover no byte."""
    for expectation in send.expectations:
        if isinstance(expectation, ExpectSW):
            for pattern in expectation.alternatives:
                if "$" not in pattern and not any(nibbles_match(pattern[:2], sw1) for sw1 in _SW1_POSSIBLE):
                    raise ScriptError(
                        expectation.location,
                        f"status word {_spaced(pattern)} cannot occur: SW1 is 6X or 9X, never 60 "
                        "(ISO/IEC 7816-4:2005 §5.1.3)",
                    )
    low, high, exact = 0, None, None  # what the expectations allow for the data length
    for expectation in send.expectations:
        if isinstance(expectation, ExpectLength) and not expectation.variable:
            low = max(low, expectation.low)
            if expectation.high is not None:
                high = expectation.high if high is None else min(high, expectation.high)
        elif isinstance(expectation, ExpectData) and "$" not in expectation.pattern:
            n = len(expectation.pattern) // 2
            if expectation.prefix:
                low = max(low, n)
            else:
                low, high = max(low, n), n if high is None else min(high, n)
                exact = expectation
    if high is not None and low > high:
        culprit = exact or next(e for e in send.expectations if isinstance(e, ExpectLength | ExpectData))
        raise ScriptError(
            culprit.location,
            f"the data expectations of this send contradict each other: at least {low} bytes and at most {high}",
        )
    for start, end in send.masks.ranges:
        text = f"mask data{_slice_text(start, end)}"
        if (start is not None and end is not None and (start >= 0) == (end >= 0) and start >= end) or end == 0:
            raise ScriptError(send.location, f"{text} covers no byte (empty range)")
        if high is not None and not range(high)[slice(start, end)]:
            raise ScriptError(send.location, f"{text} covers none of the {high} data bytes the expectations allow")
    _check_tlv_lengths(send)


def _check_tlv_lengths(send: Send) -> None:
    """``tlv P length N`` with ``tlv P = HEX`` of another length, or ``present`` with ``absent``."""
    lengths: dict[tuple[int, ...], tuple[int, ExpectTLV]] = {}
    presence: dict[tuple[int, ...], tuple[str, ExpectTLV]] = {}
    for expectation in send.expectations:
        if not isinstance(expectation, ExpectTLV):
            continue
        if expectation.op in ("present", "absent"):
            other = presence.setdefault(expectation.path, (expectation.op, expectation))
            if other[0] != expectation.op:
                raise ScriptError(expectation.location, f"TLV {expectation.path_text} cannot be present and absent")
            continue
        if expectation.op == "length":
            n = int(expectation.value)
        elif expectation.op == "equals" and "$" not in expectation.value:
            n = len(expectation.value) // 2
        else:
            continue
        known, where = lengths.setdefault(expectation.path, (n, expectation))
        if known != n:
            raise ScriptError(
                expectation.location,
                f"TLV {expectation.path_text} cannot be {n} bytes long here and {known} bytes at line "
                f"{where.location.line}",
            )


def parse_mask(text: str, location: Location) -> tuple[int | None, int | None]:
    """``data`` or ``data[START:END]``: a byte range of the response data (Python slice)."""
    match = _SLICE.match(text.replace(" ", ""))
    if not match or match.group(1) != "data":
        raise ScriptError(location, "write 'mask data' or 'mask data[START:END]' (byte offsets)")
    return _int_or_none(match.group(2)), _int_or_none(match.group(3))


def _merge_tokens(file_tokens: tuple[str, ...], test_tokens: tuple[str, ...]) -> tuple[str, ...]:
    """A test's tokens add to the file's ``tokens:`` line, in order, without repeats."""
    return tuple(dict.fromkeys((*file_tokens, *test_tokens)))


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text else None


def parse_script(text: str, source: str = "<string>", base: Path | None = None) -> Script:
    """Parse script text; ``include`` paths are relative to ``base``."""
    return _Parser().parse_text(text, source, base or Path.cwd())


def load_script(path: str | Path) -> Script:
    """Parse a script file; any problem raises :class:`ScriptError` naming file and line."""
    return _Parser().parse_file(Path(path))


def script_files(paths: list[Path]) -> list[Path]:
    """Files, and directories searched recursively for ``*.apdu`` (fragments ``_*`` left
    out), in sorted order."""
    out: list[Path] = []
    for path in paths:
        files = sorted(path.rglob(f"*{SCRIPT_SUFFIX}")) if path.is_dir() else [path]
        out.extend(f for f in files if not f.name.startswith("_"))
    return out


def load_scripts(paths: list[Path], errors: list[ScriptError] | None = None) -> list[Script]:
    """The scripts of :func:`script_files`. With ``errors``, a file that does not parse adds
    its error there and the others are still read (so every broken file is reported);
    without, the first error is raised."""
    out: list[Script] = []
    for f in script_files(paths):
        try:
            out.append(load_script(f))
        except ScriptError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return out
