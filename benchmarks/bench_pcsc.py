#!/usr/bin/env python3
"""Round trips through the real PC/SC stack: pyscard -> pcscd -> vpcd -> card.

Starts a private pcscd (eidemu.emulator.transport.pcscd; needs root for ``unshare -m``) and, in the
same run, measures per-APDU round trips for three cards:

- ``echo``: a card that answers 9000 at once, served by eidemu's vpcd transport in its own
  process: the floor of this stack;
- ``eidemu``: ``eidemu serve --profile iso-demo``;
- ``vicc``: Debian's vsmartcard-vpicc emulator as shipped (``vicc -t iso7816``), run with
  the PYTHONPATH and PyPI pycryptodome it needs.

Echo and eidemu run at the same time (slots 0 and 1) in alternating blocks of 100 APDUs, so
both see the same machine load; vicc runs alone afterwards. Each run starts fresh card
processes and every other run swaps their slots: on a small virtual machine one process can
land on a faster placement than another for its whole life (two echo cards side by side
differ by up to 15% within a run), so the figure is the median over several runs, given with
each run's own ratio. ``--control`` measures that noise: an echo card beside an echo card.
``--cpus 1`` runs everything on one CPU: no cross-CPU wake-ups, so runs agree closely, but
the figures are those of a one-CPU machine.

Commands: SELECT MF (``00A4000C023F00``, all three answer 9000) and READ BINARY of 200
bytes (``00B08100C8``, EF 3F00/5000/5001 by SFI 01 in iso-demo; vicc's iso7816 card has no
such file and answers 6986 at the same cost). vicc stalls about 40 ms per APDU, so it runs
fewer APDUs per run (``--vicc-count``); a median needs no more.

Also measured: ``eidemu serve`` start to card present in PC/SC, stop (SIGTERM) to empty
reader, and READ BINARY throughput with two cards served by one process and two client
threads, against one card and one client.

Usage: python3 benchmarks/bench_pcsc.py [--count 2000] [--runs 10] [--control] [--no-vicc] [--cpus 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SELECT_MF = bytes.fromhex("00A4000C023F00")
SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")
READ_200 = bytes.fromhex("00B08100C8")
READER0 = "Virtual PCD 00 00"
READER1 = "Virtual PCD 00 01"


# -- the echo card, run as a child process of this script --------------------------------


def serve_echo(port: int) -> None:
    from eidemu.emulator.transport.echo import EchoCard
    from eidemu.emulator.transport.vpcd import VpcdClient

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client = VpcdClient(EchoCard(), "localhost", port).start()
    done.wait()
    client.stop()


# -- helpers ----------------------------------------------------------------------------


def vicc_command(port: int) -> tuple[list[str], dict[str, str]] | None:
    vicc = shutil.which("vicc")
    if vicc is None:
        return None
    package_dirs = glob.glob("/usr/lib/python3*/site-packages/virtualsmartcard") + glob.glob(
        "/usr/lib/python3/dist-packages/virtualsmartcard"
    )
    if not package_dirs:
        return None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_dirs[0], str(Path(package_dirs[0]).parent)]))
    # As shipped, with the interpreter that has PyPI's pycryptodome (Debian's python3 lacks it).
    return [sys.executable, vicc, "-t", "iso7816", "-P", str(port)], env


class Presence:
    """Polls pcscd for a reader's card state (SCardGetStatusChange with a zero timeout)."""

    def __init__(self) -> None:
        from eidemu.conformance.pcsc import PcscContext

        self.context = PcscContext()

    def present(self, reader: str) -> bool:
        from smartcard import scard

        state = self.context.reader_states().get(reader)
        return bool(state and state[0] & scard.SCARD_STATE_PRESENT)

    def wait(self, reader: str, present: bool, timeout: float = 10.0, interval: float = 0.002) -> float:
        started = time.perf_counter()
        while self.present(reader) != present:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{reader}: card {'never appeared' if present else 'never left'} in {timeout} s")
            time.sleep(interval)
        return time.perf_counter() - started


def start_card(kind: str, port: int, profiles: int = 1) -> subprocess.Popen[bytes]:
    """A card process connecting to vpcd's ``port``."""
    if kind == "echo":
        argv, env = [sys.executable, __file__, "--echo-card", str(port)], dict(os.environ)
    elif kind == "eidemu":
        argv = [sys.executable, "-m", "eidemu.cli", "serve", *["--profile", "iso-demo"] * profiles]
        argv += ["--vpcd", f"localhost:{port}"]
        env = dict(os.environ)
    else:
        found = vicc_command(port)
        if found is None:
            raise RuntimeError("vicc (apt-get install vsmartcard-vpicc) not found")
        argv, env = found
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop_card(process: subprocess.Popen[bytes]) -> None:
    stop_processes([process])


