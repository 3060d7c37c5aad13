"""Helpers for the inspection system's tests: the emulated eID chip and broken variants.

A variant is the shipped profile ``eid-<chip>.yaml`` rewritten into a temporary folder with
absolute file references and some files or keys swapped: how a test serves a chip whose
EF.SOD is signed by an expired Document Signer, whose DG12 no longer matches its hash, or
whose Active Authentication key is not DG15's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eidemu.fixtures import fixture_path

CHIPS = fixture_path("pki", "eid", "chips")
CSCA = fixture_path("pki", "eid", "csca")
CAN = "237517"  # g2-valid-1: the last 6 digits of card number TP46375051237517 (chip.json)
MRZ_INFORMATION = "TP46375051237517000012363610103"


def write_variant(directory: Path, chip: str, swaps: dict[str, Path]) -> Path:
    """``eid-<chip>.yaml`` with each ``chips/<chip>/<name>`` in ``swaps`` replaced by a path."""
    text = fixture_path("profiles", f"eid-{chip}.yaml").read_text("utf-8")
    for name, replacement in swaps.items():
        reference = f"../pki/eid/chips/{chip}/{name}"
        assert reference in text, reference
        text = text.replace(reference, str(replacement))
    text = text.replace("../pki/", f"{fixture_path('pki')}/")
    path = directory / f"eid-{chip}-variant.yaml"
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def variant(tmp_path: Path) -> Callable[..., str]:
    """``variant({file name: path}, chip="g2-valid-1")`` -> an ``emulator:`` URI of the variant."""

    def make(swaps: dict[str, Path], chip: str = "g2-valid-1") -> str:
        return f"emulator:{write_variant(tmp_path, chip, swaps)}"

    return make
