"""PACE of ICAO 9303-11 §4.4: the worked examples of the generic mapping (ECDH on
brainpoolP256r1 and DH on the RFC 5114 1024-bit group, both AES-128) replayed through
both state machines byte for byte, then chip-terminal round trips for every parameter set."""

from __future__ import annotations

import os
import time

import pytest

from eidemu.emulator.icao import oids
from eidemu.emulator.icao.dh import group
from eidemu.emulator.icao.ec import curve
from eidemu.emulator.icao.errors import AuthenticationFailed, ProtocolError, SequenceError
from eidemu.emulator.icao.kdf import PacePassword, PasswordType
from eidemu.emulator.icao.pace import (
    DATag,
    DynamicAuthenticationData,
    PaceChip,
    PaceResult,
    PaceTerminal,
    decrypt_nonce,
    public_key_data_object,
)
from eidemu.emulator.icao.session import mac
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.tlv import TLV

from . import vectors as v
from .vectors import replay

MRZ_PASSWORD = PacePassword.mrz(v.PACE_DOCUMENT_NUMBER, v.PACE_BIRTH, v.PACE_EXPIRY)


def run(chip: PaceChip, terminal: PaceTerminal) -> tuple[list[bytes], PaceResult]:
    """All four steps; every 7C goes through encode() and parse() as on the wire."""
    wire: list[bytes] = []

    def exchange(command: DynamicAuthenticationData) -> DynamicAuthenticationData:
        wire.append(command.encode())
        answer = chip.respond(DynamicAuthenticationData.parse(command.encode()))
        wire.append(answer.encode())
        return DynamicAuthenticationData.parse(answer.encode())

    answer = exchange(terminal.start())
    answer = exchange(terminal.map_nonce(answer))
    answer = exchange(terminal.key_agreement(answer))
    answer = exchange(terminal.mutual_authentication(answer))
    return wire, terminal.finish(answer)


def test_mrz_password_and_k_pi() -> None:
    assert MRZ_PASSWORD.kind is PasswordType.MRZ
    assert MRZ_PASSWORD.secret == v.PACE_PI
    assert MRZ_PASSWORD.key(oids.AES_128) == v.PACE_K_PI
    assert v.PACE_PI.hex() not in repr(MRZ_PASSWORD).lower()


def test_can_password_is_latin1_digits() -> None:
    assert PacePassword.can("123456").secret == b"123456"
    with pytest.raises(ValueError, match="CAN must be decimal digits"):
        PacePassword.can("12a456")


def test_ecdh_generic_mapping_worked_example() -> None:
    chip = PaceChip(
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128,
        13,
        MRZ_PASSWORD,
        rng=replay(v.ECDH_S, v.ECDH_CHIP_MAP_KEY, v.ECDH_CHIP_EPH_KEY),
    )
    terminal = PaceTerminal(
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128,
        13,
        MRZ_PASSWORD,
        rng=replay(v.ECDH_TERMINAL_MAP_KEY, v.ECDH_TERMINAL_EPH_KEY),
    )
    wire, result = run(chip, terminal)
    assert wire == [
        bytes.fromhex("7C00"),
        bytes.fromhex("7C128010") + v.ECDH_Z,
        bytes.fromhex("7C438141") + v.ECDH_TERMINAL_MAP_PUBLIC,
        bytes.fromhex("7C438241") + v.ECDH_CHIP_MAP_PUBLIC,
        bytes.fromhex("7C438341") + v.ECDH_TERMINAL_EPH_PUBLIC,
        bytes.fromhex("7C438441") + v.ECDH_CHIP_EPH_PUBLIC,
        bytes.fromhex("7C0A8508") + v.ECDH_T_IFD,
        bytes.fromhex("7C0A8608") + v.ECDH_T_IC,
    ]
    # the intermediate values of the example
    assert decrypt_nonce(oids.AES_128, v.PACE_K_PI, v.ECDH_Z) == v.ECDH_S
    bp = curve("brainpoolP256r1")
    h = bp.multiply(int.from_bytes(v.ECDH_CHIP_MAP_KEY, "big"), bp.decode_point(v.ECDH_TERMINAL_MAP_PUBLIC))
    assert h is not None and bp.encode_point(h) == v.ECDH_H
    mapped = bp.add(bp.multiply(int.from_bytes(v.ECDH_S, "big"), bp.generator), h)
    assert mapped is not None and bp.encode_point(mapped) == v.ECDH_MAPPED_G
    k = bp.multiply(int.from_bytes(v.ECDH_TERMINAL_EPH_KEY, "big"), bp.decode_point(v.ECDH_CHIP_EPH_PUBLIC))
    assert k is not None and bp.encode_scalar(k.x) == v.ECDH_SHARED_SECRET
    for side in (result, chip.result):
        assert side.keys.ks_enc == v.ECDH_KS_ENC
        assert side.keys.ks_mac == v.ECDH_KS_MAC
        assert side.keys.ssc == 0
        assert side.chip_public_key == v.ECDH_CHIP_EPH_PUBLIC
        assert side.terminal_public_key == v.ECDH_TERMINAL_EPH_PUBLIC
        assert side.id_ic == v.ECDH_CHIP_EPH_PUBLIC[1:33]


