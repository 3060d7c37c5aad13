"""Benchmark: the inspection system's core flow on the eID chip through pcscd + vpcd, against its floor.

Flow (conformance/eid, ICAO 9303-11): PACE with the CAN (ECDH generic mapping,
brainpoolP256r1, AES-128: PACEInfo ID 13), SELECT the eMRTD application, READ BINARY DG1,
DG2 and EF.SOD under secure messaging, passive authentication of DG1 and DG2 (the
terminal's own CMS, chain, CRL checks). The card is ``eidemu serve --profile eid-g2-valid-1``
in one vpcd slot, reset (cold) before each flow outside the clock.

Floor, measured in the same run, round by round in alternating order:

- the same number of round trips through pcscd + vpcd to an echo card in the other slot,
  carrying the same bytes: each command as the flow sent it on the wire (secure messaging
  included) with Le set to the length of the flow's answer, and the echo card
  (emulator/transport/echo.py's EchoCard, here answering Ne zero bytes and 9000 instead of
  9000 alone) answering that many bytes, so both directions carry what the flow's
  exchanges carried;
- the same cryptography done directly: the PACE computations of both sides (chip and
  terminal roles of the codec against each other, through the 7C encodings), secure
  messaging wrap and unwrap of the flow's APDUs on both sides, and the same passive
  authentication.

Figures: the flow and floor medians through pcscd + vpcd and their ratio (target at most
1.3), the same flow in process (no transport) against the cryptographic part of the floor,
and PACE alone (flow and floor) both ways. Medians over ``--runs`` runs of ``--rounds``
rounds, fresh card processes each run, the slots swapped every other run.

    python3 benchmarks/bench_eid.py [--rounds 30] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RUN_DIR = Path(tempfile.mkdtemp(prefix="eidemu-bench-eid-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(RUN_DIR / "sock" / "pcscd.comm")  # before pyscard loads

from eidemu.conformance.eid import AccessKey, InspectionSystem, TrustStore  # noqa: E402
from eidemu.conformance.eid.passive import passive_authentication  # noqa: E402
from eidemu.conformance.eid.reader import PaceChoice, default_trust_store  # noqa: E402
from eidemu.emulator.icao import oids  # noqa: E402
from eidemu.emulator.icao.lds import EMRTD_AID  # noqa: E402
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceChip, PaceTerminal  # noqa: E402
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU  # noqa: E402

PROFILE = "eid-g2-valid-1"
CAN = "237517"
CHOICE = PaceChoice(oids.pace_protocol(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128), 13)
READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")
TARGET = 1.3


# --- the echo card, sized ------------------------------------------------------------------


def serve_echo(port: int) -> int:
    """The echo card as its own process until SIGTERM, answering Ne bytes (zeros) and 9000."""
    import threading

    from eidemu.emulator.transport.echo import EchoCard
    from eidemu.emulator.transport.vpcd import VpcdClient

    class SizedEcho(EchoCard):
        def transmit(self, raw: bytes) -> bytes:
            ne = CommandAPDU.parse(raw).ne
            return bytes(ne or 0) + b"\x90\x00"

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client = VpcdClient(SizedEcho(), "localhost", port, backoff=(0.01, 0.2)).start()
    done.wait()
    client.stop()
    return 0


def floor_apdus(exchanges: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Each command with Le = the length of the answer's data (same header, data and Le size)."""
    out = []
    for command, response in exchanges:
        cmd = CommandAPDU.parse(command)
        length = len(response) - 2
        out.append(cmd._replace(ne=length if length else None).encode())
    return out


# --- the flow --------------------------------------------------------------------------------


class Recording:
    """The connection under the reader, keeping every (command, response) on the wire."""

    def __init__(self, connection) -> None:  # type: ignore[no-untyped-def]
        self.connection = connection
        self.description = connection.description
        self.exchanges: list[tuple[bytes, bytes]] = []
        self.atr = connection.atr

    def transmit(self, command: bytes) -> bytes:
        response = self.connection.transmit(command)
        self.exchanges.append((command, response))
        return response

    def reset(self) -> bytes:
        return self.connection.reset()

    def close(self) -> None:
        self.connection.close()


class PlainRecorder:
    """A terminal session that keeps the plain commands and answers it protected."""

    def __init__(self, session) -> None:  # type: ignore[no-untyped-def]
        self.session = session
        self.pairs: list[tuple[CommandAPDU, ResponseAPDU]] = []
        self._command: CommandAPDU | None = None

    def wrap(self, command: CommandAPDU) -> CommandAPDU:
        self._command = command
        return self.session.wrap(command)

    def unwrap(self, response: ResponseAPDU) -> ResponseAPDU:
        plain = self.session.unwrap(response)
        assert self._command is not None
        self.pairs.append((self._command, plain))
        return plain


