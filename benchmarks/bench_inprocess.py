"""In-process time per APDU: eidemu next to vsmartcard's ``vicc``, in the same run.

Four commands, sent unchanged to both card OS objects:

=================  =====================================  ==================================
APDU               bytes                                  state before the timed loop
=================  =====================================  ==================================
SELECT MF          ``00 A4 00 0C 02 3F00``                power-up
READ BINARY 200    ``00 B0 00 00 C8``                     EF 3F00/5000/5001 (200 bytes) current
GET CHALLENGE      ``00 84 00 00 08``                     power-up
VERIFY             ``00 20 00 01 08 313233343536FFFF``    power-up (the correct PIN)
=================  =====================================  ==================================

**eidemu** is the ``iso-demo`` profile built with ``load_profile("iso-demo").build()``:
no state file and no APDU tracer, so nothing but the card OS is measured. One extra line,
without a target, times VERIFY with a state file, where every VERIFY writes the state
twice (decremented counter before the comparison, restored counter after it), each time
atomically with two ``fsync`` calls: that line measures the disk as much as the code.

**vicc** is ``virtualsmartcard.VirtualSmartcard.Iso7816OS`` called through its in-process
``execute()``, the object ``vicc --type iso7816`` serves, but built directly instead of
through ``CardGenerator`` (which prompts for nothing for this type but pickles and would
add its own default PIN): an ``MF`` holding a ``DF`` 5000 named ``A0000002471001`` with a
200-byte ``TransparentStructureEF`` 5001, and a ``SAM`` whose PIN is the same 8-byte
padded block, so the same VERIFY APDU succeeds on both. Differences worth knowing when
reading the figures:

* vicc's VERIFY ignores P2 (one PIN per card) and keeps its counter in memory only; it
  compares with ``==`` (not constant time). eidemu looks up PIN 01, compares with
  ``hmac.compare_digest`` and, with no state file, persists nothing.
* vicc's GET CHALLENGE always returns 8 bytes regardless of Le; eidemu returns Le bytes
  and keeps them for EXTERNAL AUTHENTICATE. Both draw from ``os.urandom``.
* vicc formats a hexdump of every command for ``logging.info`` before the logger decides
  not to emit it (the root logger stays at its default WARNING level here); eidemu does no
  per-APDU logging unless a tracer is attached.
* Neither card answers with FCP/FCI here (P2 = 0C).

Each figure is the median over ``--runs`` runs of the mean time per APDU over ``--loops``
calls (garbage collector off during a run, as ``timeit`` does); the two cards alternate
run by run so that both see the same machine conditions. The target of issue 2 is eidemu
at most half vicc's time for every APDU (ratio <= 0.50).

vicc needs Debian's ``vsmartcard-vpicc`` package and PyPI's ``pycryptodome``; its modules
live outside Python's default path, in :data:`VICC_PATH` (override with the
``EIDEMU_VICC_PATH`` environment variable). Without them only eidemu is measured.

    python3 benchmarks/bench_inprocess.py
    python3 benchmarks/bench_inprocess.py --runs 7 --loops 50000 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eidemu.emulator.profile import load_profile  # noqa: E402

# Where Debian's vsmartcard-vpicc package installs the virtualsmartcard modules.
VICC_PATH = os.environ.get("EIDEMU_VICC_PATH", "/usr/lib/python3/site-packages/virtualsmartcard")

PIN_BLOCK = b"123456\xff\xff"
SELECT_EF_5001 = bytes.fromhex("00A4080C0450005001")
APDUS: list[tuple[str, bytes, bytes | None]] = [
    # name, command, setup command sent once before the timed loop
    ("SELECT MF", bytes.fromhex("00A4000C023F00"), None),
    ("READ BINARY 200", bytes.fromhex("00B00000C8"), SELECT_EF_5001),
    ("GET CHALLENGE", bytes.fromhex("0084000008"), None),
    ("VERIFY", bytes.fromhex("0020000108") + PIN_BLOCK, None),
]
Transmit = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Row:
    """One line of the result table: microseconds per APDU for each card."""

    apdu: str
    eidemu_us: float
    vicc_us: float | None

    @property
    def ratio(self) -> float | None:
        return self.eidemu_us / self.vicc_us if self.vicc_us else None

    def as_dict(self) -> dict[str, object]:
        return {"apdu": self.apdu, "eidemu_us": self.eidemu_us, "vicc_us": self.vicc_us, "ratio": self.ratio}


def eidemu_card(state_file: Path | None = None) -> Transmit:
    return load_profile("iso-demo").build(state_file).transmit


def vicc_card() -> Transmit | None:
    """vicc's ISO 7816 card OS with the same DF, EF and PIN, or None when not installed."""
    if os.path.isdir(VICC_PATH) and VICC_PATH not in sys.path:
        sys.path.append(VICC_PATH)
    try:
        from virtualsmartcard.ConstantDefinitions import FDB
        from virtualsmartcard.SmartcardFilesystem import DF, MF, TransparentStructureEF
        from virtualsmartcard.SmartcardSAM import SAM
        from virtualsmartcard.VirtualSmartcard import Iso7816OS
    except ImportError as exc:
        print(f"vicc not available ({exc}); measuring eidemu only", file=sys.stderr)
        return None
    mf = MF(filedescriptor=FDB["DF"])
    sam = SAM(PIN_BLOCK, b"1234567890", mf=mf)
    df = DF(parent=mf, fid=0x5000, dfname=bytes.fromhex("A0000002471001"))
    mf.append(df)
    content = load_profile("iso-demo").build().mf.find_path("3F00/5000/5001").data  # type: ignore[attr-defined]
    df.append(TransparentStructureEF(parent=df, fid=0x5001, data=bytes(content)))
    card = Iso7816OS(mf, sam)
    card.powerUp()
    return card.execute


