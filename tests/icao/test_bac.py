"""BAC of ICAO 9303-11 §4.3, checked against the worked example of Appendix D."""

from __future__ import annotations

import pytest

from eidemu.emulator.icao.bac import BacChip, BacKeys, BacTerminal, session_keys
from eidemu.emulator.icao.errors import AuthenticationFailed, ProtocolError, SequenceError
from eidemu.emulator.icao.kdf import adjust_des_parity, bac_key_seed, check_digit, mrz_information

from . import vectors as v
from .vectors import replay


def test_check_digits_of_the_appendix_d_mrz() -> None:
    # 9303-3 §4.9: weights 7 3 1
    assert check_digit("L898902C<") == "3"
    assert check_digit("690806") == "1"
    assert check_digit("940623") == "6"
    assert check_digit("T22000129") == "3"
    assert check_digit("640812") == "5"
    assert check_digit("101031") == "8"


def test_mrz_information_and_key_seed() -> None:
    info = mrz_information(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    assert info == v.BAC_MRZ_INFORMATION
    assert bac_key_seed(info) == v.BAC_K_SEED


def test_mrz_information_rejects_bad_dates_and_characters() -> None:
    with pytest.raises(ValueError, match="date of birth must be YYMMDD"):
        mrz_information("L898902C", "6908", "940623")
    with pytest.raises(ValueError, match="is not an MRZ character"):
        mrz_information("L898-02C", "690806", "940623")


def test_basic_access_keys() -> None:
    keys = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    assert keys.k_enc == v.BAC_K_ENC
    assert keys.k_mac == v.BAC_K_MAC
    assert "AB94" not in repr(keys).upper()


def test_des_parity() -> None:
    assert adjust_des_parity(bytes.fromhex("0001FEFF")) == bytes.fromhex("0101FEFE")


def test_terminal_and_chip_reproduce_appendix_d3() -> None:
    keys = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    chip = BacChip(keys, rng=replay(v.BAC_RND_IC, v.BAC_K_IC))
    terminal = BacTerminal(keys, rng=replay(v.BAC_RND_IFD, v.BAC_K_IFD))

    rnd_ic = chip.challenge()
    command = terminal.external_authenticate_data(rnd_ic)
    assert command == v.BAC_E_IFD + v.BAC_M_IFD

    answer, chip_keys = chip.external_authenticate(command)
    assert answer == v.BAC_E_IC + v.BAC_M_IC
    terminal_keys = terminal.finish(answer)

    for result in (chip_keys, terminal_keys):
        assert result.ks_enc == v.BAC_KS_ENC
        assert result.ks_mac == v.BAC_KS_MAC
        assert result.ssc.to_bytes(8, "big") == v.BAC_SSC
        assert result.cipher.algorithm == "3des"
    assert session_keys(v.BAC_K_IFD, v.BAC_K_IC, v.BAC_RND_IC, v.BAC_RND_IFD) == chip_keys


def test_chip_refuses_a_wrong_mrz_and_a_stale_challenge() -> None:
    good = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    wrong = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, "940624")
    chip = BacChip(good)
    command = BacTerminal(wrong).external_authenticate_data(chip.challenge())
    with pytest.raises(AuthenticationFailed, match="MAC does not verify"):
        chip.external_authenticate(command)
    # the challenge was used: a second try without GET CHALLENGE is a state error
    with pytest.raises(SequenceError, match="without a preceding GET CHALLENGE"):
        chip.external_authenticate(command)


def test_chip_refuses_a_cryptogram_for_another_challenge() -> None:
    keys = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    chip = BacChip(keys)
    old = chip.challenge()
    command = BacTerminal(keys).external_authenticate_data(old)
    chip.challenge()
    with pytest.raises(AuthenticationFailed, match="chip's challenge"):
        chip.external_authenticate(command)


def test_terminal_refuses_a_tampered_answer() -> None:
    keys = BacKeys.from_mrz(v.BAC_DOCUMENT_NUMBER, v.BAC_BIRTH, v.BAC_EXPIRY)
    chip = BacChip(keys)
    terminal = BacTerminal(keys)
    answer, _ = chip.external_authenticate(terminal.external_authenticate_data(chip.challenge()))
    with pytest.raises(AuthenticationFailed):
        terminal.finish(answer[:-1] + bytes([answer[-1] ^ 1]))
    with pytest.raises(ProtocolError, match="40"):
        terminal.finish(answer[:39])
