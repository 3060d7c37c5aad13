"""Secret-holding objects redact themselves: no PIN or key value in a repr, str or log line."""

from __future__ import annotations

import logging

import pytest

from eidemu.emulator.applets.moica import DEFAULT_TRANSPORT_KEY, CardKey, KeyUsage, TransportCipher
from eidemu.emulator.cardos.card import Card, SymmetricKey
from eidemu.emulator.cardos.security import Pin
from eidemu.emulator.iso7816.crypto import BlockAlgorithm
from eidemu.emulator.iso7816.sm import CardSession, SessionKeys

from .conftest import PIN_BAD


def test_pin_repr_shows_reference_and_counter_but_never_the_value() -> None:
    pin = Pin(ref=0x81, value=b"271828", name="user PIN", max_tries=3, remaining=2)
    assert repr(pin) == "Pin(ref=0x81, name='user PIN', remaining=2/3, value=<redacted>)"
    assert str(pin) == repr(pin)
    assert "271828" not in repr(pin) and "271828" not in repr([pin]) and "271828" not in f"{pin!r}"


def test_keys_and_sessions_redact_themselves() -> None:
    key_value = bytes.fromhex("404142434445464748494A4B4C4D4E4F")
    session_key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    objects = [
        SymmetricKey(0x01, BlockAlgorithm.TDES, key_value),
        SessionKeys(BlockAlgorithm.AES, session_key, session_key, 0),
        CardSession(SessionKeys(BlockAlgorithm.TDES, session_key, session_key, 0)),
        TransportCipher(DEFAULT_TRANSPORT_KEY),
    ]
    assert repr(objects[0]) == "SymmetricKey(ref=0x01, algorithm='3des', value=<redacted>)"
    assert repr(objects[1]) == "SessionKeys(algorithm='aes', keys=<redacted>)"
    assert repr(objects[3]) == "TransportCipher(key=<redacted>)"
    for obj in objects:
        text = repr(obj)
        assert "redacted" in text
        for secret in (key_value, session_key, DEFAULT_TRANSPORT_KEY):
            assert secret.hex() not in text.lower() and secret.hex().upper() not in text and repr(secret) not in text


def test_card_key_repr_hides_the_private_key() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key = CardKey(0x05, "SIGN", KeyUsage.SIGN, private)
    assert repr(key) == "CardKey(ref=0x05, id='SIGN', usage='sign', private_key=<redacted>)"
    assert str(private.private_numbers().d)[:20] not in repr(key)


def test_a_wrong_pin_leaves_no_pin_in_the_log(card: Card, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        card.transmit(bytes.fromhex(PIN_BAD.replace(" ", "")))
        logging.getLogger("eidemu.card").debug("pins: %r", list(card.pins.values()))
    assert "999999" not in caplog.text and "123456" not in caplog.text
    assert "redacted" in caplog.text
