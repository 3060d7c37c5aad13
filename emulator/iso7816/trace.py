"""APDU traces as JSON lines, with PIN data redacted.

One line per message: ``{"time", "direction": "command"|"response", "hex", ...}`` with the
decoded instruction name on commands and the status-word name on responses. Responses
carry ``duration_ms``, the time the card took as the reader saw it (with the fault
layer's latency model on, ``modelled_ms`` too: the model's unscaled figure), so relying
parties see their timeout margins. The data
field of commands that carry reference data (VERIFY, CHANGE REFERENCE DATA, RESET RETRY
COUNTER, ISO 7816-4 §11.5.6-§11.5.10), in any class, is replaced by ``**`` per byte, so
PINs never reach a trace file.
"""

from __future__ import annotations

import json
import threading
import time
from typing import IO, Any

from .apdu import ClassByte, CommandAPDU
from .sw import CardError, describe_ins, describe_sw

SECRET_INS = frozenset({0x20, 0x21, 0x24, 0x25, 0x2C, 0x2D})
"""Instructions whose data field carries reference data (PINs, PUKs, new PINs), in every
class byte: VERIFY (20/21, ISO/IEC 7816-4 §11.5.6), CHANGE REFERENCE DATA (24/25, §11.5.7),
RESET RETRY COUNTER (2C/2D, §11.5.10); the odd INS forms carry it in BER-TLV data objects.
Proprietary classes use the same instruction bytes for their PIN commands (the MOICA
card's ``80 20`` plain and ``8C 20`` protected VERIFY, docs/moica-card.md), so the class
byte is not consulted: a command is masked whether or not any card supports it."""


def carries_secret(command: bytes) -> bool:
    """Whether the command's data field must never be shown (see :data:`SECRET_INS`)."""
    return len(command) > 4 and command[1] in SECRET_INS


def redacted_hex(command: bytes) -> str:
    """The command as upper-case hex, with the data field of PIN-carrying commands masked
    as ``**`` per byte; Lc and Le stay readable. A PIN-carrying command whose length
    fields do not parse is masked from the fifth byte on: nothing after the header can be
    trusted to be a length. The one masking function: every place that shows a command
    (errors, logs, traces, reports, imported scripts) uses it."""
    if not carries_secret(command):
        return command.hex().upper()
    try:
        cmd = CommandAPDU.parse(command)
    except (ValueError, CardError):  # ApduFormatError is a CardError (6700)
        return command[:4].hex().upper() + "**" * (len(command) - 4)
    if not cmd.data:
        return command.hex().upper()
    start = 7 if cmd.extended else 5
    end = start + len(cmd.data)
    return command[:start].hex().upper() + "**" * len(cmd.data) + command[end:].hex().upper()


def redacted_spaced(command: bytes) -> str:
    """:func:`redacted_hex` with a space between bytes (``00 20 00 01 08 ** ** ...``)."""
    text = redacted_hex(command)
    return " ".join(text[i : i + 2] for i in range(0, len(text), 2))


def describe_command(command: bytes) -> dict[str, Any]:
    if len(command) < 4:
        return {"ins": "MALFORMED"}
    info: dict[str, Any] = {"ins": describe_ins(command[1])}
    if command[0] < 0x80:
        info["channel"] = ClassByte.decode(command[0]).channel
    return info


def describe_response(response: bytes) -> dict[str, Any]:
    if len(response) < 2:
        return {"sw": "", "sw_name": "MALFORMED"}
    sw = (response[-2] << 8) | response[-1]
    return {"sw": f"{sw:04X}", "sw_name": describe_sw(sw), "data_length": len(response) - 2}


class JsonLinesTracer:
    """Writes each exchange to a text stream as two JSON lines; thread-safe."""

    def __init__(self, stream: IO[str], source: str = "card") -> None:
        self.stream = stream
        self.source = source
        self._lock = threading.Lock()

    def __call__(
        self,
        command: bytes,
        response: bytes,
        start: float,
        duration: float | None = None,
        modelled: float | None = None,
    ) -> None:
        """Two lines for one exchange. ``duration``: seconds the card took as the reader saw
        it (the fault layer's latency model and delays included; default: now - start);
        ``modelled``: the latency model's unscaled figure, when the model is on."""
        end = time.time()
        took = end - start if duration is None else duration
        timing: dict[str, Any] = {"duration_ms": round(took * 1000, 3)}
        if modelled is not None:
            timing["modelled_ms"] = round(modelled * 1000, 3)
        lines = [
            {
                "time": start,
                "source": self.source,
                "direction": "command",
                "hex": redacted_hex(command),
                **describe_command(command),
            },
            {
                "time": end,
                "source": self.source,
                "direction": "response",
                "hex": response.hex().upper(),
                "elapsed_ms": round((end - start) * 1000, 3),
                **timing,
                **describe_response(response),
            },
        ]
        text = "".join(json.dumps(line) + "\n" for line in lines)
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def event(self, name: str, **fields: Any) -> None:
        """A non-APDU event (power on, reset, connect) in the same stream."""
        with self._lock:
            self.stream.write(json.dumps({"time": time.time(), "source": self.source, "event": name, **fields}) + "\n")
            self.stream.flush()
