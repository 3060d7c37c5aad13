"""APDU traces as JSON lines, with PIN data redacted.

One line per message: ``{"time", "direction": "command"|"response", "hex", ...}`` with the
decoded instruction name on commands and the status-word name on responses. The data
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
from .sw import describe_ins, describe_sw

SECRET_INS = frozenset({0x20, 0x24, 0x2C})


def redacted_hex(command: bytes) -> str:
    """The command as hex, with the data field of PIN-carrying commands masked."""
    if len(command) > 5 and command[1] in SECRET_INS:
        try:
            cmd = CommandAPDU.parse(command)
        except ValueError:
            return command[:4].hex().upper() + "**" * (len(command) - 4)
        if cmd.data:
            start = 7 if cmd.extended else 5
            end = start + len(cmd.data)
            return command[:start].hex().upper() + "**" * len(cmd.data) + command[end:].hex().upper()
    return command.hex().upper()


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

    def __call__(self, command: bytes, response: bytes, start: float) -> None:
        end = time.time()
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
