"""A card that does no work, to measure what a transport costs on its own.

It answers every command at once: ``9000``, or the command itself followed by ``9000``
(so that response sizes match a real exchange). Benchmarks use it as the floor of a stack
(pcscd + vpcd + pyscard) and tests use it to check framing with known answers.
"""

from __future__ import annotations

ECHO_ATR = bytes.fromhex("3B80800101")  # T=0 and T=1 offered, no historical bytes


class EchoCard:
    """The floor of a transport: answers each command without processing it."""

    def __init__(self, *, echo_command: bool = False, atr: bytes = ECHO_ATR) -> None:
        self.atr = atr
        self.echo_command = echo_command

    def transmit(self, raw: bytes) -> bytes:
        return raw + b"\x90\x00" if self.echo_command else b"\x90\x00"

    def power_on(self) -> bytes:
        return self.atr

    def power_off(self) -> None:
        pass

    def reset(self) -> bytes:
        return self.atr
