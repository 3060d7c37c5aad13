"""The latency model: ATR parameters (ISO/IEC 7816-3 §8.3), T=1 transfer time (§7.1, §11),
the citizen-card figures, and the wrapper applying it with a scale and reporting it."""

from __future__ import annotations

import io
import json
import random

import pytest

from eidemu.emulator.applets.moica import ATR_GEN1
from eidemu.emulator.faults import CITIZEN_CARD, AtrTiming, FaultPlan, FaultyCard, t1_transfer_seconds
from eidemu.emulator.iso7816.trace import JsonLinesTracer
from eidemu.emulator.profile import load_profile

ISO_DEMO_ATR = bytes.fromhex("3B888001454944454D5530313A")


def test_atr_parameters_of_the_citizen_card() -> None:
    # 3B B8 13 00 81 31 FA 52 ...: TA1 13 (Fi 372, Di 4), TD1 81 / TD2 31 (T=1), TA3 FA (IFSC 250).
    timing = AtrTiming.parse(ATR_GEN1)
    assert timing == AtrTiming(fi=372, di=4, extra_guard=0, ifsc=250)
    assert timing.etu(4_000_000) == pytest.approx(23.25e-6)
    assert AtrTiming.parse(ISO_DEMO_ATR) == AtrTiming(fi=372, di=1, extra_guard=0, ifsc=32)


def test_read_binary_200_transfer_time_by_hand() -> None:
    """(5 + 4) + (202 + 4) characters x 12 etu + one BGT of 22 etu = 2602 etu x 23.25 us."""
    seconds = t1_transfer_seconds(5, 202, AtrTiming.parse(ATR_GEN1), 4_000_000, 254)
    assert seconds == pytest.approx(2602 * 23.25e-6)
    assert round(seconds * 1000, 2) == 60.5


def test_chained_blocks_add_r_blocks_and_guard_times() -> None:
    """258 response bytes with IFSD 254: two I-blocks (254 + 4), an R-block, and 3 turns."""
    atr = AtrTiming.parse(ATR_GEN1)
    seconds = t1_transfer_seconds(5, 258, atr, 4_000_000, 254)
    characters = 5 + 258 + 4 * 3 + 4 * 1
    assert seconds == pytest.approx((characters * 12 + 3 * 22) * atr.etu(4_000_000))


def test_citizen_card_totals_match_the_cited_measurements() -> None:
    def total(command: str, response_length: int) -> float:
        return CITIZEN_CARD.nominal_seconds(ATR_GEN1, bytes.fromhex(command), bytes(response_length)) * 1000

    assert total("80A40000023F00", 2) == pytest.approx(9.45, abs=0.01)  # selectApplet 9.45 ms
    assert total("8C200001" + "00" * 33, 2) == pytest.approx(33.0, abs=0.2)  # verifyPin 33.0 ms
    assert total("80EA020580" + "00" * 128, 2) == pytest.approx(269.2, abs=0.3)  # signRSA2048 269 ms


def test_wrapper_sleeps_the_scaled_model_time_and_traces_it() -> None:
    slept: list[float] = []
    stream = io.StringIO()
    card = FaultyCard(load_profile("iso-demo").build(), sleep=slept.append)
    card.tracer = JsonLinesTracer(stream, source="t")
    card.arm(FaultPlan.parse({"eidemu_faults": 1, "timing": "real", "timing_scale": 0.1, "rules": []}))
    assert card.transmit(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    response = json.loads(stream.getvalue().splitlines()[1])
    nominal = CITIZEN_CARD.nominal_seconds(ISO_DEMO_ATR, bytes.fromhex("00A4000C023F00"), b"\x90\x00")
    assert response["modelled_ms"] / 1000 == pytest.approx(nominal, rel=0.051)
    assert len(slept) == 1 and slept[0] < response["modelled_ms"] / 1000 * 0.1
    assert response["duration_ms"] >= 0


def test_jitter_stays_within_the_model_bounds() -> None:
    rng = random.Random(3)
    command = bytes.fromhex("80EA020580") + bytes(128)
    samples = [CITIZEN_CARD.seconds(ATR_GEN1, command, b"\x90\x00", rng) for _ in range(500)]
    nominal = CITIZEN_CARD.nominal_seconds(ATR_GEN1, command, b"\x90\x00")
    assert nominal * 0.95 <= min(samples) < max(samples) <= nominal * 1.05
    assert len(set(samples)) == 500
