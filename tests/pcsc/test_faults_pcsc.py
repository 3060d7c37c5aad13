"""Every fault kind through the real stack (pcscd + vpcd + pyscard): what a PC/SC
application sees, and the citizen-certificate relying-party flows under faults.

The card sits behind :class:`eidemu.emulator.faults.FaultyCard` in a vpcd slot; pyscard's
high-level API (``smartcard.System.readers``) plays the application.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from smartcard import scard
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.System import readers

from eidemu.conformance.moica import MoicaCard
from eidemu.emulator.faults import CITIZEN_CARD, FaultPlan, FaultyCard
from eidemu.emulator.profile import load_profile

from .conftest import READER0, wait_for_card

ROOT = Path(__file__).resolve().parents[2]
SLUG = "g2-valid-1"
IDENTITY = json.loads((ROOT / "fixtures" / "pki" / "identities" / SLUG / "identity.json").read_text("utf-8"))
PIN = IDENTITY["initial_pin"]
SIGN_KEY = 0x05

SELECT_DEMO = bytes.fromhex("00A4040C07A0000002471001")
VERIFY_OK = bytes.fromhex("0020000108") + b"123456\xff\xff"
VERIFY_STATUS = bytes.fromhex("00200001")
READ_PUBLIC = bytes.fromhex("00B0810010")  # EF.PUBLIC, SFI 01, 16 bytes


class PyscardApp:
    """The application side: pyscard's high-level connection, bytes in and out."""

    def __init__(self) -> None:
        reader = next(r for r in readers() if str(r) == READER0)
        self.connection = reader.createConnection()
        self.connection.connect()

    def transmit(self, command: bytes) -> bytes:
        data, sw1, sw2 = self.connection.transmit(list(command))
        return bytes(data) + bytes((sw1, sw2))

    @property
    def atr(self) -> bytes:
        return bytes(self.connection.getATR())

    def reset(self) -> bytes:
        self.connection.reconnect(disposition=scard.SCARD_RESET_CARD)
        return self.atr

    def close(self) -> None:
        try:
            self.connection.release()
        except CardConnectionException:  # the pcscd it came from is gone (restarted)
            inner = getattr(self.connection, "component", self.connection)
            inner.hcontext = None  # else pyscard's __del__ raises the same again


@pytest.fixture
def demo(slots, tmp_path) -> Iterator[FaultyCard]:
    faulty = FaultyCard(load_profile("iso-demo").build(tmp_path / "demo.json"))
    slots.insert(0, faulty)
    wait_for_card(READER0)
    yield faulty
    slots.reinsert(0)


@pytest.fixture
def moica(slots, tmp_path) -> Iterator[FaultyCard]:
    faulty = FaultyCard(load_profile(f"moica-{SLUG}").build(tmp_path / "moica.json"))
    slots.insert(0, faulty)
    wait_for_card(READER0)
    yield faulty
    slots.reinsert(0)


def arm(card: FaultyCard, *rules: str) -> None:
    card.arm(FaultPlan.from_lines(list(rules)))


def transmit_error(app: PyscardApp, command: bytes) -> CardConnectionException:
    with pytest.raises(CardConnectionException) as info:
        app.transmit(command)
    return info.value


def hresult(exc: Exception) -> int:
    return int(getattr(exc, "hresult", -1)) & 0xFFFFFFFF


# -- each fault kind -----------------------------------------------------------------------


def test_status_word_instead_of_processing(demo):
    arm(demo, "fault=status sw=6581 command=00B0")
    app = PyscardApp()
    assert app.transmit(SELECT_DEMO) == b"\x90\x00"
    assert app.transmit(READ_PUBLIC) == b"\x65\x81"
    assert app.transmit(READ_PUBLIC) == b"Hello from eidem\x90\x00"
    app.close()


def test_removed_card_then_reinserted(demo):
    """Pulled out mid-command: no valid response, then "Card was removed"; the reader is
    empty until the card is back (reinsert_after), and a new connection works."""
    arm(demo, "fault=remove command=00B0 reinsert_after=1.5")
    app = PyscardApp()
    app.transmit(SELECT_DEMO)
    first = transmit_error(app, READ_PUBLIC)
    assert "Card returned no valid response" in str(first)
    wait_for_card(READER0, present=False)
    removed = transmit_error(app, READ_PUBLIC)
    assert hresult(removed) == scard.SCARD_W_REMOVED_CARD
    with pytest.raises(NoCardException):
        app.connection.reconnect()
    wait_for_card(READER0, timeout=5)
    app.close()
    again = PyscardApp()
    again.transmit(SELECT_DEMO)
    assert again.transmit(READ_PUBLIC) == b"Hello from eidem\x90\x00"
    again.close()


