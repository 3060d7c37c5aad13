"""Chip Authentication v1 of ICAO 9303-11 §6.2: both roles agree on the new session keys
over every curve and group, through MSE:Set KAT and MSE:Set AT + GENERAL AUTHENTICATE."""

from __future__ import annotations

import pytest

from eidemu.emulator.icao import oids
from eidemu.emulator.icao.ca import CaChip, CaTerminal, ecdh_shared_secret
from eidemu.emulator.icao.ec import curve
from eidemu.emulator.icao.errors import ProtocolError
from eidemu.emulator.icao.kdf import PasswordType
from eidemu.emulator.icao.mse import MseSetAt, MseSetKat
from eidemu.emulator.icao.pace import DynamicAuthenticationData
from eidemu.emulator.iso7816.apdu import CommandAPDU

CASES = [
    (oids.ID_CA_ECDH_3DES_CBC_CBC, 13),
    (oids.ID_CA_ECDH_AES_CBC_CMAC_128, 13),
    (oids.ID_CA_ECDH_AES_CBC_CMAC_192, 16),
    (oids.ID_CA_ECDH_AES_CBC_CMAC_256, 12),
    (oids.ID_CA_ECDH_AES_CBC_CMAC_128, 14),  # brainpoolP320r1: not in cryptography, pure Python
    (oids.ID_CA_DH_3DES_CBC_CBC, 0),
    (oids.ID_CA_DH_AES_CBC_CMAC_128, 2),
]


@pytest.mark.parametrize(("oid", "parameter_id"), CASES)
def test_round_trip_and_restarted_secure_messaging(oid: str, parameter_id: int) -> None:
    chip = CaChip(oid, parameter_id, private_key=0x1234567890ABCDEF1234567890ABCDEF)
    terminal = CaTerminal(oid, parameter_id, chip.public_key())
    # the chip reads the terminal's key from either command form
    kat = MseSetKat.parse(terminal.mse_set_kat_data(key_id=1))
    assert (kat.ephemeral_public_key, kat.key_reference) == (terminal.ephemeral_public_key, 1)
    ga = DynamicAuthenticationData.parse(terminal.general_authenticate_data().encode())
    assert ga.get(0x80) == terminal.ephemeral_public_key

    chip_keys = chip.authenticate(kat.ephemeral_public_key)
    terminal_keys = terminal.session_keys()
    assert chip_keys == terminal_keys
    assert chip_keys.ssc == 0
    assert chip_keys.cipher == oids.ca_protocol(oid).cipher
    wrapped = terminal_keys.terminal_session().wrap(CommandAPDU(0x00, 0xB0, 0x81, 0x00, b"", 8))
    assert chip_keys.chip_session().unwrap(wrapped).p1 == 0x81


def test_mse_set_at_data_carries_the_oid() -> None:
    chip = CaChip(oids.ID_CA_ECDH_AES_CBC_CMAC_128, 13, 7)
    terminal = CaTerminal(oids.ID_CA_ECDH_AES_CBC_CMAC_128, 13, chip.public_key())
    assert terminal.mse_set_at_data() == bytes.fromhex("800A04007F00070202030202")
    assert terminal.mse_set_at_data(key_id=2) == bytes.fromhex("800A04007F00070202030202840102")
    assert terminal.compressed_ephemeral_public_key() == terminal.ephemeral_public_key[1:33]


def test_pure_python_and_cryptography_ecdh_agree() -> None:
    """ec.py against OpenSSL on the same inputs: an independent check of the arithmetic."""
    for name in ("brainpoolP256r1", "brainpoolP384r1", "secp256r1", "secp521r1"):
        c = curve(name)
        peer = c.encode_point(c.public_key(0xC0FFEE))
        point = c.multiply(0xBADC0DE, c.decode_point(peer))
        assert point is not None
        assert ecdh_shared_secret(c, 0xBADC0DE, peer) == c.encode_scalar(point.x)


def test_chip_refuses_an_invalid_terminal_key() -> None:
    chip = CaChip(oids.ID_CA_ECDH_AES_CBC_CMAC_128, 13, private_key=5)
    with pytest.raises(ProtocolError, match="not on brainpoolP256r1"):
        chip.authenticate(b"\x04" + bytes(64))
    dh_chip = CaChip(oids.ID_CA_DH_AES_CBC_CMAC_128, 0, private_key=5)
    with pytest.raises(ProtocolError, match="subgroup"):
        dh_chip.authenticate(bytes(127) + b"\x02")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("840101", "DO 91\\) missing"),
        ("91008500", "unexpected data object 85"),
        ("910204009102 0400", "repeated"),
        ("91", "truncated"),
    ],
)
def test_mse_set_kat_parse_errors(bad: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        MseSetKat.parse(bytes.fromhex(bad.replace(" ", "")))


def test_mse_set_kat_and_at_round_trip() -> None:
    assert MseSetKat(b"\x04\x01", 3).encode() == bytes.fromhex("91020401840103")
    assert MseSetKat.parse(bytes.fromhex("91020401840103")) == MseSetKat(b"\x04\x01", 3)
    # PACE with the CAN on brainpoolP256r1 (9303-11 §4.4.4.1)
    pace = bytes.fromhex("800A04007F00070202040202 830102 84010D".replace(" ", ""))
    parsed = MseSetAt.parse(pace)
    assert parsed == MseSetAt(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, PasswordType.CAN, 13)
    assert parsed.encode() == pace
    with pytest.raises(ProtocolError, match="unknown password reference 9"):
        MseSetAt.parse(bytes.fromhex("800A04007F00070202040202830109"))
    with pytest.raises(ProtocolError, match="DO 80\\) missing"):
        MseSetAt.parse(bytes.fromhex("830102"))


def test_protocol_and_domain_must_agree() -> None:
    with pytest.raises(ValueError, match="needs DH domain parameters"):
        CaChip(oids.ID_CA_DH_AES_CBC_CMAC_128, 13, private_key=5).public_key()
    with pytest.raises(ValueError, match="not a Chip Authentication OID"):
        CaTerminal(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 13, b"")