def flow(system: InspectionSystem, trust: TrustStore, *, pace_only: bool = False) -> dict[int, bytes]:
    """PACE, SELECT, DG1, DG2, EF.SOD, passive authentication (or PACE alone)."""
    system.channel.end_secure_messaging()
    system.run_pace(CHOICE, AccessKey(can=CAN))
    if pace_only:
        return {}
    channel = system.channel
    channel.select_application(EMRTD_AID)
    files = {1: channel.read_file(1, "DG1"), 2: channel.read_file(2, "DG2")}
    sod = channel.read_file(0x1D, "EF.SOD")
    checks = passive_authentication(sod, files, trust)
    failed = [c for c in checks if c.verdict.value == "FAILED"]
    if failed:
        raise RuntimeError(f"passive authentication failed: {failed[0].line()}")
    return {**files, 0x1D: sod}


def crypto_floor(pairs: list[tuple[CommandAPDU, ResponseAPDU]], files: dict[int, bytes], trust: TrustStore) -> None:
    """PACE both sides, SM wrap/unwrap of the flow's APDUs both sides, the same PA."""
    from eidemu.emulator.icao.kdf import PacePassword

    password = PacePassword.can(CAN)
    terminal = PaceTerminal(CHOICE.protocol.oid, CHOICE.parameter_id, password)
    chip = PaceChip(CHOICE.protocol.oid, CHOICE.parameter_id, password)
    data = terminal.start()
    for step in (terminal.map_nonce, terminal.key_agreement, terminal.mutual_authentication):
        answer = chip.respond(DynamicAuthenticationData.parse(data.encode()))
        data = step(DynamicAuthenticationData.parse(answer.encode()))
    result = terminal.finish(DynamicAuthenticationData.parse(chip.respond(data).encode()))
    if pairs:
        outgoing, incoming = result.keys.terminal_session(), result.keys.chip_session()
        for command, response in pairs:
            wrapped = outgoing.wrap(command)
            incoming.unwrap(CommandAPDU.parse(wrapped.encode()))
            body, sw = incoming.wrap(response.data, response.sw)
            outgoing.unwrap(ResponseAPDU(body, sw))
    if files:
        passive_authentication(files[0x1D], {1: files[1], 2: files[2]}, trust)


# --- measuring ----------------------------------------------------------------------------------


