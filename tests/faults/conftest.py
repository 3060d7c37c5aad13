"""Helpers for the fault-layer tests: iso-demo commands and a card with a state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from eidemu.emulator.cardos.card import Card
from eidemu.emulator.profile import load_profile

PIN_OK = "123456"
VERIFY_OK = bytes.fromhex("0020000108") + b"123456\xff\xff"
VERIFY_WRONG = bytes.fromhex("0020000108") + b"999999\xff\xff"
SELECT_DEMO = bytes.fromhex("00A4040C07A0000002471001")
READ_NOTES = bytes.fromhex("00B0830040")


def change_pin(old: str, new: str) -> bytes:
    block = old.encode().ljust(8, b"\xff") + new.encode().ljust(8, b"\xff")
    return bytes.fromhex("0024000110") + block


def update_notes(data: bytes, offset: int = 0) -> bytes:
    """UPDATE BINARY of EF.NOTES (SFI 03, 64 bytes, update always) at ``offset``."""
    assert offset == 0
    return bytes((0x00, 0xD6, 0x83, offset, len(data))) + data


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


@pytest.fixture
def demo(state_file: Path) -> Card:
    """A fresh iso-demo card persisting to a state file."""
    return load_profile("iso-demo").build(state_file)


def reloaded(state_file: Path) -> Card:
    """The same card as a new process would load it from its state file."""
    return load_profile("iso-demo").build(state_file)