def test_ecdh_token_input_is_the_public_key_data_object() -> None:
    data = public_key_data_object(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, TLV(0x86, v.ECDH_CHIP_EPH_PUBLIC))
    assert data[:2] == bytes.fromhex("7F49")
    assert data[3:17] == bytes.fromhex("060A04007F00070202040202") + bytes.fromhex("8641")
    assert mac(oids.AES_128, v.ECDH_KS_MAC, data) == v.ECDH_T_IFD


def test_dh_generic_mapping_worked_example() -> None:
    chip = PaceChip(
        oids.ID_PACE_DH_GM_AES_CBC_CMAC_128,
        0,
        MRZ_PASSWORD,
        rng=replay(v.DH_S, v.DH_CHIP_MAP_KEY, v.DH_CHIP_EPH_KEY),
    )
    terminal = PaceTerminal(
        oids.ID_PACE_DH_GM_AES_CBC_CMAC_128,
        0,
        MRZ_PASSWORD,
        rng=replay(v.DH_TERMINAL_MAP_KEY, v.DH_TERMINAL_EPH_KEY),
    )
    wire, result = run(chip, terminal)
    assert wire == [
        bytes.fromhex("7C00"),
        bytes.fromhex("7C128010") + v.DH_Z,
        bytes.fromhex("7C8183818180") + v.DH_TERMINAL_MAP_PUBLIC,
        bytes.fromhex("7C8183828180") + v.DH_CHIP_MAP_PUBLIC,
        bytes.fromhex("7C8183838180") + v.DH_TERMINAL_EPH_PUBLIC,
        bytes.fromhex("7C8183848180") + v.DH_CHIP_EPH_PUBLIC,
        bytes.fromhex("7C0A8508") + v.DH_T_IFD,
        bytes.fromhex("7C0A8608") + v.DH_T_IC,
    ]
    assert decrypt_nonce(oids.AES_128, v.PACE_K_PI, v.DH_Z) == v.DH_S
    for side in (result, chip.result):
        assert side.keys.ks_enc == v.DH_KS_ENC
        assert side.keys.ks_mac == v.DH_KS_MAC


def test_dh_mapping_intermediates() -> None:
    g = group("modp1024_160")
    h = pow(int.from_bytes(v.DH_CHIP_MAP_PUBLIC, "big"), int.from_bytes(v.DH_TERMINAL_MAP_KEY, "big"), g.p)
    assert g.encode(h) == v.DH_H
    mapped = pow(g.g, int.from_bytes(v.DH_S, "big"), g.p) * h % g.p
    assert g.encode(mapped) == v.DH_MAPPED_G
    k = pow(int.from_bytes(v.DH_CHIP_EPH_PUBLIC, "big"), int.from_bytes(v.DH_TERMINAL_EPH_KEY, "big"), g.p)
    assert g.encode(k) == v.DH_SHARED_SECRET