def stop_processes(processes: list[subprocess.Popen[bytes]] | tuple[subprocess.Popen[bytes], ...]) -> None:
    """SIGTERM to each (cards, services) at once, then wait for each; killed after 5 s."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def time_block(conn, command: bytes, count: int, out: list[float]) -> None:
    """Append the round trip of ``count`` transmits, in milliseconds."""
    clock = time.perf_counter_ns
    transmit = conn.transmit
    for _ in range(count):
        start = clock()
        transmit(command)
        out.append((clock() - start) / 1e6)


def check(conn, command: bytes, expect_sw: bytes | None, length: int | None = None) -> None:
    response = conn.transmit(command)
    if (expect_sw is not None and response[-2:] != expect_sw) or (length is not None and len(response) != length):
        raise RuntimeError(f"{command.hex().upper()} answered {response.hex().upper()}")


def measure_side_by_side(
    port: int,
    presence: Presence,
    count: int,
    swap: bool = False,
    kinds: tuple[str, str] = ("echo", "eidemu"),
    block: int = 100,
) -> dict[str, dict[str, list[float]]]:
    """Two cards at once (``kinds``: the echo card and eidemu, or two echo cards for the
    A/A control), alternating blocks of APDUs so both see the same machine load at the same
    moments. ``swap`` puts the first card in slot 1 instead of slot 0: alternate runs swap,
    so neither card keeps a slot (or a process placement) that happens to be faster."""
    from eidemu.conformance.pcsc import PcscConnection

    ports = (port + 1, port) if swap else (port, port + 1)
    readers = (READER1, READER0) if swap else (READER0, READER1)
    labels = (kinds[0], kinds[1] + "'") if kinds[0] == kinds[1] else kinds
    processes = [start_card(kind, p) for kind, p in zip(kinds, ports, strict=True)]
    samples: dict[str, dict[str, list[float]]] = {k: {"select": [], "read_binary_200": []} for k in labels}
    try:
        for reader in readers:
            presence.wait(reader, True, timeout=15)
        with PcscConnection(readers[0]) as first, PcscConnection(readers[1]) as second:
            conns = dict(zip(labels, (first, second), strict=True))
            for command, label in ((SELECT_MF, "select"), (READ_200, "read_binary_200")):
                for kind, conn in conns.items():
                    if command is READ_200 and kind == "eidemu":
                        check(conn, SELECT_APP, b"\x90\x00")
                        check(conn, READ_200, b"\x90\x00", 202)
                    check(conn, command, b"\x90\x00")
                    time_block(conn, command, 50, [])  # warm-up
                order = list(conns.items())
                for _ in range(0, count, block):
                    for kind, conn in order:
                        time_block(conn, command, block, samples[kind][label])
                    order.reverse()  # neither card always goes first
    finally:
        for process in processes:
            stop_card(process)
        for reader in readers:
            presence.wait(reader, False)
    return samples


def measure_vicc(port: int, presence: Presence, count: int) -> dict[str, list[float]]:
    """Debian's vicc alone in slot 0 (it stalls ~40 ms per APDU; interleaving adds nothing)."""
    from eidemu.conformance.pcsc import PcscConnection

    process = start_card("vicc", port)
    samples: dict[str, list[float]] = {"select": [], "read_binary_200": []}
    try:
        presence.wait(READER0, True, timeout=15)
        with PcscConnection(READER0) as conn:
            check(conn, SELECT_MF, b"\x90\x00")
            time_block(conn, SELECT_MF, count, samples["select"])
            time_block(conn, READ_200, count, samples["read_binary_200"])
    finally:
        stop_card(process)
        presence.wait(READER0, False)
    return samples


def measure_startup(port: int, presence: Presence, runs: int) -> dict[str, list[float]]:
    """Start and stop ``eidemu serve`` at random points of pcscd's 0.4 s polling cycle.

    Starting right after a removal was detected would lock every start to the same phase
    of the cycle (measuring one point of it, not its spread), as would a user's script
    that loops; a random delay gives the figure a user starting at any moment sees.
    """
    rng = random.Random(7)
    start_to_present, stop_to_empty = [], []
    for _ in range(runs):
        time.sleep(rng.uniform(0, 0.4))
        started = time.perf_counter()
        process = start_card("eidemu", port)
        presence.wait(READER0, True, interval=0.001)
        start_to_present.append(time.perf_counter() - started)
        time.sleep(rng.uniform(0.05, 0.45))
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        presence.wait(READER0, False, interval=0.001)
        stop_to_empty.append(time.perf_counter() - stopping)
        process.wait(5)
    return {"start_to_present_s": start_to_present, "stop_to_empty_s": stop_to_empty}


