"""Emulated cards in a real pcscd through Debian's vpcd, used through pyscard and Debian's
PC/SC tools. Exact bytes and status words throughout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eidemu.conformance.connection import CardConnectionError, open_card
from eidemu.conformance.pcsc import PcscConnection
from eidemu.conformance.vpcd import VpcdConnection
from eidemu.emulator.profile import load_profile
from eidemu.emulator.transport.echo import EchoCard
from eidemu.emulator.transport.vpcd import VpcdListener

from .conftest import POLL, READER0, READER1, pcsc_tools_env, reader_state, start_cli, wait_for_card

ROOT = Path(__file__).resolve().parents[2]
ATR = bytes.fromhex("3B888001454944454D5530313A")
FCI = bytes.fromhex("6F13820138830250008407A00000024710018A0105")
OK = b"\x90\x00"
PIN_OK = bytes.fromhex("0020000108313233343536FFFF")
PIN_BAD = bytes.fromhex("0020000108393939393939FFFF")
PIN_STATUS = bytes.fromhex("00200001")
SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")


def test_card_appears_in_pyscard_readers_with_profile_atr(demo_card):
    from smartcard.System import readers

    assert [str(r) for r in readers()] == [READER0, READER1]
    state = reader_state(READER0)
    assert state is not None and state[1] == ATR
    with PcscConnection(READER0) as conn:
        assert conn.atr == ATR == demo_card.atr


@pytest.mark.parametrize("protocol", ["T0", "T1"])
def test_short_apdus_of_all_four_cases(demo_card, protocol):
    with PcscConnection(READER0, protocol=protocol) as conn:
        assert conn.protocol_name == f"T={protocol[1]}"
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")  # case 1
        assert conn.transmit(SELECT_APP) == OK  # case 3
        assert conn.transmit(bytes.fromhex("00B0810010")) == b"Hello from eidem" + OK  # case 2
        assert conn.transmit(bytes.fromhex("00A4040007A000000247100100")) == FCI + OK  # case 4


def test_extended_apdus_of_all_four_cases(demo_card):
    with PcscConnection(READER0, protocol="T1") as conn:
        assert conn.transmit(bytes.fromhex("00A40400000007A00000024710010000")) == FCI + OK  # case 4E
        assert conn.transmit(bytes.fromhex("00A4020C025003")) == OK
        assert conn.transmit(bytes.fromhex("00D6000000000411223344")) == OK  # case 3E
        assert conn.transmit(bytes.fromhex("00B00000000004")) == bytes.fromhex("11223344") + OK  # case 2E
        assert conn.transmit(bytes.fromhex("00A4000C020101")) == OK
        response = conn.transmit(bytes.fromhex("00B00000009C40"))  # Le = 40000
        assert len(response) == 40002 and response[-2:] == OK
        assert response.startswith(b"eidemu large file: readable past offset 32767")
        assert response[65:40000] == b"\x5a" * (40000 - 65)


def test_largest_extended_frames_round_trip(slots):
    slots.insert(0, EchoCard(echo_command=True))
    wait_for_card(READER0)
    with PcscConnection(READER0, protocol="T1") as conn:
        command = bytes.fromhex("80EE0000") + b"\x00\xff\xf6" + bytes(range(256)) * 255 + bytes(246)
        assert len(command) == 65533
        assert conn.transmit(command) == command + OK  # a 65535-byte response


def test_61xx_and_get_response(demo_card):
    with PcscConnection(READER0) as conn:
        assert conn.transmit(bytes.fromhex("00A4040007A0000002471001")) == bytes.fromhex("6115")
        assert conn.transmit(bytes.fromhex("00C0000015")) == FCI + OK
        assert conn.transmit(bytes.fromhex("00C0000015")) == bytes.fromhex("6985")  # nothing pending


@pytest.mark.parametrize("disposition", ["reset", "unpower"])
def test_power_cycle_clears_security_state(demo_card, disposition):
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_OK) == OK
        assert conn.transmit(PIN_STATUS) == OK
        assert conn.reconnect(disposition) == ATR
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        assert conn.transmit(PIN_OK) == OK
    # Disconnecting with a reset disposition clears it too, for the next application.
    conn = PcscConnection(READER0)
    conn.close(disposition)
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")


def test_remove_and_reinsert(slots):
    card = load_profile("iso-demo").build()
    slots.insert(0, card)
    wait_for_card(READER0)
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
    slots.remove(0)
    assert wait_for_card(READER0, present=False) <= POLL + 0.2  # within one pcscd poll
    with pytest.raises(CardConnectionError, match=r"no card in reader 'Virtual PCD 00 00'; readers present: "):
        open_card(f"pcsc:{READER0}")
    slots.insert(0, card)
    assert wait_for_card(READER0) <= POLL + 0.2
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")  # the same card, its counter kept


def test_two_cards_in_two_slots_at_once(slots):
    slots.insert(0, load_profile("iso-demo").build())
    slots.insert(1, load_profile("iso-demo").build())
    wait_for_card(READER0)
    wait_for_card(READER1)
    results: dict[str, list[bytes]] = {}

    def client(reader: str, verify: bool) -> None:
        out = []
        with PcscConnection(reader) as conn:
            if verify:
                out.append(conn.transmit(PIN_OK))
            out.extend(conn.transmit(SELECT_APP) for _ in range(200))
            out.append(conn.transmit(PIN_STATUS))
        results[reader] = out

    threads = [
        threading.Thread(target=client, args=(READER0, True)),
        threading.Thread(target=client, args=(READER1, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results[READER0] == [OK] + [OK] * 200 + [OK]
    assert results[READER1] == [OK] * 200 + [bytes.fromhex("63C3")]  # separate cards, separate state


def test_card_survives_pcscd_restart(stack, slots):
    card = load_profile("iso-demo").build()
    slots.insert(0, card)
    wait_for_card(READER0)
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
        assert conn.transmit(PIN_OK) == OK
        assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
    old_pid = stack.instance.pid
    stack.restart()
    assert stack.instance.pid != old_pid
    wait_for_card(READER0, timeout=5)
    assert slots.endpoints[0].connections == 2  # the card reconnected by itself
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")  # counter intact, verification gone
        assert conn.transmit(PIN_OK) == OK


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x00", b"\x00\x20\x00\xa4\x04", b"\xff\xff" + b"\x00" * 64, "reset"],
    ids=["length-0", "truncated", "oversized-announced", "reset-mid-frame"],
)
def test_misbehaving_peer_then_the_card_serves_pcscd(slots, garbage):
    import struct

    card = load_profile("iso-demo").build()
    listener = VpcdListener(card, "127.0.0.1", 0).start()
    try:
        with VpcdConnection.connect("127.0.0.1", listener.port) as conn:
            assert conn.transmit(PIN_BAD) == bytes.fromhex("63C2")
        raw = socket.create_connection(("127.0.0.1", listener.port))
        if garbage == "reset":
            raw.sendall(b"\x00\x30\x00\xa4")
            time.sleep(0.02)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
            assert raw.recv(10) == b""  # the card dropped this connection
        raw.close()
        with VpcdConnection.connect("127.0.0.1", listener.port) as conn:  # and it comes back
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")
    finally:
        listener.stop()
    slots.insert(0, card)  # the same card, now in pcscd's reader
    wait_for_card(READER0)
    with PcscConnection(READER0) as conn:
        assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C2")


def test_pcsc_uri_errors_list_the_readers(stack):
    with pytest.raises(CardConnectionError) as info:
        open_card("pcsc:No Such Reader")
    assert (
        str(info.value) == "no reader named 'No Such Reader'; readers present: 'Virtual PCD 00 00', 'Virtual PCD 00 01'"
    )
    with pytest.raises(CardConnectionError, match="no reader with index 7"):
        open_card("pcsc:7")


def test_pcsc_uri_by_prefix_and_index(demo_card):
    for uri in ("pcsc:Virtual PCD", "pcsc:0", f"pcsc:{READER0}?share=exclusive&protocol=T1"):
        conn = open_card(uri)
        try:
            assert conn.description == f"pcsc:{READER0}"
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        finally:
            conn.close()


def test_pcsc_scan_sees_the_card(demo_card):
    listing = subprocess.run(["pcsc_scan", "-r"], env=pcsc_tools_env(), capture_output=True, text=True, timeout=10)
    assert listing.returncode == 0
    assert f"0: {READER0}\n1: {READER1}\n" in listing.stdout
    cards = subprocess.run(["pcsc_scan", "-c"], env=pcsc_tools_env(), capture_output=True, text=True, timeout=10)
    assert cards.returncode == 0
    assert f"Reader 0: {READER0}" in cards.stdout
    assert "Card inserted" in cards.stdout
    assert "ATR: 3B 88 80 01 45 49 44 45 4D 55 30 31 3A" in cards.stdout


def test_opensc_tool_reads_atr_and_exchanges_apdus(demo_card):
    atr = subprocess.run(["opensc-tool", "-r", "0", "-a"], capture_output=True, text=True, timeout=20)
    assert atr.returncode == 0, atr.stderr
    assert atr.stdout.strip() == "3b:88:80:01:45:49:44:45:4d:55:30:31:3a"
    sent = subprocess.run(
        ["opensc-tool", "-r", "0", "-s", "00A4040C07A0000002471001", "-s", "00B0810010", "-s", "00200001"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.splitlines() == [
        "Sending: 00 A4 04 0C 07 A0 00 00 02 47 10 01 ",
        "Received (SW1=0x90, SW2=0x00)",
        "Sending: 00 B0 81 00 10 ",
        "Received (SW1=0x90, SW2=0x00):",
        "48 65 6C 6C 6F 20 66 72 6F 6D 20 65 69 64 65 6D Hello from eidem",
        "Sending: 00 20 00 01 ",
        "Received (SW1=0x63, SW2=0xC3)",
    ]


def test_eidemu_serve_end_to_end(stack):
    started = time.monotonic()
    process = start_cli(stack, "serve", "--profile", "iso-demo")
    try:
        assert process.stdout.readline() == (
            f"slot 0: iso-demo in reader '{READER0}' (vpcd localhost:{stack.port}): present\n"
        )
        wait_for_card(READER0)
        assert time.monotonic() - started < 3.0
        with PcscConnection(READER0) as conn:
            assert conn.atr == ATR
            assert conn.transmit(PIN_STATUS) == bytes.fromhex("63C3")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and err == ""
    assert out.splitlines()[-2:][0] == "stopping"
    assert wait_for_card(READER0, present=False) <= POLL + 0.2


def pcscd_cli(action: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    """``eidemu pcscd ACTION --run-dir DIR`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "eidemu.cli", "pcscd", action, "--run-dir", str(run_dir)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_eidemu_pcscd_cli_runs_a_second_isolated_instance(stack, tmp_path):
    run_dir = tmp_path / "second"
    start = pcscd_cli("start", run_dir)
    try:
        assert start.returncode == 0, start.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in start.stdout.splitlines())
        assert exports["PCSCLITE_CSOCK_NAME"] == str(run_dir / "sock" / "pcscd.comm")
        port = int(exports["EIDEMU_VPCD"].rsplit(":", 1)[1])
        assert port != stack.port
        status = pcscd_cli("status", run_dir)
        assert status.returncode == 0
        assert f"reader '{READER0}': cards connect to port {port}" in status.stdout
        listing = subprocess.run(
            ["pcsc_scan", "-r"],
            env=pcsc_tools_env(PCSCLITE_CSOCK_NAME=exports["PCSCLITE_CSOCK_NAME"]),
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert f"0: {READER0}" in listing.stdout
        assert reader_state(READER0) is not None  # the session's instance is untouched
    finally:
        stop = pcscd_cli("stop", run_dir)
    assert stop.returncode == 0 and "stopped private pcscd" in stop.stderr
