"""The eID chip's eMRTD application through the real stack: pcscd + vpcd + pyscard.

PACE with the CAN and a read of DG1 from a card served by ``eidemu serve``; then the eID
chip and the MOICA citizen certificate card served together, one per slot, with a pyscard
client on each at the same time (two threads).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

from eidemu.conformance.moica import MoicaCard
from eidemu.conformance.pcsc import PcscConnection
from eidemu.emulator.icao.kdf import PacePassword
from eidemu.emulator.profile import load_profile
from tests.applets.emrtd_terminal import Terminal, chip_file

from .conftest import READER0, READER1, start_cli, wait_for_card

ROOT = Path(__file__).resolve().parents[2]
CHIP = "g2-valid-1"
CAN = json.loads((ROOT / "fixtures" / "pki" / "eid" / "chips" / CHIP / "chip.json").read_text("utf-8"))["can"]
ECDH_GM_AES128 = "0.4.0.127.0.7.2.2.4.2.2"
IDENTITY = json.loads((ROOT / "fixtures" / "pki" / "identities" / CHIP / "identity.json").read_text("utf-8"))


def pace_and_read(conn: PcscConnection) -> tuple[bytes, bytes]:
    """EF.CardAccess in the clear, PACE (CAN, ECDH-GM, brainpoolP256r1, AES-128), DG1 under SM."""
    terminal = Terminal(conn.transmit)
    assert conn.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"  # back to the MF, SM ended
    card_access = terminal.read_file(0x011C)
    terminal.pace(ECDH_GM_AES128, 13, PacePassword.can(CAN))
    assert terminal.select_application() == 0x9000
    return card_access, terminal.read_file(0x0101)


def test_eidemu_serve_eid_chip_pace_and_dg1(stack):
    process = start_cli(stack, "serve", "--profile", f"eid-{CHIP}")
    try:
        assert process.stdout.readline() == (
            f"slot 0: eid-{CHIP} in reader '{READER0}' (vpcd localhost:{stack.port}): present\n"
        )
        wait_for_card(READER0)
        with PcscConnection(READER0) as conn:
            assert conn.atr == bytes.fromhex("3B8A800154574549442D544553547B")  # historical bytes TWEID-TEST
            card_access, dg1 = pace_and_read(conn)
            assert card_access == chip_file(CHIP, "EF.CardAccess.bin")
            assert dg1 == chip_file(CHIP, "DG1.bin")
            # without secure messaging the data groups stay closed
            assert conn.transmit(bytes.fromhex("00B0810004")) == b"\x69\x82"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        assert "stopping" in out.splitlines()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and err == ""
    wait_for_card(READER0, present=False)


def test_eid_chip_and_moica_card_served_together_used_at_once(slots):
    slots.insert(0, load_profile(f"eid-{CHIP}").build())
    slots.insert(1, load_profile(f"moica-{CHIP}").build())
    wait_for_card(READER0)
    wait_for_card(READER1)
    rounds = 3
    results: dict[str, list[object]] = {"eid": [], "moica": []}
    errors: list[BaseException] = []
    spans: dict[str, list[float]] = {}
    start = threading.Barrier(2)

    def eid() -> None:
        try:
            with PcscConnection(READER0) as conn:
                start.wait(timeout=10)
                spans["eid"] = [time.monotonic()]
                for _ in range(rounds):
                    results["eid"].append(pace_and_read(conn)[1])
                spans["eid"].append(time.monotonic())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def moica() -> None:
        try:
            with PcscConnection(READER1) as conn:
                client = MoicaCard(conn)
                start.wait(timeout=10)
                spans["moica"] = [time.monotonic()]
                for _ in range(rounds * 4):
                    results["moica"].append(client.card_number())
                spans["moica"].append(time.monotonic())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=eid), threading.Thread(target=moica)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert results["eid"] == [chip_file(CHIP, "DG1.bin")] * rounds
    assert results["moica"] == [IDENTITY["card_number"]] * rounds * 4
    # the two clients really worked at the same time
    assert max(spans["eid"][0], spans["moica"][0]) < min(spans["eid"][1], spans["moica"][1])
