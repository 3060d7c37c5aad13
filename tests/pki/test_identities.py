"""Synthetic identities: national ID checksum, card numbers, ROC dates, initial PIN (taiwan-ids.md)."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eidemu.emulator.pki.identities import (
    CHECKSUM_WEIGHTS,
    LETTER_VALUES,
    Identity,
    from_roc_date,
    generate_identities,
    generate_national_id,
    initial_pin,
    is_valid_card_number,
    is_valid_national_id,
    national_id_check_digit,
    to_roc_date,
)


def test_published_example_is_valid() -> None:
    assert is_valid_national_id("A123456789")


@pytest.mark.parametrize("position", range(1, 10))
def test_single_digit_mutations_caught_exactly_when_the_weighted_change_is_not_a_multiple_of_10(position: int) -> None:
    # A weighted mod-10 sum cannot catch every single-digit error: changing a digit of weight w
    # by d goes unnoticed when w*d is a multiple of 10 (e.g. 5 -> 0 at weight 2).
    weight = CHECKSUM_WEIGHTS[position + 1]
    example = "A123456789"
    caught = 0
    for replacement in "0123456789":
        mutated = example[:position] + replacement + example[position + 1 :]
        if mutated == example:
            continue
        if position == 1 and replacement not in "12":
            assert not is_valid_national_id(mutated), mutated  # second character must be 1 or 2
            continue
        undetectable = weight * (int(replacement) - int(example[position])) % 10 == 0
        assert is_valid_national_id(mutated) is undetectable, mutated
        caught += not undetectable
    if weight in (1, 3, 7, 9):  # weights coprime to 10 catch every single-digit error
        assert caught == (1 if position == 1 else 9)


def test_letter_mutations_caught_unless_the_letter_values_collide_mod_10() -> None:
    base = LETTER_VALUES["A"]
    for letter, value in LETTER_VALUES.items():
        if letter == "A":
            continue
        collides = (value // 10 + 9 * (value % 10)) % 10 == (base // 10 + 9 * (base % 10)) % 10
        assert is_valid_national_id(letter + "123456789") is collides, letter


def test_single_digit_mutation_of_a_weight_1_digit_is_always_caught() -> None:
    for replacement in "012345678":
        assert not is_valid_national_id("A12345678" + replacement)


@pytest.mark.parametrize("value", ["a123456789", "A323456789", "A12345678", "A1234567890", "1123456789", ""])
def test_malformed_ids_are_rejected(value: str) -> None:
    assert not is_valid_national_id(value)


def test_check_digit_completes_the_example() -> None:
    assert national_id_check_digit("A12345678") == "9"


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_ids_are_valid(seed: int) -> None:
    national_id = generate_national_id(random.Random(seed))
    assert is_valid_national_id(national_id)


def test_every_generated_identity_is_consistent() -> None:
    for identity in itertools.islice(generate_identities(1), 200):
        assert is_valid_national_id(identity.national_id)
        assert is_valid_card_number(identity.card_number)
        assert identity.sex == {"1": "M", "2": "F"}[identity.national_id[1]]
        assert len(identity.cert_serial_number) == 16 and identity.cert_serial_number.isdigit()
        assert identity.cert_serial_number != identity.national_id
        assert identity.initial_pin == to_roc_date(identity.birth_date)
        assert 2 <= len(identity.name_zh) <= 3


def test_generation_is_deterministic_per_seed() -> None:
    first = list(itertools.islice(generate_identities(42), 5))
    assert first == list(itertools.islice(generate_identities(42), 5))
    assert first != list(itertools.islice(generate_identities(43), 5))


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("TP00000001611111", True),
        ("TP0000000161111", False),
        ("Tp00000001611111", False),
        ("T100000001611111", False),
        ("TP0000000161111X", False),
    ],
)
def test_card_number_format(value: str, valid: bool) -> None:
    assert is_valid_card_number(value) is valid


def test_roc_date_of_the_published_example() -> None:
    assert to_roc_date(dt.date(1964, 8, 12)) == "0530812"
    assert from_roc_date("0530812") == dt.date(1964, 8, 12)


def test_roc_dates_after_roc_100() -> None:
    assert to_roc_date(dt.date(2011, 1, 1)) == "1000101"
    assert from_roc_date("1130229") == dt.date(2024, 2, 29)


@pytest.mark.parametrize("value", ["530812", "0001231", "05308120", "0531301"])
def test_bad_roc_dates_are_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        from_roc_date(value)


def test_initial_pin_is_the_roc_birth_date() -> None:
    assert initial_pin(dt.date(1964, 8, 12)) == "0530812"


def test_identity_round_trips_through_json() -> None:
    identity = next(generate_identities(3))
    data = identity.to_json()
    assert data["roc_birth_date"] == identity.initial_pin
    assert Identity.from_json(data) == identity


def test_identity_rejects_a_bad_checksum() -> None:
    identity = next(generate_identities(3))
    with pytest.raises(ValueError, match="national ID"):
        Identity.from_json({**identity.to_json(), "national_id": "A123456788"})
