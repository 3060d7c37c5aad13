"""Large conformance scripts: ``eidemu conformance lint`` and ``run`` on one file of N tests.

Generates a script of N test cases (four kinds of test over the ``iso-demo`` card: SELECT by
AID with and without FCI, SELECT then READ BINARY by SFI with data checks, the PIN retry
counter), then times the real commands as a user runs them, each in its own process:

    eidemu conformance lint FILE
    eidemu conformance run --card emulator:iso-demo --no-catalogue --scripts FILE -q

and prints the median wall time of each and the tests per second.

    python benchmarks/bench_large_script.py                 # N = 20000, 3 runs
    python benchmarks/bench_large_script.py --tests 200000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = (
    "send 00 A4 04 0C data A0 00 00 02 47 10 01\n  sw 90 00\n",
    "send 00 A4 04 00 data A0 00 00 02 47 10 01 le 00\n  sw 90 00 | 61 ??\n",
    "send 00 A4 04 0C data A0 00 00 02 47 10 01\n  sw 90 00\n"
    "send 00 B0 81 00 10\n  sw 90 00\n  data prefix 48 65 6C 6C 6F\n  data length 16\n",
    "send 00 20 00 01\n  sw 63 C?\n",
)


def write_script(path: Path, count: int) -> None:
    """``count`` tests BENCH_000001... cycling through :data:`KINDS`."""
    with path.open("w", encoding="utf-8") as out:
        out.write("suite: large script benchmark\ntokens: ISO7816\n")
        for n in range(1, count + 1):
            out.write(f"\ntest BENCH_{n:06d}: generated test {n}\n")
            out.write(KINDS[n % len(KINDS)])


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=20000, metavar="N", help="test cases in the script")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (the median is printed)")
    args = parser.parse_args()
    eidemu = [sys.executable, "-m", "eidemu.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "large.apdu"
        write_script(script, args.tests)
        size = script.stat().st_size
        lint = [timed([*eidemu, "conformance", "lint", str(script)]) for _ in range(args.runs)]
        run_argv = [*eidemu, "conformance", "run", "--card", "emulator:iso-demo", "--no-catalogue"]
        run = [timed([*run_argv, "--scripts", str(script), "-q"]) for _ in range(args.runs)]
    lint_s, run_s = statistics.median(lint), statistics.median(run)
    print(f"script: {args.tests} tests, {size / 1e6:.1f} MB; median of {args.runs} run(s), wall time per process")
    print(f"lint: {lint_s:8.2f} s  {args.tests / lint_s:10.0f} tests/s")
    print(f"run : {run_s:8.2f} s  {args.tests / run_s:10.0f} tests/s  ({run_s / lint_s:.1f}x lint)")


if __name__ == "__main__":
    main()
