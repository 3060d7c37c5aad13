"""``eidemu record`` on the real stack: iso-demo in vpcd slot 0 stands in for the real card,
the relay serves it into slot 1, and pyscard drives slot 1 as an application would."""

from __future__ import annotations

import json
import signal

from eidemu.cli import main as eidemu
from eidemu.conformance.pcsc import PcscConnection
from eidemu.conformance.runner import CardUnderTest, Outcome, run_test
from eidemu.conformance.script import parse_script

from .conftest import READER0, READER1, start_cli, wait_for_card

ATR = bytes.fromhex("3B888001454944454D5530313A")
SESSION = [  # (command, the response iso-demo gives)
    ("00A4040C07A0000002471001", "9000"),
    ("00B0810010", b"Hello from eidem".hex() + "9000"),
    ("00200001", "63C3"),
    ("0020000108393939393939FFFF", "63C2"),  # a wrong PIN
    ("0020000108313233343536FFFF", "9000"),  # the right one: "123456" must not reach the trace
    ("00A4020C025002", "9000"),
    ("00B0000005", b"secre".hex() + "9000"),  # readable only after VERIFY
    ("0084000008", None),  # GET CHALLENGE: fresh every time
]


def test_record_relays_a_session_and_the_trace_becomes_a_passing_script(demo_card, stack, tmp_path):
    trace = tmp_path / "session.jsonl"
    process = start_cli(stack, "record", "--reader", READER0, "--slot", "1", "--out", str(trace))
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == (
            f"relaying '{READER0}' (ATR 3B 88 80 01 45 49 44 45 4D 55 30 31 3A) into reader '{READER1}' "
            f"(vpcd localhost:{stack.port + 1}); recording to {trace}\n"
        )
        wait_for_card(READER1)
        with PcscConnection(READER1) as app:
            assert app.atr == ATR  # the relay shows the real card's ATR
            for command, expected in SESSION:
                response = app.transmit(bytes.fromhex(command))
                if expected is None:
                    assert len(response) == 10 and response[-2:] == b"\x90\x00"
                else:
                    assert response.hex().upper() == expected.upper()
            assert app.reconnect("reset") == ATR  # a warm reset reaches the real card: PIN state gone
            assert app.transmit(bytes.fromhex("00200001")) == bytes.fromhex("63C3")  # not 9000: verified no more
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out == f"stopped: {len(SESSION) + 1} exchange(s) recorded to {trace}\n"
    wait_for_card(READER1, present=False)

    lines = [json.loads(line) for line in trace.read_text("utf-8").splitlines()]
    assert lines[0]["event"] == "record" and lines[0]["reader"] == READER0
    commands = [x["hex"] for x in lines if x.get("direction") == "command"]
    responses = [x["hex"] for x in lines if x.get("direction") == "response"]
    masked = [c if not c.startswith("0020000108") else "0020000108" + "**" * 8 for c, _ in SESSION]
    assert commands == [*masked, "00200001"]
    assert responses[:7] == [r.upper() for _, r in SESSION[:7] if r is not None]
    assert len(responses[7]) == 20 and responses[8] == "63C3"
    assert [x["event"] for x in lines if "event" in x] == ["record", "reset", "power-off"]  # off: relay removed
    text = trace.read_text("utf-8")
    assert "313233343536" not in text and "393939393939" not in text

    # The recorded trace as a script: passes against the emulator with the PIN given as a variable.
    script_path = tmp_path / "session.apdu"
    assert eidemu(["conformance", "import", "--from", "trace", str(trace), "-o", str(script_path)]) == 0
    script_text = script_path.read_text("utf-8")
    assert "${PIN_01}" in script_text and "${WRONG_PIN_01}" in script_text and "313233343536" not in script_text
    script = parse_script(script_text, str(script_path))
    (test,) = script.tests
    card = CardUnderTest("emulator:iso-demo")
    pins = {"PIN_01": bytes.fromhex("313233343536FFFF"), "WRONG_PIN_01": bytes.fromhex("393939393939FFFF")}
    card.declaration = card.declaration.merged(variables=pins)
    result = run_test(card, script, test)
    assert result.outcome == Outcome.PASSED, result.message
    # ...and it can fail: given the wrong PIN as PIN_01, the card refuses it.
    card.declaration = card.declaration.merged(variables={"PIN_01": bytes.fromhex("393939393939FFFF")})
    result = run_test(card, script, test)
    assert result.outcome == Outcome.FAILED
    assert "status word: expected 90 00, received 63 C1 (PIN_TRIES_LEFT(1))" in result.message
