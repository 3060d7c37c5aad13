"""The block-cipher helpers against published test vectors, each cited next to it."""

import pytest

from eidemu.emulator.iso7816.crypto import (
    BlockAlgorithm,
    aes_cmac,
    cbc_decrypt,
    cbc_encrypt,
    encrypt_block,
    pad_iso9797_m2,
    retail_mac,
)

AES_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")  # NIST SP 800-38A F.2.1, RFC 4493 §4


def test_block_algorithms_by_profile_name() -> None:
    assert BlockAlgorithm("3des") is BlockAlgorithm.TDES and BlockAlgorithm.TDES.block_size == 8
    assert BlockAlgorithm("aes") is BlockAlgorithm.AES and BlockAlgorithm.AES.block_size == 16
    assert BlockAlgorithm.AES.key_sizes == (16, 24, 32) and BlockAlgorithm.TDES.key_sizes == (16, 24)
    assert f"{BlockAlgorithm.TDES}" == "3des"


def test_aes_cbc_nist_sp800_38a_f21() -> None:
    """NIST SP 800-38A Appendix F.2.1 (CBC-AES128.Encrypt), first two blocks."""
    iv = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    cipher = bytes.fromhex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")
    assert cbc_encrypt(BlockAlgorithm.AES, AES_KEY, iv, plain) == cipher
    assert cbc_decrypt(BlockAlgorithm.AES, AES_KEY, iv, cipher) == plain


def test_aes_single_block_fips197_c1() -> None:
    """FIPS 197 Appendix C.1 (AES-128)."""
    key = bytes(range(16))
    assert encrypt_block(BlockAlgorithm.AES, key, bytes.fromhex("00112233445566778899aabbccddeeff")) == bytes.fromhex(
        "69c4e0d86a7b0430d8cdb78070b4c55a"
    )


def test_aes_cmac_rfc4493() -> None:
    """RFC 4493 §4, examples 1 (empty message) and 2 (16 bytes)."""
    assert aes_cmac(AES_KEY, b"") == bytes.fromhex("bb1d6929e95937287fa37d129b756746")
    assert aes_cmac(AES_KEY, bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")) == bytes.fromhex(
        "070a16b46b4d4144f79bdd9dd04a287c"
    )


def test_retail_mac_icao_9303_11_d3() -> None:
    """ICAO Doc 9303-11 Appendix D.3: M_IFD over E_IFD with K_mac (BAC mutual authentication)."""
    k_mac = bytes.fromhex("7962D9ECE03D1ACD4C76089DCE131543")
    e_ifd = bytes.fromhex("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
    assert retail_mac(k_mac, pad_iso9797_m2(e_ifd, 8)) == bytes.fromhex("5F1448EEA8AD90A7")


def test_retail_mac_of_one_block_is_two_key_3des() -> None:
    """With one block there is no DES-CBC part: the MAC is E_K1(D_K2(E_K1(X)))."""
    key = bytes(range(16))
    block = bytes.fromhex("0011223344556677")
    assert retail_mac(key, block) == cbc_encrypt(BlockAlgorithm.TDES, key, bytes(8), block)


def test_padding_method_2() -> None:
    assert pad_iso9797_m2(b"", 8) == bytes.fromhex("8000000000000000")
    assert pad_iso9797_m2(bytes(7), 8) == bytes(7) + b"\x80"
    assert pad_iso9797_m2(bytes(8), 8) == bytes(8) + bytes.fromhex("8000000000000000")


@pytest.mark.parametrize(
    ("iv", "data", "message"),
    [
        (bytes(8), bytes(9), "not a multiple of the block length"),
        (bytes(7), bytes(8), r"Invalid IV size \(7\) for CBC"),
    ],
)
def test_cbc_refuses_partial_blocks(iv: bytes, data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cbc_encrypt(BlockAlgorithm.TDES, bytes(16), iv, data)
    with pytest.raises(ValueError, match=message):
        cbc_decrypt(BlockAlgorithm.TDES, bytes(16), iv, data)


def test_retail_mac_refuses_unpadded_data_and_wrong_keys() -> None:
    with pytest.raises(ValueError, match="whole 8-byte blocks"):
        retail_mac(bytes(16), bytes(9))
    with pytest.raises(ValueError, match="16 bytes"):
        retail_mac(bytes(24), bytes(8))
