"""A card that does no work, to measure what a transport costs on its own.

It answers every command at once: ``9000``, or the command itself followed by ``9000``
(so that response sizes match a real exchange), or a fixed ``reply``. Benchmarks use it as
the floor of a stack (pcscd + vpcd + pyscard) and tests use it to check framing with known
answers; it records the power events it receives, in order, in :attr:`EchoCard.events`.
"""

from __future__ import annotations

ECHO_ATR = bytes.fromhex("3B80800101")  # T=0 and T=1 offered, no historical bytes


class EchoCard:
    """The floor of a transport: answers each command without processing it."""

    def __init__(self, *, echo_command: bool = False, atr: bytes = ECHO_ATR, reply: bytes | None = None) -> None:
        self.atr = atr
        self.echo_command = echo_command
        self.reply = reply  # when set, the answer to every command
        self.events: list[str] = []  # "on", "off", "reset" as the transport delivers them

    def transmit(self, raw: bytes) -> bytes:
        if self.reply is not None:
            return self.reply
        return raw + b"\x90\x00" if self.echo_command else b"\x90\x00"

    def power_on(self) -> bytes:
        self.events.append("on")
        return self.atr

    def power_off(self) -> None:
        self.events.append("off")

    def reset(self) -> bytes:
        self.events.append("reset")
        return self.atr
