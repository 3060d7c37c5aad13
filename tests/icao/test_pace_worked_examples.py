"""The integrated-mapping (Appendix H) and chip-authentication-mapping (Appendix I)
worked examples of ICAO 9303-11 reproduced byte for byte."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from eidemu.emulator.icao import oids
from eidemu.emulator.icao.dh import group
from eidemu.emulator.icao.ec import curve
from eidemu.emulator.icao.errors import ProtocolError
from eidemu.emulator.icao.kdf import KDF_ENC, KDF_MAC, PacePassword, PasswordType, kdf
from eidemu.emulator.icao.mse import MseSetAt
from eidemu.emulator.icao.pace import (
    DynamicAuthenticationData,
    PaceChip,
    PaceTerminal,
    decrypt_chip_authentication_data,
    decrypt_nonce,
    encode_to_curve,
    encrypt_chip_authentication_data,
    pseudo_random_mapping,
    public_key_data_object,
)
from eidemu.emulator.icao.session import encrypt_cbc, mac
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV

from . import vectors as v
from .test_pace import run
from .vectors import replay


@dataclass(frozen=True)
class KnownKeyPassword(PacePassword):
    """Appendix H prints K_π but not the MRZ behind it: a password double with that key."""

    k_pi: bytes = b""

    def key(self, cipher: oids.CipherSuite) -> bytes:
        return self.k_pi


IM_PASSWORD = KnownKeyPassword(PasswordType.MRZ, b"", v.IM_K_PI)
BP256 = curve("brainpoolP256r1")


def test_ecdh_integrated_mapping_functions() -> None:
    assert decrypt_nonce(oids.AES_128, v.IM_K_PI, v.IM_ECDH_Z) == v.IM_ECDH_S
    r = pseudo_random_mapping(oids.AES_128, v.IM_ECDH_S, v.IM_ECDH_T, BP256.p)
    assert r == int.from_bytes(v.IM_ECDH_R, "big") % BP256.p == int.from_bytes(v.IM_ECDH_R_P, "big")
    assert BP256.encode_point(encode_to_curve(BP256, r)) == v.IM_ECDH_MAPPED_G


def test_ecdh_integrated_mapping_worked_example() -> None:
    oid = oids.ID_PACE_ECDH_IM_AES_CBC_CMAC_128
    chip = PaceChip(oid, 13, IM_PASSWORD, rng=replay(v.IM_ECDH_S, v.IM_ECDH_CHIP_KEY))
    terminal = PaceTerminal(oid, 13, IM_PASSWORD, rng=replay(v.IM_ECDH_T, v.IM_ECDH_TERMINAL_KEY))
    wire, result = run(chip, terminal)
    assert wire == [
        bytes.fromhex("7C00"),
        bytes.fromhex("7C128010") + v.IM_ECDH_Z,
        bytes.fromhex("7C128110") + v.IM_ECDH_T,
        bytes.fromhex("7C028200"),  # DO 82 empty for the integrated mapping (9303-11 §4.4.5.2.2)
        bytes.fromhex("7C438341") + v.IM_ECDH_TERMINAL_PUBLIC,
        bytes.fromhex("7C438441") + v.IM_ECDH_CHIP_PUBLIC,
        bytes.fromhex("7C0A8508") + v.IM_ECDH_T_IFD,
        bytes.fromhex("7C0A8608") + v.IM_ECDH_T_IC,
    ]
    k = BP256.multiply(int.from_bytes(v.IM_ECDH_TERMINAL_KEY, "big"), BP256.decode_point(v.IM_ECDH_CHIP_PUBLIC))
    assert k is not None and BP256.encode_scalar(k.x) == v.IM_ECDH_SHARED_SECRET
    for side in (result, chip.result):
        assert (side.keys.ks_enc, side.keys.ks_mac) == (v.IM_ECDH_KS_ENC, v.IM_ECDH_KS_MAC)


def test_dh_integrated_mapping_worked_example() -> None:
    """The DH example's private keys are 1024-bit exponents, longer than the 160-bit ones
    this codec draws, so the values are checked through the codec's functions."""
    g = group("modp1024_160")
    assert decrypt_nonce(oids.AES_128, v.IM_K_PI, v.IM_DH_Z) == v.IM_DH_S
    r = pseudo_random_mapping(oids.AES_128, v.IM_DH_S, v.IM_DH_T, g.p)
    assert r == int.from_bytes(v.IM_DH_R, "big") % g.p == int.from_bytes(v.IM_DH_R_P, "big")
    chip = PaceChip(oids.ID_PACE_DH_IM_AES_CBC_CMAC_128, 0, IM_PASSWORD)
    mapped = chip.group.map_integrated(r)
    assert g.encode(mapped) == v.IM_DH_MAPPED_G
    assert g.encode(g.public_value(int.from_bytes(v.IM_DH_CHIP_KEY, "big"), mapped)) == v.IM_DH_CHIP_PUBLIC
    assert g.encode(g.public_value(int.from_bytes(v.IM_DH_TERMINAL_KEY, "big"), mapped)) == v.IM_DH_TERMINAL_PUBLIC
    secret = chip.group.shared_secret(int.from_bytes(v.IM_DH_TERMINAL_KEY, "big"), g.decode(v.IM_DH_CHIP_PUBLIC))
    assert secret == v.IM_DH_SHARED_SECRET
    assert kdf(secret, KDF_ENC, oids.AES_128) == v.IM_DH_KS_ENC
    assert kdf(secret, KDF_MAC, oids.AES_128) == v.IM_DH_KS_MAC
    oid = oids.ID_PACE_DH_IM_AES_CBC_CMAC_128
    t_ifd_input = public_key_data_object(oid, chip.group.key_data_object(g.decode(v.IM_DH_CHIP_PUBLIC)))
    assert t_ifd_input[:19] == bytes.fromhex("7F49818F060A04007F000702020403028481 80".replace(" ", ""))
    assert mac(oids.AES_128, v.IM_DH_KS_MAC, t_ifd_input) == v.IM_DH_T_IFD
    t_ic_input = public_key_data_object(oid, chip.group.key_data_object(g.decode(v.IM_DH_TERMINAL_PUBLIC)))
    assert mac(oids.AES_128, v.IM_DH_KS_MAC, t_ic_input) == v.IM_DH_T_IC


