"""Fixtures for the MOICA card tests: cards built from the committed generated profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from eidemu.conformance.connection import InProcessConnection
from eidemu.conformance.moica import MoicaCard
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.profile import PROFILE_DIR, Profile, load_profile

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
VALID = "g2-valid-1"


def identity_dir(slug: str) -> Path:
    return FIXTURES / "pki" / "identities" / slug


def private_key(slug: str, which: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((identity_dir(slug) / f"{which}.key.pem").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile(PROFILE_DIR / f"moica-{VALID}.yaml")


@pytest.fixture
def card(profile: Profile) -> Card:
    return profile.build()


@pytest.fixture
def transmit(card: Card):  # type: ignore[no-untyped-def]
    """Send hex, get hex back (data + SW), upper case without spaces."""

    def send(apdu: str) -> str:
        return card.transmit(bytes.fromhex(apdu.replace(" ", ""))).hex().upper()

    return send


@pytest.fixture
def client(card: Card) -> MoicaCard:
    return MoicaCard(InProcessConnection(card))