def measure_throughput(port: int, presence: Presence, seconds: float) -> dict[str, float]:
    from eidemu.conformance.pcsc import PcscConnection

    process = start_card("eidemu", port, profiles=2)
    results: dict[str, float] = {}
    try:
        presence.wait(READER0, True)
        presence.wait(READER1, True)

        def client(reader: str, counts: list[int], stop: threading.Event) -> None:
            with PcscConnection(reader) as conn:
                conn.transmit(SELECT_APP)
                n = 0
                while not stop.is_set():
                    conn.transmit(READ_200)
                    n += 1
                counts.append(n)

        for label, readers in (("one_card_one_client", [READER0]), ("two_cards_two_clients", [READER0, READER1])):
            counts: list[int] = []
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(r, counts, stop)) for r in readers]
            for t in threads:
                t.start()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            results[f"{label}_apdus_per_s"] = sum(counts) / seconds
    finally:
        stop_card(process)
        presence.wait(READER0, False)
        presence.wait(READER1, False)
    return results


# -- main -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="APDUs per command per run (default 2000)")
    parser.add_argument("--runs", type=int, default=10, help="runs, each with fresh card processes (default 10)")
    parser.add_argument(
        "--control", action="store_true", help="also measure an echo card beside an echo card (the noise of the method)"
    )
    parser.add_argument("--vicc-count", type=int, default=100, help="APDUs per command per run for vicc (default 100)")
    parser.add_argument("--startup-runs", type=int, default=15, help="serve start/stop repetitions (default 15)")
    parser.add_argument("--throughput-seconds", type=float, default=3.0)
    parser.add_argument("--no-vicc", action="store_true", help="skip Debian's vicc")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--cpus",
        help="run the whole stack (pcscd, cards, client) on these CPUs, for example 1: less noise, other figures",
    )
    parser.add_argument("--echo-card", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_card is not None:
        serve_echo(args.echo_card)
        return 0
    if args.cpus:
        try:
            cpus = {int(c) for c in args.cpus.split(",")}
            os.sched_setaffinity(0, cpus)  # inherited by pcscd and the card processes started below
        except (ValueError, OSError) as exc:
            print(f"bench_pcsc: --cpus {args.cpus!r}: {exc}", file=sys.stderr)
            return 2

    from eidemu.emulator.transport import pcscd

    run_dir = Path(tempfile.mkdtemp(prefix="eidemu-bench-"))
    os.environ["PCSCLITE_CSOCK_NAME"] = str(run_dir / "sock" / "pcscd.comm")  # before libpcsclite loads
    try:
        instance = pcscd.start(run_dir)
    except pcscd.PcscdError as exc:
        print(f"bench_pcsc: {exc}", file=sys.stderr)
        return 2
    kinds = ["echo", "eidemu"] + ([] if args.no_vicc or vicc_command(0) is None else ["vicc"])
    if args.control:
        kinds.append("echo'")
    samples: dict[str, dict[str, list[list[float]]]] = {k: {"select": [], "read_binary_200": []} for k in kinds}
    try:
        presence = Presence()
        for run in range(args.runs):
            swap = run % 2 == 1
            where = "echo in slot 1, eidemu in slot 0" if swap else "echo in slot 0, eidemu in slot 1"
            print(f"run {run + 1}/{args.runs}: echo and eidemu side by side ({where})", file=sys.stderr, flush=True)
            for kind, commands in measure_side_by_side(instance.port, presence, args.count, swap).items():
                for command, values in commands.items():
                    samples[kind][command].append(values)
            if args.control:
                print(f"run {run + 1}/{args.runs}: control, echo beside echo", file=sys.stderr, flush=True)
                control = measure_side_by_side(instance.port, presence, args.count, swap, ("echo", "echo"))
                for command, values in control["echo'"].items():
                    samples["echo'"][command].append(values)
                for command, values in control["echo"].items():
                    # The control's own baseline: kept apart from the echo beside eidemu.
                    samples["echo'"][command + "_baseline"] = samples["echo'"].get(command + "_baseline", [])
                    samples["echo'"][command + "_baseline"].append(values)
            if "vicc" in kinds:
                print(f"run {run + 1}/{args.runs}: vicc", file=sys.stderr, flush=True)
                for command, values in measure_vicc(instance.port, presence, args.vicc_count).items():
                    samples["vicc"][command].append(values)
        print("serve start/stop timing", file=sys.stderr, flush=True)
        startup = measure_startup(instance.port, presence, args.startup_runs)
        print("throughput", file=sys.stderr, flush=True)
        throughput = measure_throughput(instance.port, presence, args.throughput_seconds)
    finally:
        pcscd.stop(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)

    medians: dict[str, dict[str, dict[str, object]]] = {}
    for kind, commands in samples.items():
        medians[kind] = {}
        for command, runs in commands.items():
            every = [x for r in runs for x in r]
            medians[kind][command] = {
                "median_ms": statistics.median(every),
                "run_medians_ms": [statistics.median(r) for r in runs],
                "apdus": len(every),
            }

    def ratio_of(kind: str, base: str, command: str, base_command: str | None = None) -> dict[str, object]:
        """Ratio of the pooled medians, and the median of the runs' own ratios (each run
        has fresh card processes: the spread between runs is the placement noise)."""
        mine, theirs = medians[kind][command], medians[base][base_command or command]
        per_run = [
            a / b
            for a, b in zip(mine["run_medians_ms"], theirs["run_medians_ms"], strict=True)  # type: ignore[call-overload]
        ]
        return {
            "pooled": float(mine["median_ms"]) / float(theirs["median_ms"]),  # type: ignore[arg-type]
            "median_of_runs": statistics.median(per_run),
            "runs": per_run,
        }

    ratios: dict[str, dict[str, object]] = {}
    for command in ("select", "read_binary_200"):
        ratios[command] = {"eidemu_over_echo": ratio_of("eidemu", "echo", command)}
        if "vicc" in medians:
            ratios[command]["vicc_over_eidemu"] = float(medians["vicc"][command]["median_ms"]) / float(  # type: ignore[arg-type]
                medians["eidemu"][command]["median_ms"]  # type: ignore[arg-type]
            )
        if args.control:
            ratios[command]["control_echo_over_echo"] = ratio_of("echo'", "echo'", command, command + "_baseline")
    startup_summary = {
        "start_to_present_median_s": statistics.median(startup["start_to_present_s"]),
        "stop_to_empty_median_s": statistics.median(startup["stop_to_empty_s"]),
        **startup,
    }

    print()
    print(f"{'command':<18}{'echo floor':>12}{'eidemu':>12}{'vicc':>12}{'eidemu/echo':>13}{'vicc/eidemu':>13}")
    for command in ("select", "read_binary_200"):
        cells = [f"{float(medians[k][command]['median_ms']):.3f} ms" if k in medians else "-" for k in kinds]  # type: ignore[arg-type]
        vicc_cell = cells[2] if "vicc" in kinds else "-"
        vicc_ratio = f"{ratios[command]['vicc_over_eidemu']:.0f}x" if "vicc_over_eidemu" in ratios[command] else "-"
        mine = ratios[command]["eidemu_over_echo"]
        print(f"{command:<18}{cells[0]:>12}{cells[1]:>12}{vicc_cell:>12}{mine['pooled']:>12.3f}x{vicc_ratio:>13}")  # type: ignore[index]
    print()
    print(f"eidemu/echo per run ({args.runs} runs, fresh card processes each, slots swapped every other run):")
    for command in ("select", "read_binary_200"):
        for key, label in (("eidemu_over_echo", "eidemu/echo"), ("control_echo_over_echo", "control echo/echo")):
            if key not in ratios[command]:
                continue
            r = ratios[command][key]
            runs = " ".join(f"{x:.3f}" for x in r["runs"])  # type: ignore[index]
            print(f"  {command:<16} {label:<18} median of runs {r['median_of_runs']:.3f}  [{runs}]")  # type: ignore[index]
    print()
    print(
        f"eidemu serve start -> card present: median {startup_summary['start_to_present_median_s']:.3f} s "
        f"({args.startup_runs} runs; pcscd polls every 0.4 s)"
    )
    print(f"eidemu serve stop -> empty reader:  median {startup_summary['stop_to_empty_median_s']:.3f} s")
    print(
        f"READ BINARY 200 throughput: one card, one client {throughput['one_card_one_client_apdus_per_s']:.0f}/s; "
        f"two cards in one process, two client threads {throughput['two_cards_two_clients_apdus_per_s']:.0f}/s"
    )
    if args.json:
        result = {
            "environment": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "pcscd": subprocess.run(["pcscd", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
            },
            "parameters": vars(args),
            "round_trip": medians,
            "ratios": ratios,
            "serve_timing": startup_summary,
            "throughput": throughput,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
