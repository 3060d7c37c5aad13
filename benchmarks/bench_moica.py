"""Benchmark: the whole MOICA signing flow through pcscd + vpcd, against its floor.

Flow (what signing middleware does; docs/moica-card.md): SELECT 3F00, 5030,
08F2; READ BINARY the signature certificate at 1500 in 200-byte chunks; protected VERIFY;
``80 EA 82`` + ``80 EA 02`` + ``80 C1``. The floor, measured in the same run: one RSA-2048
private-key operation in cryptography plus the same APDUs sent as round trips to an echo
card in the other vpcd slot (it answers 9000 at once). Each round measures both, back to
back, in alternating order. The host's own inputs (the protected PIN block and the
signature block) are computed before the clock starts, for the flow as for the floor.
Medians over ``--runs`` runs of ``--rounds`` rounds, each run with fresh card processes
(the slots swapped every other run); target ratio at most 1.3.

    python3 benchmarks/bench_moica.py [--rounds 200] [--runs 3] [--state] [--json]

``--state`` gives the card a state file, so every VERIFY also writes (and fsyncs) the
retry counter twice, as a real card writes its EEPROM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUN_DIR = Path(tempfile.mkdtemp(prefix="eidemu-bench-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(RUN_DIR / "sock" / "pcscd.comm")  # before pyscard loads

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402

from eidemu.conformance.moica import TEST_TRANSPORT_KEY, pin_block, protect_pin_data  # noqa: E402

SLUG = "g2-valid-1"
SIGN_REF = 0x05
CERT_OFFSET = 0x1500
READERS = ("Virtual PCD 00 00", "Virtual PCD 00 01")


def serve_echo(port: int) -> int:
    """The echo card as its own process, until SIGTERM."""
    import threading

    from eidemu.emulator.transport.echo import EchoCard
    from eidemu.emulator.transport.vpcd import VpcdClient

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client = VpcdClient(EchoCard(), "localhost", port, backoff=(0.01, 0.2)).start()
    done.wait()
    client.stop()
    return 0


def host_inputs(pin: str, digest: bytes) -> tuple[bytes, bytes, bytes]:
    """What the host computes without the card: the protected VERIFY command and the two
    halves of the EMSA-PKCS1-v1_5 block. Prepared before the clock starts: the floor has no
    host work either, so counting it would charge the card for the client's 3DES."""
    verify = b"\x8c\x20\x00\x01\x20" + protect_pin_data(TEST_TRANSPORT_KEY, os.urandom(8), pin_block(pin))
    t = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    block = b"\x00\x01" + b"\xff" * (256 - 3 - len(t)) + b"\x00" + t
    first = bytes((0x80, 0xEA, 0x82, SIGN_REF, 0x80)) + block[:128]
    second = bytes((0x80, 0xEA, 0x02, SIGN_REF, 0x80)) + block[128:]
    return verify, first, second