ROUND_TRIPS = [
    (oid, param)
    for param in (13, 16, 12)
    for oid in (
        oids.ID_PACE_ECDH_GM_3DES_CBC_CBC,
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128,
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_192,
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_256,
    )
] + [
    (oid, param)
    for param in (0, 1, 2)
    for oid in (
        oids.ID_PACE_DH_GM_3DES_CBC_CBC,
        oids.ID_PACE_DH_GM_AES_CBC_CMAC_128,
        oids.ID_PACE_DH_GM_AES_CBC_CMAC_256,
    )
]


@pytest.mark.parametrize(("oid", "parameter_id"), ROUND_TRIPS)
def test_round_trip_opens_secure_messaging(oid: str, parameter_id: int) -> None:
    password = PacePassword.can("123456")
    chip = PaceChip(oid, parameter_id, password)
    terminal = PaceTerminal(oid, parameter_id, password)
    _, result = run(chip, terminal)
    assert result.keys == chip.result.keys
    suite = oids.pace_protocol(oid).cipher
    assert len(result.keys.ks_enc) == suite.key_length
    # the keys open secure messaging that works both ways
    terminal_sm, chip_sm = result.keys.terminal_session(), chip.result.keys.chip_session()
    command = terminal_sm.wrap(CommandAPDU(0x00, 0xB0, 0x00, 0x00, b"", 4))
    assert chip_sm.unwrap(command).ne == 4
    body, sw = chip_sm.wrap(b"\x60\x14\x5f\x01", 0x9000)
    assert terminal_sm.unwrap(ResponseAPDU(body, sw)).data == b"\x60\x14\x5f\x01"


@pytest.mark.parametrize(
    ("oid", "parameter_id"),
    [(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 13), (oids.ID_PACE_DH_GM_3DES_CBC_CBC, 0)],
)
def test_wrong_password_is_detected_by_both_sides(oid: str, parameter_id: int) -> None:
    chip = PaceChip(oid, parameter_id, PacePassword.can("123456"))
    terminal = PaceTerminal(oid, parameter_id, PacePassword.can("654321"))
    answer = chip.respond(terminal.start())
    answer = chip.respond(terminal.map_nonce(answer))
    answer = chip.respond(terminal.key_agreement(answer))
    command = terminal.mutual_authentication(answer)
    with pytest.raises(AuthenticationFailed, match="terminal's authentication token"):
        chip.respond(command)
    with pytest.raises(SequenceError, match="PACE has ended"):
        chip.respond(command)
    with pytest.raises(SequenceError, match="has not completed"):
        _ = chip.result

    # the terminal, given a chip answer made with other keys, refuses its token
    honest = PaceChip(oid, parameter_id, PacePassword.can("654321"))
    other = PaceTerminal(oid, parameter_id, PacePassword.can("654321"))
    answer = honest.respond(other.start())
    answer = honest.respond(other.map_nonce(answer))
    answer = honest.respond(other.key_agreement(answer))
    honest.respond(other.mutual_authentication(answer))
    forged = DynamicAuthenticationData.of((DATag.AUTHENTICATION_TOKEN_IC, bytes(8)))
    with pytest.raises(AuthenticationFailed, match="chip's authentication token"):
        other.finish(forged)


def test_steps_out_of_order_and_bad_data_end_the_run() -> None:
    oid = oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128
    chip = PaceChip(oid, 13, PacePassword.can("123456"))
    with pytest.raises(SequenceError, match="step 2 out of order"):
        chip.map_nonce(DynamicAuthenticationData.of((0x81, b"\x04" + bytes(64))))
    chip.respond(DynamicAuthenticationData())
    with pytest.raises(ProtocolError, match="not on brainpoolP256r1"):
        chip.respond(DynamicAuthenticationData.of((0x81, b"\x04" + bytes(64))))
    with pytest.raises(ProtocolError, match="PACE has ended"):
        chip.respond(DynamicAuthenticationData())

    chip = PaceChip(oid, 13, PacePassword.can("123456"))
    chip.respond(DynamicAuthenticationData())
    with pytest.raises(ProtocolError, match=r"mapping data \(DO 81\) missing"):
        chip.respond(DynamicAuthenticationData.of((0x83, b"")))