def expected_ok(name: str, response: bytes) -> bool:
    length = {"READ BINARY 200": 200, "GET CHALLENGE": 8}.get(name, 0)
    return len(response) == length + 2 and response[-2:] == b"\x90\x00"


def time_loop(transmit: Transmit, apdu: bytes, loops: int) -> float:
    """Mean seconds per call over ``loops`` calls."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(loops):
            transmit(apdu)
        return (time.perf_counter() - start) / loops
    finally:
        if gc_was_enabled:
            gc.enable()


def measure(cards: dict[str, Transmit], runs: int, loops: int) -> dict[str, dict[str, float]]:
    """Median microseconds per APDU, by APDU name and card name."""
    results: dict[str, dict[str, float]] = {}
    for name, apdu, setup in APDUS:
        samples: dict[str, list[float]] = {card: [] for card in cards}
        for card, transmit in cards.items():
            if setup is not None:
                transmit(setup)
            response = transmit(apdu)
            if not expected_ok(name, response):
                raise SystemExit(f"{card} answered {response.hex().upper()} to {name}; cannot benchmark")
            time_loop(transmit, apdu, max(1, loops // 10))  # warm up
        for _ in range(runs):
            for card, transmit in cards.items():
                samples[card].append(time_loop(transmit, apdu, loops) * 1e6)
        results[name] = {card: statistics.median(values) for card, values in samples.items()}
    return results


def measure_verify_with_state(runs: int, loops: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        transmit = eidemu_card(Path(tmp) / "state.json")
        apdu = APDUS[3][1]
        if transmit(apdu) != b"\x90\x00":
            raise SystemExit("VERIFY with a state file failed; cannot benchmark")
        return statistics.median(time_loop(transmit, apdu, loops) * 1e6 for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per APDU and card (median taken; default 5)")
    parser.add_argument("--loops", type=int, default=20000, help="APDUs per run (default 20000)")
    parser.add_argument("--state-loops", type=int, default=200, help="VERIFYs per run with a state file (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)

    cards: dict[str, Transmit] = {"eidemu": eidemu_card()}
    vicc = vicc_card()
    if vicc is not None:
        cards["vicc"] = vicc
    results = measure(cards, args.runs, args.loops)
    with_state = measure_verify_with_state(args.runs, args.state_loops)

    rows = [Row(name, results[name]["eidemu"], results[name].get("vicc")) for name, _, _ in APDUS]
    met = all(r.ratio is not None and r.ratio <= 0.5 for r in rows) if vicc is not None else None
    extra = Row("VERIFY, state file", with_state, None)

    if args.json:
        doc = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "runs": args.runs,
            "loops": args.loops,
            "results": [row.as_dict() for row in rows],
            "extra": [extra.as_dict()],
            "target_ratio": 0.5,
            "target_met": met,
        }
        print(json.dumps(doc, indent=1))
        return 0
    print(f"Python {platform.python_version()}, median of {args.runs} runs x {args.loops} APDUs (us per APDU)")
    print(f"{'APDU':<20} {'eidemu us':>10} {'vicc us':>10} {'ratio':>7}")
    for row in [*rows, extra]:
        peer = f"{row.vicc_us:10.2f}" if row.vicc_us is not None else f"{'-':>10}"
        ratio = f"{row.ratio:7.3f}" if row.ratio is not None else f"{'-':>7}"
        print(f"{row.apdu:<20} {row.eidemu_us:10.2f} {peer} {ratio}")
    if met is not None:
        print(f"target (eidemu <= 0.5 x vicc for every APDU): {'met' if met else 'NOT met'}")
    print("eidemu: no state file, no tracer; the last line adds a state file (two atomic writes per VERIFY)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
