"""The fault layer in process: every fault kind, the APDU/instruction/after/probability
triggers, tearing at commit points, and the unarmed wrapper being the card's own method."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.faults import (
    CardMute,
    CardWithdrawn,
    FaultPlan,
    FaultyCard,
    TearPoint,
    corrupt_response,
)

from .conftest import READ_NOTES, SELECT_DEMO, VERIFY_OK, VERIFY_WRONG, change_pin, reloaded, update_notes


def plan(*lines: str, seed: int | None = None) -> FaultPlan:
    return FaultPlan.from_lines(list(lines), seed=seed)


def test_unarmed_wrapper_is_the_cards_own_method(demo: Card) -> None:
    faulty = FaultyCard(demo)
    assert faulty.transmit == demo.transmit  # the same bound method: no layer on the path
    faulty.arm(plan("fault=status sw=6581 apdu=1"))
    assert faulty.transmit != demo.transmit
    faulty.clear()
    assert faulty.transmit == demo.transmit


def test_status_at_apdu_number(demo: Card) -> None:
    faulty = FaultyCard(demo, plan("fault=status sw=6581 apdu=2"))
    assert faulty.transmit(SELECT_DEMO) == b"\x90\x00"
    assert faulty.transmit(READ_NOTES) == b"\x65\x81"  # not processed
    assert faulty.transmit(READ_NOTES) == bytes(64) + b"\x90\x00"
    assert [(e.apdu, e.kind.value) for e in faulty.events] == [(2, "status")]


def test_status_on_instruction_is_not_processed(demo: Card, state_file: Path) -> None:
    faulty = FaultyCard(demo, plan("fault=status sw=6F00 command=0020"))
    faulty.transmit(SELECT_DEMO)
    assert faulty.transmit(VERIFY_WRONG) == b"\x6f\x00"
    assert demo.pins[1].remaining == 3  # the card never saw the wrong PIN
    assert faulty.transmit(VERIFY_WRONG) == b"\x63\xc2"  # times=1: the rule is spent


def test_after_k_successes(demo: Card) -> None:
    faulty = FaultyCard(demo, plan("fault=status sw=6985 command=00B0 after=2 times=0"))
    faulty.transmit(SELECT_DEMO)
    assert faulty.transmit(READ_NOTES)[-2:] == b"\x90\x00"
    assert faulty.transmit(READ_NOTES)[-2:] == b"\x90\x00"
    assert faulty.transmit(READ_NOTES) == b"\x69\x85"
    assert faulty.transmit(READ_NOTES) == b"\x69\x85"


def test_probability_with_seed_repeats(demo: Card) -> None:
    def run() -> list[bool]:
        faulty = FaultyCard(demo, plan("fault=status sw=6581 probability=0.5 times=0", seed=11))
        return [faulty.transmit(READ_NOTES) == b"\x65\x81" for _ in range(40)]

    demo.transmit(SELECT_DEMO)
    first, second = run(), run()
    assert first == second
    expected_rng = random.Random(11)
    assert first == [expected_rng.random() < 0.5 for _ in range(40)]


def test_remove_powers_the_card_down_and_signals(demo: Card) -> None:
    faulty = FaultyCard(demo, plan("fault=remove command=0020 reinsert_after=1.5"))
    faulty.transmit(SELECT_DEMO)
    with pytest.raises(CardWithdrawn) as info:
        faulty.transmit(VERIFY_OK)
    assert info.value.reinsert_after == 1.5
    assert not demo.powered
    assert demo.pins[1].remaining == 3


def test_mute_signals_with_timeout(demo: Card) -> None:
    faulty = FaultyCard(demo, plan("fault=mute apdu=1 timeout=0.2"))
    with pytest.raises(CardMute) as info:
        faulty.transmit(SELECT_DEMO)
    assert info.value.timeout == 0.2


def test_delay_uses_the_sleep_given(demo: Card) -> None:
    slept: list[float] = []
    faulty = FaultyCard(demo, plan("fault=delay command=00A4 seconds=0.75"), sleep=slept.append)
    assert faulty.transmit(SELECT_DEMO) == b"\x90\x00"
    assert slept == [0.75]


def test_corrupt_data_byte(demo: Card) -> None:
    demo.transmit(SELECT_DEMO)
    demo.transmit(update_notes(b"ABCD"))
    faulty = FaultyCard(demo, plan("fault=corrupt command=00B0 offset=1 xor=01"))
    assert faulty.transmit(bytes.fromhex("00B0830004")) == b"ACCD\x90\x00"


def test_corrupt_mac_of_secure_messaging_response() -> None:
    # DO'99' status, DO'8E' MAC (ISO/IEC 7816-4 §10.2): the last MAC byte flipped.
    response = bytes.fromhex("990290008E081122334455667788") + b"\x90\x00"
    assert corrupt_response(response, "mac", -1, 0xFF) == bytes.fromhex("990290008E081122334455667777") + b"\x90\x00"
    assert corrupt_response(b"\x90\x00", "mac", 0, 0xFF) == b"\x90\x00"
    assert corrupt_response(b"\x90\x00", "data", 0, 0xFF) == b"\x90\x00"


# -- tearing -----------------------------------------------------------------------------------


def test_verify_torn_after_the_decrement_commit(demo: Card, state_file: Path) -> None:
    """The right PIN, power lost after the decrement was committed and before the reset
    commit: the counter shows the decrement at the next power-on, never reset."""
    faulty = FaultyCard(demo, plan("fault=tear command=0020 point=after commit=1 reinsert_after=0"))
    faulty.transmit(SELECT_DEMO)
    with pytest.raises(CardWithdrawn):
        faulty.transmit(VERIFY_OK)
    assert faulty.tears[-1].commits_made == 1 and not faulty.tears[-1].completed
    assert not demo.powered
    assert demo.pins[1].remaining == 2
    assert reloaded(state_file).pins[1].remaining == 2
    demo.power_on()
    demo.transmit(SELECT_DEMO)
    assert demo.transmit(bytes.fromhex("00200001")) == b"\x63\xc2"


def test_verify_torn_before_the_decrement_commit(demo: Card, state_file: Path) -> None:
    faulty = FaultyCard(demo, plan("fault=tear command=0020 point=before commit=1"))
    faulty.transmit(SELECT_DEMO)
    with pytest.raises(CardWithdrawn):
        faulty.transmit(VERIFY_WRONG)
    assert faulty.tears[-1].commits_made == 1
    assert demo.pins[1].remaining == 3
    assert not state_file.exists()  # nothing was ever committed


def test_update_binary_torn_before_and_after_its_commit(demo: Card, state_file: Path) -> None:
    faulty = FaultyCard(demo)
    faulty.transmit(SELECT_DEMO)
    faulty.tear(update_notes(b"NEW!"), TearPoint.BEFORE)
    assert demo.mf.find_path("3F00/5000/5003").data[:4] == bytes(4)  # type: ignore[attr-defined]
    demo.power_on()
    faulty.transmit(SELECT_DEMO)
    faulty.tear(update_notes(b"NEW!"), TearPoint.AFTER)
    assert demo.mf.find_path("3F00/5000/5003").data[:4] == b"NEW!"  # type: ignore[attr-defined]
    assert reloaded(state_file).mf.find_path("3F00/5000/5003").data[:4] == b"NEW!"  # type: ignore[attr-defined]


def test_change_reference_data_torn_keeps_old_or_new(demo: Card, state_file: Path) -> None:
    faulty = FaultyCard(demo)
    faulty.transmit(SELECT_DEMO)
    # Commits: 1 the VERIFY decrement, 2 its reset, 3 the new value.
    tear = faulty.tear(change_pin("123456", "654321"), TearPoint.BEFORE, commit=3)
    assert tear.commits_made == 3
    assert demo.pins[1].value == b"123456" and demo.pins[1].remaining == 3
    demo.power_on()
    faulty.transmit(SELECT_DEMO)
    faulty.tear(change_pin("123456", "654321"), TearPoint.AFTER, commit=3)
    card = reloaded(state_file)
    assert card.pins[1].value == b"654321" and card.pins[1].remaining == 3


def test_tear_past_the_last_commit_completes_the_command(demo: Card) -> None:
    faulty = FaultyCard(demo)
    faulty.transmit(SELECT_DEMO)
    tear = faulty.tear(update_notes(b"XY"), TearPoint.BEFORE, commit=5)
    assert tear.completed and tear.commits_made == 1
    assert demo.mf.find_path("3F00/5000/5003").data[:2] == b"XY"  # type: ignore[attr-defined]
