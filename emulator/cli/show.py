"""Readable rendering of APDU exchanges for the command line."""

from __future__ import annotations

from emulator.iso7816.sw import describe_ins, describe_sw
from emulator.trace import redacted_hex


def spaced(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def format_exchange(command: bytes, response: bytes, note: str = "") -> str:
    """Two lines: '>' the command (PIN data masked) and '<' the response with names."""
    ins = describe_ins(command[1]) if len(command) > 1 else "MALFORMED"
    out = f"> {spaced(redacted_hex(command))}    {ins}{'  ' + note if note else ''}\n"
    sw = (response[-2] << 8) | response[-1]
    data = response[:-2]
    body = spaced(data.hex().upper()) + " " if data else ""
    out += f"< {body}{sw >> 8:02X} {sw & 0xFF:02X}    {describe_sw(sw)}"
    if data and all(32 <= b < 127 for b in data) and len(data) >= 4:
        out += f'  "{data.decode("ascii")}"'
    return out
