"""Fault steps in APDU scripts (``fault arm RULE`` / ``fault clear``) and the ``faulty_card``
pytest fixture, with the citizen-certificate relying-party flow "signing while the card is
pulled out reports a clear error and leaves no half-written state"."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from eidemu.conformance.connection import CardConnectionError
from eidemu.conformance.moica import MoicaCard
from eidemu.conformance.runner import CardUnderTest, Outcome, run_test
from eidemu.conformance.script import FaultStep, ScriptError, format_script, parse_script

ROOT = Path(__file__).resolve().parents[2]
PIN = json.loads((ROOT / "fixtures/pki/identities/g2-valid-1/identity.json").read_text("utf-8"))["initial_pin"]

SCRIPT = """\
test FAULT_DEMO_01: a memory failure answered instead of READ BINARY
  purpose: the fault layer answers 65 81 once; the next READ BINARY works.
  spec: ISO/IEC 7816-4:2005 §5.1.3, Table 6 (6581)
send 00 A4 04 0C 07 A0000002471001
  sw 90 00
fault arm fault=status sw=6581 command=00B0
send 00 B0 81 00 05
  sw 65 81
send 00 B0 81 00 05
  sw 90 00
  data 48 65 6C 6C 6F
fault arm fault=status sw=6F00 command=00B0 times=0
fault clear
send 00 B0 81 00 05
  sw 90 00
end
"""


def test_script_fault_steps_parse_and_format_back() -> None:
    script = parse_script(SCRIPT, "faults.apdu")
    steps = script.tests[0].steps
    faults = [s for s in steps if isinstance(s, FaultStep)]
    assert faults == [
        FaultStep("arm", "fault=status command=00B0 sw=6581"),
        FaultStep("arm", "fault=status command=00B0 sw=6F00 times=0"),
        FaultStep("clear"),
    ]
    again = parse_script(format_script(script), "again.apdu")
    assert again.tests[0].steps == steps


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("fault explode", "x.apdu:3: fault steps are 'fault arm RULE' or 'fault clear' (docs/faults.md)"),
        ("fault arm fault=status", "x.apdu:3: fault arm: give a trigger (apdu, command, after or probability)"),
        ("fault arm fault=status apdu=1 sw=65", "x.apdu:3: fault arm.sw: must be 4 hex digits"),
    ],
)
def test_bad_fault_steps(line: str, message: str) -> None:
    text = f"test FAULT_X_01: x\n  purpose: x\n{line}\nend\n"
    with pytest.raises(ScriptError) as info:
        parse_script(text, "x.apdu")
    assert str(info.value) == message


def test_script_with_fault_steps_runs_on_the_emulator() -> None:
    script = parse_script(SCRIPT, "faults.apdu")
    result = run_test(CardUnderTest("emulator:iso-demo"), script, script.tests[0])
    assert result.outcome is Outcome.PASSED, result.message
    assert [s.kind for s in result.steps] == ["send", "fault", "send", "send", "fault", "fault", "send"]


def test_card_pulled_out_during_signing_with_the_fixture(faulty_card) -> None:
    """Signing while the card is pulled out: a clear error, and no half-written state: no
    result to fetch, no try used, a new VERIFY needed, the signature then works."""
    card = faulty_card("moica-g2-valid-1", "fault=remove command=80EA02")
    client = MoicaCard(card)
    client.verify_pin(PIN)
    digest = hashlib.sha256(b"contract").digest()
    with pytest.raises(CardConnectionError, match=r"^transmit: card removed from the reader$"):
        client.sign_sha256(5, digest)
    with pytest.raises(CardConnectionError, match=r"^transmit: card removed from the reader$"):
        client.pin_status()
    card.reinsert()
    assert card.transmit(bytes.fromhex("80C1000000")) == b"\x69\x85"
    assert client.pin_status().tries_left == 3
    client.verify_pin(PIN)
    assert len(client.sign_sha256(5, digest)) == 256


def test_fixture_rules_separated_by_semicolons(faulty_card) -> None:
    card = faulty_card("iso-demo", "fault=status sw=6581 apdu=1; fault=status sw=6985 apdu=2", state=False)
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x65\x81"
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x69\x85"
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"


def test_after_one_successful_signature_the_next_one_fails(faulty_card) -> None:
    """``after: 1`` counted on 80 EA 02: the first signature works, the second answers the
    memory failure 6581 at its last half."""
    from eidemu.conformance.moica import MoicaError

    card = faulty_card("moica-g2-valid-1", "fault=status sw=6581 command=80EA02 after=1", state=False)
    client = MoicaCard(card)
    client.verify_pin(PIN)
    digest = hashlib.sha256(b"one").digest()
    assert len(client.sign_sha256(5, digest)) == 256
    with pytest.raises(MoicaError) as info:
        client.sign_sha256(5, digest)
    assert info.value.sw == 0x6581
    assert [event.apdu for event in card.faulty.events] == [6]  # VERIFY, EA 82, EA 02, C1, EA 82, EA 02