def test_mute_card_until_the_reader_gives_up(demo):
    arm(demo, "fault=mute command=00B0 timeout=1.0")
    app = PyscardApp()
    app.transmit(SELECT_DEMO)
    started = time.monotonic()
    error = transmit_error(app, READ_PUBLIC)
    waited = time.monotonic() - started
    assert 1.0 <= waited < 2.5
    assert "Card returned no valid response" in str(error)
    # The reader dropped the card; it is back at once, powered down (selection lost).
    wait_for_card(READER0, timeout=5)
    app.close()
    again = PyscardApp()
    assert again.transmit(READ_PUBLIC) == b"\x6a\x82"  # no current DF.DEMO after the power cycle
    again.close()


def test_delay_on_one_instruction(demo):
    arm(demo, "fault=delay command=00B0 seconds=0.6")
    app = PyscardApp()
    app.transmit(SELECT_DEMO)
    started = time.monotonic()
    assert app.transmit(READ_PUBLIC) == b"Hello from eidem\x90\x00"
    assert time.monotonic() - started >= 0.6
    app.close()


def test_corrupted_response_byte(demo):
    arm(demo, "fault=corrupt command=00B0 offset=0 xor=20")
    app = PyscardApp()
    app.transmit(SELECT_DEMO)
    assert app.transmit(READ_PUBLIC) == b"hello from eidem\x90\x00"
    app.close()


def test_power_loss_during_verify_decrements_never_resets(demo):
    """Tearing: the right PIN, power lost after the decrement commit. The application sees
    the card vanish; after re-insertion the counter shows the try used (63C2)."""
    arm(demo, "fault=tear command=0020 point=after commit=1 reinsert_after=0.5")
    app = PyscardApp()
    app.transmit(SELECT_DEMO)
    transmit_error(app, VERIFY_OK)
    wait_for_card(READER0, present=False)
    wait_for_card(READER0, timeout=5)
    app.close()
    again = PyscardApp()
    again.transmit(SELECT_DEMO)
    assert again.transmit(VERIFY_STATUS) == b"\x63\xc2"
    assert again.transmit(VERIFY_OK) == b"\x90\x00"
    assert again.transmit(VERIFY_STATUS) == b"\x90\x00"
    again.close()


# -- citizen-certificate relying-party flows ---------------------------------------------------


def test_card_removed_during_80EA_signature(moica):
    """Signing while the card is pulled out: the application gets a clear PC/SC error and
    the card keeps no half-done operation: after re-insertion, 80 C1 has no result and a
    new signature needs a new VERIFY."""
    arm(moica, "fault=remove command=80EA02 reinsert_after=1")
    app = PyscardApp()
    client = MoicaCard(app)
    client.verify_pin(PIN)
    with pytest.raises(CardConnectionException) as info:
        client.sign_sha256(SIGN_KEY, hashlib.sha256(b"contract").digest())
    assert "Card returned no valid response" in str(info.value)
    assert [e.kind.value for e in moica.events] == ["remove"]
    wait_for_card(READER0, present=False)
    wait_for_card(READER0, timeout=5)
    app.close()
    again = PyscardApp()
    assert again.transmit(bytes.fromhex("80C1000000")) == b"\x69\x85"  # no result survived
    client = MoicaCard(again)
    assert client.pin_status().tries_left == 3  # verification gone, no try consumed
    client.verify_pin(PIN)
    signature = client.sign_sha256(SIGN_KEY, hashlib.sha256(b"contract").digest())
    assert len(signature) == 256
    again.close()


def test_pin_check_torn_by_power_loss(moica, tmp_path):
    """The protected VERIFY (8C 20) torn after its decrement commit: the counter is
    decremented and never reset, on the card and in its state file."""
    arm(moica, "fault=tear command=8C20 point=after commit=1 reinsert_after=0.5")
    app = PyscardApp()
    client = MoicaCard(app)
    with pytest.raises(CardConnectionException):
        client.verify_pin(PIN)
    wait_for_card(READER0, present=False)
    wait_for_card(READER0, timeout=5)
    app.close()
    again = PyscardApp()
    assert MoicaCard(again).pin_status().tries_left == 2
    again.close()
    assert load_profile(f"moica-{SLUG}").build(tmp_path / "moica.json").pins[0x01].remaining == 2


