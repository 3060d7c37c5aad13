"""The generation-1 card at the APDU level: exact bytes and status words.

Every expectation comes from the public description of the card's generation-1 command
interface or, where it is silent, from the choices listed in docs/moica-card.md.
"""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from eidemu.conformance.moica import TEST_TRANSPORT_KEY, pin_block, protect_pin_data
from eidemu.emulator.applets.moica import (
    DEFAULT_TRANSPORT_KEY,
    TransportCipher,
    emsa_pkcs1_v15,
    modulus_from_records,
    pkcs7_unpad,
    public_key_records,
    rsa_private_operation,
)
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.iso7816.sw import CardError
from eidemu.emulator.profile import Profile

from .conftest import VALID, identity_dir, private_key

PIN = json.loads((identity_dir(VALID) / "identity.json").read_text(encoding="utf-8"))["initial_pin"]
IV = bytes(range(8))
SIGN_REF, KEYX_REF = 0x05, 0x01


def protected(ins: int, plain: bytes, p1: int = 0, iv: bytes = IV) -> str:
    body = protect_pin_data(TEST_TRANSPORT_KEY, iv, plain)
    return f"8C{ins:02X}{p1:02X}01{len(body):02X}" + body.hex()


def verify_apdu(pin: str) -> str:
    return protected(0x20, pin_block(pin))


# -- ATR, class byte, SELECT ----------------------------------------------------------------


def test_atr_is_the_generation_1_atr(card: Card) -> None:
    assert card.atr.hex(" ").upper() == "3B B8 13 00 81 31 FA 52 43 48 54 4D 4F 49 43 41 A5"
    assert card.atr[-9:-1] == b"CHTMOICA"


@pytest.mark.parametrize(
    "apdu",
    [
        "00A40000023F00",
        "00B0000010",
        "00200001083132333435363738",
        "0084000008",
        "00B2010081",
        "00EA820580" + "00" * 128,
    ],
)
def test_cla_00_is_answered_6e00(transmit, apdu: str) -> None:  # type: ignore[no-untyped-def]
    assert transmit(apdu) == "6E00"


@pytest.mark.parametrize("cla", ["84", "90", "A0", "B0"])
def test_other_classes_are_answered_6e00(transmit, cla: str) -> None:  # type: ignore[no-untyped-def]
    assert transmit(cla + "A40000023F00") == "6E00"


@pytest.mark.parametrize("path", [["3F00"], ["3F00", "0900"], ["3F00", "0900", "0903"], ["3F00", "5030", "08F2"]])
def test_select_answers_plain_9000_without_data(transmit, path: list[str]) -> None:  # type: ignore[no-untyped-def]
    for fid in path:
        assert transmit("80A4000002" + fid) == "9000"