def test_chip_authentication_mapping_worked_example() -> None:
    password = PacePassword.mrz(v.CAM_DOCUMENT_NUMBER, v.CAM_BIRTH, v.CAM_EXPIRY)
    assert password.secret == v.CAM_PI
    assert password.key(oids.AES_128) == v.CAM_K_PI
    oid = oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_128
    assert MseSetAt(oid, PasswordType.MRZ).encode() == CommandAPDU.parse(v.CAM_MSE_SET_AT).data

    # The example prints CA_IC and the chip's mapping key; SK_IC = SK_map * CA_IC^-1 mod n.
    n = BP256.n
    sk_map = int.from_bytes(v.CAM_CHIP_MAP_KEY, "big")
    sk_ic = sk_map * pow(int.from_bytes(v.CAM_CA_IC, "big"), -1, n) % n
    assert BP256.encode_point(BP256.public_key(sk_ic)) == v.CAM_CHIP_STATIC_PUBLIC

    # The example's ephemeral chip key CD62... exceeds n; the same point comes from it mod n,
    # which is what a key drawn in [1, n-1] looks like.
    chip_eph_key = (int.from_bytes(v.CAM_CHIP_EPH_KEY, "big") % n).to_bytes(32, "big")
    chip = PaceChip(
        oid,
        13,
        password,
        chip_authentication_key=sk_ic,
        rng=replay(v.CAM_S, v.CAM_CHIP_MAP_KEY, chip_eph_key),
    )
    terminal = PaceTerminal(oid, 13, password, rng=replay(v.CAM_TERMINAL_MAP_KEY, v.CAM_TERMINAL_EPH_KEY))
    wire, result = run(chip, terminal)
    assert wire == [
        bytes.fromhex("7C00"),
        bytes.fromhex("7C128010") + v.CAM_Z,
        bytes.fromhex("7C438141") + v.CAM_TERMINAL_MAP_PUBLIC,
        bytes.fromhex("7C438241") + v.CAM_CHIP_MAP_PUBLIC,
        bytes.fromhex("7C438341") + v.CAM_TERMINAL_EPH_PUBLIC,
        bytes.fromhex("7C438441") + v.CAM_CHIP_EPH_PUBLIC,
        bytes.fromhex("7C0A8508") + v.CAM_T_IFD,
        bytes.fromhex("7C3C8608") + v.CAM_T_IC + bytes.fromhex("8A30") + v.CAM_A_IC,
    ]
    h = BP256.multiply(sk_map, BP256.decode_point(v.CAM_TERMINAL_MAP_PUBLIC))
    assert h is not None and BP256.encode_point(h) == v.CAM_H
    mapped = BP256.add(BP256.multiply(int.from_bytes(v.CAM_S, "big"), BP256.generator), h)
    assert mapped is not None and BP256.encode_point(mapped) == v.CAM_MAPPED_G
    assert (result.keys.ks_enc, result.keys.ks_mac) == (v.CAM_KS_ENC, v.CAM_KS_MAC)
    assert encrypt_cbc(oids.AES_128, v.CAM_KS_ENC, b"\xff" * 16) == v.CAM_IV
    assert result.ca_ic == v.CAM_CA_IC
    assert decrypt_chip_authentication_data(oids.AES_128, v.CAM_KS_ENC, v.CAM_A_IC) == v.CAM_CA_IC
    assert encrypt_chip_authentication_data(oids.AES_128, v.CAM_KS_ENC, v.CAM_CA_IC) == v.CAM_A_IC
    result.verify_chip_authentication(v.CAM_CHIP_STATIC_PUBLIC)


