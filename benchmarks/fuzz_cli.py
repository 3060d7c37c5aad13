"""Fuzz run of the profile loader and the command line: thousands of generated profiles.

The generator and the invariant are those of ``tests/test_fuzz_cli.py`` (every command
exits 0, or 2 with one ``eidemu: error: <file>: ...`` line per problem; never a traceback),
driven by a seeded :class:`random.Random` instead of hypothesis. Each input goes through
``eidemu profile check``, ``eidemu profile show`` and ``eidemu apdu --profile``. Prints the
inputs tried, the outcomes by command and exit status, and the commonest refusals;
``--json`` writes them as one JSON document instead.

    python3 benchmarks/fuzz_cli.py                   # 3,000 inputs, seed 1
    python3 benchmarks/fuzz_cli.py --count 10000 --seed 7 --json

Exit status 0 when every input kept the invariant, 1 with the offending input otherwise
(rerun with the same seed to reproduce it).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "emulator")]

from test_fuzz_cli import Broken, run_random  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="generated profiles (default 3,000)")
    parser.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    parser.add_argument("--top", type=int, default=15, help="refusal messages to list (default 15)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    logging.disable(logging.CRITICAL)  # the card's own log lines are not the subject here
    start = time.perf_counter()
    try:
        tally = run_random(args.count, seed=args.seed)
    except Broken as exc:
        print(f"invariant broken (seed {args.seed}): {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    if args.json:
        report = {
            "inputs": tally.inputs,
            "command_runs": sum(tally.outcomes.values()),
            "seconds": round(elapsed, 1),
            "seed": args.seed,
            "outcomes": dict(sorted(tally.outcomes.items())),
            "refusals": dict(tally.messages.most_common(args.top)),
        }
        print(json.dumps(report, indent=1))
        return 0
    runs = sum(tally.outcomes.values())
    print(f"{tally.inputs:,} generated profiles, {runs:,} command runs in {elapsed:.1f} s (seed {args.seed})")
    print("invariant held for every run: exit 0/1/2, one 'eidemu: error: FILE: ...' line per problem, no traceback")
    for outcome, n in sorted(tally.outcomes.items()):
        print(f"  {outcome:<24} {n:>7,}")
    print(f"commonest refusals ({len(tally.messages)} kinds):")
    for message, n in tally.messages.most_common(args.top):
        print(f"  {n:>7,}  {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