def test_select_with_le_still_answers_plain_9000(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("80A4000002 3F00 00") == "9000"
    assert transmit("80A4000402 5030 00") == "9000"


def test_df_5015_is_absent(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("80A40000023F00") == "9000"
    assert transmit("80A40000025015") == "6A82"


def test_unknown_instruction_is_6d00(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("80CA000000") == "6D00"


# -- files ------------------------------------------------------------------------------------


def _select(transmit, *fids: str) -> None:  # type: ignore[no-untyped-def]
    for fid in fids:
        assert transmit("80A4000002" + fid) == "9000"


def test_card_number_is_16_ascii_bytes(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "0900", "0903")
    expected = json.loads((identity_dir(VALID) / "identity.json").read_text(encoding="utf-8"))["card_number"]
    assert transmit("80B0000010") == expected.encode().hex().upper() + "9000"
    assert len(expected) == 16 and expected[:2].isupper() and expected[2:].isdigit()


def test_version_starts_with_cht_v32n(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "0900", "0905")
    response = bytes.fromhex(transmit("80B0000014"))
    assert response[:8] == b"CHT V32N" and len(response) == 22 and response[-2:] == b"\x90\x00"


def test_ef_dir_points_to_3f00_0800(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "2F00")
    expected = "6120 4F0C A000000063504B43532D3135 500A 4D4F4943412054455354 5104 3F000800 9000"
    assert transmit("80B0000022") == expected.replace(" ", "")


def test_certificates_sit_at_their_offsets_in_08f2(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "5030", "08F2")
    pki = identity_dir(VALID).parents[1]
    expected = {
        0x0000: pki / "ca" / "root-g2.cert.pem",
        0x0700: pki / "ca" / "moica-g2.cert.pem",
        0x0E00: identity_dir(VALID) / "enc.cert.pem",
        0x1500: identity_dir(VALID) / "sign.cert.pem",
    }
    for offset, pem_path in expected.items():
        der = subprocess.run(
            ["openssl", "x509", "-in", str(pem_path), "-outform", "DER"], capture_output=True, check=True
        ).stdout
        read = b""
        while len(read) < len(der):
            pos = offset + len(read)
            n = min(200, len(der) - len(read))
            response = bytes.fromhex(transmit(f"80B0{pos >> 8:02X}{pos & 0xFF:02X}{n:02X}"))
            assert response[-2:] == b"\x90\x00"
            read += response[:-2]
        assert read[:2] == b"\x30\x82" and read == der


def test_read_past_the_end_answers_6282_with_the_rest(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "0900", "0903")
    response = transmit("80B0000820")
    assert response.endswith("6282") and len(response) == 2 * (8 + 2)


# -- public-key records -----------------------------------------------------------------------


def test_public_key_records_reconstruct_the_certificate_modulus(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "5030", "0810")
    for ref, which in ((SIGN_REF, "sign"), (KEYX_REF, "enc")):
        numbers = private_key(VALID, which).public_key().public_numbers()
        records = {}
        for number in (ref, ref + 2, ref + 3):
            response = bytes.fromhex(transmit(f"80B2{number:02X}0081"))
            assert len(response) == 129 + 2 and response[0] == number and response[-2:] == b"\x90\x00"
            records[number] = response[1:-2]
        assert records[ref][:4] == b"\x00\x01\x00\x01" == numbers.e.to_bytes(4, "big")
        modulus = numbers.n.to_bytes(256, "big")
        # word order reversed: the last 4 modulus bytes come first, bytes inside a word keep order
        assert records[ref + 2][:4] == modulus[-4:]
        assert records[ref + 3][-4:] == modulus[:4]
        assert modulus_from_records(records[ref + 2], records[ref + 3]) == numbers.n


def test_public_key_record_with_short_le_answers_6c81(transmit) -> None:  # type: ignore[no-untyped-def]
    _select(transmit, "3F00", "5030", "0810")
    assert transmit("80B2010010") == "6C81"


def test_public_key_records_layout_known_answer() -> None:
    modulus = bytes(range(0x80, 0x100)) + bytes(range(0x00, 0x80))  # 80 81 ... FF 00 01 ... 7F
    records = public_key_records(0x05, 0x010001, int.from_bytes(modulus, "big"))
    assert records[5] == bytes.fromhex("00010001") + bytes(124)
    assert records[6] == bytes(128)
    assert records[7][:8] == bytes.fromhex("7C7D7E7F 78797A7B")  # the last word first, then the one before
    assert records[8][-8:] == bytes.fromhex("84858687 80818283")  # the first word last
    assert modulus_from_records(records[7], records[8]) == int.from_bytes(modulus, "big")


# -- protected VERIFY ----------------------------------------------------------------------


def test_protected_verify_cryptogram_matches_openssl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The reading of the reference, computed a second way with the openssl CLI."""
    key_hex = TEST_TRANSPORT_KEY.hex()
    block = pin_block("123456")
    (tmp_path / "p").write_bytes(block)
    cbc = subprocess.run(
        ["openssl", "enc", "-des-ede-cbc", "-K", key_hex, "-iv", IV.hex(), "-in", str(tmp_path / "p")],
        capture_output=True,
        check=True,
    ).stdout
    mac = cbc[-8:]  # openssl pads PKCS#7 itself: 10 bytes -> 16, MAC = last block
    (tmp_path / "pm").write_bytes(block + mac)
    cryptogram = subprocess.run(
        ["openssl", "enc", "-des-ede-cbc", "-K", key_hex, "-iv", IV.hex(), "-in", str(tmp_path / "pm")],
        capture_output=True,
        check=True,
    ).stdout
    assert len(cryptogram) == 24
    assert protect_pin_data(TEST_TRANSPORT_KEY, IV, block) == IV + cryptogram
    cipher = TransportCipher(DEFAULT_TRANSPORT_KEY)
    assert cipher.protect(IV, block) == cryptogram
    assert cipher.unprotect(IV, cryptogram, 10) == block
    assert verify_apdu("123456")[:10] == "8C20000120"


def test_transport_key_default_is_the_documented_test_key() -> None:
    assert DEFAULT_TRANSPORT_KEY == b"MOICA-TEST-ONLY!" == TEST_TRANSPORT_KEY
    assert "redacted" in repr(TransportCipher(DEFAULT_TRANSPORT_KEY))


def test_verify_status_then_correct_pin(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("8C200001") == "63C3"
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit("8C200001") == "9000"


def test_three_wrong_pins_block_the_card(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu("999999")) == "63C2"
    assert transmit(verify_apdu("999998")) == "63C1"
    assert transmit(verify_apdu("999997")) == "6983"
    assert transmit(verify_apdu(PIN)) == "6983"
    assert transmit("8C200001") == "6983"


def test_a_correct_pin_restores_the_tries(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu("999999")) == "63C2"
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit(verify_apdu("999999")) == "63C2"


def test_pin_of_wrong_length_counts_as_wrong(transmit) -> None:  # type: ignore[no-untyped-def]
    too_short = protected(0x20, b"12345".ljust(10, b"\xff"))
    assert transmit(too_short) == "63C2"


def test_bad_cryptogram_answers_6988_and_costs_no_try(transmit) -> None:  # type: ignore[no-untyped-def]
    wrong_key = protect_pin_data(b"0123456789ABCDEF", IV, pin_block(PIN))
    assert transmit("8C20000120" + wrong_key.hex()) == "6988"
    good = bytearray.fromhex(verify_apdu(PIN))
    good[-1] ^= 0x01
    assert transmit(good.hex()) == "6988"
    assert transmit("8C200001") == "63C3"


def test_protected_verify_with_wrong_length_is_6700(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("8C20000110" + "00" * 16) == "6700"
    assert transmit("8C200001") == "63C3"


def test_unknown_pin_reference_is_6a88(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)[:6] + "02" + verify_apdu(PIN)[8:]) == "6A88"


def test_plain_verify_is_rejected_and_consumes_a_try(transmit) -> None:  # type: ignore[no-untyped-def]
    plain = "8020000108" + PIN.encode().hex() + "FF" * (8 - len(PIN))
    assert transmit(plain) == "63C2"  # even with the right PIN
    assert transmit("80200001" + "0A" + pin_block(PIN).hex()) == "63C1"
    assert transmit("80200001") == "63C1"  # status only, no try consumed
    assert transmit(verify_apdu(PIN)) == "9000"


def test_power_cycle_does_not_reset_the_counter(card: Card) -> None:
    assert card.transmit(bytes.fromhex(verify_apdu("999999"))).hex().upper() == "63C2"
    card.power_off()
    card.power_on()
    assert card.transmit(bytes.fromhex("8C200001")).hex().upper() == "63C2"
    card.reset()
    assert card.transmit(bytes.fromhex(verify_apdu("999998"))).hex().upper() == "63C1"


def test_power_cycle_clears_the_verified_state(card: Card) -> None:
    assert card.transmit(bytes.fromhex(verify_apdu(PIN))) == b"\x90\x00"
    card.reset()
    assert card.transmit(bytes.fromhex("8C200001")).hex().upper() == "63C3"


def test_state_file_keeps_the_counter_across_a_rebuild(profile: Profile, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "card.json"
    card = profile.build(state)
    assert card.transmit(bytes.fromhex(verify_apdu("999999"))).hex().upper() == "63C2"
    assert card.transmit(bytes.fromhex(verify_apdu("999998"))).hex().upper() == "63C1"
    rebuilt = profile.build(state)
    assert rebuilt.transmit(bytes.fromhex("8C200001")).hex().upper() == "63C1"
    assert rebuilt.transmit(bytes.fromhex(verify_apdu("999997"))).hex().upper() == "6983"
    again = profile.build(state)
    assert again.transmit(bytes.fromhex(verify_apdu(PIN))).hex().upper() == "6983"


# -- CHANGE REFERENCE DATA and unblock --------------------------------------------------------


def test_protected_change_reference_data(transmit) -> None:  # type: ignore[no-untyped-def]
    command = protected(0x24, pin_block(PIN) + pin_block("24681357"))
    assert command[:10] == "8C24000128"
    assert transmit(command) == "9000"
    assert transmit(verify_apdu(PIN)) == "63C2"
    assert transmit(verify_apdu("24681357")) == "9000"


def test_change_with_wrong_old_pin_costs_a_try(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(protected(0x24, pin_block("000000") + pin_block("24681357"))) == "63C2"
    assert transmit(verify_apdu(PIN)) == "9000"


def test_change_to_a_too_short_pin_is_6a80_and_costs_no_try(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(protected(0x24, pin_block(PIN) + b"12345".ljust(10, b"\xff"))) == "6A80"
    assert transmit("8C200001") == "63C3"


def _issuer_response(challenge: bytes) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = b"MOICA-ISSUER-TST"
    enc = Cipher(TripleDES(key + key[:8]), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


def _block(transmit) -> None:  # type: ignore[no-untyped-def]
    for wrong in ("999999", "999998", "999997"):
        transmit(verify_apdu(wrong))
    assert transmit("8C200001") == "6983"


def test_unblock_needs_the_issuer_authentication(transmit) -> None:  # type: ignore[no-untyped-def]
    _block(transmit)
    assert transmit("802C0301") == "6982"
    challenge = bytes.fromhex(transmit("8084000008"))[:-2]
    assert len(challenge) == 8
    assert transmit("808200 0A 08".replace(" ", "") + "00" * 8) == "6300"
    challenge = bytes.fromhex(transmit("8084000008"))[:-2]
    assert transmit("8082000A08" + _issuer_response(challenge).hex()) == "9000"
    assert transmit("802C0301") == "9000"
    assert transmit("8C200001") == "63C3"
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit("802C0301") == "6982"  # the authentication was used up


def test_unblock_with_a_new_protected_pin(transmit) -> None:  # type: ignore[no-untyped-def]
    _block(transmit)
    challenge = bytes.fromhex(transmit("8084000008"))[:-2]
    assert transmit("8082000A08" + _issuer_response(challenge).hex()) == "9000"
    assert transmit(protected(0x2C, pin_block("11223344"), p1=2)) == "9000"
    assert transmit(verify_apdu("11223344")) == "9000"


def test_get_challenge_is_fresh(transmit) -> None:  # type: ignore[no-untyped-def]
    a, b = transmit("8084000008"), transmit("8084000008")
    assert a.endswith("9000") and len(a) == 20 and a != b


# -- RSA private operation ------------------------------------------------------------------


def _signature_block(message: bytes) -> bytes:
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
    return emsa_pkcs1_v15(digest_info)


def test_private_operation_needs_verify(transmit) -> None:  # type: ignore[no-untyped-def]
    block = _signature_block(b"doc")
    assert transmit(f"80EA82{SIGN_REF:02X}80" + block[:128].hex()) == "6982"
    assert transmit(f"80EA02{SIGN_REF:02X}80" + block[128:].hex()) == "6982"
    assert transmit("80C1000000") == "6985"


def test_sign_with_ea_and_c1(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    block = _signature_block(b"document")
    assert transmit(f"80EA82{SIGN_REF:02X}80" + block[:128].hex()) == "9000"
    assert transmit(f"80EA02{SIGN_REF:02X}80" + block[128:].hex()) == "9000"
    first = bytes.fromhex(transmit("80C1000080"))
    second = bytes.fromhex(transmit("80C1008080"))
    assert first[-2:] == second[-2:] == b"\x90\x00"
    signature = first[:-2] + second[:-2]
    whole = bytes.fromhex(transmit("80C1000000"))
    assert whole[:-2] == signature and len(signature) == 256
    private_key(VALID, "sign").public_key().verify(signature, b"document", padding.PKCS1v15(), hashes.SHA256())


def test_second_half_with_le_returns_the_start_of_the_result(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    block = _signature_block(b"x")
    transmit(f"80EA82{SIGN_REF:02X}80" + block[:128].hex())
    head = bytes.fromhex(transmit(f"80EA02{SIGN_REF:02X}80" + block[128:].hex() + "80"))
    rest = bytes.fromhex(transmit("80C1008080"))
    signature = head[:-2] + rest[:-2]
    private_key(VALID, "sign").public_key().verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256())


def test_key_reference_selects_the_key(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    block = _signature_block(b"y")
    transmit(f"80EA82{KEYX_REF:02X}80" + block[:128].hex())
    transmit(f"80EA02{KEYX_REF:02X}80" + block[128:].hex())
    signature = bytes.fromhex(transmit("80C1000000"))[:-2]
    private_key(VALID, "enc").public_key().verify(signature, b"y", padding.PKCS1v15(), hashes.SHA256())
    assert transmit("80EA820980" + block[:128].hex()) == "6A88"


def test_halves_with_different_keys_are_refused(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    block = _signature_block(b"z")
    transmit(f"80EA82{KEYX_REF:02X}80" + block[:128].hex())
    assert transmit(f"80EA02{SIGN_REF:02X}80" + block[128:].hex()) == "6985"
    assert transmit(f"80EA02{SIGN_REF:02X}40" + block[128:192].hex()) == "6700"


def test_decrypt_returns_the_raw_block(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    ciphertext = private_key(VALID, "enc").public_key().encrypt(b"session key", padding.PKCS1v15())
    transmit(f"80EA82{KEYX_REF:02X}80" + ciphertext[:128].hex())
    transmit(f"80EA02{KEYX_REF:02X}80" + ciphertext[128:].hex())
    block = bytes.fromhex(transmit("80C1000000"))[:-2]
    assert block[:2] == b"\x00\x02" and block.endswith(b"\x00session key")


def test_block_not_below_the_modulus_is_6a80(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    transmit(f"80EA82{SIGN_REF:02X}80" + "FF" * 128)
    assert transmit(f"80EA02{SIGN_REF:02X}80" + "FF" * 128) == "6A80"


def test_openssl_path_and_crt_path_agree() -> None:
    """The fast path (a recognised signature block through OpenSSL) gives the raw-RSA bytes."""
    key = private_key(VALID, "sign")
    block = _signature_block(b"agree")
    numbers = key.private_numbers()
    expected = pow(int.from_bytes(block, "big"), numbers.d, numbers.public_numbers.n).to_bytes(256, "big")
    assert rsa_private_operation(key, block) == expected
    other = b"\x00\x01" + b"\xff" * 200 + b"\x00" + bytes(range(53))  # not a known DigestInfo: CRT path
    assert rsa_private_operation(key, other) == pow(
        int.from_bytes(other, "big"), numbers.d, numbers.public_numbers.n
    ).to_bytes(256, "big")


def test_rsa_private_operation_rejects_large_input() -> None:
    with pytest.raises(CardError) as info:
        rsa_private_operation(private_key(VALID, "sign"), b"\xff" * 256)
    assert info.value.sw == 0x6A80


# -- MSE / PSO second path (CLA 00) ----------------------------------------------------------


def test_mse_and_pso_compute_digital_signature(card: Card, transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit(f"002241B6068401{SIGN_REF:02X}800102") == "9000"
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(b"pso").digest()
    response = bytes.fromhex(transmit("002A9E9A33" + digest_info.hex() + "00"))
    assert response[-2:] == b"\x90\x00" and len(response) == 258
    private_key(VALID, "sign").public_key().verify(response[:-2], b"pso", padding.PKCS1v15(), hashes.SHA256())


def test_mse_with_the_reference_doc_template_a4(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(f"002241A4068401{SIGN_REF:02X}800102") == "9000"
    assert transmit("002241A4038401 09".replace(" ", "")) == "6A88"


def test_pso_decipher_by_command_chaining(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit(f"002241B8068401{KEYX_REF:02X}800102") == "9000"
    ciphertext = private_key(VALID, "enc").public_key().encrypt(b"chained", padding.PKCS1v15())
    data = b"\x00" + ciphertext
    assert transmit("102A8086" + "80" + data[:128].hex()) == "9000"
    response = bytes.fromhex(transmit("002A8086" + f"{len(data) - 128:02X}" + data[128:].hex() + "00"))
    assert response[-2:] == b"\x90\x00"
    assert response[:2] == b"\x00\x02" and response[:-2].endswith(b"\x00chained")


def test_pso_decipher_by_extended_apdu(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit(f"002241B8068401{KEYX_REF:02X}800102") == "9000"
    ciphertext = private_key(VALID, "enc").public_key().encrypt(b"extended", padding.PKCS1v15())
    response = bytes.fromhex(transmit("002A8086 000101 00".replace(" ", "") + ciphertext.hex() + "0000"))
    assert response[-2:] == b"\x90\x00" and response[:-2].endswith(b"\x00extended")


def test_pso_needs_verify_and_mse(transmit) -> None:  # type: ignore[no-untyped-def]
    assert transmit("002A9E9A0400000000" + "00") == "6982"
    assert transmit(verify_apdu(PIN)) == "9000"
    assert transmit("002A9E9A0400000000" + "00") == "6985"


def _tdes_cbc(iv: bytes, data: bytes, encrypt: bool) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = DEFAULT_TRANSPORT_KEY + DEFAULT_TRANSPORT_KEY[:8]
    cipher = Cipher(TripleDES(key), modes.CBC(iv))
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


def _unprotect_the_long_way(iv: bytes, cryptogram: bytes, length: int) -> bytes | None:
    """The reference reading, step by step and straight from cryptography: decipher, unpad,
    MAC the plain bytes from the IV, compare."""
    body = pkcs7_unpad(_tdes_cbc(iv, cryptogram, encrypt=False))
    if body is None or len(body) != length + 8:
        return None
    plain, mac = body[:length], body[length:]
    n = 8 - length % 8
    return plain if _tdes_cbc(iv, plain + bytes((n,)) * n, encrypt=True)[-8:] == mac else None


@pytest.mark.parametrize("length", [1, 7, 8, 10, 16, 20, 23, 24])
def test_unprotect_agrees_with_the_long_way_on_every_altered_bit(length: int) -> None:
    """unprotect's verdict must be an independent step-by-step reading's for the honest
    cryptogram and for every one-bit change of IV or cryptogram. (Both accept some: the
    MAC's chain over whole plain blocks *is* the cryptogram's, so a change there garbles the
    PIN block without breaking the MAC. The card then sees a wrong PIN, which costs a try;
    the scheme is the reference's.)"""
    cipher = TransportCipher(DEFAULT_TRANSPORT_KEY)
    plain = bytes(range(0x30, 0x30 + length))
    cryptogram = cipher.protect(IV, plain)
    assert cipher.unprotect(IV, cryptogram, length) == plain
    refused = 0
    for i in range((8 + len(cryptogram)) * 8):
        altered = bytearray(IV + cryptogram)
        altered[i // 8] ^= 0x80 >> (i % 8)
        iv, body = bytes(altered[:8]), bytes(altered[8:])
        expected = _unprotect_the_long_way(iv, body, length)
        try:
            got: bytes | None = cipher.unprotect(iv, body, length)
        except CardError as exc:
            assert exc.sw == 0x6988
            got, refused = None, refused + 1
        assert got == expected, f"bit {i}"
    assert refused >= 8 * 8  # changes to the last blocks (MAC, padding) are always refused
    with pytest.raises(CardError):
        cipher.unprotect(IV, cryptogram[:-8], length)  # a block short
