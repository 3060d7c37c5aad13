"""Shared helpers for the conformance suite's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from eidemu.conformance.runner import CardDeclaration, CardUnderTest, declaration_for, load_catalogue

BROKEN = Path(__file__).resolve().parent / "broken"


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="session")
def iso_demo_declaration() -> CardDeclaration:
    return declaration_for("emulator:iso-demo", None)


@pytest.fixture
def broken_card(iso_demo_declaration):
    """A broken iso-demo double, declared like iso-demo so the same tests apply."""
    from .broken import doubles  # noqa: F401 - registers the test-broken-iso application type

    def make(name: str) -> CardUnderTest:
        return CardUnderTest(f"emulator:{BROKEN / name}.yaml", iso_demo_declaration)

    return make
