#!/usr/bin/env python3
"""The whole conformance catalogue: wall time, APDUs sent, and the harness overhead.

Harness overhead = suite time / raw time, where *raw time* is sending exactly the same
APDUs (the bytes the suite sent, test by test) straight to ``CardConnection.transmit`` in
the same run, with the same card preparation before each test (a card rebuilt from its
profile in-process; a reset through PC/SC). The suite time includes everything the harness
does: variable expansion, APDU encoding, expectation checks, captures, result objects.
Target: at most 2x.

Stacks:

- ``inprocess``: ``emulator:iso-demo``, the card in this process;
- ``pcsc``: pyscard -> a private pcscd -> vpcd -> iso-demo served by eidemu's vpcd
  transport from this process (needs root for ``unshare -m`` and Debian's pcscd and
  vsmartcard-vpcd: scripts/setup.sh). Real cards are not rebuilt between tests, so the
  destructive tests are SKIPPED there, as they would be against a real card.

Usage: python3 benchmarks/bench_conformance.py [--stack inprocess|pcsc|all] [--runs 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eidemu.conformance.runner import CardUnderTest, Outcome, TestResult, load_catalogue, run_tests, select_tests  # noqa: E402


def replay_raw(card: CardUnderTest, results: list[TestResult]) -> tuple[float, float, int]:
    """Send the suite's APDUs again without the harness: (total s, transmit-only s, count)."""
    plans = [[(s.kind, s.command) for s in r.steps] for r in results if r.steps]
    started = time.perf_counter()
    transmit_time = 0.0
    count = 0
    for plan in plans:
        connection = card.fresh()
        t0 = time.perf_counter()
        for kind, command in plan:
            if kind == "send":
                connection.transmit(command)
                count += 1
            elif kind in ("reset", "power-cycle"):
                connection.reset()
        transmit_time += time.perf_counter() - t0
    return time.perf_counter() - started, transmit_time, count


def measure(card: CardUnderTest, runs: int) -> dict[str, object]:
    selected = select_tests(load_catalogue())
    suite_times, raw_times, transmit_times = [], [], []
    results: list[TestResult] = []
    for _ in range(runs):
        started = time.perf_counter()
        results = run_tests(card, selected)
        suite_times.append(time.perf_counter() - started)
        raw, transmit, apdus = replay_raw(card, results)
        raw_times.append(raw)
        transmit_times.append(transmit)
    counts = {str(o): sum(1 for r in results if r.outcome == o) for o in Outcome}
    suite, raw = min(suite_times), min(raw_times)  # the least disturbed run of each
    return {
        "card": card.description,
        "tests": len(selected),
        "verdicts": counts,
        "apdus": apdus,
        "suite_s": round(suite, 4),
        "raw_s": round(raw, 4),
        "raw_transmit_only_s": round(min(transmit_times), 4),
        "overhead": round(suite / raw, 2),
        "per_apdu_ms": round(suite / max(apdus, 1) * 1000, 3),
        "runs": runs,
    }


def bench_inprocess(runs: int) -> dict[str, object]:
    return measure(CardUnderTest("emulator:iso-demo"), runs)


def bench_pcsc(runs: int) -> dict[str, object]:
    from eidemu.cards import VirtualReader
    from eidemu.emulator.profile import load_profile
    from eidemu.emulator.transport import pcscd

    missing = pcscd.missing_requirements()
    if missing:
        raise SystemExit("pcsc stack missing: " + "; ".join(missing) + " (run scripts/setup.sh)")
    with VirtualReader() as virtual:  # exports PCSCLITE_CSOCK_NAME before pyscard loads
        reader = virtual.insert(load_profile("iso-demo").build())
        card = CardUnderTest(f"pcsc:{reader}")
        try:
            return measure(card, runs)
        finally:
            card.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("inprocess", "pcsc", "all"), default="inprocess")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures: dict[str, object] = {"python": platform.python_version(), "machine": platform.machine()}
    if args.stack in ("inprocess", "all"):
        figures["inprocess"] = bench_inprocess(args.runs)
    if args.stack in ("pcsc", "all"):
        figures["pcsc"] = bench_pcsc(max(1, args.runs // 2))
    for name in ("inprocess", "pcsc"):
        if name in figures:
            f = figures[name]
            assert isinstance(f, dict)
            print(
                f"{name:<10} {f['tests']} tests {f['verdicts']}  {f['apdus']} APDUs  "
                f"suite {f['suite_s'] * 1000:.1f} ms  "
                f"raw {f['raw_s'] * 1000:.1f} ms (transmit only {f['raw_transmit_only_s'] * 1000:.1f} ms)  "
                f"overhead {f['overhead']}x  {f['per_apdu_ms']} ms/APDU"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
