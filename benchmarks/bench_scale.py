"""Many cards at once through the real stack (pcscd + vpcd + pyscard), in one run.

1. One private pcscd with 8 vpcd readers (16 slots, ``eidemu pcscd start --readers 8``) and
   one ``eidemu serve`` process serving 16 iso-demo cards. READ BINARY of 200 bytes
   (``00 B0 81 00 C8``: EF 5001 by SFI 01 after selecting the application) is sent:
   first by one client thread to one card alone, then by 16 client threads at once, each to
   its own card. Reported: aggregate APDUs per second and the per-APDU median of each.
2. The shipped catalogue's wall time through the same stack with ``pytest -n 1, 2, 4, 8
   --card served:iso-demo`` (one served card per xdist worker, each in its own slot).

Usage: python3 benchmarks/bench_scale.py [--count 500] [--cards 16] [--workers 1,2,4,8] [--json FILE]
Needs root (or user namespaces) for the private pcscd, Debian's pcscd and vsmartcard-vpcd,
and pyscard and pytest-xdist in the interpreter running it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")
READ_BINARY = bytes.fromhex("00B08100C8")


def client(reader: str, count: int, latencies: list[float], start: threading.Barrier) -> None:
    """Open ``reader``, select the application, wait for the others, send ``count`` READ BINARYs."""
    from eidemu.conformance.pcsc import PcscConnection

    connection = PcscConnection(reader)
    try:
        assert connection.transmit(SELECT_APP)[-2:] == b"\x90\x00"
        response = connection.transmit(READ_BINARY)
        assert len(response) == 202 and response[-2:] == b"\x90\x00", response.hex()
        start.wait()
        for _ in range(count):
            began = time.perf_counter()
            response = connection.transmit(READ_BINARY)
            latencies.append(time.perf_counter() - began)
            if len(response) != 202:
                raise RuntimeError(f"{reader}: READ BINARY answered {response[-2:].hex()}")
    finally:
        connection.close()


def run_clients(readers: list[str], count: int) -> dict[str, float]:
    """Every reader gets a client thread; APDUs per second over all of them and the median."""
    per_thread: list[list[float]] = [[] for _ in readers]
    start = threading.Barrier(len(readers) + 1)
    threads = [
        threading.Thread(target=client, args=(reader, count, per_thread[i], start)) for i, reader in enumerate(readers)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies = [x for thread_latencies in per_thread for x in thread_latencies]
    if len(latencies) != count * len(readers):
        raise SystemExit("a client thread failed (see above)")
    return {
        "cards": len(readers),
        "apdus": len(latencies),
        "wall_s": round(wall, 3),
        "apdus_per_s": round(len(latencies) / wall, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 3),
        "p95_ms": round(statistics.quantiles(latencies, n=20)[18] * 1000, 3),
    }


def serve(environment: dict[str, str], cards: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "eidemu.cli", "serve"]
    for _ in range(cards):
        argv += ["--profile", "iso-demo"]
    return subprocess.Popen(
        argv, env=environment, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


def catalogue_wall_time(environment: dict[str, str], workers: int) -> dict[str, float | int | str]:
    """``pytest -n WORKERS --card served:iso-demo`` over the shipped catalogue, in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="eidemu-bench-scale-") as scratch:
        argv = [
            sys.executable, "-m", "pytest", "-n", str(workers), "-p", "no:cacheprovider", "-q",
            "--card", "served:iso-demo", f"--rootdir={scratch}",
        ]  # fmt: skip
        began = time.perf_counter()
        run = subprocess.run(argv, cwd=scratch, env=environment, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - began
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr.strip()[-200:]
    if run.returncode != 0:
        raise SystemExit(f"pytest -n {workers} failed: {last}")
    return {"workers": workers, "wall_s": round(wall, 2), "result": last}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="READ BINARYs per client thread")
    parser.add_argument("--cards", type=int, default=16, help="cards served at once (at most 16)")
    parser.add_argument("--workers", default="1,2,4,8", help="xdist worker counts for the catalogue")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if not 1 <= args.cards <= 16:
        parser.error("--cards must be from 1 to 16")
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    from eidemu.emulator.transport import pcscd

    readers_needed = max(args.cards, *workers)
    with tempfile.TemporaryDirectory(prefix="eidemu-scale-") as run_dir:
        instance = pcscd.start(run_dir, readers=(readers_needed + 1) // 2)
        os.environ.update(instance.environment)  # before this process's first PC/SC call
        environment = dict(os.environ, PYTHONPATH=str(ROOT))
        figures: dict[str, object] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "count_per_client": args.count,
        }
        try:
            server = serve(environment, args.cards)
            try:
                from eidemu.conformance.pcsc import wait_for_card

                names = [instance.reader_name(slot) for slot in range(args.cards)]
                for name in names:
                    wait_for_card(name, present=True, timeout=30)
                figures["one_card_alone"] = run_clients(names[:1], args.count)
                figures["all_cards_at_once"] = run_clients(names, args.count)
            finally:
                server.communicate("quit\n", timeout=30)
            for name in names:
                wait_for_card(name, present=False, timeout=10)
            figures["catalogue"] = [catalogue_wall_time(environment, n) for n in workers]
        finally:
            pcscd.stop(run_dir)
    alone, many = figures["one_card_alone"], figures["all_cards_at_once"]
    assert isinstance(alone, dict) and isinstance(many, dict)
    print(f"machine: {figures['machine']}")
    print(
        f"one card alone:      {alone['apdus_per_s']:8.1f} READ BINARY/s, median {alone['median_ms']:.3f} ms, "
        f"p95 {alone['p95_ms']:.3f} ms"
    )
    print(
        f"{many['cards']} cards at once:   {many['apdus_per_s']:8.1f} READ BINARY/s in all, "
        f"median {many['median_ms']:.3f} ms, p95 {many['p95_ms']:.3f} ms"
    )
    for row in figures["catalogue"]:  # type: ignore[attr-defined]
        print(f"catalogue, pytest -n {row['workers']}: {row['wall_s']:.2f} s ({row['result']})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