def alternate(rounds: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[list[float], list[float]]:
    a_times: list[float] = []
    b_times: list[float] = []
    for i in range(rounds):
        order = ((first, a_times), (second, b_times))
        for measure, times in order if i % 2 == 0 else order[::-1]:
            times.append(measure())
    return a_times, b_times


def timed(action: Callable[[], object], before: Callable[[], object] | None = None) -> Callable[[], float]:
    def run() -> float:
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        return time.perf_counter() - start

    return run


def measure_pcsc_run(port: int, swap: bool, rounds: int, trust: TrustStore) -> dict[str, list[float]]:
    from bench_pcsc import Presence, stop_processes  # type: ignore[import-not-found]

    from eidemu.conformance.pcsc import PcscConnection

    presence = Presence()
    card_slot, echo_slot = (1, 0) if swap else (0, 1)
    serve = [sys.executable, "-m", "eidemu.cli", "serve", "--profile", PROFILE]
    serve += ["--vpcd", f"localhost:{port}", "--slot", str(card_slot)]
    echo_card = [sys.executable, __file__, "--echo-card", str(port + echo_slot)]
    cards = [
        subprocess.Popen(serve, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL),
        subprocess.Popen(echo_card, cwd=ROOT, stdout=subprocess.DEVNULL),
    ]
    try:
        for reader in READERS:
            presence.wait(reader, True, timeout=15)
        card = Recording(PcscConnection(READERS[card_slot]))
        echo = PcscConnection(READERS[echo_slot])
        return measure_both(card, echo, rounds, trust)
    finally:
        stop_processes(cards)
        for reader in READERS:
            presence.wait(reader, False)


def measure_both(card: Recording, echo, rounds: int, trust: TrustStore) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Full flow and PACE alone, each against its floor; ``echo`` None: in process, no round trips."""
    figures: dict[str, list[float]] = {}
    for name, pace_only in (("flow", False), ("pace", True)):
        system = InspectionSystem(card, trust=trust)
        card.reset()
        card.exchanges.clear()
        system.channel.end_secure_messaging()
        system.run_pace(CHOICE, AccessKey(can=CAN))
        recorder = PlainRecorder(system.channel.session)
        system.channel.session = recorder  # type: ignore[assignment]
        files: dict[int, bytes] = {}
        if not pace_only:
            system.channel.select_application(EMRTD_AID)
            files = {1: system.channel.read_file(1, "DG1"), 2: system.channel.read_file(2, "DG2")}
            files[0x1D] = system.channel.read_file(0x1D, "EF.SOD")
        apdus = floor_apdus(card.exchanges)
        pairs = recorder.pairs
        figures[f"{name}_apdus"] = [float(len(apdus))]
        figures[f"{name}_bytes"] = [float(sum(len(c) + len(r) for c, r in card.exchanges))]

        def run_flow(pace_only: bool = pace_only, system: InspectionSystem = system) -> None:
            flow(system, trust, pace_only=pace_only)

        def run_floor(pairs=pairs, files=files, apdus=apdus) -> None:  # type: ignore[no-untyped-def]
            crypto_floor(pairs, files, trust)
            if echo is not None:
                for apdu in apdus:
                    echo.transmit(apdu)

        flows, floors = alternate(rounds, timed(run_flow, card.reset), timed(run_floor))
        figures[name], figures[f"{name}_floor"] = flows, floors
    return figures


def summary(figures: dict[str, list[float]], key: str) -> dict[str, float]:
    flow, floor = statistics.median(figures[key]), statistics.median(figures[f"{key}_floor"])
    paired = statistics.median(a / b for a, b in zip(figures[key], figures[f"{key}_floor"], strict=True))
    return {
        "median_ms": round(flow * 1000, 2),
        "floor_median_ms": round(floor * 1000, 2),
        "ratio": round(flow / floor, 3),
        "paired_ratio_median": round(paired, 3),
        "apdus": int(figures[f"{key}_apdus"][0]),
        "bytes_on_wire": int(figures[f"{key}_bytes"][0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="flows (and floors) per run (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with fresh card processes (default 3)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--echo-card", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_card:
        return serve_echo(args.echo_card)
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be at least 1")

    from eidemu.conformance.connection import open_card
    from eidemu.emulator.transport import pcscd

    trust = default_trust_store()
    quiet = args.json

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    say("in process")
    inprocess: dict[str, list[float]] = {}
    for _ in range(args.runs):
        card = Recording(open_card(f"emulator:{PROFILE}"))
        for key, values in measure_both(card, None, args.rounds, trust).items():
            inprocess.setdefault(key, []).extend(values if not key.endswith(("_apdus", "_bytes")) else values[:1])
        card.close()
    try:
        instance = pcscd.start(RUN_DIR)
    except pcscd.PcscdError as exc:
        print(f"bench_eid: {exc}", file=sys.stderr)
        return 2
    stack: dict[str, list[float]] = {}
    run_ratios: list[float] = []
    try:
        for run in range(args.runs):
            say(f"pcscd + vpcd: run {run + 1}/{args.runs}")
            figures = measure_pcsc_run(instance.port, run % 2 == 1, args.rounds, trust)
            run_ratios.append(statistics.median(figures["flow"]) / statistics.median(figures["flow_floor"]))
            for key, values in figures.items():
                stack.setdefault(key, []).extend(values if not key.endswith(("_apdus", "_bytes")) else values[:1])
    finally:
        pcscd.stop(RUN_DIR)
    report = {
        "rounds": args.rounds,
        "runs": args.runs,
        "pcsc_flow": summary(stack, "flow"),
        "pcsc_pace": summary(stack, "pace"),
        "inprocess_flow": summary(inprocess, "flow"),
        "inprocess_pace": summary(inprocess, "pace"),
        "pcsc_flow_run_ratios": [round(r, 3) for r in run_ratios],
        "target": TARGET,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for key, label in (
            ("pcsc_flow", "PACE + DG1, DG2, SOD + PA, pcscd+vpcd"),
            ("pcsc_pace", "PACE alone, pcscd+vpcd"),
            ("inprocess_flow", "PACE + DG1, DG2, SOD + PA, in process"),
            ("inprocess_pace", "PACE alone, in process"),
        ):
            r = report[key]
            assert isinstance(r, dict)
            print(
                f"{label}: median {r['median_ms']} ms, floor {r['floor_median_ms']} ms, ratio {r['ratio']} "
                f"(paired {r['paired_ratio_median']}; {r['apdus']} APDUs, {r['bytes_on_wire']} bytes)"
            )
        print(f"pcsc flow ratio per run: {' '.join(f'{x:.3f}' for x in run_ratios)} (target <= {TARGET})")
    ratio = report["pcsc_flow"]["ratio"]  # type: ignore[index]
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
