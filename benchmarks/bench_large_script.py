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
import resource
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


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv`` in its own process.

    CPU time is printed too because on a shared machine the wall time mostly measures the
    other processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-500:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
    print(f"script: {args.tests} tests, {size / 1e6:.1f} MB; median of {args.runs} run(s), one process each")
    lint_wall, lint_cpu = (statistics.median(t[i] for t in lint) for i in (0, 1))
    run_wall, run_cpu = (statistics.median(t[i] for t in run) for i in (0, 1))
    for name, wall, cpu in (("lint", lint_wall, lint_cpu), ("run ", run_wall, run_cpu)):
        print(
            f"{name}: wall {wall:8.2f} s {args.tests / wall:9.0f} tests/s | "
            f"cpu {cpu:8.2f} s {args.tests / cpu:9.0f} tests/s"
        )
    print(f"run / lint: {run_wall / lint_wall:.1f}x wall, {run_cpu / lint_cpu:.1f}x cpu (run includes parsing)")


if __name__ == "__main__":
    main()