def test_dh_public_value_outside_the_subgroup_is_refused() -> None:
    oid = oids.ID_PACE_DH_GM_AES_CBC_CMAC_128
    chip = PaceChip(oid, 0, PacePassword.can("123456"))
    chip.respond(DynamicAuthenticationData())
    with pytest.raises(ProtocolError, match="order-q subgroup"):
        chip.respond(DynamicAuthenticationData.of((0x81, (1).to_bytes(128, "big"))))


def test_dynamic_authentication_data_parse_and_encode() -> None:
    assert DynamicAuthenticationData.parse(bytes.fromhex("7C00")) == DynamicAuthenticationData()
    data = DynamicAuthenticationData.parse(bytes.fromhex("7C0A8508C2B0BD78D94BA866"))
    assert data.get(DATag.AUTHENTICATION_TOKEN_IFD) == v.ECDH_T_IFD
    assert data.encode() == bytes.fromhex("7C0A8508C2B0BD78D94BA866")
    for bad, message in (
        ("7D00", "must be tag 7C"),
        ("7C0385018000", "malformed"),
        ("7C06850100850100", "repeated"),
        ("7C03010100", "unexpected data object 1"),
        ("7C028501", "malformed"),
    ):
        with pytest.raises(ProtocolError, match=message):
            DynamicAuthenticationData.parse(bytes.fromhex(bad))


def test_protocol_and_domain_must_agree() -> None:
    with pytest.raises(ValueError, match="needs ECDH domain parameters"):
        PaceChip(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 0, PacePassword.can("1"))
    with pytest.raises(ValueError, match="not a PACE protocol OID"):
        PaceTerminal(oids.ID_CA_ECDH_AES_CBC_CMAC_128, 13, PacePassword.can("1"))
    with pytest.raises(ValueError, match="reserved"):
        PaceTerminal(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 5, PacePassword.can("1"))


def test_timing_of_one_ecdh_gm_brainpool_p256_run() -> None:
    """Both sides in pure Python; printed with -s, bounded loosely so a regression shows."""
    password = PacePassword.can("123456")
    oid = oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128
    start = time.perf_counter()
    run(PaceChip(oid, 13, password, rng=os.urandom), PaceTerminal(oid, 13, password))
    elapsed = time.perf_counter() - start
    print(f"PACE ECDH-GM brainpoolP256r1, both sides: {elapsed * 1000:.1f} ms")
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("oid", "parameter_id"),
    [
        (oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_128, 13),
        (oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_192, 16),
        (oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_256, 12),
    ],
)
def test_chip_authentication_mapping_round_trip(oid: str, parameter_id: int) -> None:
    c = curve(oids.standardized_domain_parameters(parameter_id).name)
    static_key = c.random_scalar()
    chip_public = c.encode_point(c.public_key(static_key))
    password = PacePassword.can("123456")
    chip = PaceChip(oid, parameter_id, password, chip_authentication_key=static_key)
    wire, result = run(chip, PaceTerminal(oid, parameter_id, password))
    final = DynamicAuthenticationData.parse(wire[-1])
    assert [o.tag for o in final.objects] == [0x86, 0x8A]
    order_size = (c.n.bit_length() + 7) // 8
    assert len(final.get(0x8A) or b"") == (order_size // 16 + 1) * 16  # CA_IC padded, method 2
    assert result.ca_ic is not None and len(result.ca_ic) == order_size
    assert result.chip_mapping_public_key == DynamicAuthenticationData.parse(wire[3]).get(0x82)
    result.verify_chip_authentication(chip_public)
    # another chip's key (a clone without the private key) is refused
    other = c.encode_point(c.public_key(c.random_scalar()))
    with pytest.raises(AuthenticationFailed, match="does not match the chip's key"):
        result.verify_chip_authentication(other)


def test_chip_authentication_mapping_needs_the_key_and_gm_has_no_ca_data() -> None:
    with pytest.raises(ValueError, match="PACE-CAM needs"):
        PaceChip(oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_128, 13, PacePassword.can("1"))
    password = PacePassword.can("123456")
    oid = oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128
    _, result = run(PaceChip(oid, 13, password), PaceTerminal(oid, 13, password))
    with pytest.raises(ProtocolError, match="not PACE-CAM"):
        result.verify_chip_authentication(b"")