def test_reader_disappears_mid_flow(stack, moica):
    """pcscd restarts between VERIFY and the signature (the reader goes away): the
    application's handle fails; the card comes back by itself, unverified."""
    app = PyscardApp()
    client = MoicaCard(app)
    client.verify_pin(PIN)
    stack.restart()
    with pytest.raises(CardConnectionException) as info:
        client.sign_sha256(SIGN_KEY, hashlib.sha256(b"x").digest())
    assert hresult(info.value) in (
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
    )
    app.close()
    wait_for_card(READER0, timeout=5)
    again = PyscardApp()
    client = MoicaCard(again)
    assert client.pin_status().tries_left == 3
    client.verify_pin(PIN)
    assert len(client.sign_sha256(SIGN_KEY, hashlib.sha256(b"x").digest())) == 256
    again.close()


def test_timeout_margins_of_a_signing_flow_with_the_latency_model(moica):
    """With the citizen-card latency model on (scale 1), each APDU of a VERIFY + sign flow
    takes the model's time; the trace shows the margin to a relying party's timeout."""
    records: list[tuple[bytes, float, float]] = []

    def trace(command: bytes, response: bytes, start: float, duration: float, modelled: float | None) -> None:
        records.append((command[:3], duration, modelled or 0.0))

    moica.tracer = trace
    moica.set_timing(CITIZEN_CARD, 1.0)
    app = PyscardApp()
    client = MoicaCard(app)
    started = time.monotonic()
    client.verify_pin(PIN)
    client.sign_sha256(SIGN_KEY, hashlib.sha256(b"margin").digest())
    total = time.monotonic() - started
    moica.set_timing(None)
    app.close()
    by_header = {h.hex().upper(): (d, m) for h, d, m in records}
    rsa_duration, rsa_model = by_header["80EA02"]
    assert 0.25 < rsa_model < 0.29  # 269 ms (229 ms processing + 40.4 ms T=1 transfer) +-5 %
    assert rsa_duration >= rsa_model * 0.99
    _, verify_model = by_header["8C2000"]
    assert 0.030 < verify_model < 0.036  # 33.1 ms +-5 %
    # A relying party with a 1-second per-APDU timeout keeps a margin of > 0.6 s on the
    # slowest command; the whole flow stays under 1 s.
    assert max(d for _, d, _ in records) < 0.4
    assert total < 1.0


# -- eidemu serve --faults/--timing and eidemu fault over the control socket ------------------


def test_serve_with_faults_timing_and_the_control_channel(stack, tmp_path):
    from .conftest import start_cli

    control = tmp_path / "run" / "faults.sock"
    control.parent.mkdir(mode=0o700)
    trace = tmp_path / "trace.jsonl"
    process = start_cli(
        stack,
        "serve",
        "--profile",
        "iso-demo",
        "--fault",
        "fault=status sw=6581 command=00B0",
        "--timing",
        "real",
        "--timing-scale",
        "0.5",
        "--trace",
        str(trace),
        "--control",
        str(control),
    )
    try:
        assert process.stdout.readline().endswith(": present\n")
        assert process.stdout.readline() == f"fault control: {control} (eidemu fault --control {control} ...)\n"
        wait_for_card(READER0)
        app = PyscardApp()
        app.transmit(SELECT_DEMO)
        assert app.transmit(READ_PUBLIC) == b"\x65\x81"
        cli = start_cli(stack, "fault", "arm", "--slot", "0", "--control", str(control), "fault=remove command=00B0")
        out, err = cli.communicate(timeout=30)
        assert (cli.returncode, err) == (0, "")
        assert out.startswith("slot 0: 1 rule(s) armed, 0 APDU(s) seen, timing moica\n")
        assert "Card returned no valid response" in str(transmit_error(app, READ_PUBLIC))
        wait_for_card(READER0, present=False)
        cli = start_cli(stack, "fault", "clear", "--slot", "0", "--control", str(control))
        assert cli.communicate(timeout=30)[1] == "" and cli.returncode == 0
        wait_for_card(READER0, timeout=10)  # clearing the plan brought the card back
        app.close()
        app = PyscardApp()
        app.transmit(SELECT_DEMO)
        assert app.transmit(READ_PUBLIC) == b"Hello from eidem\x90\x00"
        app.close()
        process.terminate()
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    responses = [json.loads(line) for line in trace.read_text().splitlines() if '"response"' in line]
    read = next(r for r in responses if r["hex"] == "48656C6C6F2066726F6D20656964656D9000")
    # 5 + 18 bytes with no TA1 in this ATR (Fi 372, Di 1: 93 us per etu): 37.6 ms of
    # transfer and processing, jitter 5 %; the reader waited half of it (scale 0.5).
    assert 0.03 < read["modelled_ms"] / 1000 < 0.06
    assert read["duration_ms"] >= read["modelled_ms"] * 0.5 * 0.99
