"""Terminal Authentication v2 (BSI TR-03110-2 §3.3), both roles."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from eidemu.emulator.icao import ta
from eidemu.emulator.icao.cvc import ID_TA_ECDSA_SHA_256
from eidemu.emulator.icao.errors import AuthenticationFailed, ProtocolError, SequenceError


def test_message_layout() -> None:
    assert ta.ta_message(b"I", b"R" * 8, b"K", b"\x67\x00") == b"I" + b"R" * 8 + b"K\x67\x00"


def test_terminal_signs_chip_verifies() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    mse = ta.MseSetAtTa(ID_TA_ECDSA_SHA_256, "TWAT0000001", b"\x11" * 32, bytes.fromhex("6700"))
    assert ta.MseSetAtTa.parse(mse.encode()) == mse
    chip = ta.TaChip(mse, b"\x22" * 32, rng=lambda n: b"\x33" * n)
    with pytest.raises(SequenceError):
        chip.external_authenticate(key.public_key(), ID_TA_ECDSA_SHA_256, bytes(64))
    challenge = chip.get_challenge()
    assert challenge == b"\x33" * 8
    sig = ta.terminal_sign(key, ID_TA_ECDSA_SHA_256, b"\x22" * 32, challenge, b"\x11" * 32, bytes.fromhex("6700"))
    chip.external_authenticate(key.public_key(), ID_TA_ECDSA_SHA_256, sig)
    chip.get_challenge()
    wrong = ta.terminal_sign(key, ID_TA_ECDSA_SHA_256, b"\x22" * 32, challenge, b"\x11" * 32)  # aux data left out
    with pytest.raises(AuthenticationFailed):
        chip.external_authenticate(key.public_key(), ID_TA_ECDSA_SHA_256, wrong)


def test_mse_parsing() -> None:
    assert ta.MseSetDst.parse(bytes.fromhex("830B") + b"TWCVCA00001") == ta.MseSetDst("TWCVCA00001")
    with pytest.raises(ProtocolError, match="DO 91 missing"):
        ta.MseSetAtTa.parse(bytes.fromhex("800A04007F00070202020203") + bytes.fromhex("8301") + b"A")