def signing_flow(transmit, inputs: tuple[bytes, bytes, bytes]) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Run the flow; return the command APDUs sent (to replay them at the echo card)."""
    sent: list[bytes] = []

    def send(apdu: bytes) -> bytes:
        sent.append(apdu)
        response = transmit(apdu)
        if response[-2:] not in (b"\x90\x00", b"\x62\x82"):
            raise RuntimeError(f"{apdu[:4].hex().upper()}: card answered {response[-2:].hex().upper()}")
        return response[:-2]

    verify, first, second = inputs
    for fid in ("3F00", "5030", "08F2"):
        send(bytes.fromhex("80A4000002" + fid))
    cert = b""
    total = None
    while total is None or len(cert) < total:
        pos = CERT_OFFSET + len(cert)
        n = 200 if total is None else min(200, total - len(cert))
        cert += send(bytes((0x80, 0xB0, pos >> 8, pos & 0xFF, n)))
        if total is None:
            total = 4 + int.from_bytes(cert[2:4], "big")  # 30 82 LL LL
    send(verify)
    send(first)
    send(second)
    signature = send(b"\x80\xc1\x00\x00\x00")
    if len(signature) != 256:
        raise RuntimeError("short signature")
    return sent


def measure_run(
    port: int, swap: bool, rounds: int, key: rsa.RSAPrivateKey, pin: str, state: bool, quiet: bool
) -> tuple[list[float], list[float], int]:
    """One run with fresh card processes: (flow times, floor times, APDUs per flow).

    Both cards run as their own processes, as users run them: the card with `eidemu
    serve`, the echo card with this script's --echo-card mode. Neither shares an
    interpreter (and its GIL) with the measuring client. ``swap`` puts the card in slot 1.
    """
    from bench_pcsc import Presence, stop_processes  # type: ignore[import-not-found]

    from eidemu.conformance.pcsc import PcscConnection

    presence = Presence()
    card_slot, echo_slot = (1, 0) if swap else (0, 1)
    serve = [sys.executable, "-m", "eidemu.cli", "serve", "--profile", f"moica-{SLUG}"]
    serve += ["--vpcd", f"localhost:{port}", "--slot", str(card_slot)]
    if state:
        serve += ["--state", str(RUN_DIR / "moica-card-state.json")]
    echo_card = [sys.executable, __file__, "--echo-card", str(port + echo_slot)]
    cards = [
        subprocess.Popen(serve, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL),
        subprocess.Popen(echo_card, cwd=ROOT, stdout=subprocess.DEVNULL),
    ]
    flow_times: list[float] = []
    floor_times: list[float] = []
    try:
        for reader in READERS:
            presence.wait(reader, True, timeout=15)
        moica, echo = PcscConnection(READERS[card_slot]), PcscConnection(READERS[echo_slot])
        apdus = signing_flow(moica.transmit, host_inputs(pin, hashlib.sha256(b"warm-up").digest()))

        def flow_round(i: int) -> None:
            nonlocal apdus
            inputs = host_inputs(pin, hashlib.sha256(f"document {i}".encode()).digest())
            start = time.perf_counter()
            apdus = signing_flow(moica.transmit, inputs)
            flow_times.append(time.perf_counter() - start)

        def floor_round(i: int) -> None:
            start = time.perf_counter()
            key.sign(f"document {i}".encode(), padding.PKCS1v15(), hashes.SHA256())
            for apdu in apdus:
                echo.transmit(apdu)
            floor_times.append(time.perf_counter() - start)

        for i in range(rounds):
            # Back to back, in alternating order: neither always runs right after the other.
            for measure in (flow_round, floor_round) if i % 2 == 0 else (floor_round, flow_round):
                if i % 10 == 0 and measure is flow_round and not quiet:
                    print(f"  round {i + 1}/{rounds}", file=sys.stderr, end="\r", flush=True)
                measure(i)
        if not quiet:
            print(f"  {rounds} rounds done ", file=sys.stderr, flush=True)
        moica.close()
        echo.close()
    finally:
        stop_processes(cards)
        for reader in READERS:  # empty again before the next run's cards arrive
            presence.wait(reader, False)
    return flow_times, floor_times, len(apdus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="flows (and floors) per run (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with fresh card processes (default 3)")
    parser.add_argument("--state", action="store_true", help="give the card a state file (fsync on VERIFY)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--echo-card", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_card:
        return serve_echo(args.echo_card)
    if args.rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be at least 1")

    from eidemu.emulator.transport import pcscd

    identity = json.loads((ROOT / "fixtures/pki/identities" / SLUG / "identity.json").read_text("utf-8"))
    pin = identity["initial_pin"]
    key = serialization.load_pem_private_key(
        (ROOT / "fixtures/pki/identities" / SLUG / "sign.key.pem").read_bytes(), password=None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    try:
        instance = pcscd.start(RUN_DIR)
    except pcscd.PcscdError as exc:
        print(f"bench_moica: {exc}", file=sys.stderr)
        return 2
    flow_times: list[float] = []
    floor_times: list[float] = []
    per_run: list[float] = []
    try:
        for run in range(args.runs):
            if not args.json:
                print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
            flows, floors, apdus = measure_run(
                instance.port, run % 2 == 1, args.rounds, key, pin, args.state, args.json
            )
            flow_times += flows
            floor_times += floors
            per_run.append(statistics.median(flows) / statistics.median(floors))
    finally:
        pcscd.stop(RUN_DIR)
    flow, floor = statistics.median(flow_times), statistics.median(floor_times)
    # Each round measures the flow and its floor back to back; the median of these paired
    # ratios is steadier on a shared machine whose speed drifts during the run.
    paired = statistics.median(a / b for a, b in zip(flow_times, floor_times, strict=True))
    report = {
        "apdus_per_flow": apdus,
        "rounds": args.rounds,
        "runs": args.runs,
        "state_file": args.state,
        "flow_median_ms": round(flow * 1000, 3),
        "floor_median_ms": round(floor * 1000, 3),
        "ratio": round(flow / floor, 3),
        "run_ratios": [round(r, 3) for r in per_run],
        "paired_ratio_median": round(paired, 3),
        "target": 1.3,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"signing flow ({apdus} APDUs) through pcscd+vpcd: median {report['flow_median_ms']} ms")
        print(f"floor (1 RSA-2048 sign + {apdus} echo round trips): median {report['floor_median_ms']} ms")
        print(f"ratio {report['ratio']} (target <= 1.3){'  [state file]' if args.state else ''}")
        print(f"each run's ratio: {' '.join(f'{r:.3f}' for r in per_run)} (fresh card processes each run)")
        print(f"median of per-round ratios {report['paired_ratio_median']}")
    return 0 if report["ratio"] <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