def test_cam_token_input_matches_the_printed_data_object() -> None:
    data = public_key_data_object(oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_128, TLV(0x86, v.CAM_CHIP_EPH_PUBLIC))
    assert data[:17] == bytes.fromhex("7F494F060A04007F000702020406028641")
    assert mac(oids.AES_128, v.CAM_KS_MAC, data) == v.CAM_T_IFD


@pytest.mark.parametrize(
    ("oid", "parameter_id"),
    [
        (oids.ID_PACE_ECDH_IM_3DES_CBC_CBC, 13),
        (oids.ID_PACE_ECDH_IM_AES_CBC_CMAC_128, 12),
        (oids.ID_PACE_ECDH_IM_AES_CBC_CMAC_192, 16),
        (oids.ID_PACE_ECDH_IM_AES_CBC_CMAC_256, 17),
        (oids.ID_PACE_DH_IM_3DES_CBC_CBC, 0),
        (oids.ID_PACE_DH_IM_AES_CBC_CMAC_256, 2),
    ],
)
def test_integrated_mapping_round_trips(oid: str, parameter_id: int) -> None:
    password = PacePassword.can("500540")
    chip = PaceChip(oid, parameter_id, password)
    wire, result = run(chip, PaceTerminal(oid, parameter_id, password))
    assert result.keys == chip.result.keys
    t = DynamicAuthenticationData.parse(wire[2]).get(0x81)
    assert t is not None and len(t) == oids.pace_protocol(oid).cipher.key_length


def test_integrated_mapping_refuses_a_short_nonce_t() -> None:
    chip = PaceChip(oids.ID_PACE_ECDH_IM_AES_CBC_CMAC_128, 13, PacePassword.can("1"))
    chip.respond(DynamicAuthenticationData())
    with pytest.raises(ProtocolError, match="nonce t of 8 bytes, expected 16"):
        chip.respond(DynamicAuthenticationData.of((0x81, bytes(8))))
