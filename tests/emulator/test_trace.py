"""JSON-lines APDU traces with PIN data redacted."""

import io
import json

from eidemu.emulator.iso7816.trace import JsonLinesTracer, redacted_hex

from .conftest import PIN_OK, Terminal


def test_pin_commands_are_redacted_in_any_class():
    assert redacted_hex(bytes.fromhex("0020000108313233343536FFFF")) == "0020000108" + "**" * 8
    assert redacted_hex(bytes.fromhex("8C2000010401020304")) == "8C20000104" + "**" * 4
    assert redacted_hex(bytes.fromhex("002C000008AABBCCDDEEFF001100")) == "002C000008" + "**" * 8 + "00"
    assert redacted_hex(bytes.fromhex("00200001")) == "00200001"
    assert redacted_hex(bytes.fromhex("00B0000010")) == "00B0000010"


def test_tracer_writes_two_lines_per_exchange_without_the_pin(card):
    stream = io.StringIO()
    card.tracer = JsonLinesTracer(stream, source="test")
    send = Terminal(card)
    send(PIN_OK)
    send("00A4000C023F00")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 4
    assert lines[0]["direction"] == "command" and lines[0]["ins"] == "VERIFY" and lines[0]["channel"] == 0
    assert lines[1] == {**lines[1], "direction": "response", "sw": "9000", "sw_name": "NO_ERROR"}
    assert lines[2]["hex"] == "00A4000C023F00" and lines[2]["ins"] == "SELECT"
    assert "313233343536" not in stream.getvalue()
