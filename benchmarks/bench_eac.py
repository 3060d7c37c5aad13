"""Benchmark: PACE + Terminal Authentication + Chip Authentication v2 + PIN + the private zone,
through pcscd + vpcd, against its floor (docs/eid.md, "Extended access control and the zones").

Flow (conformance/eid/eac.py, BSI TR-03110): PACE with the CAN (ECDH-GM, brainpoolP256r1,
AES-128), SELECT the eMRTD application, READ DG14, the terminal ``at-private``'s chain (MSE:Set
DST + PSO:Verify Certificate for the DV and the terminal), MSE:Set AT, GET CHALLENGE,
EXTERNAL AUTHENTICATE, CA v2 (MSE:Set AT + GENERAL AUTHENTICATE), VERIFY of the holder PIN,
READ BINARY of DG3..DG9, all under secure messaging. The card is ``eidemu serve --profile
eid-g3-valid-1``, reset before each flow outside the clock.

Floor, measured in the same run in alternating order (as benchmarks/bench_eid.py): the same
round trips through pcscd + vpcd to an echo card answering as many bytes as the flow's
answers; plus the same cryptography done directly: PACE of both sides, the two certificate
verifications, the TA signature and its verification, CA v2 of both sides and secure
messaging wrap/unwrap of the flow's APDUs on both sides.

    python3 benchmarks/bench_eac.py [--rounds 20] [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_eid  # noqa: E402  (sets PCSCLITE_CSOCK_NAME before pyscard loads)
from bench_eid import (  # noqa: E402
    CHOICE,
    READERS,
    TARGET,
    PlainRecorder,
    Recording,
    alternate,
    floor_apdus,
    serve_echo,
    timed,
)

from eidemu.conformance.eid import AccessKey, InspectionSystem  # noqa: E402
from eidemu.conformance.eid.eac import PRIVATE_ZONE, EacTerminal, ca_terminal_from_dg14  # noqa: E402
from eidemu.emulator.icao import ca as ca_codec  # noqa: E402
from eidemu.emulator.icao import cvc, ta  # noqa: E402
from eidemu.emulator.icao.ca import CaChip  # noqa: E402
from eidemu.emulator.icao.lds import EMRTD_AID  # noqa: E402
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU  # noqa: E402
from eidemu.emulator.pki.eac import Terminal, load_certificate, load_terminal  # noqa: E402
from eidemu.emulator.pki.eac_zones import holder_pin  # noqa: E402
from eidemu.fixtures import fixture_path  # noqa: E402

EAC = fixture_path("pki", "eac")
# The zones sit on the chips of G3 identities (docs/eid.md).
PROFILE = "eid-g3-valid-1"
CAN = json.loads(fixture_path("pki", "eid", "chips", "g3-valid-1", "chip.json").read_text("utf-8"))["can"]
NATIONAL_ID = json.loads(fixture_path("pki", "identities", "g3-valid-1", "identity.json").read_text("utf-8"))[
    "national_id"
]
PIN = holder_pin(NATIONAL_ID)


class Recorders:
    """Every secure-messaging session the channel starts, wrapped to keep the plain pairs."""

    def __init__(self, system: InspectionSystem) -> None:
        self.pairs: list[tuple[CommandAPDU, ResponseAPDU]] = []
        channel = system.channel
        start = channel.start_secure_messaging

        def recording_start(session) -> None:  # type: ignore[no-untyped-def]
            recorder = PlainRecorder(session)
            recorder.pairs = self.pairs
            start(recorder)  # type: ignore[arg-type]

        channel.start_secure_messaging = recording_start  # type: ignore[method-assign]


def flow(system: InspectionSystem, terminal: Terminal) -> dict[int, bytes]:
    """PACE, TA, CA v2, PIN, the private zone."""
    system.channel.end_secure_messaging()
    pace = system.run_pace(CHOICE, AccessKey(can=CAN))
    channel = system.channel
    channel.select_application(EMRTD_AID)
    found = ca_terminal_from_dg14(channel.read_file(14, "DG14"), system.rng)
    assert not isinstance(found, str)
    eac = EacTerminal(channel, terminal, found[0])
    eac.terminal_authentication(pace)
    eac.chip_authentication()
    eac.verify_pin(PIN)
    return eac.read_zone(PRIVATE_ZONE)


def crypto_floor(
    pairs: list[tuple[CommandAPDU, ResponseAPDU]], terminal: Terminal, chip: CaChip, trust: list[cvc.TrustPoint]
) -> None:
    """The flow's cryptography, both sides, without the card or the transport."""
    bench_eid.crypto_floor(pairs, {}, None)  # type: ignore[arg-type]  # PACE both sides and SM of the pairs
    key, _, _ = cvc.verify_chain(list(terminal.chain), trust, terminal.chain[0].effective)
    ca_terminal = ca_codec.CaTerminal(chip.protocol_oid, chip.domain, chip.public_key())
    compressed = ca_terminal.compressed_ephemeral_public_key()
    id_picc, challenge = os.urandom(32), os.urandom(8)
    signature = ta.terminal_sign(terminal.key, terminal.algorithm, id_picc, challenge, compressed)
    ta.chip_verify(key.public_key.to_key(key.curve), key.public_key.oid, id_picc, challenge, compressed, signature)
    _, nonce, token = ca_codec.ca2_chip(chip, ca_terminal.ephemeral_public_key)
    ca_codec.ca2_terminal(ca_terminal, nonce, token)


