"""Turn formats people already have into test scripts.

- ``scriptor``: pcsc-tools' ``scriptor`` input (one APDU per line, ``reset``, ``#``
  comments, ``exit``) and its session output (``> command`` / ``< response : text``).
- ``hex``: plain traces, one APDU per line, optionally followed by the response after
  ``->``, ``=>`` or ``|``.
- ``trace``: the JSON-lines traces of :mod:`eidemu.emulator.iso7816.trace` (``eidemu apdu --trace``,
  ``eidemu conformance run --trace``, ``eidemu record``).

Every importer returns a :class:`~eidemu.conformance.script.TestCase`; recorded responses become
expectations (status word, and the data exactly, except where the data is fresh each time:
challenges, signatures, key pairs, for which only the length is kept and the step is
masked). Redacted PIN data (``**`` in traces) becomes a ``${PIN_xx}`` variable, or
``${WRONG_PIN_xx}`` where the recorded card refused it with 63Cx (ISO/IEC 7816-4:2020 §11.5.6:
a session that tries a wrong PIN and then the right one used two different secrets).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from eidemu.emulator.formats.files import TRACE_LIMIT, InputFileError, read_text_bounded
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU, parse_hex
from eidemu.emulator.iso7816.sw import INS, CardError, describe_ins
from eidemu.emulator.iso7816.trace import redacted_hex

from .script import (
    CommandTemplate,
    Expectation,
    ExpectData,
    ExpectLength,
    ExpectSW,
    Location,
    Masks,
    Reset,
    ScriptError,
    Send,
    Step,
    TestCase,
    parse_mask,
)

FORMATS = ("scriptor", "hex", "trace")

# Responses that differ on every run by design (ISO/IEC 7816-4:2020 §11.5.3 GET CHALLENGE; ISO 7816-8
# PERFORM SECURITY OPERATION, INTERNAL/GENERAL AUTHENTICATE, GENERATE ASYMMETRIC KEY PAIR).
FRESH_RESPONSE_INS = frozenset(
    {
        INS.GET_CHALLENGE,
        INS.INTERNAL_AUTHENTICATE,
        INS.GENERAL_AUTHENTICATE,
        INS.PERFORM_SECURITY_OPERATION,
        INS.GENERATE_ASYMMETRIC_KEY_PAIR,
    }
)
# Lines scriptor prints around a session (pcsc-tools scriptor.pl), not exchanges.
SCRIPTOR_BANNERS = ("Using ", "Reading commands", "Trying ", "Unknown protocol")
_SECRET_VARIABLE = {
    0x20: "PIN",
    0x21: "PIN",
    0x24: "NEW_REFERENCE",
    0x25: "NEW_REFERENCE",
    0x2C: "UNBLOCK",
    0x2D: "UNBLOCK",
}


def expectations_for(command: bytes, response: bytes | None) -> tuple[tuple[Expectation, ...], Masks, str]:
    """Expectations that a recorded response implies, the masks and a comment."""
    if response is None:
        return (ExpectSW(("9000", "61??")),), Masks(), "no response recorded: success assumed"
    parsed = ResponseAPDU.parse(response)
    sw: Expectation = ExpectSW((f"{parsed.sw:04X}",))
    if not parsed.data:
        return (sw, ExpectLength(0, 0)), Masks(), ""
    ins = command[1] if len(command) > 1 else -1
    if ins in FRESH_RESPONSE_INS:
        n = len(parsed.data)
        return (sw, ExpectLength(n, n)), Masks(((None, None),)), f"{describe_ins(ins)}: data differs on every run"
    return (sw, ExpectData(parsed.data.hex().upper())), Masks(), ""


def send_step(command_hex: str, response: bytes | None, location: Location) -> Send:
    """A step from a command written as hex, ``**`` marking redacted bytes.

    A PIN-carrying command recorded in clear (a scriptor script, a hex trace) is masked
    here too (:func:`~eidemu.emulator.iso7816.trace.redacted_hex`): the imported script
    asks for the secret as a variable instead of repeating it."""
    try:
        known = bytes.fromhex(command_hex.replace("*", "0"))
    except ValueError:
        raise ScriptError(location, "command is not hex") from None
    if len(known) < 4:
        raise ScriptError(location, "a command APDU has at least 4 header bytes")
    if "*" not in command_hex:
        command_hex = redacted_hex(known)
    refused = response is not None and len(response) >= 2 and response[-2] == 0x63 and response[-1] & 0xF0 == 0xC0
    template = _template(command_hex, location, refused)
    expectations, masks, comment = expectations_for(known, response)
    return Send(template, expectations, (), masks, comment, location)


def _template(command_hex: str, location: Location, refused: bool = False) -> CommandTemplate:
    if "*" not in command_hex:
        return CommandTemplate(raw=command_hex.upper())
    # Reference data was redacted (eidemu.emulator.iso7816.trace.redacted_hex): restore the structure
    # and let the user supply the secret as a variable.
    header = command_hex[:8].upper()
    try:
        ins, p2 = int(header[2:4], 16), header[6:8]
        int(p2, 16)
        lc = int(command_hex[8:10], 16)
        extended = lc == 0
        if extended:  # ISO/IEC 7816-4:2020 §5.1: 00 then a two-byte Lc
            lc = int(command_hex[10:14], 16)
    except ValueError:
        raise ScriptError(location, "redacted command without a readable header and Lc") from None
    name = f"{'WRONG_' if refused else ''}{_SECRET_VARIABLE.get(ins, 'SECRET')}_{p2}"
    body_end = (14 if extended else 10) + 2 * lc
    le = command_hex[body_end:] or None
    le_digits = 4 if extended else 2
    if not lc or len(command_hex) < body_end or (le is not None and (len(le) != le_digits or "*" in le)):
        raise ScriptError(location, "redacted command whose length fields do not match its data")
    return CommandTemplate(header=header, data=f"${{{name}}}", le=le)


def _hex_apdu(text: str, location: Location) -> bytes:
    try:
        raw = parse_hex(text)
        CommandAPDU.parse(raw)
    except (ValueError, CardError) as exc:
        raise ScriptError(location, f"not a command APDU: {exc}") from None
    return raw


def _response(text: str, location: Location) -> bytes:
    text = text.split(" : ", 1)[0]  # scriptor appends ": Normal processing."
    try:
        raw = parse_hex(text)
    except ValueError as exc:
        raise ScriptError(location, f"response: {exc}") from None
    if len(raw) < 2:
        raise ScriptError(location, "a response ends with a 2-byte status word")
    return raw


def from_lines(text: str, source: str, style: str) -> list[Step]:
    """scriptor and hex share a shape: commands, optional responses, reset, comments."""
    steps: list[Step] = []
    pending: tuple[bytes, Location] | None = None

    def flush(response: bytes | None) -> None:
        nonlocal pending
        if pending is not None:
            command, loc = pending
            steps.append(send_step(command.hex(), response, loc))
            pending = None

    for number, raw_line in enumerate(text.splitlines(), 1):
        loc = Location(source, number)
        line = raw_line.strip()
        if not line or line.startswith(("#", "//")) or (style == "scriptor" and line.startswith(SCRIPTOR_BANNERS)):
            continue
        lower = line.lower()
        if lower in ("exit", "quit"):
            break
        if lower == "reset":
            flush(None)
            steps.append(Reset(location=loc))
            continue
        if line.startswith("<"):
            if pending is None:
                raise ScriptError(loc, "a response without a command before it")
            flush(_response(line[1:], loc))
            continue
        if line.startswith(">"):
            flush(None)
            pending = (_hex_apdu(line[1:], loc), loc)
            continue
        if style == "hex":
            parts = re.split(r"->|=>|\|", line, maxsplit=1)
            flush(None)
            command = _hex_apdu(parts[0], loc)
            if len(parts) == 2:
                steps.append(send_step(command.hex(), _response(parts[1], loc), loc))
            else:
                pending = (command, loc)
            continue
        flush(None)
        pending = (_hex_apdu(line, loc), loc)
    flush(None)
    return steps


def from_trace(text: str, source: str) -> list[Step]:
    """Steps from an :mod:`eidemu.emulator.iso7816.trace` JSON-lines trace.

    A response line may carry ``"mask": ["data"]`` or ``["data[4:12]"]`` to declare bytes
    that legitimately differ; they are masked in the step.
    """
    steps: list[Step] = []
    pending: tuple[str, Location] | None = None
    for number, raw_line in enumerate(text.splitlines(), 1):
        loc = Location(source, number)
        if not raw_line.strip():
            continue
        try:
            line = json.loads(raw_line)
        except RecursionError:
            raise ScriptError(loc, "not a trace line: nested too deeply") from None
        except ValueError as exc:
            raise ScriptError(loc, f"not JSON: {exc}") from None
        if not isinstance(line, dict):
            raise ScriptError(loc, "a trace line is a JSON object")
        if "event" in line:
            if line["event"] in ("reset", "power_on", "power-on", "power_cycle", "power-cycle"):
                if steps or pending:
                    steps.append(Reset(cold=line["event"] != "reset", location=loc))
            continue
        direction, hex_text = line.get("direction"), line.get("hex")
        if not isinstance(hex_text, str):
            raise ScriptError(loc, "trace line without 'hex'")
        if direction == "command":
            if pending is not None:
                steps.append(send_step(pending[0], None, pending[1]))
            pending = (hex_text, loc)
        elif direction == "response":
            if pending is None:
                raise ScriptError(loc, "a response without a command before it")
            step = send_step(pending[0], _response(hex_text, loc), pending[1])
            masks = _trace_masks(line.get("mask"), loc)
            if masks.ranges:
                step = _masked(step, masks)
            steps.append(step)
            pending = None
        else:
            raise ScriptError(loc, "direction: expected command or response")
    if pending is not None:
        steps.append(send_step(pending[0], None, pending[1]))
    return steps


def _trace_masks(value: object, loc: Location) -> Masks:
    items = value if isinstance(value, list) else [] if value is None else [value]
    return Masks(tuple(parse_mask(str(item), loc) for item in items))


def _masked(step: Send, masks: Masks) -> Send:
    return replace(step, masks=Masks((*step.masks.ranges, *masks.ranges)))


def read_trace_text(path: Path) -> str:
    """A trace or session file's text, bounded (:func:`~eidemu.emulator.formats.files.read_bounded`)."""
    try:
        return read_text_bounded(path, TRACE_LIMIT, "trace")
    except FileNotFoundError:
        raise ScriptError(Location(str(path), 0), "cannot read: no such file") from None
    except InputFileError as exc:
        raise ScriptError(Location(str(path), 0), str(exc).partition(": ")[2]) from None


def import_file(path: Path, fmt: str, test_id: str | None = None, title: str | None = None) -> TestCase:
    """One test case holding every exchange of the file."""
    text = read_trace_text(path)
    if fmt == "trace":
        steps = from_trace(text, str(path))
    elif fmt in ("scriptor", "hex"):
        steps = from_lines(text, str(path), fmt)
    else:
        raise ValueError(f"unknown import format {fmt!r} (known: {', '.join(FORMATS)})")
    if not any(isinstance(s, Send) for s in steps):
        raise ScriptError(Location(str(path), 0), "no command APDUs found")
    stem = re.sub(r"[^A-Z0-9]+", "_", path.stem.upper()).strip("_") or "SCRIPT"
    return TestCase(
        id=test_id or f"IMPORTED_{stem}_01",
        title=title or f"imported from {path.name} ({fmt})",
        purpose=f"The card answers as recorded in {path.name}.",
        steps=tuple(steps),
        location=Location(str(path), 1),
    )
