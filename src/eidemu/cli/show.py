"""Readable rendering of APDU exchanges for the command line."""

from __future__ import annotations

from eidemu.emulator.iso7816.sw import describe_ins, describe_sw
from eidemu.emulator.iso7816.trace import redacted_hex


def spaced(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def _shorten(hex_text: str, max_bytes: int | None) -> str:
    if max_bytes is None or len(hex_text) <= 2 * max_bytes:
        return spaced(hex_text)
    return f"{spaced(hex_text[: 2 * max_bytes])} ... ({len(hex_text) // 2} bytes)"


def format_exchange(command: bytes, response: bytes, note: str = "", max_bytes: int | None = None) -> str:
    """Two lines: '>' the command (PIN data masked) and '<' the response with names.

    With ``max_bytes``, long commands and data fields show their first bytes and a length.
    """
    ins = describe_ins(command[1]) if len(command) > 1 else "MALFORMED"
    out = f"> {_shorten(redacted_hex(command), max_bytes)}    {ins}{'  ' + note if note else ''}\n"
    sw = (response[-2] << 8) | response[-1]
    data = response[:-2]
    body = _shorten(data.hex().upper(), max_bytes) + " " if data else ""
    out += f"< {body}{sw >> 8:02X} {sw & 0xFF:02X}    {describe_sw(sw)}"
    if data and all(32 <= b < 127 for b in data) and 4 <= len(data) <= (max_bytes or len(data)):
        out += f'  "{data.decode("ascii")}"'
    return out