def chip_key() -> CaChip:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(
        fixture_path("pki", "eid", "chips", "g3-valid-1", "chip-ca.key.pem").read_bytes(), None
    )
    return CaChip.from_private_key("0.4.0.127.0.7.2.2.3.2.2", key)  # type: ignore[arg-type]


def measure(card: Recording, echo, rounds: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    terminal = load_terminal(EAC, "at-private")
    chip = chip_key()
    trust = [cvc.TrustPoint.of(load_certificate(EAC, "cvca-tw-1"))]
    system = InspectionSystem(card)
    recorders = Recorders(system)
    card.reset()
    card.exchanges.clear()
    flow(system, terminal)
    apdus = floor_apdus(card.exchanges)
    pairs = list(recorders.pairs)
    figures: dict[str, list[float]] = {
        "apdus": [float(len(apdus))],
        "bytes": [float(sum(len(c) + len(r) for c, r in card.exchanges))],
    }
    plain = InspectionSystem(card)

    def run_flow() -> None:
        flow(plain, terminal)

    def run_floor() -> None:
        crypto_floor(pairs, terminal, chip, trust)
        if echo is not None:
            for apdu in apdus:
                echo.transmit(apdu)

    figures["flow"], figures["floor"] = alternate(rounds, timed(run_flow, card.reset), timed(run_floor))
    return figures


def measure_pcsc_run(port: int, swap: bool, rounds: int) -> dict[str, list[float]]:
    from bench_pcsc import Presence, stop_processes  # type: ignore[import-not-found]

    from eidemu.conformance.pcsc import PcscConnection

    presence = Presence()
    card_slot, echo_slot = (1, 0) if swap else (0, 1)
    serve = [sys.executable, "-m", "eidemu.cli", "serve", "--profile", PROFILE]
    serve += ["--vpcd", f"localhost:{port}", "--slot", str(card_slot)]
    echo_card = [sys.executable, bench_eid.__file__, "--echo-card", str(port + echo_slot)]
    cards = [
        subprocess.Popen(serve, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL),
        subprocess.Popen(echo_card, cwd=ROOT, stdout=subprocess.DEVNULL),
    ]
    try:
        for reader in READERS:
            presence.wait(reader, True, timeout=15)
        return measure(Recording(PcscConnection(READERS[card_slot])), PcscConnection(READERS[echo_slot]), rounds)
    finally:
        stop_processes(cards)
        for reader in READERS:
            presence.wait(reader, False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--echo-card", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_card:
        return serve_echo(args.echo_card)
    from eidemu.conformance.connection import open_card
    from eidemu.emulator.transport import pcscd

    inprocess = measure(Recording(open_card(f"emulator:{PROFILE}")), None, args.rounds)
    try:
        instance = pcscd.start(bench_eid.RUN_DIR)
    except pcscd.PcscdError as exc:
        print(f"bench_eac: {exc}", file=sys.stderr)
        return 2
    stack: dict[str, list[float]] = {}
    try:
        for run in range(args.runs):
            for key, values in measure_pcsc_run(instance.port, run % 2 == 1, args.rounds).items():
                stack.setdefault(key, []).extend(values if key in ("flow", "floor") else values[:1])
    finally:
        pcscd.stop(bench_eid.RUN_DIR)

    def summary(figures: dict[str, list[float]]) -> dict[str, float]:
        flow_ms, floor_ms = statistics.median(figures["flow"]) * 1000, statistics.median(figures["floor"]) * 1000
        return {
            "median_ms": round(flow_ms, 2),
            "floor_median_ms": round(floor_ms, 2),
            "ratio": round(flow_ms / floor_ms, 3),
            "apdus": int(figures["apdus"][0]),
            "bytes_on_wire": int(figures["bytes"][0]),
        }

    report = {"rounds": args.rounds, "runs": args.runs, "pcsc": summary(stack), "inprocess": summary(inprocess)}
    report["target"] = TARGET  # type: ignore[assignment]
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for key, label in (
            ("pcsc", "PACE + TA + CA v2 + PIN + DG3-DG9, pcscd+vpcd"),
            ("inprocess", "same, in process"),
        ):
            r = report[key]
            assert isinstance(r, dict)
            print(
                f"{label}: median {r['median_ms']} ms, floor {r['floor_median_ms']} ms, ratio {r['ratio']} "
                f"({r['apdus']} APDUs, {r['bytes_on_wire']} bytes)"
            )
    return 0 if report["pcsc"]["ratio"] <= TARGET else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
