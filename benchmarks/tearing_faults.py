"""Tearing soak: thousands of injected power losses at random commit points of VERIFY,
CHANGE REFERENCE DATA and UPDATE BINARY, each followed by a consistency check.

The loop and its invariants are those of ``tests/faults/test_tearing.py`` (counters never
higher than before except after the right PIN, PIN values and file contents old or new,
the whole effect after a completed command, memory and state file in agreement). The card
is ``iso-demo`` with a real state file (atomic write-and-rename with fsync).

    python3 benchmarks/tearing_faults.py                  # 1,000 power losses, seed 1
    python3 benchmarks/tearing_faults.py --count 5000 --seed 7 --json

Exit status 0 when every power loss left a consistent state, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "faults")]

from test_tearing import InvariantViolation, run_tearing  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="power losses to inject (default 1,000)")
    parser.add_argument("--seed", type=int, default=1, help="PRNG seed (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eidemu-tearing-") as tmp:
        try:
            report = run_tearing(args.count, args.seed, Path(tmp))
        except InvariantViolation as exc:
            print(f"INCONSISTENT after a power loss: {exc} (seed {args.seed})", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    doc = {
        "power_losses": report.tears,
        "consistent": report.tears,
        "completed_before_the_cut": report.completed,
        "by_command": dict(sorted(report.by_command.items())),
        "by_point": dict(sorted(report.by_point.items())),
        "seconds": round(elapsed, 2),
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"{report.tears} injected power losses, {report.tears} consistent states ({elapsed:.1f} s, seed {args.seed})")
    print("  by command: " + ", ".join(f"{k} {v}" for k, v in doc["by_command"].items()))
    print("  by cut point: " + ", ".join(f"{k} {v}" for k, v in doc["by_point"].items()))
    print(f"  commands that completed before the cut (fewer commits than the cut point): {report.completed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
