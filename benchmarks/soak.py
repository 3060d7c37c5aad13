"""Soak run: a million or more random and mutated APDUs at the ``iso-demo`` card.

The generator and the invariants are those of the property-based test
``tests/emulator/test_fuzz.py`` (well-formed responses, no ``6F00``/logged exception,
honest retry counters), driven by a seeded :class:`random.Random` instead of hypothesis so
that a million APDUs take well under a minute. The card runs in-process, without a state
file or tracer. Prints the rate and the count of every status word; ``--json`` writes them
as one JSON document instead.

    python3 benchmarks/soak.py                      # 1,000,000 APDUs, seed 1
    python3 benchmarks/soak.py --count 5000000 --seed 7 --json

Exit status 0 when every exchange kept the invariants, 1 with the offending exchange
otherwise (rerun with the same seed to reproduce it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "emulator")]

from test_fuzz import InvariantViolation, run_random  # noqa: E402

from eidemu.emulator.iso7816.sw import describe_sw  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="APDUs to send (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    parser.add_argument("--reset-every", type=int, default=5000, help="warm reset after this many APDUs")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        checker = run_random(args.count, seed=args.seed, reset_every=args.reset_every)
    except InvariantViolation as exc:
        print(f"invariant broken (seed {args.seed}): {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    counts = Counter({f"{sw:04X}": n for sw, n in checker.sw_counts.items()})
    rate = checker.exchanges / elapsed
    if args.json:
        report = {
            "apdus": checker.exchanges,
            "seconds": round(elapsed, 3),
            "apdus_per_second": round(rate),
            "seed": args.seed,
            "status_words": dict(sorted(counts.items())),
        }
        print(json.dumps(report, indent=1))
        return 0
    print(f"{checker.exchanges:,} APDUs in {elapsed:.1f} s: {rate:,.0f} APDUs/s (generator and checks included)")
    print("invariants held for every exchange")
    for sw_hex, n in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {sw_hex}  {n:>9,}  {describe_sw(int(sw_hex, 16))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
