"""What the fault layer costs on the APDU path: the bare card next to the same card behind
:class:`eidemu.emulator.faults.FaultyCard`, in one run.

Three ways to send the same APDUs to an ``iso-demo`` card (no state file, no tracer):

* **bare**: ``card.transmit``, as a transport holding the card calls it, and the same for
  a second bare card (**bare 2**): the difference between the two is the noise floor;
* **unarmed**: ``faulty.transmit`` with nothing armed; the wrapper then hands out the
  card's own bound method, so this should not differ from bare beyond noise;
* **armed, idle**: a plan whose one rule never fires (``command=00FE``), so every APDU
  goes through the rule matching: the price of a plan armed and waiting.

Each figure is the median over ``--runs`` runs of the mean time per APDU over ``--loops``
calls (garbage collector off during a run); the three alternate run by run so that all
see the same machine conditions.

    python3 benchmarks/bench_faults.py
    python3 benchmarks/bench_faults.py --runs 9 --loops 50000 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eidemu.emulator.faults import FaultPlan, FaultyCard  # noqa: E402
from eidemu.emulator.profile import load_profile  # noqa: E402

APDUS = [
    ("SELECT MF", bytes.fromhex("00A4000C023F00"), None),
    ("READ BINARY 200", bytes.fromhex("00B00000C8"), bytes.fromhex("00A4080C0450005001")),
    ("VERIFY", bytes.fromhex("0020000108313233343536FFFF"), None),
]


def timed(transmit: Callable[[bytes], bytes], command: bytes, loops: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            transmit(command)
        return (time.perf_counter() - start) / loops
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--loops", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    profile = load_profile("iso-demo")
    bare = profile.build()
    bare2 = profile.build()
    unarmed_card = profile.build()
    unarmed = FaultyCard(unarmed_card)
    armed = FaultyCard(profile.build(), FaultPlan.from_lines(["fault=status command=00FE times=0"]))
    senders: dict[str, Callable[[bytes], bytes]] = {
        "bare": lambda raw: bare.transmit(raw),
        "bare 2": lambda raw: bare2.transmit(raw),
        "unarmed": lambda raw: unarmed.transmit(raw),
        "armed, idle": lambda raw: armed.transmit(raw),
    }
    results: dict[str, dict[str, float]] = {}
    for name, command, setup in APDUS:
        samples: dict[str, list[float]] = {k: [] for k in senders}
        for card in (bare, bare2, unarmed_card, armed.card):
            card.power_on()
            if setup:
                card.transmit(setup)
        for _ in range(args.runs):
            for key, send in senders.items():
                samples[key].append(timed(send, command, args.loops))
        results[name] = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    if args.json:
        print(json.dumps({"microseconds_per_apdu": results, "runs": args.runs, "loops": args.loops}, indent=1))
        return 0
    print(f"median of {args.runs} runs x {args.loops} APDUs, microseconds per APDU")
    print(f"{'APDU':<18}{'bare':>8}{'bare 2':>8}{'ratio':>7}{'unarmed':>9}{'ratio':>7}{'armed, idle':>13}{'ratio':>7}")
    for name, row in results.items():
        base = row["bare"]
        print(
            f"{name:<18}{base:>8.2f}{row['bare 2']:>8.2f}{row['bare 2'] / base:>7.2f}"
            f"{row['unarmed']:>9.2f}{row['unarmed'] / base:>7.2f}"
            f"{row['armed, idle']:>13.2f}{row['armed, idle'] / base:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
